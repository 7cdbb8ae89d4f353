"""Atomic writes: nothing half-written is ever taken as finished.

Every file or folder the package produces (checkpoints, results, downloads, unpacked
archives, the stand-in cache) is written under a temporary name in the same folder and
renamed to its final name only once it is complete. A rename within one file system is
atomic, so a reader sees either the old content or the new one, never a mixture, and an
interrupted write leaves at most a temporary file that the next attempt replaces.

Temporary folders carry the process id and machine name of their owner
(``.tmp-<name>-pid<id>@<host>-<random>``). A run that is killed (``kill -9``, SIGTERM,
a power cut) cannot remove its own; the next :func:`atomic_directory` for the same
target, or an explicit :func:`remove_stale_staging`, removes those whose owner is gone.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_directory",
    "write_text_atomic",
    "write_json_atomic",
    "make_dirs",
    "clear_unfinished",
    "remove_stale_staging",
    "STALE_AFTER",
]

STALE_AFTER = 86400.0
"""Age in seconds after which a temporary folder whose owner cannot be checked counts as abandoned."""

_OWNER = re.compile(r"-pid(?P<pid>\d+)@(?P<host>[A-Za-z0-9._]+)-[a-z0-9_]+$")


def make_dirs(path: Path | str) -> Path:
    """Create ``path`` and its parents with the default permissions (the umask applies).

    Raises ``PermissionError`` or ``NotADirectoryError`` with the path in the message.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(f"{path}: exists and is not a folder") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path | str, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The caller writes the temporary file (with any library: ``torch.save``,
    ``np.savez``, ``Figure.savefig``...). On an exception the temporary file is removed
    and ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "numbers.txt"
    >>> with atomic_path(target) as partial:
    ...     _ = partial.write_text("1 2 3")
    >>> target.read_text()
    '1 2 3'
    """
    path = Path(path)
    make_dirs(path.parent)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    partial = Path(name)
    os.chmod(partial, 0o666 & ~_umask())  # mkstemp creates 0600; use the umask like open() does
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: Path | str, data) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically; return ``path``."""
    return write_text_atomic(path, json.dumps(data, indent=1))


@contextmanager
def atomic_directory(path: Path | str, replace: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; rename it to ``path`` when the block succeeds.

    With ``replace=False`` an existing ``path`` is an error. With ``replace=True`` an
    existing ``path`` is first renamed aside and removed after the new folder is in
    place, so that ``path`` never holds a half-written tree (a reader that opened files
    of the old tree keeps them). On an exception the staging folder is removed; staging
    folders that killed runs left for the same ``path`` are removed first. The folder
    gets the permissions ``mkdir`` would give it (the umask applies).
    """
    path = Path(path)
    make_dirs(path.parent)
    if path.exists() and not replace:
        raise FileExistsError(f"{path}: already exists")
    remove_stale_staging(path.parent, path.name)
    staging = _owned_folder(path, "tmp")
    try:
        yield staging
        if replace and path.exists():
            aside = _owned_folder(path, "old")
            os.replace(path, aside / "tree")
            os.replace(staging, path)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def clear_unfinished(path: Path | str, is_finished: Callable[[Path], bool]) -> bool:
    """Remove the folder at ``path`` unless ``is_finished(path)``; return whether a finished one is there now.

    Nothing is ever deleted at ``path`` itself: the folder is first renamed aside (one
    atomic step) and only what was renamed is deleted. Another process may put a
    finished folder at ``path`` between the check and the rename; then the renamed
    folder is finished, and it is put back (or, if yet another finished folder took its
    place meanwhile, the renamed copy is deleted: readers find the one at ``path``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> half = pathlib.Path(tempfile.mkdtemp()) / "tree"
    >>> (half / "training").mkdir(parents=True)
    >>> clear_unfinished(half, lambda folder: (folder / "DONE").exists()), half.exists()
    (False, False)
    """
    path = Path(path)
    if not path.exists():
        return False
    if is_finished(path):
        return True
    aside = _owned_folder(path, "old")
    moved = aside / path.name
    try:
        os.replace(path, moved)
    except FileNotFoundError:  # gone already: another process removed it
        pass
    else:
        if is_finished(moved):  # a finished folder arrived between the check and the rename: put it back
            with suppress(OSError):  # fails only if another finished folder is in place already
                os.replace(moved, path)
    shutil.rmtree(aside, ignore_errors=True)
    return path.exists() and is_finished(path)


def remove_stale_staging(folder: Path | str, name: str = "", max_age: float = STALE_AFTER) -> list[Path]:
    """Remove the temporary folders (``.tmp-*``, ``.old-*``) that interrupted runs left in ``folder``.

    A temporary folder is abandoned when the process named in it no longer runs on this
    machine, or, when that cannot be checked (a folder of another machine or of an older
    version), when it is older than ``max_age`` seconds. ``name`` limits the clean-up to
    the temporary folders of one target (``.tmp-<name>-*``). Returns what was removed.
    """
    folder = Path(folder)
    removed = []
    for kind in ("tmp", "old"):
        pattern = f".{kind}-{glob.escape(name)}-*" if name else f".{kind}-*"
        for candidate in folder.glob(pattern):
            if candidate.is_dir() and _abandoned(candidate, max_age):
                shutil.rmtree(candidate, ignore_errors=True)
                removed.append(candidate)
    return removed


def _host_name() -> str:
    """This machine's name, kept to letters, digits, dots and underscores (it goes into folder names)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "unknown"


def _owned_folder(path: Path, kind: str) -> Path:
    """A new empty folder ``.<kind>-<name>-pid<id>@<host>-<random>`` beside ``path``, with umask permissions."""
    owner = f"pid{os.getpid()}@{_host_name()}"
    folder = Path(tempfile.mkdtemp(prefix=f".{kind}-{path.name}-{owner}-", dir=path.parent))
    os.chmod(folder, 0o777 & ~_umask())  # mkdtemp creates 0700; use the umask like mkdir does
    return folder


def _abandoned(folder: Path, max_age: float) -> bool:
    """Whether the temporary ``folder`` belongs to a process that is gone (or is older than ``max_age``)."""
    owner = _OWNER.search(folder.name)
    if owner and owner["host"] == _host_name() and not _process_exists(int(owner["pid"])):
        return True
    try:
        return time.time() - folder.stat().st_mtime > max_age
    except FileNotFoundError:  # removed meanwhile by another process
        return False


def _process_exists(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (on Windows: assumed, as it cannot be asked safely)."""
    if os.name == "nt":  # there os.kill(pid, 0) would terminate the process
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to another user
        return True
    return True
