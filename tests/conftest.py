"""Shared fixtures.

Data fixtures come first; the helpers that write synthetic EMNIST folders live in
``tests/emnist_files.py`` so any test module can import them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# --- data ------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real EMNIST folders (``../shared/data`` beside the repository); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real EMNIST data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def idx_proxy(shared_data: Path) -> Path:
    """The real EMNIST proxy in the NIST IDX gzip layout (107,934 train / 7,050 test)."""
    root = shared_data / "emnist-proxy"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    return root


@pytest.fixture(scope="session")
def csv_proxy(shared_data: Path) -> Path:
    """The real EMNIST proxy in the Kaggle CSV layout (2,350 train / 470 test)."""
    root = shared_data / "emnist-proxy-csv"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    return root


@pytest.fixture(scope="session")
def proxy_cache(tmp_path_factory) -> Path:
    """A cache folder shared by the real-data tests, so each real file is parsed once."""
    return tmp_path_factory.mktemp("emnist-cache")


@pytest.fixture
def tiny_idx(tmp_path: Path):
    """A tiny IDX Balanced folder (2 random images per class): (root, train images, labels)."""
    from tests.emnist_files import write_tiny_split

    root = tmp_path / "emnist"
    images, labels = write_tiny_split(root, per_class=2, layout="idx")
    return root, images, labels
