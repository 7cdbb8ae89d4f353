"""Getting the real data sets: one download helper, ACDC by link, DRIVE from the reader's zip.

Downloads stream into ``<file>.part`` with a progress bar, resume from where a previous
attempt stopped (HTTP range requests) or restart when the server does not support them,
are checked against a SHA-256 when one is known, and are renamed to their final name only
when complete. Archives are unpacked into a temporary folder renamed when complete.
Nothing half-written is ever taken as finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ACDC_URL = (
    "https://humanheart-project.creatis.insa-lyon.fr/database/api/v1/collection/637218c173e9f0047faa00fb/download"
)
"""The public ACDC collection of the Creatis humanheart-project database (CC BY-NC-SA 4.0)."""

__all__ = ["download", "sha256sum", "extract_zip", "download_acdc", "install_drive_zip", "ACDC_URL"]


def sha256sum(path: Path | str, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path | str,
    sha256: str | None = None,
    *,
    timeout: float = 60.0,
    progress: bool = True,
    chunk: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest`` safely; return ``dest``.

    An existing ``dest`` is kept when it matches ``sha256`` (or when no checksum is
    given). A ``dest.part`` left by an interrupted attempt is resumed. A checksum
    mismatch deletes the partial file and raises ``ValueError``. Without network the
    error says how to proceed offline.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256sum(dest) == sha256.lower()):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "bl_tutorial"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except (urllib.error.URLError, OSError) as error:
        raise ConnectionError(
            f"Could not download {url} ({error}). If this machine is offline, download the file on one "
            f"that is online and place it at {dest}; the book's notebooks run on the offline stand-ins "
            "without it."
        ) from None
    with response:
        resumed = start and getattr(response, "status", 200) == 206
        mode = "ab" if resumed else "wb"
        offset = start if resumed else 0
        length = response.headers.get("Content-Length")
        total = int(length) + offset if length else None
        with (
            open(part, mode) as handle,
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar,
        ):
            for block in iter(lambda: response.read(chunk), b""):
                handle.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size != total:
        raise ConnectionError(
            f"{url}: the download stopped early ({part.stat().st_size} of {total} bytes); run again to resume"
        )
    if sha256 is not None and sha256sum(part) != sha256.lower():
        part.unlink()
        raise ValueError(f"{dest}: checksum mismatch (expected SHA-256 {sha256}); the partial file was deleted")
    os.replace(part, dest)
    return dest


def extract_zip(archive: Path | str, dest: Path | str) -> Path:
    """Unpack ``archive`` into ``dest`` through a temporary folder renamed when complete."""
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive not found")
    if dest.exists():
        raise ValueError(f"{dest}: already exists; remove it or choose another destination")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-extract-", dir=dest.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zipped:
                bad = zipped.testzip()
                if bad is not None:
                    raise ValueError(f"{archive}: corrupt member {bad}")
                zipped.extractall(staging)
        except zipfile.BadZipFile as error:
            raise ValueError(f"{archive}: not a valid zip file ({error})") from None
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def download_acdc(data_root: Path | str, url: str = ACDC_URL, sha256: str | None = None) -> Path:
    """Download and unpack ACDC under ``data_root``; return the folder holding ``training/``.

    About 2.3 GB. The licence (CC BY-NC-SA 4.0) allows non-commercial research use and
    asks to cite Bernard et al. 2018. Set ``BL_TUTORIAL_DATA=data_root`` afterwards so
    that :func:`~bl_tutorial.data.ensure_dataset` finds it.
    """
    from bl_tutorial.data.sources import find_real_tree

    data_root = Path(data_root).expanduser()
    found = find_real_tree("acdc", data_root)
    if found is not None:
        return found
    archive = download(url, data_root / "acdc.zip", sha256)
    extract_zip(archive, data_root / "ACDC")
    found = find_real_tree("acdc", data_root)
    if found is None:
        raise ValueError(f"{archive}: unpacked, but no training/patientXXX/Info.cfg was found under {data_root}")
    return found


def install_drive_zip(zip_path: Path | str, data_root: Path | str) -> Path:
    """Unpack the DRIVE zip a reader downloaded after registering; verify the layout.

    DRIVE cannot be downloaded automatically (it needs a free registration) nor
    redistributed. Put the zip anywhere, call this, then set ``BL_TUTORIAL_DATA=data_root``.
    Returns the folder holding ``training/`` and ``test/``.
    """
    from bl_tutorial.data.drive import check_drive_layout, read_drive
    from bl_tutorial.data.sources import find_real_tree

    data_root = Path(data_root).expanduser()
    if find_real_tree("drive", data_root) is None:
        extract_zip(zip_path, data_root / "DRIVE")
    found = find_real_tree("drive", data_root)
    if found is None:
        raise ValueError(f"{zip_path}: unpacked, but no training/images/*.tif was found under {data_root}")
    check_drive_layout(found, "test")
    read_drive(found, "training")  # reads every file once: fails now on a corrupt one
    return found
