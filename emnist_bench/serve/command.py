"""``python -m emnist_bench.serve RUN_DIR [--port N]``: a page on 127.0.0.1 to draw a character
or drop an image and see the run's top 3 characters live (:mod:`emnist_bench.serve.web`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from emnist_bench.errors import UserError, exit_on_user_error

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
    return parse


def start(run_dir: Path | str, port: int = PORT):
    """Opens the run and binds the server (not yet serving); returns it.

    Raises:
        UserError: when the run is unusable or the port is taken.
    """
    from emnist_bench.predict.saved import open_run
    from emnist_bench.serve.web import PredictionServer

    run = open_run(run_dir)
    try:
        return PredictionServer(run, port)
    except OSError as error:
        raise UserError(f"cannot listen on 127.0.0.1:{port} ({error}); pass --port N") from error


def main(arguments: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = parser().parse_args(sys.argv[1:] if arguments is None else arguments)
    with exit_on_user_error():
        server = start(options.run_dir, options.port)
    print(f"{options.run_dir}: draw on {server.url} (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
