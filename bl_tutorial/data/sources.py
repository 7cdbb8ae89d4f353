"""Where the data comes from: the real set when a reader has it, a cached stand-in otherwise.

:func:`ensure_dataset` returns a :class:`DatasetSource`: the folder of a tree in the
official layout plus a plain statement of what it is (real or stand-in). Notebooks print
it, and results files record it, so that every number says which data it came from.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bl_tutorial.data import synthetic

DATA_ENV = "BL_TUTORIAL_DATA"
"""Environment variable naming a folder that holds the real DRIVE and/or ACDC trees."""
CACHE_ENV = "BL_TUTORIAL_CACHE"
"""Environment variable naming the cache folder for generated stand-ins."""
STANDIN_MARKER = "STANDIN.json"
DATASETS = ("drive", "acdc")

__all__ = ["DatasetSource", "ensure_dataset", "cache_dir", "find_real_tree", "DATA_ENV", "CACHE_ENV"]


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

    def describe(self) -> str:
        """One line for notebooks and logs, e.g. ``Data: DRIVE stand-in (synthetic, generator v1, seed 0)``."""
        label = {"drive": "DRIVE", "acdc": "ACDC"}[self.name]
        what = "real data set" if self.is_real else "stand-in"
        return f"Data: {label} {what}{f' ({self.note})' if self.note else ''} at {self.root}"

    def __str__(self) -> str:
        return self.describe()


def cache_dir() -> Path:
    """The stand-in cache: ``$BL_TUTORIAL_CACHE``, else the user's cache folder."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("bl_tutorial"))


def _candidates(name: str, root: Path) -> list[Path]:
    if name == "drive":
        return [root, root / "DRIVE", root / "drive"]
    return [root, root / "ACDC", root / "ACDC" / "database", root / "database", root / "acdc"]


def _holds(name: str, folder: Path) -> bool:
    if name == "drive":
        return any((folder / "training" / "images").glob("*.tif"))
    return any((folder / "training").glob("patient[0-9][0-9][0-9]/Info.cfg"))


def find_real_tree(name: str, root: Path | str) -> Path | None:
    """The folder under ``root`` that holds ``name`` in the official layout, or None.

    Looks in ``root`` itself and in the folders the official archives unpack to
    (``DRIVE/``; ``ACDC/database/``, ``database/``).
    """
    root = Path(root).expanduser()
    for folder in _candidates(name, root):
        if _holds(name, folder):
            return folder
    if root.is_dir():  # archives that unpack into a folder of their own (DRIVE/DRIVE/...)
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            for folder in [child, *_candidates(name, child)]:
                if _holds(name, folder):
                    return folder
    return None


def _layout_hint(name: str) -> str:
    if name == "drive":
        from bl_tutorial.data.drive import HOW_TO_GET

        return "training/images/*.tif, training/1st_manual/*_manual1.gif, training/mask/*_mask.gif. " + HOW_TO_GET
    from bl_tutorial.data.acdc import HOW_TO_GET

    return "training/patientXXX/Info.cfg and patientXXX_frameYY[_gt].nii.gz. " + HOW_TO_GET


def _standin_config(name: str):
    return synthetic.DriveStandinConfig() if name == "drive" else synthetic.AcdcStandinConfig()


def _generate_standin(name: str, config) -> Path:
    """Generate (once) and return the cached stand-in tree; atomic by rename."""
    base = cache_dir()
    counts = f"{config.n_training}x{getattr(config, 'n_test', getattr(config, 'n_testing', 0))}"
    final = base / f"{name}-standin-v{synthetic.GENERATOR_VERSION}-seed{config.seed}-{counts}"
    if (final / STANDIN_MARKER).is_file():
        return final
    base.mkdir(parents=True, exist_ok=True)
    if final.exists():  # a folder without its marker is not a finished tree
        shutil.rmtree(final, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=base))
    try:
        writer = synthetic.write_drive_standin if name == "drive" else synthetic.write_acdc_standin
        writer(staging, config)
        marker = {"dataset": name, "generator_version": synthetic.GENERATOR_VERSION, **config.__dict__}
        (staging / STANDIN_MARKER).write_text(json.dumps(marker, indent=1))  # written last
        try:
            os.replace(staging, final)
        except OSError:  # another process finished first: keep theirs
            if not (final / STANDIN_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


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
    if name not in DATASETS:
        raise ValueError(f"name must be one of {list(DATASETS)}, got {name!r}")
    if root is not None:
        root = Path(root).expanduser()
        if (root / STANDIN_MARKER).is_file():
            return DatasetSource(name, root, "stand-in", "synthetic tree given as root")
        found = find_real_tree(name, root)
        if found is None:
            raise FileNotFoundError(
                f"{root}: does not hold {name.upper()} in the official layout: {_layout_hint(name)}"
            )
        return DatasetSource(name, found, "real")
    env_root = os.environ.get(DATA_ENV)
    env_note = ""
    if env_root:
        found = find_real_tree(name, env_root)
        if found is not None:
            return DatasetSource(name, found, "real", f"from ${DATA_ENV}")
        env_note = f"; ${DATA_ENV}={env_root} holds no {name.upper()} tree"
    config = config if config is not None else _standin_config(name)
    folder = _generate_standin(name, config)
    if name == "drive":
        size = f"{config.n_training} training + {config.n_test} test images"
    else:
        size = f"{config.n_training} training + {config.n_testing} testing patients"
    note = f"synthetic, generator v{synthetic.GENERATOR_VERSION}, seed {config.seed}, {size}{env_note}"
    return DatasetSource(name, folder, "stand-in", note)
