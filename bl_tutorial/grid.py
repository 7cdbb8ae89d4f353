"""The runs of an experiment's grid: one warm start, one run, and many runs at once.

:func:`run_one` trains one loss with one seed, scores it at the selected and the last
epoch and draws it; :func:`warm_start` trains a seed's warm start once and keeps it.
:func:`run_grid` runs a grid's warm starts and runs one after the other, or, with
``workers > 1``, in that many processes at once with ``threads`` threads each. On a CPU
that pays: a small network keeps two threads busy only part of the time, so two runs
with one thread each get through more work than one run with two (measured on two cores:
a DRIVE fast run took 28 s with two threads, two at once took 36 s each with one: 1.6
times the throughput; ACDC 45 s and 56 s). A run's numbers depend on its number of
threads (float rounding), not on which process ran it or when, so a grid's results are
the same whatever the order its runs finish in.
"""

from __future__ import annotations

import multiprocessing
import pickle
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import torch

from bl_tutorial._bookkeeping import Clock
from bl_tutorial.device import seed_everything
from bl_tutorial.evaluation import settled
from bl_tutorial.recipes import LossSpec, loss_identity
from bl_tutorial.store import RunStore
from bl_tutorial.tasks import TaskData
from bl_tutorial.training import train

__all__ = ["warm_start", "run_one", "run_grid", "run_line", "picklable"]


def warm_start(plan, data: TaskData, seed: int, device, store: RunStore, quiet: bool) -> tuple[dict, dict]:
    """The warm start of ``seed`` (its record and final state), trained once and kept."""
    record, state = store.warm(seed)
    if record is not None:
        return record, state
    training = plan.profile.training
    seed_everything(seed)
    model, began = plan.task.build_model(plan.profile), time.perf_counter()
    loss_fn = plan.build_loss(LossSpec.parse(training.warm_start, plan.task.losses))
    record = {"seed": seed, "loss": training.warm_start, "spec": loss_identity(loss_fn)}
    try:
        result = train(
            model, data.train_set, data.select_set, loss_fn, training.warm_config(seed=seed, quiet=quiet), device,
            checkpoint=store.warm_checkpoint(seed), resume=True, description=f"warm start seed {seed}",
        )  # fmt: skip
    except FloatingPointError as error:
        return {**record, "status": "failed", "reason": str(error)}, {}
    state = {"model": result.last_state, "optimizer": result.optimizer_state}
    record.update(status="finished", history=result.history, time_s=time.perf_counter() - began,
                  seconds=result.seconds, settled=settled(result.history))  # fmt: skip
    store.keep_warm(seed, record, state)
    return record, state


def run_one(plan, data: TaskData, loss: str, seed: int, device, store: RunStore, figures: bool, quiet: bool,
            initial: dict | None = None) -> dict:  # fmt: skip
    """Train one loss with one seed (from ``initial``, a warm start, if given; resuming its checkpoint
    if any), score it, draw it."""
    seed_everything(seed)
    model = plan.task.build_model(plan.profile)
    config = plan.profile.training.config(seed=seed, quiet=quiet)
    began = time.perf_counter()
    loss_fn = plan.build_loss(loss)
    record = {"loss": loss, "seed": seed, "spec": loss_identity(loss_fn)}
    try:
        result = train(
            model, data.train_set, data.select_set, loss_fn, config, device,
            checkpoint=store.checkpoint(loss, seed), resume=True, description=f"{loss} seed {seed}", initial=initial,
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


def run_line(run: dict) -> str:
    """One line of the log for a finished (or failed) run."""
    head = f"  {run['loss']:8s} seed {run['seed']}: "
    if run["status"] == "failed":
        return head + f"FAILED ({run['reason']})"
    return head + f"best epoch {run['best_epoch']}, Dice {run['metrics']['dice']:.3f} ({run['time_s']:.0f} s)"


# --------------------------------------------------------------------------- many runs
def picklable(plan) -> bool:
    """Whether a plan can be sent to worker processes (a task defined in a notebook's own cells cannot)."""
    try:
        pickle.dumps(plan)
    except Exception:  # noqa: BLE001 - any reason means: run in this process
        return False
    return True


_WORKER: dict = {}
"""A worker process's plan, data, device and store, set once by :func:`_start_worker`."""


def _start_worker(plan, data_root, condition, device: str, folder: str, threads: int) -> None:
    torch.set_num_threads(threads)
    data = plan.task.load(plan.profile, data_root, condition)
    _WORKER.update(plan=plan, data=data, device=torch.device(device), store=RunStore(Path(folder)))


def _warm_job(seed: int, quiet: bool) -> dict:
    w = _WORKER
    return warm_start(w["plan"], w["data"], seed, w["device"], w["store"], quiet)[0]


def _run_job(loss: str, seed: int, draw: bool, quiet: bool) -> dict:
    w = _WORKER
    state = w["store"].warm(seed)[1] if w["plan"].profile.training.warm_start else None
    run = run_one(w["plan"], w["data"], loss, seed, w["device"], w["store"], draw, quiet, initial=state)
    w["store"].record(run)
    return run


def run_grid(
    plan,
    data: TaskData,
    jobs: Sequence[tuple[str, int, bool]],
    device,
    store: RunStore,
    *,
    quiet: bool,
    workers: int,
    threads: int,
    data_root=None,
    condition=None,
    done: Callable[[dict], None] = lambda run: None,
) -> tuple[dict, dict]:
    """Run ``jobs`` ``(loss, seed, draw figures)`` after the warm starts of their seeds; ``done(run)``
    is called in this process as each run finishes. Returns ``({seed: warm record}, {(loss, seed): run})``.

    With ``workers > 1`` (and a folder to share: ``store.folder``) the warm starts, then the runs,
    go to that many processes; otherwise they run here, one after the other.
    """
    seeds = sorted({seed for _, seed, _ in jobs}) if plan.profile.training.warm_start else []
    if workers <= 1:
        warm, states, runs = {}, {}, {}
        for loss, seed, draw in jobs:
            if seed in seeds and seed not in warm:
                warm[seed], states[seed] = warm_start(plan, data, seed, device, store, quiet)
            runs[(loss, seed)] = run = _one_here(plan, data, loss, seed, draw, device, store, quiet,
                                                 warm.get(seed), states.get(seed))  # fmt: skip
            done(run)
        return warm, runs
    context = multiprocessing.get_context("forkserver" if sys.platform == "linux" else "spawn")  # a clean process
    arguments = (plan, data_root, condition, str(device), str(store.folder), threads)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=arguments) as pool:
        try:
            warm = dict(zip(seeds, pool.map(_warm_job, seeds, [quiet] * len(seeds))))
            pending = {pool.submit(_run_job, loss, seed, draw, quiet): (loss, seed) for loss, seed, draw in jobs
                       if warm.get(seed, {}).get("status") != "failed"}  # fmt: skip
            runs = {(loss, seed): _failed_warm(loss, seed, warm[seed]) for loss, seed, _ in jobs
                    if warm.get(seed, {}).get("status") == "failed"}  # fmt: skip
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    runs[pending.pop(future)] = run = future.result()
                    done(run)
        except BaseException:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()  # Ctrl-C or an error: the runs kept so far resume the next time
            raise
    return warm, runs


def _failed_warm(loss: str, seed: int, warm: dict) -> dict:
    return {"loss": loss, "seed": seed, "status": "failed", "reason": f"warm start: {warm['reason']}"}


def _one_here(plan, data, loss, seed, draw, device, store, quiet, warm, state) -> dict:
    """One run in this process (after its seed's warm start, if any), kept in the store."""
    if warm is not None and warm["status"] == "failed":
        run = _failed_warm(loss, seed, warm)
    else:
        run = run_one(plan, data, loss, seed, device, store, draw, quiet, initial=state)
    store.record(run)
    return run
