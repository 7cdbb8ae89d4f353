"""Getting the real data sets: one download helper, ACDC by link, DRIVE from the reader's zip.

A download streams into ``<file>.part``. Beside it, ``<file>.part.json`` records what the
server said about the file when the download began: its size, ETag and Last-Modified
date. An interrupted download resumes from where it stopped (an HTTP range request) only
if the server still describes the same file; otherwise it starts again from the first
byte. Once every byte is there, the file is checked: against a SHA-256 when one is known,
and by a ``verify`` function when one is given (for ACDC, whose checksum is not
published: the CRC of every member of the zip). A file that fails is deleted, so that the
next attempt starts from scratch; one that passes is renamed to its final name. A server
that answers with a web page (a login or error page) is refused before anything is saved.

Archives are unpacked into a temporary folder and checked there (the official layout
must be present); only then is the tree moved into place, replacing an earlier install.
Nothing half-written or wrong is ever taken as finished.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from bl_tutorial._io import atomic_directory, make_dirs, write_json_atomic

ACDC_URL = (
    "https://humanheart-project.creatis.insa-lyon.fr/database/api/v1/collection/637218c173e9f0047faa00fb/download"
)
"""The public ACDC collection of the Creatis humanheart-project database (CC BY-NC-SA 4.0)."""

__all__ = ["download", "sha256sum", "check_zip", "extract_zip", "download_acdc", "install_drive_zip", "ACDC_URL"]


def sha256sum(path: Path | str, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_zip(path: Path | str) -> Path:
    """Check that ``path`` is a complete zip archive whose members all pass their CRC check; return it.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a zip archive, is cut short, has a corrupt member, or uses a
        compression method Python cannot unpack.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: archive not found")
    try:
        with zipfile.ZipFile(path) as zipped:
            bad = zipped.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise ValueError(f"{path}: not a valid zip archive, or one cut short ({error})") from None
    if bad is not None:
        raise ValueError(f"{path}: the zip member {bad} is corrupt (CRC mismatch)")
    return path


def download(
    url: str,
    dest: Path | str,
    sha256: str | None = None,
    *,
    verify: Callable[[Path], object] | None = None,
    timeout: float = 60.0,
    progress: bool = True,
    chunk: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest`` safely; return ``dest``.

    Parameters
    ----------
    url : str
    dest : path
        The final file. An existing one is kept when it passes ``sha256`` and ``verify``
        (each when given), and downloaded again when it fails them.
    sha256 : str, optional
        The expected SHA-256 (64 hexadecimal digits).
    verify : callable, optional
        Called with the path of the complete download; raises ``ValueError`` when the
        content is not what is expected (e.g. :func:`check_zip`).
    timeout : float
        Seconds to wait for the server.
    progress : bool
        Show a progress bar.
    chunk : int
        Bytes read at a time.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ConnectionError
        No connection, an HTTP error, or a transfer that stopped early (the partial file
        is kept: calling again resumes it).
    ValueError
        The server sent a web page, or the complete file fails ``sha256`` or ``verify``
        (it is deleted: calling again starts from scratch).
    """
    dest = _check_download_arguments(url, dest, sha256, verify)
    if dest.is_file():
        try:
            _check(dest, sha256, verify)
            return dest
        except ValueError:
            dest.unlink()  # a bad file from an earlier attempt (e.g. a login page kept by an older version)
    make_dirs(dest.parent)
    part = dest.with_name(dest.name + ".part")
    if not _fetch(url, part, timeout, progress, chunk):  # the partial file began another version of the file
        _discard(part)
        _fetch(url, part, timeout, progress, chunk)
    _finish(url, part, dest, sha256, verify)
    return dest


def _check_download_arguments(url, dest, sha256, verify) -> Path:
    if not isinstance(url, str):
        raise TypeError(f"url must be a string, got {type(url).__name__} {url!r}")
    if sha256 is not None and not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha256)):
        raise ValueError(f"sha256 must be 64 hexadecimal digits or None, got {sha256!r}")
    if verify is not None and not callable(verify):
        raise TypeError(f"verify must be a function of the downloaded path or None, got {type(verify).__name__}")
    return Path(dest)


def _record_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _discard(part: Path) -> None:
    """Delete a partial download and its record."""
    part.unlink(missing_ok=True)
    _record_path(part).unlink(missing_ok=True)


def _read_record(part: Path, url: str) -> dict | None:
    """What was recorded about the remote file when ``part`` was begun; None without a record for ``url``."""
    try:
        record = json.loads(_record_path(part).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    valid = isinstance(record, dict) and set(record) == {"url", "size", "etag", "last_modified"}
    return record if valid and record["url"] == url else None


def _fetch(url: str, part: Path, timeout: float, progress: bool, chunk: int) -> bool:
    """Bring ``part`` up to the whole file; False when it holds the start of another version of the file."""
    record = _read_record(part, url)
    start = part.stat().st_size if record is not None and part.is_file() else 0
    if start and start == record["size"]:
        return True  # complete: an earlier attempt stopped between the last byte and the rename
    try:
        response = _open(url, start, timeout, part.with_suffix(""))
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # nothing to send after byte `start`: complete, or another file
            return _total_size(error.headers) == start
        raise ConnectionError(f"{url}: the server answered HTTP {error.code} ({error.reason})") from None
    with response:
        _refuse_web_page(url, response)
        if start and not _same_file(record, response, start):
            return False
        if not start:
            record = _describe(url, response)
            write_json_atomic(_record_path(part), record)
        _stream(url, response, part, start, record["size"], progress, chunk)
    return True


def _open(url: str, start: int, timeout: float, dest: Path):
    """Open ``url``, from byte ``start`` when it is not 0; without a connection, say how to get ``dest`` offline."""
    request = urllib.request.Request(url, headers={"User-Agent": "bl_tutorial"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as error:
        raise ConnectionError(
            f"Could not download {url} ({error}). If this machine is offline, download the file on one that is "
            f"online and place it at {dest}; the book's notebooks run on the offline stand-ins without it."
        ) from None


def _refuse_web_page(url: str, response) -> None:
    """A login, error or moved-page notice comes as HTML: it is never the file."""
    if response.headers.get_content_type() == "text/html":
        raise ValueError(
            f"{url}: the server sent a web page (Content-Type text/html) instead of the file, usually a login or "
            "error page; nothing was saved. Open the address in a browser to see what it says."
        )


def _total_size(headers) -> int | None:
    """The full size in a ``Content-Range`` header (``bytes 0-99/1000`` or ``bytes */1000``), when given."""
    match = re.search(r"/(\d+)\s*$", headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _describe(url: str, response) -> dict:
    """What identifies the remote file: its URL, size (None when not sent), ETag and Last-Modified date."""
    length = response.headers.get("Content-Length")
    return {
        "url": url,
        "size": int(length) if length else None,
        "etag": response.headers.get("ETag"),
        "last_modified": response.headers.get("Last-Modified"),
    }


def _same_file(record: dict, response, start: int) -> bool:
    """Whether ``response`` continues, from byte ``start``, the file that ``record`` describes."""
    if response.status != 206:  # the server ignored the range and sends the whole file
        return False
    first = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    if first is None or int(first.group(1)) != start:
        return False
    now = {"size": _total_size(response.headers), "etag": response.headers.get("ETag")}
    now["last_modified"] = response.headers.get("Last-Modified")
    return all(record[key] is None or record[key] == value for key, value in now.items())


def _stream(url: str, response, part: Path, start: int, size: int | None, progress: bool, chunk: int) -> None:
    """Append the body of ``response`` to ``part`` (from the beginning when ``start`` is 0)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=size, initial=start, unit="B", unit_scale=True, desc=part.stem, disable=not progress)
    with open(part, "ab" if start else "wb") as handle, bar:
        for block in _blocks(url, response, chunk):
            handle.write(block)
            bar.update(len(block))
    have = part.stat().st_size
    if size is not None and have < size:
        raise ConnectionError(f"{url}: the download stopped early ({have} of {size} bytes); run again to resume")


def _blocks(url: str, response, chunk: int) -> Iterator[bytes]:
    """The body in blocks; a dropped connection becomes a ``ConnectionError`` that says how to go on."""
    while True:
        try:
            block = response.read(chunk)
        except (OSError, http.client.HTTPException) as error:
            raise ConnectionError(f"{url}: the download was interrupted ({error}); run again to resume") from None
        if not block:
            return
        yield block


def _check(path: Path, sha256: str | None, verify: Callable[[Path], object] | None) -> None:
    """Raise ``ValueError`` unless ``path`` matches ``sha256`` and passes ``verify`` (each when given)."""
    if sha256 is not None:
        actual = sha256sum(path)
        if actual != sha256.lower():
            raise ValueError(f"{path.name}: checksum mismatch (expected SHA-256 {sha256.lower()}, got {actual})")
    if verify is not None:
        verify(path)


def _finish(url: str, part: Path, dest: Path, sha256: str | None, verify) -> None:
    """Check the complete ``part`` and rename it to ``dest``; delete it when it fails."""
    try:
        _check(part, sha256, verify)
    except ValueError as error:
        _discard(part)
        raise ValueError(f"{url}: the download was deleted, the next attempt starts from scratch: {error}") from None
    os.replace(part, dest)
    _record_path(part).unlink(missing_ok=True)


def extract_zip(archive: Path | str, dest: Path | str) -> Path:
    """Unpack ``archive`` into ``dest`` (which must not exist) through a temporary folder renamed when complete."""
    archive, dest = check_zip(archive), Path(dest)
    if dest.exists():
        raise ValueError(f"{dest}: already exists; remove it or choose another destination")
    with atomic_directory(dest) as staging, zipfile.ZipFile(archive) as zipped:
        zipped.extractall(staging)
    return dest


def _install(archive: Path, target: Path, name: str, check: Callable[[Path], object] | None = None) -> Path:
    """Unpack ``archive``, find data set ``name`` in it, ``check`` it, then move it to ``target``.

    All of this happens in a temporary folder beside ``target``; ``target`` is replaced
    (an earlier install included) only by a tree that passed. Returns the root of the
    tree in its final place.
    """
    from bl_tutorial.data.sources import DATASETS, find_real_tree

    spec = DATASETS[name]
    with atomic_directory(target, replace=True) as staging:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(staging)
        shutil.rmtree(staging / "__MACOSX", ignore_errors=True)  # resource forks added by macOS's zip
        tree = find_real_tree(name, staging)
        if tree is None:
            raise ValueError(f"{archive}: does not hold {spec.label} in the official layout ({spec.layout})")
        try:
            if check is not None:
                check(tree)
        except (FileNotFoundError, ValueError) as error:
            kind = FileNotFoundError if isinstance(error, FileNotFoundError) else ValueError
            where = str(error).replace(f"{staging}{os.sep}", "")
            raise kind(f"{archive}: not a complete {spec.label} archive, nothing was installed: {where}") from None
        relative = tree.relative_to(staging)
    return target / relative


def download_acdc(data_root: Path | str, url: str = ACDC_URL, sha256: str | None = None) -> Path:
    """Download and unpack ACDC under ``data_root``; return the folder holding ``training/``.

    About 2.3 GB, saved as ``data_root/acdc.zip`` and unpacked into ``data_root/ACDC``.
    No checksum is published, so the archive is checked by the CRC of every member
    (:func:`check_zip`); a download that fails is deleted and the next call starts
    again. The licence (CC BY-NC-SA 4.0) allows non-commercial research use and asks to
    cite Bernard et al. 2018. Set ``BL_TUTORIAL_DATA=data_root`` afterwards so that
    :func:`~bl_tutorial.data.ensure_dataset` finds it.
    """
    from bl_tutorial.data.sources import find_real_tree

    data_root = Path(data_root).expanduser()
    found = find_real_tree("acdc", data_root)
    if found is not None:
        return found
    archive = download(url, data_root / "acdc.zip", sha256, verify=check_zip)
    return _install(archive, data_root / "ACDC", "acdc")


def install_drive_zip(zip_path: Path | str, data_root: Path | str) -> Path:
    """Unpack the DRIVE zip a reader downloaded after registering; verify it; return the tree.

    DRIVE cannot be downloaded automatically (it needs a free registration) nor
    redistributed. Put the zip anywhere, call this, then set ``BL_TUTORIAL_DATA=data_root``.
    The zip is unpacked into a temporary folder and every image and mask of both splits
    is read there; only a complete tree is moved to ``data_root/DRIVE`` (replacing an
    earlier install). A failed call leaves ``data_root`` as it was, so calling again
    with a good zip works. Returns the folder holding ``training/`` and ``test/``.
    """
    zip_path = check_zip(Path(zip_path).expanduser())
    return _install(zip_path, Path(data_root).expanduser() / "DRIVE", "drive", check=_read_both_splits)


def _read_both_splits(tree: Path) -> None:
    """Read every file of a DRIVE tree once, so that a missing or corrupt one fails now."""
    from bl_tutorial.data.drive import SPLITS, read_drive

    for split in SPLITS:
        read_drive(tree, split)
