"""Run an experiment: a grid of losses x seeds over one task, with results that survive interruption.

``python -m bl_tutorial.experiments drive --profile fast --out runs/drive-fast`` trains
every loss of the task's profile for every seed and writes, in ``--out``:

``experiment.json``     what was asked (task, profile, losses, data source, device, code)
``runs/LOSS-seedS.json`` one record per finished (or failed) run, written as it finishes
``checkpoints/``        the state of the run in progress, to resume it
``results.json``        every run, its provenance, and the summary over seeds
``figures/``            PNG figures and saved probabilities of the first seed's runs (``figures=``)

Rerunning the same command skips the finished runs and resumes the interrupted one from
its last epoch; ``--overwrite`` starts over. A run whose loss diverges is recorded as
failed with its reason and the others go on. The tasks (data, model, scoring) are
described in :mod:`bl_tutorial.tasks`; this module knows no data-set name.

The profile is an argument, else ``$BL_TUTORIAL_PROFILE``, else ``full`` on a GPU and
``fast`` otherwise.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from bl_tutorial import __version__
from bl_tutorial._io import make_dirs, write_json_atomic
from bl_tutorial._validation import check_choice
from bl_tutorial.combined import SCHEDULES, LossSpec
from bl_tutorial.device import device_banner, get_device, resolve_device, seed_everything
from bl_tutorial.evaluation import summarize
from bl_tutorial.models import count_parameters
from bl_tutorial.tasks import TASKS, Profile, Task, TaskData, build_model, figure_path, get_task
from bl_tutorial.training import Clock, TrainConfig, train

PROFILE_ENV = "BL_TUTORIAL_PROFILE"
RESULTS_ENV = "BL_TUTORIAL_RESULTS"
"""Environment variable naming a folder of full-profile results (``<task>-full/results.json``)."""
PROFILE_NAMES = ("smoke", "fast", "full")
Figures = Literal["first seed", "every run", "none"]
FIGURES = ("first seed", "every run", "none")
RESULTS_FILE = "results.json"
PLAN_FILE = "experiment.json"
REQUIRED_KEYS = ("task", "data", "profile_name", "device", "torch", "seeds", "date", "runs", "summary")

__all__ = [
    "Plan",
    "plan_experiment",
    "resolve_profile",
    "notebook_profile",
    "run_experiment",
    "run_study",
    "load_results",
    "full_results",
    "results_folder",
    "provenance",
    "saved_arrays",
    "main",
]


def notebook_profile() -> str:
    """The profile a notebook runs: ``$BL_TUTORIAL_PROFILE`` (nbval sets ``smoke``), else ``fast``.

    Unlike :func:`resolve_profile`, a GPU does not switch a notebook to the long ``full``
    profile; set the variable (or pass the profile) to run it.
    """
    return check_choice(os.environ.get(PROFILE_ENV) or "fast", "profile", PROFILE_NAMES)


def resolve_profile(name: str | None = None) -> str:
    """The profile to use: ``name``, else ``$BL_TUTORIAL_PROFILE``, else by device (GPU: full)."""
    chosen = name or os.environ.get(PROFILE_ENV) or ("full" if get_device().type == "cuda" else "fast")
    return check_choice(chosen, "profile", PROFILE_NAMES)


@dataclass(frozen=True)
class Plan:
    """What an experiment will do, checked before any data is read."""

    task: Task
    profile_name: str
    profile: Profile
    specs: dict[str, LossSpec]
    schedule: str

    @property
    def config(self) -> TrainConfig:
        p = self.profile
        return TrainConfig(
            epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, lr_schedule=p.lr_schedule, val_hd95=p.val_hd95
        )

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return tuple(metric.key for metric in self.task.metrics)


def plan_experiment(
    task: Task | str,
    profile: str | None = None,
    *,
    losses=None,
    seeds=None,
    epochs: int | None = None,
    schedule: str = "constant",
    alpha: float | None = None,
) -> Plan:
    """Check every choice of an experiment and return its :class:`Plan` (reads no data)."""
    task = get_task(task)
    name = resolve_profile(profile)
    settings = task.profiles[name]
    if epochs is not None:
        settings = replace(settings, epochs=int(epochs))
    if seeds is not None:
        settings = replace(settings, seeds=tuple(int(s) for s in seeds))
    if losses is not None:
        settings = replace(settings, losses=tuple(losses))
    if alpha is not None:
        settings = replace(settings, alpha=float(alpha))
    check_choice(schedule, "schedule", tuple(SCHEDULES))
    if schedule != "constant" and alpha is not None:
        raise ValueError(f"alpha sets the constant schedule only; the {schedule} schedule has its own weights")
    _check_grid(settings)
    specs = {}
    for loss in settings.losses:
        spec = LossSpec.parse(loss, boundary_classes=task.boundary_classes)
        if spec.boundary and "@" not in loss:  # the experiment's schedule, for the boundary term only
            spec = replace(spec, schedule=schedule, alpha=None)
        if spec.boundary and spec.regional and spec.schedule == "constant":
            spec = replace(spec, alpha=settings.alpha)
        specs[loss] = spec
    plan = Plan(task, name, settings, specs, schedule)
    _ = plan.config  # checks epochs, batch size, learning rate
    return plan


def _check_grid(settings: Profile) -> None:
    """At least one loss and one seed, no seed or loss twice."""
    if not settings.losses or not settings.seeds:
        raise ValueError(f"losses and seeds must not be empty, got {list(settings.losses)} and {list(settings.seeds)}")
    names = [loss.lower() for loss in settings.losses]
    if len(set(names)) != len(names) or len(set(settings.seeds)) != len(settings.seeds):
        raise ValueError(f"losses and seeds must not repeat, got {list(settings.losses)} and {list(settings.seeds)}")


# --------------------------------------------------------------------------- the folder of an experiment
def _code_digest() -> str:
    """A short hash of the package's source, so that results of other code are never mixed in."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _difference(key: str, old, new) -> str:
    """``key`` and, for short values, what it was and is; empty when equal."""
    if old == new:
        return ""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return f"{key}: {', '.join(keys)}"
    return f"{key}: {old!r} there, {new!r} now"


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
            for stale in ("runs", "checkpoints", "figures"):
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
        return self.folder / "runs" / f"{loss}-seed{seed}.json"

    def finished(self, loss: str, seed: int) -> dict | None:
        """The record of a run that already finished (or failed), else None."""
        if self.folder is None or not self._record_path(loss, seed).is_file():
            return None
        return json.loads(self._record_path(loss, seed).read_text())

    def checkpoint(self, loss: str, seed: int) -> Path | None:
        return None if self.folder is None else self.folder / "checkpoints" / f"{loss}-seed{seed}.pt"

    def record(self, run: dict) -> None:
        """Keep a finished run (atomically) and drop its checkpoint."""
        if self.folder is None:
            return
        write_json_atomic(self._record_path(run["loss"], run["seed"]), run)
        self.checkpoint(run["loss"], run["seed"]).unlink(missing_ok=True)

    def write(self, results: dict) -> None:
        if self.folder is not None:
            write_json_atomic(self.folder / RESULTS_FILE, results)


# --------------------------------------------------------------------------- running
def _data_identity(source) -> str:
    """The data an experiment used: the resolved folder of a tree, or the description of generated data."""
    root = getattr(source, "root", None)
    return str(Path(root).resolve()) if root is not None else source.describe()


def _signature(plan: Plan, data: TaskData, device: torch.device, condition) -> dict:
    signature = {
        "task": plan.task.name,
        "condition": condition,
        "profile": asdict(plan.profile),
        "schedule": plan.schedule,
        "data": {"kind": data.source.kind, "where": _data_identity(data.source)},
        "device": device.type,
        "code": f"{__version__}+{_code_digest()}",
    }
    return json.loads(json.dumps(signature))  # tuples become lists, as they are when read back


def _header(plan: Plan, data: TaskData, device: torch.device, condition) -> dict:
    p = plan.profile
    return {
        "task": plan.task.name,
        "title": plan.task.title,
        "condition": condition,
        "map_unit": plan.task.map_unit,
        "metrics": [asdict(metric) for metric in plan.task.metrics],
        "data": {"kind": data.source.kind, "description": data.source.describe(), "note": data.source.note},
        "profile_name": plan.profile_name,
        "profile": asdict(p),
        "schedule": plan.schedule,
        "device": device_banner(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "bl_tutorial": __version__,
        "seeds": list(p.seeds),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": count_parameters(build_model(plan.task, p)),
        "sizes": {"train": len(data.train_set), "select": len(data.select_set)},
        "splits": data.splits,
        "baselines": data.baselines,
    }


def _run_one(plan: Plan, data: TaskData, loss: str, seed: int, device, store: RunStore, figures: bool, quiet: bool):
    """Train one loss with one seed (resuming its checkpoint if any), score it, draw it."""
    seed_everything(seed)
    model = build_model(plan.task, plan.profile)
    config = replace(plan.config, seed=seed, quiet=quiet)
    began = time.perf_counter()
    record = {"loss": loss, "seed": seed, "spec": asdict(plan.specs[loss])}
    try:
        result = train(
            model, data.train_set, data.select_set, plan.specs[loss], config, device,
            checkpoint=store.checkpoint(loss, seed), resume=True, description=f"{loss} seed {seed}",
        )  # fmt: skip
    except FloatingPointError as error:
        return {**record, "status": "failed", "reason": str(error), "time_s": time.perf_counter() - began}
    clock = Clock(device)
    clock.seconds.update(train=time.perf_counter() - began, **result.seconds)
    with clock.phase("evaluate"):
        metrics = plan.task.evaluate(result.model, data)  # at the epoch chosen on the selection split
    with clock.phase("figures"):
        if figures and store.folder is not None and plan.task.save_figures is not None:
            plan.task.save_figures(result.model, data, loss, seed, store.folder)
    with clock.phase("evaluate"):
        result.model.load_state_dict(result.last_state)
        metrics_last = plan.task.evaluate(result.model, data)
    return {
        **record,
        "status": "finished",
        "best_epoch": result.best_epoch,
        "selection_score": result.best_score,
        "metrics": metrics,
        "metrics_last": metrics_last,
        "time_s": time.perf_counter() - began,
        "seconds": clock.seconds,
        "history": result.history,
    }


def run_experiment(
    task: Task | str,
    profile: str | None = None,
    out: Path | str | None = None,
    *,
    condition: float | None = None,
    losses: list[str] | None = None,
    seeds: list[int] | None = None,
    epochs: int | None = None,
    schedule: str = "constant",
    alpha: float | None = None,
    data_root: Path | str | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    device: str | None = None,
    figures: Figures | bool = "first seed",
    log=print,
) -> dict:
    """Run a task's grid of losses x seeds; return (and, with ``out``, keep) its results.

    Parameters mirror the command line. Every choice is checked before any data is read.
    With ``out``, each finished run is kept as it finishes and a rerun skips it (see the
    module docstring). For a study (a profile with ``conditions``), ``condition`` picks
    one; :func:`run_study` runs them all. Returns the dict of ``results.json``: the
    provenance (data, profile, device, torch version, seeds, date), the splits, every run
    (loss, seed, status, selected epoch, metrics at that epoch and at the last one,
    history) and the summary over seeds with the paired comparisons.

    ``figures``: which runs draw their figures and save the probabilities behind them
    (``"first seed"``: each loss once, what the chapters show; ``"every run"`` or True;
    ``"none"`` or False); about 2 s a run on a CPU.
    """
    if figures not in (True, False, *FIGURES):
        raise ValueError(f"figures must be one of {list(FIGURES)} (or True / False), got {figures!r}")
    plan = plan_experiment(task, profile, losses=losses, seeds=seeds, epochs=epochs, schedule=schedule, alpha=alpha)
    conditions = plan.profile.conditions
    if (conditions is None) != (condition is None) or (conditions and condition not in conditions):
        raise ValueError(f"condition must be one of {conditions} for task {plan.task.name!r}, got {condition!r}")
    device = resolve_device(device)
    RunStore.check_folder(out)  # before any data is read
    loading = time.perf_counter()
    data = plan.task.load(plan.profile, data_root, condition)
    loading = time.perf_counter() - loading
    signature = _signature(plan, data, device, condition)
    store = RunStore.open(out, signature, overwrite)
    results = {**_header(plan, data, device, condition), "signature": signature, "load_seconds": loading, "runs": []}
    p = plan.profile
    log(f"{results['device']}\n{data.source.describe()}")
    log(
        f"Task {plan.task.name}, profile {plan.profile_name}: {p.model.upper()}, {p.epochs} epochs, batch "
        f"{p.batch_size}, lr {p.lr:g}, seeds {list(p.seeds)}, {results['parameters'] / 1e6:.2f} M parameters; "
        f"{len(data.train_set)} training and {len(data.select_set)} selection items; losses {list(plan.specs)}"
    )
    for seed in p.seeds:
        for loss in plan.specs:
            run = store.finished(loss, seed)
            if run is None:
                draw = figures in (True, "every run") or (figures == "first seed" and seed == p.seeds[0])
                run = _run_one(plan, data, loss, seed, device, store, draw, quiet)
                store.record(run)
            results["runs"].append(run)
            log(_run_line(run))
            results.update(summarize(results["runs"], plan.metric_keys))
            store.write(results)
    return results


def run_study(task: Task | str, profile: str | None = None, out: Path | str | None = None, **options) -> dict:
    """Run every condition of a study (e.g. each lesion share): ``{condition: results}``.

    Each condition is an experiment of its own, kept in ``out/condition-<value>`` (so a
    rerun resumes it); ``options`` are those of :func:`run_experiment`.
    """
    plan = plan_experiment(get_task(task), profile)
    if plan.profile.conditions is None:
        raise ValueError(f"task {plan.task.name!r} has no conditions; use run_experiment")
    studies = {}
    for condition in plan.profile.conditions:
        folder = None if out is None else Path(out) / f"condition-{condition:g}"
        studies[condition] = run_experiment(task, plan.profile_name, folder, condition=condition, **options)
    return studies


def _run_line(run: dict) -> str:
    head = f"  {run['loss']:8s} seed {run['seed']}: "
    if run["status"] == "failed":
        return head + f"FAILED ({run['reason']})"
    return head + f"best epoch {run['best_epoch']}, Dice {run['metrics']['dice']:.3f} ({run['time_s']:.0f} s)"


# --------------------------------------------------------------------------- reading results
def load_results(path: Path | str) -> dict:
    """Read a ``results.json`` (or the folder holding it) written by :func:`run_experiment`.

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
    return Path(configured).expanduser() if configured else Path(__file__).resolve().parent / "results"


def full_results(task: Task | str, root: Path | str | None = None) -> dict | None:
    """The committed full-profile results of ``task`` (``<folder>/<task>-full/``), or None."""
    path = results_folder(root) / f"{get_task(task).name}-full" / RESULTS_FILE
    return load_results(path) if path.is_file() else None


def provenance(results: dict) -> str:
    """The line every table and figure of a run carries: data, profile, device, seeds."""
    seeds = len(results["seeds"])
    return (
        f"{results['data']['kind']} data, profile {results['profile_name']}, "
        f"{results['device_type'].upper()}, {seeds} seed{'s' if seeds != 1 else ''}"
    )


def saved_arrays(folder: Path | str, loss: str, seed: int) -> dict:
    """The probabilities a run saved for the figures (``report_probability``, ``test_probability``, ids)."""
    path = figure_path(folder, "probabilities", loss, seed, ".npz")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no saved probabilities (a run saves them for the first seed, or with figures='every run')"
        )
    with np.load(path) as arrays:
        return {key: arrays[key] for key in arrays.files}


# --------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bl_tutorial.experiments",
        description="Train a task's grid of losses x seeds and keep the results (resumable).",
    )
    parser.add_argument("task", choices=tuple(TASKS), help="which experiment")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=None, help=f"default ${PROFILE_ENV} or by device")
    parser.add_argument("--out", default=None, help="output folder (default runs/TASK-PROFILE)")
    parser.add_argument("--losses", default=None, help="comma-separated, e.g. gdl+bl,gdl,ce,ce+bl or bl,gdl")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's number of epochs")
    parser.add_argument("--schedule", choices=tuple(SCHEDULES), default="constant", help="alpha schedule")
    parser.add_argument("--alpha", type=float, default=None, help="alpha of the constant schedule (report: 0.05)")
    parser.add_argument("--data-root", default=None, help="folder with the real data (else $BL_TUTORIAL_DATA)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    parser.add_argument("--overwrite", action="store_true", help="start over in --out (removes its runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--figures", choices=FIGURES, default="first seed", help="which runs draw their figures")
    return parser


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers such as 0,1,2, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    out = Path(args.out or ".")
    try:
        options = {
            "losses": args.losses.split(",") if args.losses else None,
            "seeds": _seeds(args.seeds),
            "epochs": args.epochs,
            "schedule": args.schedule,
            "alpha": args.alpha,
        }
        plan = plan_experiment(args.task, args.profile, **options)  # every choice checked before any data
        resolve_device(args.device)
        out = args.out if args.out is not None else Path("runs") / f"{args.task}-{plan.profile_name}"
        common = {"data_root": args.data_root, "overwrite": args.overwrite, "quiet": args.quiet, "device": args.device}
        common["figures"] = args.figures
        if plan.profile.conditions is None:
            runs = run_experiment(args.task, plan.profile_name, out, **common, **options)["runs"]
        else:
            studies = run_study(args.task, plan.profile_name, out, **common, **options)
            runs = [run for results in studies.values() for run in results["runs"]]
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, OSError) as error:
        parser.exit(2, f"error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"interrupted: finished runs are kept in {out}; run the same command again to resume\n")
    failed = [r for r in runs if r["status"] == "failed"]
    for run in failed:
        print(f"failed: {run['loss']} seed {run['seed']}: {run['reason']}", file=sys.stderr)
    print(f"Results written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
