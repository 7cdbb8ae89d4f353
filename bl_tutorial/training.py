"""One training loop for both data sets: device, mixed precision, history, best epoch, checkpoints.

:func:`train` fits a model with a :class:`LossSpec` (regional loss, boundary loss, or
both with an alpha schedule) and records, per epoch: the total loss and its parts (raw
and weighted), the weights, Dice per class on training and validation, the validation
losses, HD95 on validation when asked, and the time. The best epoch is chosen on the mean
validation Dice of the foreground classes. Checkpoints hold everything needed to resume
(model, optimiser, scheduler, history, best state, RNG states), are written atomically,
and load with ``weights_only=True``. Every epoch reseeds the generators from
``(seed, epoch)``, so a run interrupted and resumed reaches the same history as one that
was not (on the CPU).
"""

from __future__ import annotations

import copy
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bl_tutorial.device import get_device, seed_everything, seed_worker
from bl_tutorial.losses import (
    SCHEDULES,
    BoundaryLoss,
    CombinedLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    GeneralizedDiceLoss,
    alpha_schedule,
    boundary_loss,
    dice_loss,
)
from bl_tutorial.metrics import batch_dice, hd95

REGIONAL_LOSSES = {"ce": CrossEntropyLoss, "gdl": GeneralizedDiceLoss, "focal": FocalLoss, "dice": DiceLoss}

__all__ = ["LossSpec", "TrainConfig", "TrainResult", "train", "predict", "REGIONAL_LOSSES"]


@dataclass(frozen=True)
class LossSpec:
    """What to minimise: ``regional`` ("ce", "gdl", "focal", "dice" or None) plus, if
    ``boundary``, the boundary loss on ``boundary_classes`` (None = all) weighted by an
    alpha schedule ("constant" with ``alpha``, "linear", or "rebalance").

    Build one from a short name with :meth:`parse`: ``"gdl+bl"``, ``"ce"``, ``"bl"``.
    """

    regional: str | None
    boundary: bool
    alpha: float = 0.05
    schedule: str = "constant"
    boundary_classes: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.regional is not None and self.regional not in REGIONAL_LOSSES:
            raise ValueError(f"regional must be one of {list(REGIONAL_LOSSES)} or None, got {self.regional!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.regional is None and not self.boundary:
            raise ValueError("a LossSpec needs a regional loss, the boundary loss, or both")

    @classmethod
    def parse(cls, name: str, **options) -> LossSpec:
        """``"gdl+bl"`` -> GDL + alpha BL; ``"ce"`` -> CE alone; ``"bl"`` -> boundary loss alone."""
        parts = name.lower().split("+")
        valid = [*REGIONAL_LOSSES, "bl"]
        if not parts or any(p not in valid for p in parts) or len(set(parts)) != len(parts) or parts.count("bl") > 1:
            examples = ", ".join([*REGIONAL_LOSSES, *(f"{r}+bl" for r in REGIONAL_LOSSES), "bl"])
            raise ValueError(f"unknown loss {name!r}; valid names: {examples}")
        regional = [p for p in parts if p != "bl"]
        if len(regional) > 1:
            raise ValueError(f"loss {name!r} names two regional losses; use one, optionally with '+bl'")
        boundary = "bl" in parts
        if boundary and not regional:
            options.setdefault("alpha", 1.0)
        return cls(regional[0] if regional else None, boundary, **options)

    @property
    def name(self) -> str:
        return "+".join(([self.regional] if self.regional else []) + (["bl"] if self.boundary else []))

    def build(self) -> CombinedLoss:
        """The :class:`~bl_tutorial.losses.CombinedLoss` this spec describes."""
        regional = REGIONAL_LOSSES[self.regional]() if self.regional else None
        classes = None if self.boundary_classes is None else list(self.boundary_classes)
        boundary = BoundaryLoss(classes) if self.boundary else None
        if self.schedule == "constant":
            schedule = alpha_schedule("constant", alpha=self.alpha)
        else:
            schedule = alpha_schedule(self.schedule)
        return CombinedLoss(regional, boundary, schedule)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Adam with betas (0.9, 0.99) as in the official code."""

    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # or "cosine"
    seed: int = 0
    num_workers: int = 0
    amp: bool = True  # mixed precision, CUDA only
    channels_last: bool = True  # CUDA only
    val_hd95: bool = False  # HD95 per class on validation every epoch
    quiet: bool = False

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(
                f"epochs, batch_size and lr must be positive, got {self.epochs}, {self.batch_size}, {self.lr}"
            )
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")


@dataclass
class TrainResult:
    """What :func:`train` returns: the history, the best epoch and the model at that epoch."""

    history: list[dict]
    best_epoch: int
    best_score: float
    model: nn.Module
    finished: bool = True
    device: str = "cpu"
    config: dict = field(default_factory=dict)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 100_003 + epoch * 7_919 + 12_345) % 2**31


def _rng_state() -> dict:
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
        "numpy_rest": [int(numpy_state[2]), int(numpy_state[3]), float(numpy_state[4])],
        "python": random.getstate(),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    position, has_gauss, cached = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(state["python"])


def _save_atomic(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    torch.save(payload, partial)
    os.replace(partial, path)


def _loader(dataset: Dataset, config: TrainConfig, shuffle: bool, seed: int, device: torch.device) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=shuffle,
        num_workers=config.num_workers,
        worker_init_fn=seed_worker,
        generator=generator,
        pin_memory=device.type == "cuda",
    )


def _foreground(num_classes: int) -> list[int]:
    return list(range(1, num_classes))


class _Means:
    """Running sums of named scalars and per-class vectors."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor | float] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, value, count: int = 1) -> None:
        value = value.detach().double() * count if isinstance(value, torch.Tensor) else float(value) * count
        self.sums[name] = self.sums.get(name, 0) + value
        self.counts[name] = self.counts.get(name, 0) + count

    def result(self) -> dict:
        out = {}
        for name, total in self.sums.items():
            mean = total / self.counts[name]
            out[name] = mean.tolist() if isinstance(mean, torch.Tensor) else float(mean)
        return out


def _run_batches(model, loader, loss_fn, epoch, device, config, optimizer=None, scaler=None, dataset=None):
    """One pass over ``loader``; trains when ``optimizer`` is given. Returns the epoch's means."""
    training = optimizer is not None
    model.train(training)
    means = _Means()
    num_classes = None
    foreground = None
    autocast_dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    use_amp = config.amp and device.type == "cuda"
    hd95_values = []
    for step, batch in enumerate(loader):
        image = batch["image"].to(device, non_blocking=True)
        target = batch["target"].to(device, non_blocking=True)
        maps = batch["dist_maps"].to(device, non_blocking=True)
        roi = batch["roi"].to(device, non_blocking=True)
        if config.channels_last and device.type == "cuda":
            image = image.contiguous(memory_format=torch.channels_last)
        num_classes = target.shape[1]
        foreground = _foreground(num_classes)
        with torch.set_grad_enabled(training), torch.autocast(device.type, dtype=autocast_dtype, enabled=use_amp):
            logits = model(image)
        probs = torch.softmax(logits.float(), dim=1)
        if not torch.isfinite(probs).all():
            so_far = means.result()
            last = {k: round(so_far[k], 6) for k in ("loss", "regional", "boundary") if k in so_far}
            raise FloatingPointError(
                f"epoch {epoch}, step {step}: the network output is NaN or infinite "
                f"(mean loss parts so far this epoch: {last or 'none yet'}); "
                "lower the learning rate or check the inputs"
            )
        with torch.set_grad_enabled(training):
            parts = loss_fn(probs, target, maps, epoch)
        if not torch.isfinite(parts.total):
            raise FloatingPointError(
                f"epoch {epoch}, step {step}: the loss is {parts.total.item()} "
                f"(regional {parts.regional.item()} x {parts.regional_weight}, "
                f"boundary {parts.boundary.item()} x {parts.boundary_weight}); "
                "lower the learning rate or check the inputs"
            )
        if training:
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(parts.total).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                parts.total.backward()
                optimizer.step()
        n = image.shape[0]
        with torch.no_grad():
            means.add("loss", parts.total, n)
            means.add("regional", parts.regional, n)
            means.add("boundary", parts.boundary, n)
            means.add("weighted_regional", parts.regional * parts.regional_weight, n)
            means.add("weighted_boundary", parts.boundary * parts.boundary_weight, n)
            # monitors, whatever the loss: the boundary loss on all classes and the soft Dice loss
            means.add("monitor_boundary", boundary_loss(probs, maps), n)
            means.add("monitor_dice_loss", dice_loss(probs, target, foreground), n)
            pred = probs.argmax(1)
            labels = target.argmax(1)
            means.add("dice", batch_dice(pred, labels, num_classes, roi).mean(0), n)
            if not training and config.val_hd95 and dataset is not None:
                for b, index in enumerate(batch["index"].tolist()):
                    spacing = dataset.spacing_of(index)
                    p, t = (pred[b] & roi[b]).cpu().numpy(), labels[b].cpu().numpy()
                    hd95_values.append([hd95(p == k, t == k, spacing) for k in foreground])
    result = means.result()
    if hd95_values:
        result["hd95"] = np.mean(hd95_values, axis=0).tolist()
    return result


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    loss: LossSpec,
    config: TrainConfig = TrainConfig(),
    device: torch.device | str | None = None,
    checkpoint: Path | str | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    description: str = "",
) -> TrainResult:
    """Train ``model`` and return its history and its state at the best validation epoch.

    Parameters
    ----------
    model : nn.Module
        Outputs logits ``(B, K, H, W)``; softmax is applied here.
    train_set, val_set : Dataset
        Items as in :mod:`bl_tutorial.data.datasets` (image, target, dist_maps, roi, index).
    loss : LossSpec
    config : TrainConfig
    device : optional
        Default :func:`~bl_tutorial.device.get_device`.
    checkpoint : path, optional
        Written after every epoch (atomically); with ``resume=True`` an existing one is
        loaded and training continues after its epoch.
    stop_after : int, optional
        Stop after this many epochs *in this call* (to split a long run); the result has
        ``finished=False`` until all ``config.epochs`` are done.
    description : str
        Label of the progress bar.

    Returns
    -------
    TrainResult
        ``model`` holds the weights of the best epoch.

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or infinite (the message names the epoch, step and parts).
    """
    from tqdm.auto import tqdm

    device = torch.device(device) if device is not None else get_device()
    model = model.to(device)
    if config.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    loss_fn = loss.build()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        if config.lr_schedule == "cosine"
        else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    )
    use_scaler = config.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    history: list[dict] = []
    best = {"epoch": -1, "score": -1.0, "state": copy.deepcopy(model.state_dict())}
    start_epoch = 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if resume and checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        history = saved["history"]
        best = {"epoch": saved["best_epoch"], "score": saved["best_score"], "state": saved["best_model"]}
        start_epoch = saved["epoch"] + 1
        _set_rng_state(saved["rng"])

    end_epoch = config.epochs if stop_after is None else min(config.epochs, start_epoch + stop_after)
    bar = tqdm(range(start_epoch, end_epoch), desc=description or loss.name, disable=config.quiet, leave=False)
    for epoch in bar:
        began = time.perf_counter()
        seed = _epoch_seed(config.seed, epoch)
        seed_everything(seed)
        w_regional, w_boundary = loss_fn.schedule.weights(epoch)
        record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
        train_means = _run_batches(
            model, _loader(train_set, config, True, seed, device), loss_fn, epoch, device, config, optimizer, scaler
        )
        scheduler.step()
        with torch.no_grad():
            val_means = _run_batches(
                model, _loader(val_set, config, False, seed, device), loss_fn, epoch, device, config, dataset=val_set
            )
        record.update({f"train_{k}": v for k, v in train_means.items()})
        record.update({f"val_{k}": v for k, v in val_means.items()})
        record["regional_weight"] = w_regional if loss.regional else 0.0
        record["boundary_weight"] = w_boundary if loss.boundary else 0.0
        score = float(np.mean([record["val_dice"][k] for k in _foreground(len(record["val_dice"]))]))
        record["val_foreground_dice"] = score
        record["time_s"] = time.perf_counter() - began
        history.append(record)
        if score > best["score"]:
            best = {"epoch": epoch, "score": score, "state": copy.deepcopy(model.state_dict())}
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_dice=f"{score:.3f}", best=best["epoch"])
        if checkpoint is not None:
            _save_atomic(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else {},
                    "epoch": epoch,
                    "history": history,
                    "best_epoch": best["epoch"],
                    "best_score": best["score"],
                    "best_model": best["state"],
                    "rng": _rng_state(),
                    "config": asdict(config),
                    "loss": asdict(loss),
                },
                checkpoint,
            )
    bar.close()
    finished = len(history) >= config.epochs
    if finished:
        model.load_state_dict(best["state"])
    return TrainResult(history, best["epoch"], best["score"], model, finished, str(device), asdict(config))


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 8, device=None) -> torch.Tensor:
    """Softmax probabilities ``(N, K, H, W)`` on the CPU for images ``(N, C, H, W)``, in eval mode."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size].to(device))
        out.append(torch.softmax(logits.float(), 1).cpu())
    return torch.cat(out)
