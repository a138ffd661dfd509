"""Errors a user can cause, reported at the edge in one line."""

from __future__ import annotations

import errno
import multiprocessing
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

INTERRUPTED = "interrupted; run the same command to resume"
INSTALL_TENSORFLOW = (
    "TensorFlow is not installed; install emnist_bench with it: "
    "pip install 'emnist_bench[cpu]' (or 'emnist_bench[gpu]' for an NVIDIA GPU)"
)
# The faults of a disk or folder a user can fix, and what to do about each.
DISK_FAULTS = {
    errno.ENOSPC: "no space left on the device; free some and run the same command again",
    errno.EDQUOT: "disk quota exceeded; free some space and run the same command again",
    errno.EROFS: "read-only file system; write the outputs elsewhere (hydra.run.dir=DIR)",
    errno.EACCES: "permission denied; write the outputs to a folder you own (hydra.run.dir=DIR)",
    errno.EPERM: "operation not permitted; write the outputs elsewhere (hydra.run.dir=DIR)",
    # A file where a folder must go: hydra.run.dir, or a folder on its path, names a file.
    errno.EEXIST: "a file is in the way of a folder; remove it or write the outputs elsewhere "
    "(hydra.run.dir=DIR)",
    errno.ENOTDIR: "a file is in the way of a folder on this path; remove it or write the "
    "outputs elsewhere (hydra.run.dir=DIR)",
}


class UserError(Exception):
    """A problem with the user's input (a file, a config value) that they can fix.

    The command line prints ``str(error)`` on one line and exits with code 2, no traceback.
    """


class DataError(UserError):
    """A data file is missing, broken or inconsistent."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class ConfigError(UserError):
    """A config value is invalid."""


def reason(error: BaseException) -> str:
    """An error's message as one line: its first line, joined by the next when the first ends
    with a colon (Hydra and OmegaConf put what went wrong there), or the class name if empty."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


class Interrupted(KeyboardInterrupt):
    """SIGTERM (what SLURM and ``kill`` send) arrived: handled like Ctrl-C, exit 128 + 15."""

    signal_number = signal.SIGTERM


def disk_fault(error: OSError) -> str | None:
    """``path: what to do`` for a full, read-only or forbidden disk or folder; None otherwise.

    h5py (``model.keras``'s weights) reports a full disk only in its message, without errno.
    """
    # h5py says "... filename = '/run/backup/epoch-1.weights.h5', ..., errno = 28, ...".
    number, where = error.errno, error.filename
    if number is None:
        found = re.search(r"errno = (\d+)", str(error))
        number = int(found[1]) if found else None
    if where is None:
        named = re.search(r"(?:file)?name = '([^']+)'", str(error))
        where = named[1] if named else None
    if number not in DISK_FAULTS:
        return None
    return f"{where}: {DISK_FAULTS[number]}" if where else DISK_FAULTS[number]


def environment_fault(error: BaseException) -> str | None:
    """The one line for a fault of the machine rather than of the run: a full, read-only or
    forbidden disk or folder, or TensorFlow missing. None for anything else.

    Every later run would meet it too, so a sweep stops on it instead of recording a failure.
    """
    if isinstance(error, ModuleNotFoundError):
        missing = (error.name or "").split(".")[0] == "tensorflow"
        return INSTALL_TENSORFLOW if missing else None
    if isinstance(error, OSError):
        return disk_fault(error)
    return None


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Interrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Every command's edge: a fault the user can fix is one line on stderr and an exit code.

    * :class:`UserError`: ``error: ...``, exit 2.
    * a full, read-only or forbidden disk or folder: ``error: PATH: what to do``, exit 2.
    * TensorFlow missing: ``error: ... pip install 'emnist_bench[cpu]'``, exit 2.
    * Ctrl-C (exit 130) or SIGTERM (exit 143): ``interrupted; run the same command to resume``;
      a run leaves its folder resumable.

    Internal bugs still raise with their traceback.
    """
    try:
        with _sigterm_as_interrupt():
            yield
    except UserError as error:
        _exit(f"error: {error}", 2)
    except KeyboardInterrupt as error:
        number = int(getattr(error, "signal_number", signal.SIGINT))
        # Ctrl-C reaches a parallel sweep's workers too: the launching process says it once.
        worker = multiprocessing.parent_process() is not None
        _exit(None if worker and number == signal.SIGINT else INTERRUPTED, 128 + number)
    except (ModuleNotFoundError, OSError) as error:
        fault = environment_fault(error)
        if fault is None:
            raise
        _exit(f"error: {fault}", 2, fault=True)


@contextmanager
def stderr_closed() -> Iterator[None]:
    """Points file descriptor 2 at /dev/null within the block: what C and C++ code writes there
    (TensorFlow's start-up lines, h5py's complaints) is dropped."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr: nothing to quiet
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _exit(line: str | None, code: int, fault: bool = False) -> None:
    with suppress(OSError, ValueError):  # a full disk or a closed pipe behind stdout
        sys.stdout.flush()
    if line is not None:
        print(line, file=sys.stderr)
    raise (FaultExit if fault else SystemExit)(code)


class FaultExit(SystemExit):
    """The exit after a fault of the machine (a full disk, say). The console command ends the
    process at once (:meth:`end_process`): freed at exit, the files a failed write left open
    (h5py's) would print tracebacks about the full disk, or crash."""

    def end_process(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        os._exit(int(self.code))
