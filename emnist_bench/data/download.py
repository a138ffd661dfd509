"""Downloading the official NIST EMNIST archive (``gzip.zip``) and extracting one split.

Nothing half-written is ever left under a final name: the archive and each extracted member are
written through ``rundir.atomic_open`` (a temporary file, renamed into place), the archive only
once its length and checksum pass.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from emnist_bench.errors import DataError
from emnist_bench.rundir import atomic_open

log = logging.getLogger(__name__)

ARCHIVE_NAME = "gzip.zip"
CHUNK = 1 << 20


def download_split(
    root: Path, split: str, *, urls: Sequence[str], md5: str | None, timeout: float = 60.0
) -> list[Path]:
    """Fetches the NIST archive into ``root`` (unless a verified copy is there) and extracts
    the files of ``split``. Returns the extracted paths.

    Raises:
        DataError: when every URL fails, the checksum does not match, or the archive lacks
            the split.
    """
    root.mkdir(parents=True, exist_ok=True)
    archive = root / ARCHIVE_NAME
    if not (archive.is_file() and (md5 is None or _md5(archive) == md5)):
        _fetch_first(urls, archive, md5=md5, timeout=timeout, root=root, split=split)
    return _extract_split(archive, root, split)


def _fetch_first(
    urls: Sequence[str], archive: Path, *, md5: str | None, timeout: float, root: Path, split: str
) -> None:
    failures = []
    for url in urls:
        try:
            _fetch(url, archive, md5=md5, timeout=timeout)
            return
        except (
            urllib.error.URLError,
            OSError,
            http.client.HTTPException,  # a reply that is not HTTP, or cut short
            ValueError,  # a URL without a scheme
            _ChecksumMismatch,
            _Incomplete,
        ) as error:
            reason = " ".join(str(getattr(error, "reason", error)).split())  # one line
            log.warning("Download from %s failed: %s", url, reason)
            failures.append(f"{url} ({reason})")
    raise DataError(
        root,
        f"could not download EMNIST: {'; '.join(failures) or 'no URL configured'}. "
        f"Offline? Put the Kaggle CSVs (emnist-{split}-train.csv, emnist-{split}-test.csv, "
        f"emnist-{split}-mapping.txt) or the NIST files (emnist-{split}-*-ubyte.gz) in this folder",
    )


class _ChecksumMismatch(Exception):
    pass


class _Incomplete(Exception):
    pass


def _fetch(url: str, archive: Path, *, md5: str | None, timeout: float) -> None:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    digest = hashlib.md5()
    received = 0
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    with (
        urllib.request.urlopen(url, timeout=timeout) as response,
        atomic_open(archive) as out,  # renamed into place only once the checks below pass
        progress,
    ):
        total = int(response.headers.get("Content-Length") or 0) or None
        task = progress.add_task(f"Downloading {url.rsplit('/', 1)[-1]}", total=total)
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            progress.update(task, advance=len(chunk))
        if total is not None and received != total:
            raise _Incomplete(f"connection closed after {received} of {total} bytes")
        if md5 is not None and digest.hexdigest() != md5:
            raise _ChecksumMismatch(f"MD5 {digest.hexdigest()} does not match expected {md5}")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _extract_split(archive: Path, root: Path, split: str) -> list[Path]:
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [
                info
                for info in bundle.infolist()
                if Path(info.filename).name.startswith(f"emnist-{split}-") and not info.is_dir()
            ]
            if not members:
                raise DataError(archive, f"the archive holds no emnist-{split}-* files")
            extracted = []
            for info in members:
                target = root / Path(info.filename).name
                with bundle.open(info) as source, atomic_open(target) as out:
                    shutil.copyfileobj(source, out, CHUNK)
                extracted.append(target)
    except zipfile.BadZipFile:
        archive.unlink(missing_ok=True)
        raise DataError(archive, "is not a valid zip archive; it was removed, run again") from None
    log.info("Extracted %s into %s", ", ".join(p.name for p in extracted), root)
    return extracted
