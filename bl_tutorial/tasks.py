"""One declarative description per experiment: data and splits, model, classes, scoring, figures.

The runner of :mod:`bl_tutorial.experiments` knows no data-set name: it loads a
:class:`Task`'s data with the settings of a :class:`Profile`, trains each loss and seed,
and asks the task to score and draw. A new experiment is a new :class:`Task` in
:data:`TASKS`, not a new branch in the runner.

* :data:`DRIVE` - retinal vessels, UNet, binary, the boundary term on the vessels (the
  report's Table 1);
* :data:`ACDC` - cardiac MRI, ENet, four classes, the boundary term on all of them (the
  report's Figures 2-3);
* :data:`IMBALANCE` - synthetic lesions whose share of the image shrinks from 10 % to
  0.3 %: when does the boundary term help?

Every task splits its labelled items three ways: *train*, *select* (chooses the epoch)
and *report* (is scored), so that no reported score is flattered by the choice of epoch.
Every profile's settings are in :attr:`Task.profiles` (``smoke``: the notebooks' tests;
``fast``: the published book, on two CPU cores; ``full``: the report's settings, for a
GPU).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from bl_tutorial._io import atomic_path
from bl_tutorial._validation import check_choice
from bl_tutorial.data import (
    CLASS_NAMES,
    AcdcDataset,
    DriveDataset,
    DrivePatches,
    LabelledImages,
    acdc_patient_ids,
    ensure_dataset,
    lesion_images,
    read_acdc,
    read_drive,
    split_three,
)
from bl_tutorial.data.datasets import Augment
from bl_tutorial.evaluation import (
    score_cardiac,
    score_lesions,
    score_vessels,
    trivial_vessel_scores,
    vessel_probability,
)
from bl_tutorial.metrics import class_labels
from bl_tutorial.models import ENet, UNet
from bl_tutorial.training import predict

__all__ = [
    "Metric",
    "Profile",
    "TaskData",
    "Task",
    "TASKS",
    "DRIVE",
    "ACDC",
    "IMBALANCE",
    "get_task",
    "build_model",
    "figure_path",
    "REPORT_TABLE1",
    "BAUMGARTNER_2017",
]

REPORT_TABLE1 = {"gdl+bl": 0.788, "gdl": 0.793, "ce+bl": 0.763, "ce": 0.798}
"""DSC in the source report's Table 1 (real DRIVE, 256 px, one validation image, last epoch, whole image)."""
BAUMGARTNER_2017 = {"RV": 0.893, "MYO": 0.899, "LV": 0.950}
"""The mean Dice coefficients in the abstract of Baumgartner et al. 2017 ("An exploration of 2D
and 3D deep learning techniques for cardiac MR image segmentation", STACOM 2017): 2D networks
on the 100 real ACDC training patients, ED and ES frames. For orientation only."""


@dataclass(frozen=True)
class Metric:
    """A score the runner summarises over seeds and compares between losses."""

    key: str
    label: str
    unit: str = ""
    higher_is_better: bool | None = True
    """None for a quantity with no better direction (e.g. how much is predicted)."""


@dataclass(frozen=True)
class Profile:
    """Everything that sets the size of an experiment. Build it with keywords."""

    model: Literal["unet", "enet"]
    epochs: int
    batch_size: int
    lr: float
    seeds: tuple[int, ...]
    losses: tuple[str, ...]
    """Loss names such as ``"gdl+bl"`` (see :class:`~bl_tutorial.combined.LossSpec`)."""
    n_select: int
    """Items (images, patients) that choose the epoch."""
    n_report: int
    """Items that are scored."""
    n_train: int | None = None
    """Training items; None: all the others."""
    image_size: int | None = None
    """Side of the square images the network sees (px); None: native size."""
    patch_size: int | None = None
    """Train on random patches of this side (px) instead of whole images."""
    patches_per_image: int = 16
    width: int = 8
    """UNet base width (ENet has a fixed width)."""
    depth: int = 4
    """UNet poolings."""
    augment: Augment = "flip"
    alpha: float = 0.05
    """Weight of the boundary term under the constant schedule (the report: 0.05)."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    split_seed: int = 0
    val_hd95: bool = False
    """HD95 on the selection split at every epoch (slow on a CPU)."""
    crop_mm: float | None = None
    """ACDC: side of the central square, in mm, that the network sees; None: the whole slice."""
    conditions: tuple[float, ...] | None = None
    """A study: one experiment per condition (the imbalance task: lesion shares in per cent)."""


@dataclass
class TaskData:
    """A task's data for one profile: the datasets the loop trains and selects on, and what is scored."""

    source: Any
    """Where the data came from: ``describe()``, ``kind`` ("real", "stand-in", "synthetic"), ``note``."""
    train_set: Dataset
    select_set: Dataset
    """Chooses the epoch (the loop's validation set)."""
    report: Any
    """What the task's ``evaluate`` scores."""
    splits: dict[str, list[str]]
    """The ids in each split (images or patients)."""
    baselines: dict = field(default_factory=dict)
    """Scores of trivial predictors on the report split, for orientation."""
    extras: dict = field(default_factory=dict)
    """Anything else the task's figures need (e.g. test images)."""


@dataclass(frozen=True)
class Task:
    """An experiment, described: its data, model, classes, scoring and figures."""

    name: str
    title: str
    class_names: tuple[str, ...]
    in_channels: int
    boundary_classes: tuple[int, ...] | None
    """Channels the boundary loss sums over (None: all), as in the official code."""
    map_unit: str
    """The unit of the distance maps (the same in every profile)."""
    profiles: Mapping[str, Profile]
    load: Callable[[Profile, Path | None, Any], TaskData]
    """``load(profile, data_root, condition)``."""
    evaluate: Callable[[nn.Module, TaskData], dict]
    """Scores of a trained model on the report split."""
    metrics: tuple[Metric, ...] = (Metric("dice", "Dice"),)
    """The scores summarised over seeds and compared between losses; the first is the headline."""
    save_figures: Callable[[nn.Module, TaskData, str, int, Path], None] | None = None
    """Writes PNG figures (and saved probabilities) of one run into a folder."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def build_model(task: Task, profile: Profile) -> nn.Module:
    """The network a profile names, with the task's input channels and classes."""
    check_choice(profile.model, "model", ("unet", "enet"))
    if profile.model == "unet":
        return UNet(task.in_channels, task.num_classes, base=profile.width, depth=profile.depth)
    return ENet(task.in_channels, task.num_classes)


def figure_path(folder: Path | str, kind: str, loss: str, seed: int, suffix: str = ".png") -> Path:
    """Where a run's figure (or saved arrays, ``suffix=".npz"``) of ``kind`` lives under ``folder``."""
    return Path(folder) / "figures" / f"{kind}_{loss}_seed{seed}{suffix}"


def _save_figure(figure, path: Path) -> None:
    with atomic_path(path) as partial:
        figure.savefig(partial, format="png", dpi=80, bbox_inches="tight")


def _save_arrays(path: Path, **arrays) -> None:
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _splits(ids: Sequence[str], profile: Profile) -> tuple[list[str], list[str], list[str]]:
    train, select, report = split_three(ids, profile.n_select, profile.n_report, profile.split_seed)
    return (train if profile.n_train is None else train[: profile.n_train]), select, report


# --------------------------------------------------------------------------- DRIVE
def _load_drive(profile: Profile, data_root: Path | None, condition=None) -> TaskData:
    source = ensure_dataset("drive", data_root)
    labelled = {s.id: s for s in read_drive(source, "training")}
    unlabelled = [i for i, s in labelled.items() if s.vessels is None]
    if unlabelled:
        raise ValueError(f"{source.root}: DRIVE training images {unlabelled} have no 1st_manual annotation")
    train_ids, select_ids, report_ids = _splits(sorted(labelled), profile)
    train, select = [labelled[i] for i in train_ids], [labelled[i] for i in select_ids]
    report = [labelled[i] for i in report_ids]
    if profile.patch_size:
        train_set = DrivePatches(train, profile.patch_size, profile.patches_per_image, profile.augment)
    else:
        train_set = DriveDataset(train, profile.image_size, profile.augment)
    report_set = DriveDataset(report, profile.image_size)
    return TaskData(
        source=source,
        train_set=train_set,
        select_set=DriveDataset(select, profile.image_size),
        report=(report, report_set),
        splits={"train": train_ids, "select": select_ids, "report": report_ids},
        baselines=trivial_vessel_scores(report),
        extras={"test": read_drive(source, "test")[:1], "image_size": profile.image_size},
    )


def _evaluate_drive(model: nn.Module, data: TaskData) -> dict:
    samples, dataset = data.report
    return score_vessels(model, samples, dataset)


def _network_input(sample, size: int | None) -> torch.Tensor:
    from bl_tutorial.data.transforms import normalize_intensity, resize_image

    image = normalize_intensity(sample.image, mask=sample.fov, channel_axis=-1).transpose(2, 0, 1)
    return torch.from_numpy(resize_image(image, sample.image.shape[:2] if size is None else (size, size)))[None]


def _save_drive_figures(model: nn.Module, data: TaskData, loss: str, seed: int, folder: Path) -> None:
    from bl_tutorial.viz import drive_test_figure, drive_validation_figure

    samples, dataset = data.report
    sample = samples[0]
    probability = vessel_probability(model, torch.from_numpy(dataset.images[:1]), sample.image.shape[:2])[0]
    _save_figure(
        drive_validation_figure(sample, probability, f"{loss}, seed {seed}"), figure_path(folder, "report", loss, seed)
    )
    arrays = {"report_probability": probability.astype(np.float16), "report_id": sample.id}
    if data.extras["test"]:
        test = data.extras["test"][0]
        vessel = vessel_probability(model, _network_input(test, data.extras["image_size"]), test.image.shape[:2])[0]
        vessel = vessel * test.fov
        _save_figure(drive_test_figure(test, vessel, loss), figure_path(folder, "test", loss, seed))
        arrays.update(test_probability=vessel.astype(np.float16), test_id=test.id)
    _save_arrays(figure_path(folder, "probabilities", loss, seed, ".npz"), **arrays)


_DRIVE_LOSSES = ("gdl+bl", "gdl", "ce", "ce+bl")

# fmt: off
_DRIVE_PROFILES = {
    "smoke": Profile(model="unet", width=4, epochs=2, batch_size=8, lr=3e-3, seeds=(0, 1), losses=_DRIVE_LOSSES,
                     n_select=1, n_report=1, n_train=2, patch_size=32, patches_per_image=4, augment="isometry"),
    # native-resolution patches, scored on whole images at native size
    "fast": Profile(model="unet", width=8, epochs=16, batch_size=16, lr=3e-3, lr_schedule="cosine", seeds=(0, 1, 2),
                    losses=_DRIVE_LOSSES, n_select=4, n_report=4, patch_size=64, patches_per_image=10,
                    augment="isometry"),
    # the report: UNet, whole images at 256 px, 150 epochs, batch 8, alpha 0.05
    "full": Profile(model="unet", width=64, epochs=150, batch_size=8, lr=1e-3, seeds=(0, 1, 2), losses=_DRIVE_LOSSES,
                    n_select=4, n_report=4, image_size=256),
}
# fmt: on

DRIVE = Task(
    name="drive",
    title="DRIVE retinal vessels, UNet",
    class_names=("background", "vessel"),
    in_channels=3,
    boundary_classes=(1,),  # the official code: the foreground only in binary tasks
    map_unit="pixels of the report's 256 x 256 images",
    profiles=_DRIVE_PROFILES,
    load=_load_drive,
    evaluate=_evaluate_drive,
    metrics=(
        Metric("dice", "Dice"),
        Metric("predicted_fraction", "fraction of the FOV predicted as vessel", higher_is_better=None),
    ),
    save_figures=_save_drive_figures,
)


# --------------------------------------------------------------------------- ACDC
def _load_acdc(profile: Profile, data_root: Path | None, condition=None) -> TaskData:
    source = ensure_dataset("acdc", data_root)
    train_ids, select_ids, report_ids = _splits(acdc_patient_ids(source, "training"), profile)
    patients = {p.id: p for p in read_acdc(source, "training", train_ids + select_ids + report_ids)}  # only those
    size, crop = profile.image_size or 256, profile.crop_mm
    return TaskData(
        source=source,
        train_set=AcdcDataset([patients[i] for i in train_ids], size, crop, augment=profile.augment),
        select_set=AcdcDataset([patients[i] for i in select_ids], size, crop),
        report=AcdcDataset([patients[i] for i in report_ids], size, crop),
        splits={"train": train_ids, "select": select_ids, "report": report_ids},
    )


def _evaluate_acdc(model: nn.Module, data: TaskData) -> dict:
    return score_cardiac(model, data.report, CLASS_NAMES)


def _save_acdc_figure(model: nn.Module, data: TaskData, loss: str, seed: int, folder: Path, count: int = 6) -> None:
    from bl_tutorial.viz import cardiac_slices_figure

    dataset = data.report
    chosen = np.random.default_rng(seed).choice(len(dataset), size=min(count, len(dataset)), replace=False)
    pred = class_labels(predict(model, torch.from_numpy(dataset.images[chosen]))).numpy()
    title = f"ACDC report slices, {loss}, seed {seed}"
    figure = cardiac_slices_figure(dataset.images[chosen, 0], dataset.labels[chosen], pred, title)
    _save_figure(figure, figure_path(folder, "slices", loss, seed))


_ACDC_LOSSES = ("bl", "gdl", "gdl+bl")

# fmt: off
_ACDC_PROFILES = {
    "smoke": Profile(model="enet", epochs=1, batch_size=8, lr=5e-3, seeds=(0, 1), losses=_ACDC_LOSSES, n_select=1,
                     n_report=1, n_train=2, image_size=32, augment="none", crop_mm=128),
    # a 128 mm square around the heart at 64 px
    "fast": Profile(model="enet", epochs=12, batch_size=8, lr=5e-3, lr_schedule="cosine", seeds=(0, 1, 2),
                    losses=_ACDC_LOSSES, n_select=4, n_report=6, n_train=8, image_size=64, augment="none",
                    crop_mm=128),
    # the official code: ENet, 256 px, Adam 5e-4, batch 8, 100 epochs
    "full": Profile(model="enet", epochs=100, batch_size=8, lr=5e-4, seeds=(0, 1, 2), losses=_ACDC_LOSSES,
                    n_select=10, n_report=15, image_size=256, augment="none"),
}
# fmt: on

ACDC = Task(
    name="acdc",
    title="ACDC cardiac MRI, ENet",
    class_names=CLASS_NAMES,
    in_channels=1,
    boundary_classes=None,  # the official code: all four classes
    map_unit="millimetres",
    profiles=_ACDC_PROFILES,
    load=_load_acdc,
    evaluate=_evaluate_acdc,
    metrics=(
        Metric("dice", "mean 3D Dice"),
        Metric("dice_RV", "3D Dice of the RV"),
        Metric("dice_MYO", "3D Dice of the MYO"),
        Metric("dice_LV", "3D Dice of the LV"),
        Metric("hd95", "mean 3D HD95", "mm", higher_is_better=False),
    ),
    save_figures=_save_acdc_figure,
)


# --------------------------------------------------------------------------- the imbalance study
@dataclass(frozen=True)
class _SyntheticSource:
    """Describes generated data the way :class:`~bl_tutorial.data.DatasetSource` describes a tree."""

    note: str
    kind: str = "synthetic"

    def describe(self) -> str:
        return f"Data: synthetic lesions ({self.note})"


def _load_lesions(profile: Profile, data_root: Path | None, percent: float) -> TaskData:
    size = profile.image_size or 64
    counts = {"train": profile.n_train or 48, "select": profile.n_select, "report": profile.n_report}
    arrays = {
        split: lesion_images(count, size, percent, seed=profile.split_seed * 10 + index)
        for index, (split, count) in enumerate(counts.items())
    }
    augments = {"train": profile.augment, "select": "none", "report": "none"}
    datasets = {split: LabelledImages(*arrays[split], 2, augment=augments[split]) for split in counts}
    sizes = " + ".join(str(count) for count in counts.values())
    note = f"{size} x {size} px, lesions {percent:g} % of each image, {sizes} images"
    return TaskData(
        source=_SyntheticSource(note),
        train_set=datasets["train"],
        select_set=datasets["select"],
        report=datasets["report"],
        splits={split: [f"{split}-{i}" for i in range(count)] for split, count in counts.items()},
    )


def _evaluate_lesions(model: nn.Module, data: TaskData) -> dict:
    return score_lesions(model, data.report)


_IMBALANCE_LOSSES = ("gdl", "gdl+bl", "gdl+bl@rebalance")

# fmt: off
_IMBALANCE_PROFILES = {
    "smoke": Profile(model="unet", width=4, depth=3, epochs=2, batch_size=8, lr=3e-3, seeds=(0, 1),
                     losses=_IMBALANCE_LOSSES, n_train=8, n_select=4, n_report=4, image_size=32,
                     conditions=(10.0, 1.0)),
    "fast": Profile(model="unet", width=8, depth=3, epochs=18, batch_size=16, lr=3e-3, lr_schedule="cosine",
                    seeds=(0, 1, 2), losses=_IMBALANCE_LOSSES, n_train=48, n_select=12, n_report=32, image_size=64,
                    augment="isometry", conditions=(10.0, 3.0, 1.0, 0.3)),
    "full": Profile(model="unet", width=16, depth=3, epochs=60, batch_size=16, lr=1e-3, lr_schedule="cosine",
                    seeds=(0, 1, 2, 3, 4), losses=_IMBALANCE_LOSSES, n_train=400, n_select=100, n_report=200,
                    image_size=64, augment="isometry", conditions=(10.0, 3.0, 1.0, 0.3, 0.1)),
}
# fmt: on

IMBALANCE = Task(
    name="imbalance",
    title="Synthetic lesions from 10 % to 0.3 % of the image, UNet",
    class_names=("background", "lesion"),
    in_channels=1,
    boundary_classes=(1,),
    map_unit="pixels of the 64 x 64 images",
    profiles=_IMBALANCE_PROFILES,
    load=_load_lesions,
    evaluate=_evaluate_lesions,
    metrics=(Metric("dice", "Dice"), Metric("hd95", "HD95", "px", higher_is_better=False)),
)


TASKS: dict[str, Task] = {task.name: task for task in (DRIVE, ACDC, IMBALANCE)}
"""Every experiment, by name."""


def get_task(task: Task | str) -> Task:
    """A :class:`Task` given itself or its name (``"drive"``, ``"acdc"``, ``"imbalance"``)."""
    if isinstance(task, Task):
        return task
    if not isinstance(task, str):
        raise TypeError(f"task must be a Task or one of {list(TASKS)}, got {type(task).__name__}")
    return TASKS[check_choice(task, "task", tuple(TASKS))]
