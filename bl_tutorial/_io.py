"""Atomic writes: nothing half-written is ever taken as finished.

Every file or folder the package produces (checkpoints, results, downloads, unpacked
archives, the stand-in cache) is written under a temporary name in the same folder and
renamed to its final name only once it is complete. A rename within one file system is
atomic, so a reader sees either the old content or the new one, never a mixture, and an
interrupted write leaves at most a temporary file that the next attempt replaces.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_directory", "write_text_atomic", "write_json_atomic", "make_dirs"]


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
    of the old tree keeps them). On an exception the staging folder is removed.
    """
    path = Path(path)
    make_dirs(path.parent)
    if path.exists() and not replace:
        raise FileExistsError(f"{path}: already exists")
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp creates 0700; use the umask like mkdir does
    try:
        yield staging
        if replace and path.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".old-{path.name}-", dir=path.parent))
            os.replace(path, aside / "tree")
            os.replace(staging, path)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
