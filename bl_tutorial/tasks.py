"""One declarative description per experiment: data and splits, model, classes, scoring, comparisons.

The runner of :mod:`bl_tutorial.experiments` knows no data-set name: it loads a
:class:`Task`'s data with the settings of a :class:`Profile`, trains each loss and seed,
and asks the task to score, compare and draw. A new experiment is a new :class:`Task`,
not a new branch in the runner (the README's "Extending the book" shows one).

* :data:`DRIVE` - retinal vessels, UNet, binary, the boundary term on the vessels (the
  report's Table 1);
* :data:`ACDC` - cardiac MRI, ENet, four classes, the boundary term on all of them (the
  report's Figures 2-3);
* :data:`IMBALANCE` - synthetic lesions whose share of the image shrinks: when does the
  boundary term help?

A :class:`Profile` holds three small settings objects: :class:`Training` (shared by every
task: epochs, batch, learning rate, seeds, losses), the task's own data settings
(:class:`DriveData`, :class:`AcdcData`, :class:`LesionData`, each with the split sizes
of :class:`SplitSizes`) and the network (:class:`~bl_tutorial.models.UNetConfig`,
:class:`~bl_tutorial.models.ENetConfig`). Every task splits its labelled items three
ways: *train*, *select* (chooses the epoch) and *report* (is scored), so that no
reported score is flattered by the choice of epoch. Profiles: ``smoke`` (the notebooks'
tests), ``fast`` (the published book, on two CPU cores), ``full`` (the report's
settings, for a GPU).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from bl_tutorial._validation import check_choice, check_int, check_number
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
)
from bl_tutorial.evaluation import (
    Comparison,
    Metric,
    score_cardiac,
    score_lesions,
    score_vessels,
    threshold_scores,
    trivial_vessel_scores,
)
from bl_tutorial.models import ENetConfig, UNetConfig
from bl_tutorial.recipes import LOSSES, LossEntry
from bl_tutorial.settings import (
    AcdcData,
    DriveData,
    LesionData,
    Profile,
    SplitSizes,
    Training,
)
from bl_tutorial.store import figure_path

__all__ = [
    "Metric",
    "Comparison",
    "Training",
    "SplitSizes",
    "DriveData",
    "AcdcData",
    "LesionData",
    "Profile",
    "TaskData",
    "GeneratedData",
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
    """Scores of simple predictors on the report split, for orientation."""
    extras: dict = field(default_factory=dict)
    """Anything else the task's figures need (e.g. test images)."""


@dataclass(frozen=True)
class Task:
    """An experiment, described: its data, model, classes, scoring, comparisons and figures."""

    name: str
    title: str
    class_names: tuple[str, ...]
    in_channels: int
    boundary_classes: tuple[int, ...] | None
    """Channels the boundary terms sum over (None: all), as in the official code."""
    map_unit: str
    """The unit of the distance maps (the same in every profile)."""
    profiles: Mapping[str, Profile]
    load: Callable[[Profile, Path | None, Any], TaskData]
    """``load(profile, data_root, condition)``."""
    evaluate: Callable[[nn.Module, TaskData], dict]
    """Scores of a trained model on the report split."""
    metrics: tuple[Metric, ...] = (Metric("dice", "Dice", resolution=0.04, upper=1.0),)
    """The scores summarised over seeds and compared between losses; the first is the headline."""
    comparisons: tuple[Comparison, ...] = ()
    """The pairs this experiment compares; pairs of losses a profile does not train are skipped, and
    with no pair declared every "+ BL" recipe is compared with its regional part."""
    regional_classes: tuple[int, ...] | None = None
    """Channels the regional terms use (None: all, as in the official code)."""
    losses: Mapping[str, LossEntry] = field(default_factory=lambda: dict(LOSSES))
    """The losses its recipes can name (the package's, plus any a reader adds)."""
    save_figures: Callable[[nn.Module, TaskData, str, int, Path], None] | None = None
    """Writes PNG figures (and saved probabilities) of one run into a folder."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def build_model(self, profile: Profile) -> nn.Module:
        """The network of ``profile``, with this task's input channels and classes."""
        return profile.model.build(self.in_channels, self.num_classes)

    def with_losses(self, **entries: LossEntry) -> Task:
        """The same task with more losses its recipes can name: ``task.with_losses(tversky=LossEntry(...))``."""
        for name, entry in entries.items():
            if not isinstance(entry, LossEntry):
                raise TypeError(f"{name} must be a LossEntry, got {type(entry).__name__}")
        return replace(self, losses={**self.losses, **entries})

    def with_profile(self, name: str, profile: Profile) -> Task:
        """The same task with one more (or another) profile."""
        return replace(self, profiles={**self.profiles, name: replace(profile, name=name)})


def build_model(task: Task, profile: Profile) -> nn.Module:
    """The network a profile names, with the task's input channels and classes."""
    return task.build_model(profile)


def _profiles(**profiles: Profile) -> dict[str, Profile]:
    return {name: replace(profile, name=name) for name, profile in profiles.items()}


# --------------------------------------------------------------------------- DRIVE
def _load_drive(profile: Profile, data_root: Path | None, condition=None) -> TaskData:
    settings: DriveData = profile.data
    source = ensure_dataset("drive", data_root)
    labelled = {s.id: s for s in read_drive(source, "training")}
    unlabelled = [i for i, s in labelled.items() if s.vessels is None]
    if unlabelled:
        raise ValueError(f"{source.root}: DRIVE training images {unlabelled} have no 1st_manual annotation")
    where = f"{source.root / 'training'} (DRIVE, {len(labelled)} annotated images)"
    train_ids, select_ids, report_ids = settings.split(sorted(labelled), where, profile.name)
    train, select = [labelled[i] for i in train_ids], [labelled[i] for i in select_ids]
    report = [labelled[i] for i in report_ids]
    if settings.patch_size:
        train_set = DrivePatches(train, settings.patch_size, settings.patches_per_image, settings.augment)
    else:
        train_set = DriveDataset(train, settings.image_size, settings.augment)
    return TaskData(
        source=source,
        train_set=train_set,
        select_set=DriveDataset(select, settings.image_size),
        report=(report, DriveDataset(report, settings.image_size)),
        splits={"train": train_ids, "select": select_ids, "report": report_ids},
        baselines=trivial_vessel_scores(report),
        extras={"test": read_drive(source, "test")[:1], "image_size": settings.image_size},
    )


def _evaluate_drive(model: nn.Module, data: TaskData) -> dict:
    samples, dataset = data.report
    return score_vessels(model, samples, dataset)


def _save_drive_figures(*args) -> None:
    from bl_tutorial.viz.runs import save_drive_figures

    save_drive_figures(*args)


_DRIVE_LOSSES = ("gdl+bl", "gdl", "ce", "ce+bl")

# fmt: off
_DRIVE_PROFILES = _profiles(
    smoke=Profile(
        training=Training(epochs=2, batch_size=8, lr=3e-3, seeds=(0, 1), losses=_DRIVE_LOSSES),
        data=DriveData(n_select=1, n_report=1, n_train=2, patch_size=32, patches_per_image=4, augment="isometry"),
        model=UNetConfig(width=4)),
    # native-resolution patches, scored on whole images at native size; 8 epochs of 20 patches per
    # image (the 1920 patch-steps of 16 epochs of 10, with half the selection passes); the paper's
    # pair (gdl, gdl+bl) with six seeds, the cross-entropy pair with three
    fast=Profile(
        training=Training(epochs=8, batch_size=16, lr=3e-3, lr_schedule="cosine", seeds=tuple(range(6)),
                          losses=_DRIVE_LOSSES, seeds_per_loss={"ce": 3, "ce+bl": 3}),
        data=DriveData(n_select=4, n_report=4, patch_size=64, patches_per_image=20, augment="isometry"),
        model=UNetConfig(width=8)),
    # the report: UNet, whole images at 256 px, 150 epochs, batch 8, alpha 0.05
    full=Profile(
        training=Training(epochs=150, batch_size=8, lr=1e-3, seeds=(0, 1, 2), losses=_DRIVE_LOSSES),
        data=DriveData(n_select=4, n_report=4, image_size=256),
        model=UNetConfig(width=64)),
)
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
        Metric("dice", "Dice", resolution=0.04, upper=1.0),
        Metric(
            "predicted_fraction",
            "fraction of the FOV predicted as vessel",
            higher_is_better=None,
            resolution=0.01,
            upper=1.0,
        ),  # fmt: skip
    ),
    comparisons=(Comparison("gdl+bl", "gdl"), Comparison("ce+bl", "ce")),
    save_figures=_save_drive_figures,
)


# --------------------------------------------------------------------------- ACDC
def _load_acdc(profile: Profile, data_root: Path | None, condition=None) -> TaskData:
    settings: AcdcData = profile.data
    source = ensure_dataset("acdc", data_root)
    ids = acdc_patient_ids(source, "training")
    where = f"{source.root / 'training'} (ACDC, {len(ids)} patients)"
    train_ids, select_ids, report_ids = settings.split(ids, where, profile.name)
    patients = {p.id: p for p in read_acdc(source, "training", train_ids + select_ids + report_ids)}  # only those
    size, crop = settings.image_size, settings.crop_mm
    return TaskData(
        source=source,
        train_set=AcdcDataset([patients[i] for i in train_ids], size, crop, augment=settings.augment),
        select_set=AcdcDataset([patients[i] for i in select_ids], size, crop),
        report=AcdcDataset([patients[i] for i in report_ids], size, crop),
        splits={"train": train_ids, "select": select_ids, "report": report_ids},
    )


def _evaluate_acdc(model: nn.Module, data: TaskData) -> dict:
    return score_cardiac(model, data.report, CLASS_NAMES)


def _save_acdc_figure(*args) -> None:
    from bl_tutorial.viz.runs import save_cardiac_figure

    save_cardiac_figure(*args)


_ACDC_LOSSES = ("bl", "gdl", "gdl+bl")

# fmt: off
_ACDC_PROFILES = _profiles(
    smoke=Profile(
        training=Training(epochs=1, batch_size=8, lr=5e-3, seeds=(0, 1), losses=_ACDC_LOSSES),
        data=AcdcData(n_select=1, n_report=1, n_train=2, image_size=32, crop_mm=128),
        model=ENetConfig()),
    # a 128 mm square around the heart at 64 px; the main pair (gdl, gdl+bl) with six seeds, bl with three
    fast=Profile(
        training=Training(epochs=12, batch_size=8, lr=5e-3, lr_schedule="cosine", seeds=tuple(range(6)),
                          losses=_ACDC_LOSSES, seeds_per_loss={"bl": 3}),
        data=AcdcData(n_select=4, n_report=6, n_train=8, image_size=64, crop_mm=128),
        model=ENetConfig()),
    # the official code: ENet, 256 px, Adam 5e-4, batch 8, 100 epochs
    full=Profile(
        training=Training(epochs=100, batch_size=8, lr=5e-4, seeds=(0, 1, 2), losses=_ACDC_LOSSES),
        data=AcdcData(n_select=10, n_report=15, image_size=256),
        model=ENetConfig()),
)
# fmt: on

_STRUCTURES = ("dice_RV", "dice_MYO", "dice_LV")

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
        Metric("dice", "mean 3D Dice", resolution=0.04, upper=1.0),
        Metric("dice_RV", "3D Dice of the RV", resolution=0.04, upper=1.0),
        Metric("dice_MYO", "3D Dice of the MYO", resolution=0.04, upper=1.0),
        Metric("dice_LV", "3D Dice of the LV", resolution=0.04, upper=1.0),
        Metric("hd95", "mean 3D HD95", "mm", higher_is_better=False, resolution=2.0),
    ),
    comparisons=(Comparison("gdl+bl", "gdl"), Comparison("bl", "gdl", ("dice", *_STRUCTURES))),
    save_figures=_save_acdc_figure,
)


# --------------------------------------------------------------------------- the imbalance study
@dataclass(frozen=True)
class GeneratedData:
    """Describes data generated in memory the way :class:`~bl_tutorial.data.DatasetSource` describes a tree."""

    note: str
    kind: str = "synthetic"
    what: str = "synthetic lesions"

    def describe(self) -> str:
        return f"Data: {self.what} ({self.note})"


def _load_lesions(profile: Profile, data_root: Path | None, percent: float) -> TaskData:
    settings: LesionData = profile.data
    size = check_int(settings.image_size, "image_size", minimum=16)
    check_number(percent, "condition (the lesions' share, %)", minimum=0, strict=True)
    counts = {"train": settings.n_train or 48, "select": settings.n_select, "report": settings.n_report}
    arrays = {
        split: lesion_images(count, size, percent, settings.split_seed * 10 + index, settings.empty_share)
        for index, (split, count) in enumerate(counts.items())
    }
    augments = {"train": settings.augment, "select": "none", "report": "none"}
    spacing = (settings.spacing, settings.spacing)
    datasets = {split: LabelledImages(*arrays[split], 2, spacing, augments[split]) for split in counts}
    sizes = " + ".join(str(count) for count in counts.values())
    note = (f"{size} x {size} px, lesions {percent:g} % of each image that has any, "
            f"{100 * settings.empty_share:g} % without; {sizes} images")  # fmt: skip
    return TaskData(
        source=GeneratedData(note),
        train_set=datasets["train"],
        select_set=datasets["select"],
        report=datasets["report"],
        splits={split: [f"{split}-{i}" for i in range(count)] for split, count in counts.items()},
        baselines=threshold_scores(datasets["select"], datasets["report"]),
    )


def _evaluate_lesions(model: nn.Module, data: TaskData) -> dict:
    return score_lesions(model, data.report)


_IMBALANCE_LOSSES = ("gdl", "gdl+bl@rebalance", "gdl+0.01*bl")

# The paper's comparison, scaled to the budget: GDL alone until it has converged at a constant
# learning rate (the warm start), then three arms from the same weights: GDL alone, GDL + the
# boundary term with the official rebalancing over the arm's epochs (regional weight at its
# floor of 0.1 from 45 % of them), and GDL + 0.01 x the boundary term (the official author's
# constant weight).
# fmt: off
_IMBALANCE_PROFILES = _profiles(
    smoke=Profile(
        training=Training(epochs=2, batch_size=8, lr=1e-3, seeds=(0, 1), losses=_IMBALANCE_LOSSES, warm_start="gdl",
                          warm_epochs=2, select_on="pooled"),
        data=LesionData(n_train=8, n_select=4, n_report=4, image_size=32, augment="flip", conditions=(10.0, 6.0)),
        model=UNetConfig(width=4, depth=3)),
    fast=Profile(
        training=Training(epochs=6, batch_size=8, lr=3e-3, seeds=tuple(range(5)), losses=_IMBALANCE_LOSSES,
                          warm_start="gdl", warm_epochs=15, select_on="pooled"),
        data=LesionData(n_train=128, n_select=20, n_report=48, image_size=64, conditions=(10.0, 3.0, 1.5)),
        model=UNetConfig(width=8, depth=3)),
    # 256-px slices as in the paper, the official schedule over 100 epochs after a warm start
    full=Profile(
        training=Training(epochs=100, batch_size=8, lr=1e-3, seeds=tuple(range(10)), losses=_IMBALANCE_LOSSES,
                          warm_start="gdl", warm_epochs=100, select_on="pooled"),
        data=LesionData(n_train=400, n_select=100, n_report=200, image_size=256,
                        conditions=(10.0, 3.0, 1.0, 0.3, 0.1)),
        model=UNetConfig(width=16, depth=4)),
)
# fmt: on

IMBALANCE = Task(
    name="imbalance",
    title="Synthetic lesions of a shrinking share of the image, UNet",
    class_names=("background", "lesion"),
    in_channels=1,
    boundary_classes=(1,),
    map_unit="pixels of 256 x 256 slices",
    profiles=_IMBALANCE_PROFILES,
    load=_load_lesions,
    evaluate=_evaluate_lesions,
    metrics=(
        Metric("dice", "Dice", resolution=0.04, upper=1.0),
        Metric("hd95", "HD95", "px", higher_is_better=False, resolution=2.0),
        Metric(
            "false_alarms",
            "share of lesion-free images with a false alarm",
            higher_is_better=False,
            resolution=0.1,
            upper=1.0,
        ),
    ),  # fmt: skip
    comparisons=(Comparison("gdl+bl@rebalance", "gdl"), Comparison("gdl+0.01*bl", "gdl")),
)


TASKS: dict[str, Task] = {task.name: task for task in (DRIVE, ACDC, IMBALANCE)}
"""Every experiment of the book, by name."""


def get_task(task: Task | str) -> Task:
    """A :class:`Task` given itself or its name (``"drive"``, ``"acdc"``, ``"imbalance"``)."""
    if isinstance(task, Task):
        return task
    if not isinstance(task, str):
        raise TypeError(f"task must be a Task or one of {list(TASKS)}, got {type(task).__name__}")
    return TASKS[check_choice(task, "task", tuple(TASKS))]
