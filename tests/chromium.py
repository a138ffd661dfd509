"""Headless Chromium for the page tests: Debian's ``chromium``, which CI installs (.ci/run)."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium")
# Nothing reaches the network (this machine's is closed) and no first-run work is done
# (``--headless`` is added by each test's own way of starting it).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
