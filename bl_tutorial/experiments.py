"""Run an experiment: a grid of losses x seeds over one task, with results that survive interruption.

``python -m bl_tutorial.experiments drive --profile fast --out runs/drive-fast`` trains
every loss of the task's profile for every seed and keeps everything in ``--out`` (the
layout is in :mod:`bl_tutorial.store`): a record per run as it finishes, a checkpoint of
the run in progress, ``results.json`` with every run, its provenance, the summary over
seeds and the task's comparisons with their verdicts, and figures.

Rerunning the same command skips the finished runs and resumes the interrupted one from
its last checkpoint; ``--overwrite`` starts over. A run whose loss diverges is recorded as
failed with its reason and the others go on. The tasks (data, model, scoring, the pairs
they compare) are described in :mod:`bl_tutorial.tasks`; this module knows no data-set
name, and accepts any loss a task's registry can name or any loss module.

The profile is an argument, else ``$BL_TUTORIAL_PROFILE``, else ``full`` on a GPU and
``fast`` otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from bl_tutorial import __version__
from bl_tutorial._validation import check_choice, check_int
from bl_tutorial.combined import SCHEDULES
from bl_tutorial.device import device_banner, get_device, resolve_device
from bl_tutorial.evaluation import Comparison, metric_dicts, summarize
from bl_tutorial.grid import picklable, run_grid, run_line
from bl_tutorial.models import count_parameters
from bl_tutorial.recipes import LossSpec, loss_identity
from bl_tutorial.store import (
    RESULTS_ENV,
    RunStore,
    code_digest,
    full_results,
    load_results,
    measured_movement,
    provenance,
    results_folder,
    saved_arrays,
)
from bl_tutorial.tasks import TASKS, Profile, Task, TaskData, get_task

PROFILE_ENV = "BL_TUTORIAL_PROFILE"
WORKERS_ENV = "BL_TUTORIAL_WORKERS"
PROFILE_NAMES = ("smoke", "fast", "full")
Figures = Literal["first seed", "every run", "none"]
FIGURES = ("first seed", "every run", "none")

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
    "RESULTS_ENV",
]


def notebook_profile() -> str:
    """The profile a notebook runs: ``$BL_TUTORIAL_PROFILE`` (nbval sets ``smoke``), else ``fast``.

    Unlike :func:`resolve_profile`, a GPU does not switch a notebook to the long ``full``
    profile; set the variable (or pass the profile) to run it.
    """
    return check_choice(os.environ.get(PROFILE_ENV) or "fast", "profile", PROFILE_NAMES)


def resolve_profile(name: str | None = None, task: Task | None = None) -> str:
    """The profile to use: ``name``, else ``$BL_TUTORIAL_PROFILE``, else by device (GPU: full)."""
    chosen = name or os.environ.get(PROFILE_ENV) or ("full" if get_device().type == "cuda" else "fast")
    names = tuple(task.profiles) if task is not None else PROFILE_NAMES
    return check_choice(chosen, "profile", names)


@dataclass(frozen=True)
class Plan:
    """What an experiment will do, checked before any data is read: the task, the profile, the
    losses by canonical name (recipes or modules) and the pairs to compare."""

    task: Task
    profile_name: str
    profile: Profile
    losses: dict[str, LossSpec | nn.Module]
    comparisons: tuple[Comparison, ...]

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return tuple(metric.key for metric in self.task.metrics)

    def build_loss(self, name: str | LossSpec) -> nn.Module:
        """A fresh loss module for one run (a loss of the plan, or a recipe): a recipe built with the task's
        classes and the profile's alpha."""
        loss = name if isinstance(name, LossSpec) else self.losses[name]
        if isinstance(loss, LossSpec):
            task = self.task
            return loss.build(alpha=self.profile.training.alpha, classes=task.regional_classes,
                              boundary_classes=task.boundary_classes, registry=task.losses)  # fmt: skip
        return copy.deepcopy(loss)


def _loss_name(loss) -> str:
    return getattr(loss, "name", None) or type(loss).__name__


def _resolve_losses(task: Task, losses: Sequence, schedule: str) -> dict[str, LossSpec | nn.Module]:
    """Each loss by canonical name: recipes parsed with the task's registry (the experiment's
    ``schedule`` given to the "+ BL" recipes that name none), modules by their ``name``."""
    resolved = {}
    for loss in losses:
        if isinstance(loss, nn.Module):
            name, value = _loss_name(loss), loss
        else:
            value = LossSpec.parse(loss, task.losses)
            if schedule != "constant" and value.boundary and value.schedule == "constant" and value.alpha is None:
                value = replace(value, schedule=schedule)
            name = value.name
        if name in resolved:
            raise ValueError(f"losses must not repeat, but {loss!r} is {name!r} again")
        resolved[name] = value
    return resolved


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
    """Check every choice of an experiment and return its :class:`Plan` (reads no data).

    ``losses`` are recipes (any spelling, see :class:`~bl_tutorial.combined.LossSpec`),
    or loss modules (named by their ``name`` attribute). ``schedule`` is given to every
    "+ BL" recipe that names none; ``alpha`` is the weight of a boundary term next to a
    regional one where the recipe sets none.
    """
    task = get_task(task)
    name = resolve_profile(profile, task)
    settings = task.profiles[name]
    changes = {"epochs": epochs, "seeds": None if seeds is None else tuple(int(s) for s in seeds),
               "alpha": None if alpha is None else float(alpha)}  # fmt: skip
    settings = settings.with_training(**{k: v for k, v in changes.items() if v is not None})
    check_choice(schedule, "schedule", tuple(SCHEDULES))
    if schedule != "constant" and alpha is not None:
        raise ValueError(f"alpha sets the constant schedule only; the {schedule} schedule has its own weights")
    chosen = settings.training.losses if losses is None else list(losses)
    if not chosen or not settings.training.seeds:
        raise ValueError(f"losses and seeds must not be empty, got {list(chosen)} and {list(settings.training.seeds)}")
    if len(set(settings.training.seeds)) != len(settings.training.seeds):
        raise ValueError(f"seeds must not repeat, got {list(settings.training.seeds)}")
    resolved = _resolve_losses(task, chosen, schedule)
    fewer = {LossSpec.parse(loss, task.losses).name: n for loss, n in settings.training.seeds_per_loss.items()}
    for loss, n in fewer.items():
        check_int(n, f"seeds_per_loss[{loss!r}]", minimum=1)
    settings = settings.with_training(losses=tuple(resolved), seeds_per_loss=fewer)
    declared = [c.canonical(task.losses) for c in task.comparisons]
    pairs = [c for c in declared if c.loss in resolved and c.baseline in resolved]
    for loss, spec in resolved.items():  # a "+ BL" recipe no declared pair covers: against its regional part
        baseline = spec.baseline if isinstance(spec, LossSpec) else None
        if baseline in resolved and not any(c.loss == loss for c in pairs):
            pairs.append(Comparison(loss, baseline))
    plan = Plan(task, name, settings, resolved, tuple(pairs))
    _ = settings.training.config()  # checks epochs, batch size, learning rate
    return plan


# --------------------------------------------------------------------------- running
def _data_identity(source) -> str:
    """The data an experiment used: the resolved folder of a tree, or the description of generated data."""
    root = getattr(source, "root", None)
    return str(Path(root).resolve()) if root is not None else source.describe()


def _object(value) -> dict:
    """A reader's settings object that is not a dataclass (a network builder, say), by class and attributes."""
    kind = type(value)
    return {"class": f"{kind.__module__}.{kind.__qualname__}", **getattr(value, "__dict__", {})}


def _plain(value):
    """``value`` as JSON reads it back (tuples become lists; other objects by class and attributes)."""
    return json.loads(json.dumps(value, default=_object))


def _signature(plan: Plan, data: TaskData, device: torch.device, condition) -> dict:
    """What identifies an experiment: its task, settings, losses, data, device and code (not its prose)."""
    modules = [loss for loss in plan.losses.values() if isinstance(loss, nn.Module)]
    entries = [entry.build for entry in plan.task.losses.values()]
    signature = {
        "task": plan.task.name,
        "condition": condition,
        "profile": asdict(plan.profile),
        "losses": {name: loss_identity(loss) for name, loss in plan.losses.items()},
        "comparisons": [asdict(c) for c in plan.comparisons],
        "data": {"kind": data.source.kind, "where": _data_identity(data.source)},
        "device": device.type,
        "code": f"{__version__}+{code_digest(plan.task.load, plan.task.evaluate, *entries, *modules)}",
    }
    return _plain(signature)


def _header(plan: Plan, data: TaskData, device: torch.device, condition) -> dict:
    p = plan.profile
    return {
        "task": plan.task.name,
        "title": plan.task.title,
        "condition": condition,
        "map_unit": plan.task.map_unit,
        "metrics": metric_dicts(plan.task.metrics),
        "data": {"kind": data.source.kind, "description": data.source.describe(), "note": data.source.note},
        "profile_name": plan.profile_name,
        "profile": _plain(asdict(p)),
        "losses": list(plan.losses),
        "comparisons": [asdict(c) for c in plan.comparisons],
        "device": device_banner(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "bl_tutorial": __version__,
        "seeds": list(p.training.seeds),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": count_parameters(plan.task.build_model(p)),
        "sizes": {"train": len(data.train_set), "select": len(data.select_set)},
        "splits": data.splits,
        "baselines": data.baselines,
    }


def run_experiment(
    task: Task | str,
    profile: str | None = None,
    out: Path | str | None = None,
    *,
    condition: float | None = None,
    losses: Sequence | None = None,
    seeds: list[int] | None = None,
    epochs: int | None = None,
    schedule: str = "constant",
    alpha: float | None = None,
    data_root: Path | str | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    device: str | None = None,
    figures: Figures | bool = "first seed",
    workers: int | str | None = None,
    log=print,
) -> dict:
    """Run a task's grid of losses x seeds; return (and, with ``out``, keep) its results.

    Parameters mirror the command line. Every choice is checked before any data is read.
    With ``out``, each finished run is kept as it finishes and a rerun skips it (see the
    module docstring). For a study (a profile with ``conditions``), ``condition`` picks
    one; :func:`run_study` runs them all. Returns the dict of ``results.json``: the
    provenance (data, profile, device, torch version, seeds, date), the splits, every run
    (loss, seed, status, selected epoch, metrics at that epoch and at the last one,
    history) and the summary over seeds with the task's comparisons and their verdicts
    (:func:`~bl_tutorial.evaluation.verdict`).

    ``figures``: which runs draw their figures and save the probabilities behind them
    (``"first seed"``: each loss once, what the chapters show; ``"every run"`` or True;
    ``"none"`` or False); about 2 s a run on a CPU.

    ``workers``: how many runs train at once, each in a process of its own with an equal
    share of the threads (:mod:`bl_tutorial.grid`); ``"auto"`` (the default, or
    ``$BL_TUTORIAL_WORKERS``): two on a CPU with two cores or more, one on a GPU. A run's
    numbers depend on its number of threads, which the results record.
    """
    if figures not in (True, False, *FIGURES):
        raise ValueError(f"figures must be one of {list(FIGURES)} (or True / False), got {figures!r}")
    plan = plan_experiment(task, profile, losses=losses, seeds=seeds, epochs=epochs, schedule=schedule, alpha=alpha)
    conditions = plan.profile.conditions
    if (conditions is None) != (condition is None) or (conditions and condition not in conditions):
        raise ValueError(f"condition must be one of {conditions} for task {plan.task.name!r}, got {condition!r}")
    device = resolve_device(device)
    workers, threads = resolve_workers(workers, device, plan)
    RunStore.check_folder(out)  # before any data is read
    loading = time.perf_counter()
    data = plan.task.load(plan.profile, data_root, condition)
    loading = time.perf_counter() - loading
    signature = {**_signature(plan, data, device, condition), "threads_per_run": threads}
    with contextlib.ExitStack() as scratch:
        if out is None and workers > 1:  # the workers share their warm starts and records through a folder
            out, overwrite = scratch.enter_context(tempfile.TemporaryDirectory()), True
        return _run_grid(plan, data, signature, RunStore.open(out, signature, overwrite), device, condition,
                         loading, quiet, figures, workers, threads, data_root, log)  # fmt: skip


def resolve_workers(workers, device: torch.device, plan: Plan) -> tuple[int, int]:
    """(runs at once, threads per run) for ``workers`` (a number, "auto" or None: ``$BL_TUTORIAL_WORKERS``,
    else "auto": two on a CPU with two cores or more, else one)."""
    chosen = workers if workers is not None else os.environ.get(WORKERS_ENV) or "auto"
    if chosen == "auto":
        chosen = 2 if device.type == "cpu" and (os.cpu_count() or 1) >= 2 else 1
    try:
        chosen = int(chosen)
    except (TypeError, ValueError):
        raise ValueError(f"workers must be a number of processes or 'auto', got {workers!r}") from None
    chosen = check_int(chosen, "workers", minimum=1)
    if chosen > 1 and (device.type != "cpu" or not picklable(plan)):
        chosen = 1  # one GPU trains one run at a time; a task defined in a notebook stays in its process
    return chosen, max(1, torch.get_num_threads() // chosen)


def _run_grid(plan, data, signature, store, device, condition, loading, quiet, figures, workers, threads, data_root,
              log) -> dict:  # fmt: skip
    """The body of :func:`run_experiment`, once the data are loaded and the folder is open."""
    results = {**_header(plan, data, device, condition), "signature": signature, "load_seconds": loading, "runs": [],
               "execution": {"runs_at_once": workers, "threads_per_run": threads},
               "movement": measured_movement(plan.task.name, plan.profile_name)}  # fmt: skip
    t = plan.profile.training
    log(f"{results['device']}\n{data.source.describe()}")
    log(
        f"Task {plan.task.name}, profile {plan.profile_name}: {type(plan.profile.model).__name__}, {t.epochs} "
        f"epochs, batch {t.batch_size}, lr {t.lr:g}, seeds {list(t.seeds)}, {results['parameters'] / 1e6:.2f} M "
        f"parameters; {len(data.train_set)} training and {len(data.select_set)} selection items; "
        f"losses {list(plan.losses)}"
    )
    grid = [(loss, seed) for seed in t.seeds for loss in plan.losses
            if t.seeds.index(seed) < t.seeds_per_loss.get(loss, len(t.seeds))]  # fmt: skip
    kept = {key: run for key in grid if (run := store.finished(*key)) is not None}
    draw = {key: figures in (True, "every run") or (figures == "first seed" and key[1] == t.seeds[0]) for key in grid}
    jobs = [(loss, seed, draw[(loss, seed)]) for loss, seed in grid if (loss, seed) not in kept]

    def done(run: dict) -> None:
        kept[(run["loss"], run["seed"])] = run
        log(run_line(run))
        results["runs"] = [kept[key] for key in grid if key in kept]
        results.update(summarize(results["runs"], plan.task.metrics, plan.comparisons, results["movement"]))
        store.write(results)

    for run in list(kept.values()):
        done(run)
    began = time.perf_counter()
    warm, _ = run_grid(plan, data, jobs, device, store, quiet=quiet, workers=workers, threads=threads,
                       data_root=data_root, condition=condition, done=done)  # fmt: skip
    warm.update({seed: record for seed in t.seeds if (record := store.warm(seed)[0]) is not None})
    results["warm_starts"] = [warm[seed] for seed in sorted(warm)]
    results["runs"] = [kept[key] for key in grid]
    results["execution"]["wall_s"] = time.perf_counter() - began
    results.update(summarize(results["runs"], plan.task.metrics, plan.comparisons, results["movement"]))
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


def _print_verdicts(results: dict, condition=None) -> None:
    """The verdict of each comparison at the selected epoch (sentences of :func:`~bl_tutorial.evaluation.verdict`)."""
    chosen = [c for c in results["comparisons"] if c["epoch"] == "selected"]
    if chosen:
        print(f"Comparisons{'' if condition is None else f' at condition {condition:g}'} (selected epoch):")
    for comparison in chosen:
        print(f"  {comparison['sentence']}")


# --------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bl_tutorial.experiments",
        description="Train a task's grid of losses x seeds and keep the results (resumable).",
    )
    parser.add_argument("task", choices=tuple(TASKS), help="which experiment")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=None, help=f"default ${PROFILE_ENV} or by device")
    parser.add_argument("--out", default=None, help="output folder (default runs/TASK-PROFILE)")
    losses = "comma-separated recipes, e.g. gdl+bl,gdl,ce,ce+bl or 'gdl,focal(gamma=1)+bl'"
    parser.add_argument("--losses", default=None, help=losses)
    parser.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's number of epochs")
    parser.add_argument("--schedule", choices=tuple(SCHEDULES), default="constant", help="alpha schedule")
    parser.add_argument("--alpha", type=float, default=None, help="alpha of the constant schedule (report: 0.05)")
    parser.add_argument("--data-root", default=None, help="folder with the real data (else $BL_TUTORIAL_DATA)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    parser.add_argument("--overwrite", action="store_true", help="start over in --out (removes its runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--figures", choices=FIGURES, default="first seed", help="which runs draw their figures")
    parser.add_argument("--workers", default=None, help=f"runs at once (default ${WORKERS_ENV} or auto: 2 on a CPU)")
    return parser


def _split_losses(text: str | None) -> list[str] | None:
    """Comma-separated recipes; commas inside parentheses belong to a recipe's options."""
    if not text:
        return None
    losses, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            losses.append(current)
            current = ""
        else:
            current += char
    return [*losses, current]


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
            "losses": _split_losses(args.losses),
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
        common["workers"] = args.workers
        if plan.profile.conditions is None:
            studies = {None: run_experiment(args.task, plan.profile_name, out, **common, **options)}
        else:
            studies = run_study(args.task, plan.profile_name, out, **common, **options)
        runs = [run for results in studies.values() for run in results["runs"]]
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, OSError) as error:
        parser.exit(2, f"error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"interrupted: finished runs are kept in {out}; run the same command again to resume\n")
    for condition, results in studies.items():
        _print_verdicts(results, condition)
    failed = [r for r in runs if r["status"] == "failed"]
    for run in failed:
        print(f"failed: {run['loss']} seed {run['seed']}: {run['reason']}", file=sys.stderr)
    print(f"Results written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
