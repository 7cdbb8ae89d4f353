"""Where an experiment run's time goes, against the floor of its training steps.

Run: ``python benchmarks/run_time.py`` (``--tasks drive,acdc``, ``--profile fast``,
``--repeats 3``). For each task, in one run of this script:

1. **the command**: ``python -m bl_tutorial.experiments TASK --profile fast --losses
   gdl+bl --seeds 0`` in a fresh process (interpreter, imports and all), timed whole. For
   the imbalance study that is one run per lesion share;
2. **the breakdown**, from the phases the runner records in its ``results.json``
   (:class:`bl_tutorial._bookkeeping.Clock`): reading and preparing the data, the training
   steps (forward, loss, backward, Adam), waiting for batches, the epoch's bookkeeping
   (means, Dice), the selection pass after every epoch, checkpoints, the final scoring
   (selected and last epoch), figures, the rest of the run, and the process around it;
3. **the floor**: the same model, batch size, input size, memory format and number of
   Adam steps in a bare loop (random inputs made once, generalised Dice + 0.05 x the
   boundary loss written inline), measured in this process after the command;
4. the ratios of the run and of the whole command to the floor (the target: a run at
   most 1.3x its steps, the command at most 1.7x);
5. the ratio of the run to its own training steps (the ``train_steps`` phase it recorded):
   measured over the same seconds as the rest of the run, it does not move when the
   machine speeds up or slows down between the command and the bare loop;
6. the floor of the selection pass (the same model's bare forward passes over the
   selection items, in evaluation mode, once per epoch) and the ratio of the run to both
   floors together: what is left above it is overhead, not arithmetic.

Measure on a quiet machine: a second training at the same time slows both several-fold.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bl_tutorial.device import device_banner, get_device
from bl_tutorial.tasks import get_task
from bl_tutorial.training import EVAL_PIXELS, TrainConfig, _forward, _precision, memory_format

PHASES = {
    "data": "read and prepare the data (maps included)",
    "train_steps": "training steps (forward, loss, backward, Adam)",
    "train_batches": "waiting for training batches",
    "train_bookkeeping": "epoch means and Dice of the training batches",
    "select": "selection pass after every epoch",
    "checkpoint": "checkpoints",
    "evaluate": "final scoring (selected and last epoch)",
    "figures": "figures and saved probabilities",
    "other": "the rest of the runs",
    "process": "interpreter, imports, plan, results files",
}


TRAINING_PHASES = ("train_steps", "train_batches", "train_bookkeeping", "select", "checkpoint")


def run_command(task: str, profile: str, out: Path) -> tuple[float, list[dict]]:
    """Time the command line in a fresh process; return its wall time and the results it wrote."""
    command = [sys.executable, "-m", "bl_tutorial.experiments", task, "--profile", profile]
    command += ["--losses", "gdl+bl", "--seeds", "0", "--out", str(out), "--quiet", "--workers", "1"]
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - began
    files = sorted(out.glob("**/results.json"))
    return wall, [json.loads(path.read_text()) for path in files]


def breakdown(wall: float, experiments: list[dict]) -> dict:
    """Seconds per phase of :data:`PHASES`, summed over the experiments (one per condition)."""
    seconds = dict.fromkeys(PHASES, 0.0)
    for results in experiments:
        seconds["data"] += results["load_seconds"]
        for run in results["runs"]:
            phases = run["seconds"]
            for name in TRAINING_PHASES:
                seconds[name] += phases.get(name, 0.0)
            seconds["evaluate"] += phases.get("evaluate", 0.0)
            seconds["figures"] += phases.get("figures", 0.0)
            counted = sum(phases.get(k, 0.0) for k in PHASES if k not in ("data", "other", "process"))
            seconds["other"] += run["time_s"] - counted
        for warm in results.get("warm_starts", []):  # a warm start's epochs count like a run's
            inside = {k: warm.get("seconds", {}).get(k, 0.0) for k in TRAINING_PHASES}
            for name, value in inside.items():
                seconds[name] += value
            seconds["other"] += warm.get("time_s", 0.0) - sum(inside.values())
    seconds["process"] = wall - sum(seconds[k] for k in PHASES if k != "process")
    return seconds


def floor_seconds(task_name: str, profile_name: str, device: torch.device) -> tuple[float, float, int, tuple]:
    """Bare loops of one run: (training steps' seconds, selection passes' seconds, steps, input shape)."""
    task = get_task(task_name)
    profile = task.profiles[profile_name]
    training = profile.training
    data = task.load(profile, None, (profile.conditions or (None,))[0])
    shape = tuple(data.train_set[0]["image"].shape)
    epochs = training.epochs + training.warm_epochs  # one loss: its warm start (if any), then its run
    steps = epochs * math.ceil(len(data.train_set) / training.batch_size)
    precision = _precision(device, TrainConfig())
    layout = memory_format(len(shape) + 1) if precision.channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = task.build_model(profile).to(device, memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.lr, betas=(0.9, 0.99), foreach=True)
    image = torch.randn(training.batch_size, *shape, device=device).contiguous(memory_format=layout)
    labels = torch.randint(0, task.num_classes, (training.batch_size, *shape[1:]), device=device)
    target = torch.nn.functional.one_hot(labels, task.num_classes).movedim(-1, 1).float()
    maps = torch.randn(training.batch_size, task.num_classes, *shape[1:], device=device)
    boundary = list(task.boundary_classes or range(task.num_classes))

    def step():
        optimizer.zero_grad(set_to_none=True)
        probs = torch.softmax(model(image).float(), 1)
        p, g = probs.flatten(2), target.flatten(2)
        w = 1 / (g.sum(-1) + 1e-10) ** 2
        gdl = 1 - 2 * (w * (p * g).sum(-1)).sum(-1) / (w * (p + g).sum(-1)).sum(-1)
        loss = gdl.mean() + 0.05 * (probs[:, boundary] * maps[:, boundary]).mean()
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps_seconds = time.perf_counter() - began
    selection = torch.stack([data.select_set[i]["image"] for i in range(len(data.select_set))]).to(device)
    model.eval()
    with torch.inference_mode():
        _forward(model, selection.contiguous(memory_format=layout), EVAL_PIXELS.get(device.type))
        began = time.perf_counter()
        for _ in range(epochs):
            _forward(model, selection.contiguous(memory_format=layout), EVAL_PIXELS.get(device.type))
        if device.type == "cuda":
            torch.cuda.synchronize()
    return steps_seconds, time.perf_counter() - began, steps, shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="drive,acdc,imbalance")
    parser.add_argument("--profile", default="fast", choices=("smoke", "fast", "full"))
    parser.add_argument("--repeats", type=int, default=1, help="measure each task this many times")
    args = parser.parse_args()
    device = get_device()
    print(device_banner(device))
    rows = []
    for task in args.tasks.split(","):
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                wall, experiments = run_command(task, args.profile, Path(folder) / "out")
            runs = sum(len(results["runs"]) for results in experiments)
            floor, select_floor, steps, shape = floor_seconds(task, args.profile, device)
            floor, select_floor = floor * runs, select_floor * runs
            seconds = breakdown(wall, experiments)
            run_total = wall - seconds["process"]
            print(
                f"\n{task} ({args.profile}, gdl+bl, seed 0, {runs} run{'s' * (runs > 1)} of {steps} steps on "
                f"{shape}), repeat {repeat + 1}: command {wall:.1f} s, run {run_total:.1f} s, steps floor {floor:.1f} s"
            )
            for name, label in PHASES.items():
                print(f"  {label:48s} {seconds[name]:7.2f} s  {100 * seconds[name] / wall:5.1f} %")
            print(f"  run / floor {run_total / floor:.2f}x (target <= 1.3x), command / floor {wall / floor:.2f}x "
                  "(target <= 1.7x)")  # fmt: skip
            both = floor + select_floor
            print(f"  selection floor {select_floor:.1f} s; run / (steps + selection floors) {run_total / both:.2f}x")
            own = seconds["train_steps"]  # measured in the run itself: steady against a machine that speeds up or slows
            print(f"  run / its own training steps {run_total / own:.2f}x, command / its own steps {wall / own:.2f}x")
            rows.append((task, run_total / floor, wall / floor, run_total / both, run_total / own))
    print("\nsummary (ratios to the floor of the training steps):")
    for task in dict.fromkeys(row[0] for row in rows):
        runs = [row[1] for row in rows if row[0] == task]
        commands = [row[2] for row in rows if row[0] == task]
        both = [row[3] for row in rows if row[0] == task]
        own = [row[4] for row in rows if row[0] == task]
        print(
            f"  {task:10s} run {min(runs):.2f}-{max(runs):.2f}x, command {min(commands):.2f}-{max(commands):.2f}x, "
            f"run / both floors {min(both):.2f}-{max(both):.2f}x, run / its own steps {min(own):.2f}-{max(own):.2f}x "
            f"({len(runs)} measurement{'s' * (len(runs) > 1)})"
        )


if __name__ == "__main__":
    main()
