"""How much an experiment's paired differences move when the book is built again.

Floats differ between machines and thread counts, training diverges from there, and a
verdict near the edge of its interval can flip between two builds of the same code. This
script builds an experiment a second time with another number of threads and compares
every paired difference (selected epoch) with a first build:

    python tools/measure_movement.py imbalance --profile fast \\
        --reference /tmp/bl_tutorial_book/imbalance-fast --threads 2

``--reference`` is the folder a first build wrote (the book build's run folder, or one
written with ``python -m bl_tutorial.experiments``: on a CPU two runs at a time with one
thread each); without it the first build is made here too, that way. The second build
trains one run at a time with ``--threads`` threads (default 2), so that its floats are
rounded otherwise. The result, with its provenance, is
written to ``bl_tutorial/results/movement/TASK-PROFILE.json`` (package data, read by
:func:`bl_tutorial.store.measured_movement`): for every comparison, the mean difference
in both builds and how far it moved, and per metric the largest movement. The chapters
state a verdict only where an interval clears zero by more than that.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
from pathlib import Path

import torch

from bl_tutorial import __version__
from bl_tutorial._io import write_json_atomic
from bl_tutorial.experiments import load_results, run_experiment, run_study
from bl_tutorial.store import code_digest, movement_path
from bl_tutorial.tasks import get_task


def differences(folder: Path) -> dict[tuple, float]:
    """Each selected-epoch comparison of an experiment folder (or of a study's condition folders)."""
    files = sorted(folder.glob("condition-*/results.json")) or [folder / "results.json"]
    found = {}
    for path in files:
        results = load_results(path)
        for c in results["comparisons"]:
            if c["epoch"] == "selected":
                found[(results.get("condition"), c["loss"], c["baseline"], c["metric"])] = c["mean"]
    return found


def executed_as(folder: Path) -> str:
    """How a build's runs were executed, from its results (not the folder: no machine path is recorded)."""
    files = sorted(folder.glob("condition-*/results.json")) or [folder / "results.json"]
    execution = load_results(files[0]).get("execution", {})
    at_once, threads = execution.get("runs_at_once", 1), execution.get("threads_per_run", "?")
    return f"{at_once} run{'s' * (at_once != 1)} at a time, {threads} thread{'s' * (threads != 1)} each"


def build(task: str, profile: str, out: Path, threads: int | None) -> Path:
    """One build of the experiment: one run at a time with ``threads`` threads, or (None) as the book builds it."""
    options = {"overwrite": True, "quiet": True, "log": lambda *a: None, "figures": "none"}
    if threads is not None:
        torch.set_num_threads(threads)
        options["workers"] = 1
    if get_task(task).profiles[profile].conditions is None:
        run_experiment(task, profile, out, **options)
    else:
        run_study(task, profile, out, **options)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--reference", type=Path, default=None, help="a first build's folder (else built here)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the second build (one run at a time)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        first = args.reference or build(args.task, args.profile, Path(scratch) / "first", None)
        second = build(args.task, args.profile, Path(scratch) / "second", args.threads)
        a, b = differences(first), differences(second)
        builds = {"first": executed_as(first), "second": executed_as(second)}
    shared = sorted(set(a) & set(b), key=str)
    if not shared:
        parser.exit(2, "error: the two builds share no comparison; is --reference the same task and profile?\n")
    rows = [{"condition": k[0], "loss": k[1], "baseline": k[2], "metric": k[3], "first": a[k], "second": b[k],
             "moved": abs(a[k] - b[k])} for k in shared]  # fmt: skip
    by_metric: dict[str, float] = {}
    for row in rows:
        by_metric[row["metric"]] = max(by_metric.get(row["metric"], 0.0), row["moved"])
    record = {
        "task": args.task,
        "profile": args.profile,
        "builds": builds,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code": f"{__version__}+{code_digest()}",
        "torch": torch.__version__,
        "comparisons": rows,
        "by_metric": by_metric,
    }
    path = movement_path(args.task, args.profile)
    write_json_atomic(path, record)
    for key, value in by_metric.items():
        print(f"{args.task} {args.profile}: {key} differences moved by up to {value:.4f}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
