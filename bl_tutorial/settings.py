"""The settings of an experiment's profile: training, data and network, one small dataclass each.

A :class:`Profile` holds :class:`Training` (shared by every task: epochs, batch, learning
rate, seeds, losses, warm start, batch warp), the task's own data settings (:class:`DriveData`,
:class:`AcdcData`, :class:`LesionData`, each with the split sizes of :class:`SplitSizes`)
and the network (anything with ``build(in_channels, num_classes)``, such as
:class:`~bl_tutorial.models.UNetConfig`). Build them with keywords; the tasks of
:mod:`bl_tutorial.tasks` declare one profile per name (``smoke``, ``fast``, ``full``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bl_tutorial._validation import check_choice, check_int
from bl_tutorial.combined import DEFAULT_ALPHA
from bl_tutorial.data import split_three
from bl_tutorial.data.datasets import Augment
from bl_tutorial.data.warp import BATCH_WARPS
from bl_tutorial.training import LrSchedule, TrainConfig

__all__ = ["Training", "SplitSizes", "DriveData", "AcdcData", "LesionData", "Profile", "SLICE_PIXELS"]

SLICE_PIXELS = 256
"""The lesion study measures distances in pixels of 256 x 256 slices, the size the paper and the report trained at."""


@dataclass(frozen=True)
class Training:
    """The training settings every task shares. Build it with keywords."""

    epochs: int
    batch_size: int
    lr: float
    seeds: tuple[int, ...]
    losses: tuple[str, ...]
    """Loss recipes such as ``"gdl+bl"`` (see :class:`~bl_tutorial.recipes.LossSpec`)."""
    seeds_per_loss: Mapping[str, int] = field(default_factory=dict)
    """Fewer seeds for some losses (the first ``n`` of ``seeds``), e.g. those outside a chapter's main pairs."""
    lr_schedule: LrSchedule = "constant"
    alpha: float = DEFAULT_ALPHA
    """Weight of a boundary term next to a regional term when its recipe sets none (the report: 0.05)."""
    val_hd95: bool = False
    """HD95 on the selection split at every epoch (slow on a CPU)."""
    batch_warp: str | None = None
    """A warp of every training batch on the device, by name (:data:`~bl_tutorial.data.warp.BATCH_WARPS`)."""
    warm_start: str | None = None
    """A recipe trained alone first, for ``warm_epochs`` epochs at a constant learning rate; every loss
    of the grid then continues from its final weights and optimiser state for ``epochs`` epochs (the
    same warm start for every loss of a seed), as the official author advises for the boundary term."""
    warm_epochs: int = 0
    select_on: Literal["mean", "pooled"] = "mean"
    """How the selection split's Dice is computed (:class:`~bl_tutorial.training.TrainConfig`)."""

    def __post_init__(self):
        if self.batch_warp is not None:
            check_choice(self.batch_warp, "batch_warp", tuple(BATCH_WARPS), " or None")
        if (self.warm_start is None) != (self.warm_epochs == 0):
            raise ValueError(
                f"warm_start and warm_epochs go together (a recipe and at least one epoch), got "
                f"{self.warm_start!r} and {self.warm_epochs}"
            )

    def warm_config(self, **options) -> TrainConfig:
        """The settings of the warm start: ``warm_epochs`` at a constant learning rate."""
        return replace(self.config(**options), epochs=check_int(self.warm_epochs, "warm_epochs", minimum=1),
                       lr_schedule="constant")  # fmt: skip

    def config(self, **options) -> TrainConfig:
        """The :class:`~bl_tutorial.training.TrainConfig` of these settings (``options``: seed, quiet, ...)."""
        warp = None if self.batch_warp is None else BATCH_WARPS[self.batch_warp]
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, lr_schedule=self.lr_schedule,
                           val_hd95=self.val_hd95, select_on=self.select_on, batch_warp=warp, **options)  # fmt: skip


@dataclass(frozen=True)
class SplitSizes:
    """How many labelled items (images, patients) each split takes, and the seed of the split."""

    n_select: int
    """Items that choose the epoch."""
    n_report: int
    """Items that are scored."""
    n_train: int | None = None
    """Training items; None: all the others."""
    split_seed: int = 0

    def split(self, ids: Sequence[str], where: str, profile: str) -> tuple[list[str], list[str], list[str]]:
        """(train, select, report) ids, or a refusal in the profile's terms when there are too few."""
        needed = self.n_select + self.n_report + (self.n_train or 1)
        if len(ids) < needed:
            train = f"{self.n_train}" if self.n_train else "at least 1"
            raise ValueError(
                f"{where}: the {profile or 'chosen'} profile needs {needed} labelled items ({self.n_select} to "
                f"select the epoch, {self.n_report} to report, {train} to train) and found {len(ids)}; "
                "add data or choose a smaller profile"
            )
        train, select, report = split_three(ids, self.n_select, self.n_report, self.split_seed)
        return (train if self.n_train is None else train[: self.n_train]), select, report


@dataclass(frozen=True)
class DriveData(SplitSizes):
    """DRIVE: images resized to ``image_size`` (None: native size), or ``patch_size`` patches at native size."""

    image_size: int | None = None
    patch_size: int | None = None
    """Train on random patches of this side (px) instead of whole images."""
    patches_per_image: int = 16
    augment: Augment = "flip"


@dataclass(frozen=True)
class AcdcData(SplitSizes):
    """ACDC: slices at ``image_size`` px; ``crop_mm``: side of the central square the network sees (None: all)."""

    image_size: int = 256
    crop_mm: float | None = None
    augment: Augment = "none"


@dataclass(frozen=True)
class LesionData(SplitSizes):
    """Synthetic lesions: ``n_train`` + ``n_select`` + ``n_report`` images of ``image_size`` px per share,
    ``empty_share`` of them without lesions; distance maps in pixels of 256 x 256 slices."""

    n_train: int | None = 48
    image_size: int = 96
    augment: Augment = "isometry"
    empty_share: float = 0.25
    """The share of the images without lesions (as most ISLES and WMH slices)."""
    conditions: tuple[float, ...] = (10.0, 3.0, 1.0)
    """The lesions' shares of the image, in per cent: one experiment each."""

    @property
    def spacing(self) -> float:
        """A pixel's side in the maps' unit, pixels of a 256 x 256 slice (as the report's images)."""
        return SLICE_PIXELS / self.image_size


@dataclass(frozen=True)
class Profile:
    """Everything that sets the size of an experiment: training, data and network settings."""

    training: Training
    data: Any
    """The task's own data settings (:class:`DriveData`, :class:`AcdcData`, :class:`LesionData`, ...)."""
    model: Any
    """Anything with ``build(in_channels, num_classes) -> nn.Module`` (:class:`~bl_tutorial.models.UNetConfig`)."""
    name: str = ""

    @property
    def conditions(self) -> tuple | None:
        """A study's conditions (one experiment each), from the data settings; None for a single experiment."""
        return getattr(self.data, "conditions", None)

    def describe(self) -> str:
        """One short line: the training settings and the network."""
        t = self.training
        fewer = "".join(f", {n} for {loss}" for loss, n in t.seeds_per_loss.items())
        warm = f"a warm start of {t.warm_epochs} epochs ({t.warm_start}), then " if t.warm_start else ""
        return (f"{warm}{t.epochs} epochs, batch {t.batch_size}, lr {t.lr:g} ({t.lr_schedule}), "
                f"{len(t.seeds)} seeds{fewer}; {self.model}")  # fmt: skip

    def with_training(self, **changes) -> Profile:
        """The same profile with some training settings changed."""
        return replace(self, training=replace(self.training, **changes))
