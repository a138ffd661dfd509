"""``python -m emnist_bench.serve RUN_DIR [--port N] [--max-pixels N] [--allow-origin URL]``: a
page on 127.0.0.1 to draw a character or drop an image and see the run's top 3 characters live
(:mod:`emnist_bench.serve.web`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.predict.images import MAX_PIXELS

PORT = 8047


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m emnist_bench.serve",
        description="A page on 127.0.0.1 to draw a character and see the run's top 3 live.",
    )
    parse.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the output folder of a run")
    parse.add_argument(
        "--port", type=int, default=PORT, help=f"port on 127.0.0.1 ({PORT}; 0 picks a free one)"
    )
    parse.add_argument(
        "--max-pixels", type=int, default=MAX_PIXELS,
        help=f"refuse images with more pixels than this ({MAX_PIXELS:,})",
    )  # fmt: skip
    parse.add_argument(
        "--allow-origin", action="append", default=[], metavar="URL",
        help="also accept requests from pages of this origin, e.g. http://localhost:3000 "
        "(repeatable; by default only the server's own page)",
    )  # fmt: skip
    return parse


def check_origin(origin: str) -> str:
    """``origin`` as a browser sends it (``scheme://host[:port]``); raises :class:`UserError`."""
    parts = urlsplit(origin)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or origin != (f"{parts.scheme}://{parts.netloc}")
    ):
        raise UserError(
            f"--allow-origin {origin!r}: give an origin as a browser sends it, "
            "e.g. http://localhost:3000 (no path, no trailing slash)"
        )
    return origin


def start(
    run_dir: Path | str,
    port: int = PORT,
    *,
    max_pixels: int = MAX_PIXELS,
    allow_origins: list[str] = (),
    **server_options,
):
    """Opens the run and binds the server (not yet serving); returns it.

    Raises:
        UserError: when an option is out of range, the run is unusable or the port is taken.
    """
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be 0-65535 (0 picks a free one), got {port}")
    if max_pixels < 1:
        raise UserError(f"--max-pixels must be at least 1, got {max_pixels}")
    origins = tuple(check_origin(origin) for origin in allow_origins)
    from emnist_bench.predict.saved import open_run
    from emnist_bench.serve.web import HOST, PredictionServer

    run = open_run(run_dir)
    try:
        return PredictionServer(
            run, port, max_pixels=max_pixels, allow_origins=origins, **server_options
        )
    except OSError as error:
        reason = error.strerror or str(error)
        raise UserError(f"cannot listen on {HOST}:{port} ({reason}); pass --port N") from error


def main(arguments: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = parser().parse_args(sys.argv[1:] if arguments is None else arguments)
    with exit_on_user_error():
        server = start(options.run_dir, options.port, max_pixels=options.max_pixels,
                       allow_origins=options.allow_origin)  # fmt: skip
    print(f"{options.run_dir}: draw on {server.url} (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
