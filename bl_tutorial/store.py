"""The folder of an experiment, what identifies a run, and reading results back.

An experiment's folder (``--out``) holds:

``experiment.json``      what was asked: its *signature* (task, profile, data, device, code)
``runs/LOSS-seedS.json`` one record per finished (or failed) run, written as it finishes
``checkpoints/``         the state of the run in progress, to resume it
``warm/seedS.*``         a finished warm start (its record and final state), shared by the seed's runs
``results.json``         every run, its provenance, and the summary over seeds
``figures/``             PNG figures and saved probabilities

A folder that holds another experiment is refused with the differing settings named. The
code part of the signature (:func:`code_digest`) covers what changes a run's numbers:
the package modules a run executes, read as code (docstrings and comments do not count),
and not the figure and download modules.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from bl_tutorial._io import atomic_path, make_dirs, write_json_atomic

RESULTS_ENV = "BL_TUTORIAL_RESULTS"
"""Environment variable naming a folder of full-profile results (``<task>-full/results.json``)."""
RESULTS_FILE = "results.json"
PLAN_FILE = "experiment.json"
REQUIRED_KEYS = ("task", "data", "profile_name", "device", "torch", "seeds", "date", "runs", "summary")
PACKAGE = Path(__file__).resolve().parent
NOT_RUN = ("viz", "__main__.py", "data/download.py", "data/fundus.py")
"""Package files a run does not execute (figures, downloads, the tour): not part of its identity."""

__all__ = [
    "RunStore",
    "code_digest",
    "figure_path",
    "file_name",
    "load_results",
    "full_results",
    "results_folder",
    "provenance",
    "saved_arrays",
    "measured_movement",
    "time_spent",
    "movement_path",
]


# --------------------------------------------------------------------------- identity
def _code_of(source: str) -> str:
    """The code of a module without its docstrings and comments (so editing prose changes nothing)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_digest(*extra) -> str:
    """A short hash of the code a run executes: the package's modules (less :data:`NOT_RUN`) and the
    modules defining ``extra`` objects from elsewhere (a reader's own task or loss)."""
    digest = hashlib.sha256()
    files = sorted(p for p in PACKAGE.rglob("*.py") if not p.relative_to(PACKAGE).as_posix().startswith(NOT_RUN))
    for obj in extra:
        module = inspect.getmodule(obj)
        path = getattr(module, "__file__", None)
        if path and not Path(path).resolve().is_relative_to(PACKAGE):
            files.append(Path(path))
    for path in files:
        try:
            digest.update(_code_of(path.read_text()).encode())
        except (OSError, SyntaxError, UnicodeDecodeError):  # a notebook cell or an unreadable file: its bytes
            digest.update(path.read_bytes() if path.is_file() else str(path).encode())
    return digest.hexdigest()[:12]


def _difference(key: str, old, new) -> str:
    """``key`` and, for short values, what it was and is; empty when equal."""
    if old == new:
        return ""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return f"{key}: {', '.join(keys)}"
    return f"{key}: {old!r} there, {new!r} now"


def file_name(loss: str) -> str:
    """A loss name as a file name: characters other than letters, digits and ``+.=@,-`` become ``_``.

    >>> file_name("focal(gamma=1)+bl@rebalance")
    'focal_gamma=1_+bl@rebalance'
    """
    return re.sub(r"[^A-Za-z0-9+.=@,_-]", "_", loss)


def figure_path(folder: Path | str, kind: str, loss: str, seed: int, suffix: str = ".png") -> Path:
    """Where a run's figure (or saved arrays, ``suffix=".npz"``) of ``kind`` lives under ``folder``."""
    return Path(folder) / "figures" / f"{kind}_{file_name(loss)}_seed{seed}{suffix}"


# --------------------------------------------------------------------------- the folder
class RunStore:
    """The folder of one experiment (see the module docstring), or nothing when ``folder`` is None."""

    def __init__(self, folder: Path | None):
        self.folder = folder

    @staticmethod
    def check_folder(out) -> Path | None:
        """``out`` as a folder that is new, empty, or an experiment's; anything else is refused."""
        if out is None:
            return None
        if not isinstance(out, (str, Path)) or str(out) == "":
            raise ValueError(f"out must name a folder, got {out!r}")
        folder = Path(out).expanduser()
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder}: exists and is not a folder")
        if folder.is_dir() and any(folder.iterdir()) and not (folder / PLAN_FILE).is_file():
            raise FileExistsError(
                f"{folder} is not empty and holds no experiment ({PLAN_FILE}); choose a new or empty folder"
            )
        return folder

    @classmethod
    def open(cls, out, signature: dict, overwrite: bool) -> RunStore:
        """Use ``out`` for the experiment ``signature``; refuse a folder that holds another one."""
        folder = cls.check_folder(out)
        if folder is None:
            return cls(None)
        folder = make_dirs(folder)
        plan_file = folder / PLAN_FILE
        if overwrite:
            for stale in ("runs", "checkpoints", "figures", "warm"):
                shutil.rmtree(folder / stale, ignore_errors=True)
            for stale in (RESULTS_FILE, PLAN_FILE):
                (folder / stale).unlink(missing_ok=True)
        elif plan_file.is_file():
            previous = json.loads(plan_file.read_text()).get("signature", {})
            differing = [
                _difference(k, previous.get(k), signature.get(k)) for k in sorted(set(previous) | set(signature))
            ]
            differing = [d for d in differing if d]
            if differing:
                raise FileExistsError(
                    f"{folder} holds another experiment (differs in {'; '.join(differing)}); "
                    "choose another --out, or pass --overwrite (overwrite=True) to start over there"
                )
        write_json_atomic(plan_file, {"signature": signature})
        return cls(folder)

    def _record_path(self, loss: str, seed: int) -> Path:
        return self.folder / "runs" / f"{file_name(loss)}-seed{seed}.json"

    def finished(self, loss: str, seed: int) -> dict | None:
        """The record of a run that already finished (or failed), else None."""
        if self.folder is None or not self._record_path(loss, seed).is_file():
            return None
        return json.loads(self._record_path(loss, seed).read_text())

    def checkpoint(self, loss: str, seed: int) -> Path | None:
        return None if self.folder is None else self.folder / "checkpoints" / f"{file_name(loss)}-seed{seed}.pt"

    def record(self, run: dict) -> None:
        """Keep a finished run (atomically) and drop its checkpoint."""
        if self.folder is None:
            return
        write_json_atomic(self._record_path(run["loss"], run["seed"]), run)
        self.checkpoint(run["loss"], run["seed"]).unlink(missing_ok=True)

    def warm(self, seed: int) -> tuple[dict | None, dict | None]:
        """The record and the final state of a finished warm start of ``seed`` (None, None if none)."""
        if self.folder is None:
            return None, None
        record, state = self.folder / "warm" / f"seed{seed}.json", self.folder / "warm" / f"seed{seed}.pt"
        if not (record.is_file() and state.is_file()):
            return None, None
        import torch

        return json.loads(record.read_text()), torch.load(state, weights_only=True)

    def keep_warm(self, seed: int, record: dict, state: dict) -> None:
        """Keep a finished warm start (its state first, then its record), atomically."""
        if self.folder is None:
            return
        import torch

        with atomic_path(self.folder / "warm" / f"seed{seed}.pt") as partial:
            torch.save(state, partial)
        write_json_atomic(self.folder / "warm" / f"seed{seed}.json", record)
        self.warm_checkpoint(seed).unlink(missing_ok=True)

    def warm_checkpoint(self, seed: int) -> Path | None:
        return None if self.folder is None else self.folder / "checkpoints" / f"warm-seed{seed}.pt"

    def write(self, results: dict) -> None:
        if self.folder is not None:
            write_json_atomic(self.folder / RESULTS_FILE, results)


# --------------------------------------------------------------------------- reading results
def load_results(path: Path | str) -> dict:
    """Read a ``results.json`` (or the folder holding it) written by :func:`~bl_tutorial.experiments.run_experiment`.

    Raises ``FileNotFoundError`` if missing and ``ValueError`` if it lacks the provenance
    fields (task, data source, profile, device, torch version, seeds, date, runs).
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results file (run python -m bl_tutorial.experiments first)")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    missing = [key for key in REQUIRED_KEYS if key not in results]
    if missing:
        raise ValueError(f"{path}: missing fields {missing}; was it written by bl_tutorial.experiments?")
    return results


def results_folder(root: Path | str | None = None) -> Path:
    """Where committed full-profile results are: ``root``, else ``$BL_TUTORIAL_RESULTS``, else the
    package's own ``results/`` folder (installed with it, so a plain ``pip install`` finds them)."""
    if root is not None:
        return Path(root).expanduser()
    configured = os.environ.get(RESULTS_ENV)
    return Path(configured).expanduser() if configured else PACKAGE / "results"


def full_results(task, root: Path | str | None = None) -> dict | None:
    """The committed full-profile results of ``task`` (a task or its name; ``<folder>/<task>-full/``), or None."""
    name = task if isinstance(task, str) else task.name
    path = results_folder(root) / f"{name}-full" / RESULTS_FILE
    return load_results(path) if path.is_file() else None


def provenance(results: dict) -> str:
    """The line every table and figure of a run carries: data, profile, device, seeds.

    >>> provenance({"data": {"kind": "stand-in"}, "profile_name": "fast", "device_type": "cpu", "seeds": [0, 1, 2],
    ...             "profile": {"training": {"seeds_per_loss": {"bl": 2}}}})
    'stand-in data, profile fast, CPU, 3 seeds (2 for bl)'
    """
    seeds = len(results["seeds"])
    fewer = results.get("profile", {}).get("training", {}).get("seeds_per_loss") or {}
    some = f" ({', '.join(f'{n} for {loss}' for loss, n in fewer.items())})" if fewer else ""
    return (
        f"{results['data']['kind']} data, profile {results['profile_name']}, "
        f"{results['device_type'].upper()}, {seeds} seed{'s' if seeds != 1 else ''}{some}"
    )


def movement_path(task: str, profile: str, root: Path | str | None = None) -> Path:
    """Where the measured movement between two builds of a task's profile is kept."""
    return results_folder(root) / "movement" / f"{task}-{profile}.json"


def measured_movement(task: str, profile: str, root: Path | str | None = None) -> dict[str, float]:
    """How much the paired differences of a task's profile moved between two builds, per metric key
    (the largest over its comparisons), as ``tools/measure_movement.py`` measured it; ``{}`` if never
    measured. A verdict is stated only where an interval clears zero by more than this."""
    path = movement_path(task, profile, root)
    if not path.is_file():
        return {}
    return {key: float(value) for key, value in json.loads(path.read_text())["by_metric"].items()}


def time_spent(*experiments: dict) -> str:
    """How long experiments took, for a sentence: the runs' own time, how many ran at once, and the wall time.

    >>> time_spent({"runs": [{"time_s": 600}, {"time_s": 600}], "warm_starts": [],
    ...             "execution": {"runs_at_once": 2, "wall_s": 630}})
    '20.0 minutes of training, 2 runs at a time: 10.5 minutes in all'
    """
    work = sum(r.get("time_s", 0.0) for e in experiments for r in [*e["runs"], *e.get("warm_starts", [])]) / 60
    wall = sum(e.get("execution", {}).get("wall_s", 0.0) for e in experiments) / 60
    at_once = max((e.get("execution", {}).get("runs_at_once", 1) for e in experiments), default=1)
    if at_once <= 1 or not wall:
        return f"{work:.1f} minutes of training, one run at a time"
    return f"{work:.1f} minutes of training, {at_once} runs at a time: {wall:.1f} minutes in all"


def saved_arrays(folder: Path | str, loss: str, seed: int) -> dict:
    """The probabilities a run saved for the figures (``report_probability``, ``test_probability``, ids)."""
    path = figure_path(folder, "probabilities", loss, seed, ".npz")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no saved probabilities (a run saves them for the first seed, or with figures='every run')"
        )
    with np.load(path) as arrays:
        return {key: arrays[key] for key in arrays.files}
