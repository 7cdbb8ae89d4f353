"""Where the data comes from: the real set when a reader has it, a cached stand-in otherwise.

:func:`ensure_dataset` returns a :class:`DatasetSource`: the folder of a tree in the
official layout plus a plain statement of what it is (real or stand-in). Notebooks print
it, and results files record it, so that every number says which data it came from.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bl_tutorial._io import atomic_directory, clear_unfinished, make_dirs, remove_stale_staging
from bl_tutorial._validation import check_choice
from bl_tutorial.data import acdc, drive, synthetic

DATA_ENV = "BL_TUTORIAL_DATA"
"""Environment variable naming a folder that holds the real DRIVE and/or ACDC trees."""
CACHE_ENV = "BL_TUTORIAL_CACHE"
"""Environment variable naming the cache folder for generated stand-ins."""
STANDIN_MARKER = "STANDIN.json"

__all__ = [
    "DatasetSpec",
    "DATASETS",
    "DatasetSource",
    "ensure_dataset",
    "cache_dir",
    "find_real_tree",
    "DATA_ENV",
    "CACHE_ENV",
]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the package knows about one data set, in one place.

    Adding a data set means adding one of these to :data:`DATASETS` (and a reader);
    nothing else compares data-set names.
    """

    name: str
    """Short name used in code and file names (``"drive"``)."""
    label: str
    """Name in prose (``"DRIVE"``)."""
    marker: str
    """A glob, relative to the tree's root, that matches only in the official layout."""
    folders: tuple[str, ...]
    """Sub-folders of a data root where the official archive unpacks the tree."""
    layout: str
    """The official layout in words, for error messages."""
    how_to_get: str
    standin: synthetic.DriveStandinConfig | synthetic.AcdcStandinConfig
    """Default size and seed of the stand-in."""
    write_standin: Callable[[Path, object], Path]
    items: tuple[str, str]
    """What the training and test counts of the stand-in are counted in."""

    def holds(self, folder: Path) -> bool:
        """Whether ``folder`` is the root of a tree in the official layout."""
        return any(folder.glob(self.marker))


DATASETS: dict[str, DatasetSpec] = {
    "drive": DatasetSpec(
        name="drive",
        label="DRIVE",
        marker="training/images/*.tif",
        folders=("DRIVE", "drive"),
        layout="training/images/*.tif, training/1st_manual/*_manual1.gif, training/mask/*_mask.gif",
        how_to_get=drive.HOW_TO_GET,
        standin=synthetic.DriveStandinConfig(),
        write_standin=synthetic.write_drive_standin,
        items=("training", "test images"),
    ),
    "acdc": DatasetSpec(
        name="acdc",
        label="ACDC",
        marker="training/patient[0-9][0-9][0-9]/Info.cfg",
        folders=("ACDC", "ACDC/database", "database", "acdc"),
        layout="training/patientXXX/Info.cfg and patientXXX_frameYY[_gt].nii.gz",
        how_to_get=acdc.HOW_TO_GET,
        standin=synthetic.AcdcStandinConfig(),
        write_standin=synthetic.write_acdc_standin,
        items=("training", "testing patients"),
    ),
}
"""The data sets the package reads, by short name."""


def _spec(name: str) -> DatasetSpec:
    return DATASETS[check_choice(name, "name", tuple(DATASETS))]


@dataclass(frozen=True)
class DatasetSource:
    """A data tree in the official layout and where it came from.

    Usable wherever a path is expected (``os.fspath(source)``).
    ``kind`` is ``"real"`` or ``"stand-in"``; ``describe()`` gives one printable line.
    """

    name: str
    root: Path
    kind: Literal["real", "stand-in"]
    note: str = ""

    def __fspath__(self) -> str:
        return str(self.root)

    @property
    def is_real(self) -> bool:
        return self.kind == "real"

    def describe(self, where: bool = True) -> str:
        """One line for notebooks and logs, e.g. ``Data: DRIVE stand-in (synthetic, generator v1, seed 0)``,
        and the folder it was read from (``where=False`` leaves it out, e.g. for a page a reader sees)."""
        what = "real data set" if self.is_real else "stand-in"
        place = f" at {self.root}" if where else ""
        return f"Data: {_spec(self.name).label} {what}{f' ({self.note})' if self.note else ''}{place}"

    def __str__(self) -> str:
        return self.describe()


def cache_dir() -> Path:
    """The stand-in cache: ``$BL_TUTORIAL_CACHE``, else the user's cache folder.

    It is created when a stand-in is first generated; a cache that already holds the
    stand-in may be read-only.
    """
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("bl_tutorial"))


def find_real_tree(name: str, root: Path | str) -> Path | None:
    """The folder under ``root`` that holds ``name`` in the official layout, or None.

    Looks in ``root`` itself and in the folders the official archives unpack to
    (``DRIVE/``; ``ACDC/database/``, ``database/``).
    """
    spec = _spec(name)
    root = Path(root).expanduser()
    for folder in [root, *(root / sub for sub in spec.folders)]:
        if spec.holds(folder):
            return folder
    if root.is_dir():  # archives that unpack into a folder of their own (DRIVE/DRIVE/...)
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            for folder in [child, *(child / sub for sub in spec.folders)]:
                if spec.holds(folder):
                    return folder
    return None


def _generate_standin(spec: DatasetSpec, config) -> Path:
    """Generate (once) and return the cached stand-in tree.

    A tree is finished when its marker file is in it. The marker is written last, in a
    staging folder that is renamed to the final name in one step, so:

    * a finished tree is never modified, moved away or deleted;
    * an unfinished tree at the final name (from an older version, or copied by hand)
      is renamed aside before it is deleted (:func:`~bl_tutorial._io.clear_unfinished`);
    * staging folders left by killed runs are removed by the next generation;
    * if two processes generate at once, the first rename wins and the other keeps it.
    """
    counts = f"{config.n_training}x{config.n_test}"
    final = cache_dir() / f"{spec.name}-standin-v{synthetic.GENERATOR_VERSION}-seed{config.seed}-{counts}"
    if _finished(final):
        return final
    base = _writable_cache(final.parent)
    if clear_unfinished(final, _finished):
        return final
    remove_stale_staging(base)
    try:
        with atomic_directory(final) as staging:
            spec.write_standin(staging, config)
            marker = {"dataset": spec.name, "generator_version": synthetic.GENERATOR_VERSION, **config.__dict__}
            (staging / STANDIN_MARKER).write_text(json.dumps(marker, indent=1))  # written last
    except OSError as error:
        if _finished(final):  # another process finished first: keep theirs
            return final
        raise _explain_write_error(error, base, spec) from None
    return final


def _finished(folder: Path) -> bool:
    return (folder / STANDIN_MARKER).is_file()


def _writable_cache(base: Path) -> Path:
    """Create the cache folder if needed and check that this user can write there; errors name the variable."""
    try:
        make_dirs(base)
        if not os.access(base, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
    except OSError as error:
        raise _not_writable(base, error) from None
    return base


def _not_writable(base: Path, error: OSError) -> OSError:
    reason = error.strerror or str(error)
    return type(error)(
        f"The stand-in cache {base} is not a folder this user can write to ({reason}). "
        f"Set the environment variable {CACHE_ENV} to a folder you can write to."
    )


def _explain_write_error(error: OSError, base: Path, spec: DatasetSpec) -> OSError:
    """A plain sentence for a full disk or an unwritable cache; other errors as they are."""
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return OSError(
            error.errno,
            f"No space left on the disk holding the stand-in cache {base} while writing the {spec.label} stand-in; "
            f"the partial tree was removed. Free some space, or set {CACHE_ENV} to a folder on another disk",
        )
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return _not_writable(base, error)
    return error


def ensure_dataset(name: str, root: Path | str | None = None, config=None) -> DatasetSource:
    """Return a tree in the official layout for ``name`` ("drive" or "acdc").

    Order of preference:

    1. ``root``, when given: it must hold the data set in the official layout (or be a
       stand-in tree written earlier); otherwise ``FileNotFoundError`` says what is
       expected and how to get the data.
    2. ``$BL_TUTORIAL_DATA``, when it holds the real data set.
    3. A stand-in generated once (deterministically) into :func:`cache_dir`, in a
       folder named after the generator version so that a changed generator
       regenerates. Generation goes to a temporary folder renamed when complete, so an
       interrupted run never leaves a tree that is later taken as finished.

    Parameters
    ----------
    name : {"drive", "acdc"}
    root : path, optional
    config : DriveStandinConfig or AcdcStandinConfig, optional
        Size and seed of the stand-in (default: the generator's defaults).

    Returns
    -------
    DatasetSource
        ``.root`` (the folder), ``.kind`` ("real" or "stand-in"), ``.describe()``.

    Examples
    --------
    >>> source = ensure_dataset("acdc")   # the first call generates the stand-in (a few seconds)
    >>> source.kind in ("real", "stand-in"), source.describe().startswith("Data: ACDC")
    (True, True)
    """
    spec = _spec(name)
    if root is not None:
        root = Path(root).expanduser()
        if (root / STANDIN_MARKER).is_file():
            return DatasetSource(name, root, "stand-in", "synthetic tree given as root")
        found = find_real_tree(name, root)
        if found is None:
            raise FileNotFoundError(
                f"{root}: does not hold {spec.label} in the official layout: {spec.layout}. {spec.how_to_get}"
            )
        return DatasetSource(name, found, "real")
    env_root = os.environ.get(DATA_ENV)
    env_note = ""
    if env_root:
        found = find_real_tree(name, env_root)
        if found is not None:
            return DatasetSource(name, found, "real", f"from ${DATA_ENV}")
        env_note = f"; ${DATA_ENV}={env_root} holds no {spec.label} tree"
    config = config if config is not None else spec.standin
    folder = _generate_standin(spec, config)
    training, test = spec.items
    size = f"{config.n_training} {training} + {config.n_test} {test}"
    note = f"synthetic, generator v{synthetic.GENERATOR_VERSION}, seed {config.seed}, {size}{env_note}"
    return DatasetSource(name, folder, "stand-in", note)
