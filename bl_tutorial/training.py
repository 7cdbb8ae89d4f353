"""The training loop of every experiment, in named steps a reader can follow.

:func:`train` fits a model with any training loss: a recipe
(:class:`~bl_tutorial.combined.LossSpec`, ``"gdl+bl"``), the module it builds, or a
module of the reader's own that returns its total and its named parts
(:class:`~bl_tutorial.combined.LossParts`, or a bare total). Read it top to bottom:

1. :func:`_start` - the optimiser, the learning-rate schedule and the mixed-precision
   settings (:func:`_precision`, the one place that decides them);
2. :func:`~bl_tutorial.checkpoints.resume` - continue from a checkpoint, refusing one made
   with other settings;
3. :func:`run_epoch` - one pass over a loader: softmax, loss, backward step, and the
   epoch's means (loss parts raw and weighted, monitors, Dice per class, HD95); the loss
   is told the fraction of training done (:class:`~bl_tutorial.combined.Progress`), so
   that a schedule means the same in a short and a long run;
4. the selected epoch - the best mean validation Dice of the foreground classes, scored
   after every epoch on the selection items, collated once for the whole run in batches of
   up to :data:`EVAL_PIXELS` pixels;
5. :func:`~bl_tutorial.checkpoints.save_checkpoint` - everything needed to resume, written atomically (after the
   last epoch and at most once a minute before it).

Each epoch reseeds the generators from ``(seed, epoch)``, so a run interrupted and
resumed reaches the same history as one that was not (on the CPU). Batches carry their
own spacing, so the loop never asks the dataset about its items. Nothing here assumes 2D:
images are ``(N, C, *spatial)`` and the memory format follows the tensors' rank.
"""

from __future__ import annotations

import inspect
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from bl_tutorial._bookkeeping import Clock, Means
from bl_tutorial._validation import check_choice
from bl_tutorial.checkpoints import RunState, run_settings, save_checkpoint, snapshot, warm_start
from bl_tutorial.checkpoints import resume as resume_run
from bl_tutorial.combined import LossParts, Progress, as_loss_parts
from bl_tutorial.data.warp import BatchWarp
from bl_tutorial.device import resolve_device, seed_everything, seed_worker
from bl_tutorial.losses import boundary_loss, dice_loss
from bl_tutorial.metrics import class_labels, dice_counts, hd95, pooled_dice
from bl_tutorial.recipes import LossSpec

LrSchedule = Literal["constant", "cosine"]

__all__ = ["TrainConfig", "TrainResult", "train", "run_epoch", "predict"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Adam with betas (0.9, 0.99) as in the official code."""

    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    lr_schedule: LrSchedule = "constant"
    seed: int = 0
    num_workers: int = 0
    amp: bool = True
    """Mixed precision (bfloat16 where supported, else float16 with loss scaling); CUDA only."""
    channels_last: bool = True
    """Channels-last memory format (faster convolutions on CUDA and on the CPU)."""
    val_hd95: bool = False
    """HD95 per foreground class on validation, every epoch (slow: a CPU surface distance per image)."""
    select_on: Literal["mean", "pooled"] = "mean"
    """The selection score: the mean over the foreground classes of the images' mean Dice (``"mean"``),
    or of the Dice of all selection voxels pooled (``"pooled"``: steadier where some images have no
    foreground, whose Dice is 0 or 1)."""
    batch_warp: BatchWarp | None = None
    """A random warp of every training batch on the device, its maps recomputed
    (:class:`~bl_tutorial.data.warp.BatchWarp`); drawn from a generator seeded per epoch."""
    quiet: bool = False
    checkpoint_seconds: float = 60.0
    """With a checkpoint path: write it after the last epoch of a call, and after any epoch
    that ends at least this long after the previous write (0: after every epoch). An
    interrupted run resumes from the last one written, to the same history."""

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(
                f"epochs, batch_size and lr must be positive, got {self.epochs}, {self.batch_size}, {self.lr}"
            )
        check_choice(self.lr_schedule, "lr_schedule", ("constant", "cosine"))
        check_choice(self.select_on, "select_on", ("mean", "pooled"))


EVAL_PIXELS = {"cpu": 2**18, "cuda": 2**22, "mps": 2**20}
"""Pixels one forward pass sees at most when a model is only evaluated (selection pass,
:func:`predict`): on two CPU cores one 584 x 565 image at a time is 30 % faster than four
(the caches), and the values do not depend on how the images are grouped."""


def memory_format(ndim: int) -> torch.memory_format:
    """The channels-last layout for a tensor of ``ndim`` axes: ``(N, C, H, W)`` or ``(N, C, D, H, W)``."""
    return torch.channels_last_3d if ndim == 5 else torch.channels_last


def _layout(model: nn.Module) -> torch.memory_format | None:
    """The channels-last layout of the model's first weight, if it is 4D or 5D and in that layout (else None)."""
    weight = next(model.parameters())
    if weight.ndim in (4, 5) and weight.is_contiguous(memory_format=memory_format(weight.ndim)):
        return memory_format(weight.ndim)
    return None


def _forward(model: nn.Module, image: torch.Tensor, pixels: int | None) -> torch.Tensor:
    """``model(image)``, in chunks of at most ``pixels`` pixels along the batch (None: at once)."""
    per_item = math.prod(image.shape[2:])
    count = len(image) if pixels is None else max(1, pixels // per_item)
    if count >= len(image):
        return model(image)
    return torch.cat([model(image[start : start + count]) for start in range(0, len(image), count)])


@dataclass
class TrainResult:
    """What :func:`train` returns.

    ``model`` holds the weights of the selected (best validation) epoch once the run is
    finished; ``last_state`` is the state dict of the last epoch trained, so that both can
    be scored.
    """

    history: list[dict]
    best_epoch: int
    best_score: float
    model: nn.Module
    last_state: dict
    finished: bool = True
    seconds: dict = field(default_factory=dict)
    optimizer_state: dict = field(default_factory=dict)
    """The optimiser's state after the last epoch (a warm start hands it on with ``last_state``)."""
    """Wall time of this call's phases (:class:`Clock`): ``train_batches`` (waiting for the
    loader), ``train_steps`` (forward, loss, backward, optimiser), ``train_bookkeeping``
    (the epoch's means and Dice) and ``select`` (the selection pass)."""


@dataclass(frozen=True)
class _Precision:
    """How the forward pass runs: autocast dtype (None: full precision), loss scaling, memory format."""

    autocast: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    channels_last: bool = False


def _precision(device: torch.device, config: TrainConfig) -> _Precision:
    """The one place that decides mixed precision: bfloat16 on CUDA where supported, else
    float16 with a gradient scaler; full precision on CPU and MPS or when ``amp`` is off."""
    channels_last = config.channels_last and device.type in ("cuda", "cpu")
    if not (config.amp and device.type == "cuda"):
        return _Precision(channels_last=channels_last)
    if torch.cuda.is_bf16_supported():
        return _Precision(torch.bfloat16, None, channels_last)
    return _Precision(torch.float16, torch.amp.GradScaler("cuda"), channels_last)


def _takes_validate(loss_fn) -> bool:
    """Whether ``loss_fn`` (a module or a callable) takes ``validate`` (False when its signature is unknown)."""
    try:
        return "validate" in inspect.signature(getattr(loss_fn, "forward", loss_fn)).parameters
    except (TypeError, ValueError):  # a TorchScript module, a builtin
        return False


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 100_003 + epoch * 7_919 + 12_345) % 2**31


def _loader(dataset: Dataset, config: TrainConfig, shuffle: bool, seed: int, device: torch.device) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=shuffle,
        num_workers=config.num_workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=device.type == "cuda",
    )


SELECTION_CACHE_BYTES = 2**30
"""The selection items are kept collated for the whole run when they take at most this many
bytes (estimated from the first item); a larger selection split is read again every epoch."""


def _evaluation_batches(dataset: Dataset, batch_size: int, device: torch.device) -> list[dict] | DataLoader:
    """The items of ``dataset`` in order, in batches for every selection pass of a run.

    Collated once and kept (pinned on CUDA) when they fit :data:`SELECTION_CACHE_BYTES`;
    otherwise a DataLoader that reads them again each pass. Items of one shape go in
    batches of as many items as :data:`EVAL_PIXELS` allows (small items in fewer, larger
    forward passes; the values are those of smaller batches to float rounding), at least
    ``batch_size``; items of several shapes in batches of ``batch_size``. The items are
    read once, at the first epoch of the call: a selection split is not augmented (a
    dataset whose items are random would be drawn once, and a resumed run would draw them
    under another generator state).
    """
    first = dataset[0]
    size = sum(v.numel() * v.element_size() for v in first.values() if torch.is_tensor(v)) * len(dataset)
    if size > SELECTION_CACHE_BYTES:
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, pin_memory=device.type == "cuda")
    items = [first] + [dataset[index] for index in range(1, len(dataset))]
    shapes = {tuple(item["image"].shape) for item in items}
    if len(shapes) == 1:
        pixels = math.prod(next(iter(shapes))[1:])
        batch_size = max(batch_size, EVAL_PIXELS.get(device.type, 2**20) // pixels)
    batches = [default_collate(items[start : start + batch_size]) for start in range(0, len(items), batch_size)]
    if device.type == "cuda":  # page-locked, so that the copy to the device does not wait
        batches = [{k: v.pin_memory() if torch.is_tensor(v) else v for k, v in batch.items()} for batch in batches]
    return batches


# --------------------------------------------------------------------------- steps
def _start(model: nn.Module, config: TrainConfig, device: torch.device) -> RunState:
    """Step 1: move the model, build the optimiser, the lr schedule and the precision settings."""
    precision = _precision(device, config)
    model = model.to(device)
    if precision.channels_last:  # the layout of each convolution weight follows its rank (2D or 3D)
        for weight in model.parameters():
            if weight.ndim in (4, 5):
                weight.data = weight.data.to(memory_format=memory_format(weight.ndim))  # as Module.to does
    optimizer = torch.optim.Adam(  # foreach: one kernel per step for all parameters (same values, 2-3x faster)
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, foreach=True
    )
    if config.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    return RunState(model, optimizer, scheduler, precision, history=[])


def _check_output(probs: torch.Tensor, epoch: int, step: int, means: Means) -> None:
    """Stop with the epoch and step when the network's output is NaN or infinite."""
    if not bool(torch.isfinite(probs).all()):
        so_far = means.result()
        last = {k: round(so_far[k], 6) for k in ("loss", "regional", "boundary") if k in so_far}
        raise FloatingPointError(
            f"epoch {epoch}, step {step}: the network output is NaN or infinite "
            f"(mean loss parts so far this epoch: {last or 'none yet'}); lower the learning rate or check the inputs"
        )


def _check_finite(parts: LossParts, epoch: int, step: int) -> None:
    """Stop with the epoch, step and loss parts when the loss is NaN or infinite (one sync)."""
    if not bool(torch.isfinite(parts.total)):
        named = ", ".join(
            f"{name} {float(value)}" + (f" x {parts.weights[name]}" if name in parts.weights else "")
            for name, value in parts.parts.items()
        )
        raise FloatingPointError(
            f"epoch {epoch}, step {step}: the loss is {parts.total.item()}"
            + (f" ({named})" if named else "")
            + "; lower the learning rate or check the inputs"
        )


def _validation_hd95(
    pred: torch.Tensor, labels: torch.Tensor, roi: torch.Tensor, spacing: torch.Tensor, num_classes: int
) -> list:
    """HD95 (in the unit of ``spacing``) per image and foreground class, inside the region of interest."""
    pred = torch.where(roi, pred, 0).cpu().numpy()  # outside the ROI: background
    labels, spacing = labels.cpu().numpy(), spacing.cpu().numpy()
    classes = range(1, num_classes)
    return [[hd95(p == k, t == k, tuple(s)) for k in classes] for p, t, s in zip(pred, labels, spacing)]


def run_epoch(
    model: nn.Module,
    loader: DataLoader | list[dict],
    loss_fn: nn.Module,
    epoch: int | Progress,
    device: torch.device,
    precision: _Precision | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    val_hd95: bool = False,
    clock: Clock | None = None,
    transform=None,
) -> dict:
    """Step 3: one pass over ``loader``; a training pass when ``optimizer`` is given.

    ``loader`` is a DataLoader or a list of collated batches (the selection items, collated
    once for every epoch). ``loss_fn(probs, target, dist_maps, progress)`` returns a total or
    :class:`~bl_tutorial.combined.LossParts`; a loss that takes ``validate`` (the package's
    do) checks its inputs on the first batch of the pass only: later batches come from the
    same dataset and model, and a NaN or infinite output or loss still stops the run at its
    step. ``epoch`` is an epoch or a
    :class:`~bl_tutorial.combined.Progress` (the step within the epoch is filled in).
    Returns the epoch's means: ``loss``, its named parts (for the recipes: ``regional`` and
    ``boundary``, raw, ``weighted_`` and their ``_weight`` at the first step), two monitors computed whatever
    the loss (``monitor_boundary``: the boundary loss on every class; ``monitor_dice_loss``: the soft Dice loss of the
    foreground classes), ``dice`` per class (inside each item's ``roi``), and with
    ``val_hd95`` the ``hd95`` per foreground class (in the unit of the items' spacing).
    A ``clock`` (:class:`Clock`) counts the time spent waiting for batches, stepping and
    keeping the means. A pass without ``optimizer`` runs under ``torch.inference_mode``. A
    ``transform`` (e.g. a :class:`~bl_tutorial.data.warp.BatchWarp` with its generator) maps
    each batch, once on the device, to another batch.
    """
    training = optimizer is not None
    precision = precision or _Precision()
    clock = clock or Clock()
    progress = epoch if isinstance(epoch, Progress) else Progress(epoch)
    model.train(training)
    means, hd95_values = Means(), []
    takes_validate = _takes_validate(loss_fn)
    prefix = "train_" if training else "eval_"
    for step, batch in enumerate(clock.timed(loader, prefix + "batches")):
        epoch = progress.epoch
        with clock.phase(prefix + "steps"), nullcontext() if training else torch.inference_mode():
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            if transform is not None:
                batch = transform(batch)
            image, target, maps, roi = (batch[k] for k in ("image", "target", "dist_maps", "roi"))
            if precision.channels_last:
                image = image.contiguous(memory_format=memory_format(image.ndim))
            with torch.autocast(device.type, dtype=precision.autocast, enabled=precision.autocast is not None):
                logits = _forward(model, image, None if training else EVAL_PIXELS.get(device.type))
            probs = torch.softmax(logits.float(), dim=1)
            _check_output(probs, epoch, step, means)
            here = Progress(progress.epoch, progress.epochs, step, max(len(loader), 1))
            checked = {} if step == 0 or not takes_validate else {"validate": False}  # the first batch is checked
            parts = as_loss_parts(loss_fn(probs, target, maps, here, **checked))  # once for every part
            _check_finite(parts, epoch, step)
            if training:
                _step(optimizer, precision, parts.total)
        with clock.phase(prefix + "bookkeeping"), torch.inference_mode():
            n = image.shape[0]
            foreground = list(range(1, target.shape[1]))
            means.add("loss", parts.total, n)
            _add_parts(means, parts, n)
            means.add("monitor_boundary", boundary_loss(probs, maps, validate=False), n)
            means.add("monitor_dice_loss", dice_loss(probs, target, foreground, validate=False), n)
            pred, labels = class_labels(probs), class_labels(target)
            overlap, total = dice_counts(pred, labels, target.shape[1], roi)
            dice = torch.where(total > 0, 2 * overlap / total.clamp(min=1), torch.ones_like(total))
            means.add("dice", dice.mean(0), n)  # the mean of the images' Dice (batch_dice)
            means.add("pooled_overlap", overlap.sum(0), 1)  # and the counts of all of them together
            means.add("pooled_total", total.sum(0), 1)
            if val_hd95:
                hd95_values += _validation_hd95(pred, labels, roi.bool(), batch["spacing"], target.shape[1])
    result = means.result()
    overlap, total = (torch.tensor(result.pop(k)) for k in ("pooled_overlap", "pooled_total"))
    result["pooled_dice"] = pooled_dice(overlap, total).tolist()
    if hd95_values:
        result["hd95"] = np.mean(hd95_values, axis=0).tolist()
    return result


def _add_parts(means: Means, parts: LossParts, n: int) -> None:
    """The named parts of a loss, raw and weighted, and their weights."""
    for name, value in parts.parts.items():
        means.add(name, value, n)
    for name, value in parts.parts.items():
        if name in parts.weights:
            means.add(f"weighted_{name}", value * parts.weights[name], n)
    for name, weight in parts.weights.items():  # the weight at the epoch's first step
        means.first(f"{name}_weight", weight)


def _step(optimizer: torch.optim.Optimizer, precision: _Precision, total: torch.Tensor) -> None:
    """One optimiser step on the loss ``total`` (with loss scaling under float16)."""
    optimizer.zero_grad(set_to_none=True)
    if precision.scaler is not None:
        precision.scaler.scale(total).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
    else:
        total.backward()
        optimizer.step()


def _check_datasets(train_set: Dataset, val_set: Dataset) -> None:
    for name, dataset in (("train_set", train_set), ("val_set", val_set)):
        if not isinstance(dataset, Dataset):
            raise TypeError(f"{name} must be a torch Dataset, got {type(dataset).__name__}")
        if len(dataset) == 0:
            raise ValueError(f"{name} is empty: training needs at least one item in each split")


def _batch_warp(config: TrainConfig, seed: int):
    """The epoch's batch warp with a generator of its own, seeded from the epoch (exact resume), or None."""
    if config.batch_warp is None:
        return None
    generator = torch.Generator().manual_seed(seed + 1)
    return lambda batch: config.batch_warp(batch, generator)


def _loss_module(loss) -> nn.Module:
    """A recipe (text or :class:`~bl_tutorial.combined.LossSpec`) built with its defaults, or a module as is."""
    if isinstance(loss, (str, LossSpec)):
        return LossSpec.parse(loss).build()
    if not callable(loss):
        raise TypeError(f"loss must be a recipe such as 'gdl+bl', a LossSpec or a loss module, got {loss!r}")
    return loss


def _select_and_record(run: RunState, record: dict, epoch: int, select_on: str) -> None:
    """Step 4: the selection score (the validation Dice of the foreground classes, their mean) and the best epoch."""
    key = "val_pooled_dice" if select_on == "pooled" else "val_dice"
    record["val_foreground_dice"] = float(np.mean(record[key][1:]))
    for name in ("regional", "boundary"):  # the schedule's weights over the epoch (0 for an absent part)
        record[f"{name}_weight"] = record.get(f"train_{name}_weight", 0.0)
    run.history.append(record)
    if record["val_foreground_dice"] > run.best_score:
        run.best_epoch, run.best_score = epoch, record["val_foreground_dice"]
        run.best_state = snapshot(run.model.state_dict())


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    loss,
    config: TrainConfig = TrainConfig(),
    device: torch.device | str | None = None,
    checkpoint: Path | str | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    description: str = "",
    initial: dict | None = None,
) -> TrainResult:
    """Train ``model`` and return its history, its selected epoch and its last state.

    Parameters
    ----------
    model : nn.Module
        Outputs logits ``(B, K, *spatial)``; softmax is applied here.
    train_set, val_set : Dataset
        Items as in :mod:`bl_tutorial.data.datasets` (image, target, dist_maps, roi,
        spacing), 2D or 3D. The epoch is selected on ``val_set``.
    loss : str, LossSpec or nn.Module
        A recipe (``"gdl+bl"``; built with its defaults: every class, alpha 0.05), the
        module :meth:`LossSpec.build <bl_tutorial.combined.LossSpec.build>` makes, or any
        module ``loss(probs, target, dist_maps, progress)`` returning a scalar total or
        :class:`~bl_tutorial.combined.LossParts`.
    config : TrainConfig
    device : optional
        Default :func:`~bl_tutorial.device.get_device`; a device that is not available
        is refused before anything is trained.
    checkpoint : path, optional
        Written atomically after the last epoch of this call and at least every
        ``config.checkpoint_seconds`` in between; with ``resume=True`` an existing one
        is loaded and training continues after its epoch. A checkpoint made with other
        settings (loss, learning rate, ...) is refused.
    stop_after : int, optional
        Stop after this many epochs *in this call* (to split a long run); the result has
        ``finished=False`` until all ``config.epochs`` are done.
    description : str
        Label of the progress bar.
    initial : dict, optional
        A warm start: ``{"model": state_dict, "optimizer": state_dict}`` (e.g. the
        ``last_state`` and ``optimizer_state`` of an earlier :class:`TrainResult`) to start
        from instead of the model's own weights and a fresh optimiser; the learning rate is
        ``config.lr`` from the first epoch. A checkpoint being resumed takes precedence.

    Returns
    -------
    TrainResult
        Once finished, ``model`` holds the weights of the selected epoch.

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or infinite (the message names the epoch, step and parts).
    """
    from tqdm.auto import tqdm

    device = resolve_device(device)
    _check_datasets(train_set, val_set)
    loss_fn = _loss_module(loss)
    run, settings = _start(model, config, device), run_settings(config, loss_fn)
    if initial is not None:
        warm_start(run, initial, config.lr)
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    start = resume_run(run, checkpoint, settings, device) if resume and checkpoint and checkpoint.is_file() else 0
    end = config.epochs if stop_after is None else min(config.epochs, start + stop_after)
    label = description or settings["loss"]["name"]
    bar = tqdm(range(start, end), desc=label, disable=config.quiet, leave=False)
    clock, written, selection = Clock(device), time.perf_counter(), None
    for epoch in bar:
        began, seed = time.perf_counter(), _epoch_seed(config.seed, epoch)
        seed_everything(seed)
        record, progress = {"epoch": epoch, "lr": run.optimizer.param_groups[0]["lr"]}, Progress(epoch, config.epochs)
        train_loader = _loader(train_set, config, True, seed, device)
        warp = _batch_warp(config, seed)
        means = run_epoch(
            run.model,
            train_loader,
            loss_fn,
            progress,
            device,
            run.precision,
            run.optimizer,
            clock=clock,
            transform=warp,
        )
        record.update({f"train_{k}": v for k, v in means.items()})
        run.scheduler.step()
        with clock.phase("select"):
            if selection is None:  # the selection items in batches, collated once for every epoch
                selection = _evaluation_batches(val_set, config.batch_size, device)
            means = run_epoch(run.model, selection, loss_fn, progress, device, run.precision, val_hd95=config.val_hd95)
        record.update({f"val_{k}": v for k, v in means.items()})
        record["time_s"] = time.perf_counter() - began
        _select_and_record(run, record, epoch, config.select_on)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_dice=f"{run.best_score:.3f}", best=run.best_epoch)
        if checkpoint is not None and (epoch == end - 1 or time.perf_counter() - written >= config.checkpoint_seconds):
            with clock.phase("checkpoint"):
                save_checkpoint(run, epoch, checkpoint, settings)
            written = time.perf_counter()
    bar.close()
    last_state = snapshot(run.model.state_dict())
    finished = len(run.history) >= config.epochs
    if finished and run.best_state is not None:
        run.model.load_state_dict(run.best_state)
    seconds = {k: v for k, v in clock.seconds.items() if not k.startswith("eval_")}  # "select" holds those
    optimizer_state = snapshot(run.optimizer.state_dict())
    return TrainResult(run.history, run.best_epoch, run.best_score, run.model, last_state, finished, seconds,
                       optimizer_state)  # fmt: skip


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int | None = None, device=None) -> torch.Tensor:
    """Softmax probabilities ``(N, K, *spatial)`` on the CPU for images ``(N, C, *spatial)``, in eval mode.

    ``batch_size`` images go through the network at once; by default as many as fit in
    :data:`EVAL_PIXELS` pixels for the model's device (at least one).

    >>> from bl_tutorial.models import UNet
    >>> predict(UNet(1, 2, base=2), torch.zeros(3, 1, 20, 20)).shape
    torch.Size([3, 2, 20, 20])
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor (N, C, *spatial), got {type(images).__name__}")
    if images.ndim not in (4, 5):
        raise ValueError(f"images must have shape (N, C, H, W) or (N, C, D, H, W), got {tuple(images.shape)}")
    weight = next(model.parameters())
    device = torch.device(device) if device is not None else weight.device
    layout = _layout(model)
    if batch_size is None:
        batch_size = max(1, EVAL_PIXELS.get(device.type, 2**20) // max(1, math.prod(images.shape[2:])))
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        if layout is not None and memory_format(batch.ndim) == layout:
            batch = batch.contiguous(memory_format=layout)
        logits = model(batch)
        out.append(torch.softmax(logits.float(), 1).cpu())
    return torch.cat(out)
