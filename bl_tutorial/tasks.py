"""One declarative description per experiment: data and splits, model, classes, evaluation, figures.

The runner of :mod:`bl_tutorial.experiments` knows no data-set name: it loads a
:class:`Task`'s data with the settings of a :class:`Profile`, trains each loss and seed,
and asks the task to score and draw. A new experiment is a new :class:`Task` in
:data:`TASKS`, not a new branch in the runner.

* :data:`DRIVE` - retinal vessels, UNet, binary, the boundary term on the vessels (the
  report's Table 1);
* :data:`ACDC` - cardiac MRI, ENet, four classes, the boundary term on all of them (the
  report's Figures 2-3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from bl_tutorial._io import atomic_path
from bl_tutorial._validation import check_choice
from bl_tutorial.data import CLASS_NAMES, AcdcDataset, DriveDataset, ensure_dataset, read_acdc, read_drive, split_items
from bl_tutorial.data.datasets import Augment
from bl_tutorial.evaluation import score_cardiac, score_vessels, trivial_vessel_scores, vessel_probability
from bl_tutorial.models import ENet, UNet
from bl_tutorial.training import predict

__all__ = [
    "Profile",
    "TaskData",
    "Task",
    "TASKS",
    "DRIVE",
    "ACDC",
    "get_task",
    "build_model",
    "figure_path",
    "REPORT_TABLE1",
    "BAUMGARTNER_2017",
]

REPORT_TABLE1 = {"gdl+bl": 0.788, "gdl": 0.793, "ce+bl": 0.763, "ce": 0.798}
"""DSC in the source report's Table 1 (real DRIVE, 256 px, one validation image, last epoch, whole image)."""
BAUMGARTNER_2017 = {"RV": 0.893, "MYO": 0.899, "LV": 0.950}
"""3D Dice of a full-resolution 2D U-Net on real ACDC (Baumgartner et al. 2017), for orientation."""


@dataclass(frozen=True)
class Profile:
    """Everything that sets the size of an experiment. Build it with keywords."""

    image_size: int
    """Side of the square images the network is trained on (px)."""
    model: Literal["unet", "enet"]
    epochs: int
    batch_size: int
    lr: float
    seeds: tuple[int, ...]
    losses: tuple[str, ...]
    """Loss names such as ``"gdl+bl"`` (see :class:`~bl_tutorial.combined.LossSpec`)."""
    n_val: int
    """Images (DRIVE) or patients (ACDC) held out, split with ``split_seed``."""
    width: int = 8
    """UNet base width (ENet has a fixed width)."""
    n_train: int | None = None
    """Training images or patients; None: all those not held out."""
    augment: Augment = "flip"
    alpha: float = 0.05
    """Weight of the boundary term under the constant schedule (the report: 0.05)."""
    split_seed: int = 0
    val_hd95: bool = False
    """HD95 on the validation split at every epoch (slow on a CPU)."""
    crop_mm: float | None = None
    """ACDC: side of a central square crop, in mm, before resizing; None keeps the whole slice."""


@dataclass
class TaskData:
    """A task's data for one profile: the datasets the loop trains and selects on, and what is scored."""

    source: Any
    """Where the data came from (a :class:`~bl_tutorial.data.DatasetSource`); ``describe()`` says it."""
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
    items: str
    """What the datasets hold, in words ("images", "slices")."""
    profiles: Mapping[str, Profile]
    load: Callable[[Profile, Path | None], TaskData]
    evaluate: Callable[[nn.Module, TaskData], dict]
    """Scores of a trained model on the report split; ``"dice"`` is the headline number."""
    save_figures: Callable[[nn.Module, TaskData, str, int, Path], None] | None = None
    """Writes PNG figures (and saved probabilities) of one run into a folder."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def build_model(task: Task, profile: Profile) -> nn.Module:
    """The network a profile names, with the task's input channels and classes."""
    check_choice(profile.model, "model", ("unet", "enet"))
    if profile.model == "unet":
        return UNet(task.in_channels, task.num_classes, base=profile.width)
    return ENet(task.in_channels, task.num_classes)


def figure_path(folder: Path | str, kind: str, loss: str, seed: int, suffix: str = ".png") -> Path:
    """Where a run's figure (or saved arrays, ``suffix=".npz"``) of ``kind`` lives under ``folder``."""
    return Path(folder) / "figures" / f"{kind}_{loss}_seed{seed}{suffix}"


def _split(ids: list[str], profile: Profile) -> tuple[list[str], list[str]]:
    train_ids, val_ids = split_items(ids, profile.n_val, profile.split_seed)
    if profile.n_train is not None:
        train_ids = train_ids[: profile.n_train]
    return train_ids, val_ids


# --------------------------------------------------------------------------- DRIVE
def _load_drive(profile: Profile, data_root: Path | None) -> TaskData:
    source = ensure_dataset("drive", data_root)
    samples = read_drive(source, "training")
    unlabelled = [s.id for s in samples if s.vessels is None]
    if unlabelled:
        raise ValueError(f"{source.root}: DRIVE training images {unlabelled} have no 1st_manual annotation")
    by_id = {s.id: s for s in samples}
    train_ids, val_ids = _split(list(by_id), profile)
    val_samples = [by_id[i] for i in val_ids]
    val_set = DriveDataset(val_samples, profile.image_size)
    return TaskData(
        source=source,
        train_set=DriveDataset([by_id[i] for i in train_ids], profile.image_size, profile.augment),
        select_set=val_set,
        report=(val_samples, val_set),
        splits={"train": train_ids, "select": val_ids, "report": val_ids},
        baselines=trivial_vessel_scores(val_samples),
        extras={"test": read_drive(source, "test")[:1], "image_size": profile.image_size},
    )


def _evaluate_drive(model: nn.Module, data: TaskData) -> dict:
    samples, dataset = data.report
    return score_vessels(model, samples, dataset)


def _save_drive_figures(model: nn.Module, data: TaskData, loss: str, seed: int, folder: Path) -> None:
    from bl_tutorial.data.transforms import normalize_intensity, resize_image
    from bl_tutorial.viz import drive_test_figure, drive_validation_figure

    samples, dataset = data.report
    sample = samples[0]
    probability = vessel_probability(model, torch.from_numpy(dataset.images[:1]), sample.image.shape[:2])[0]
    with atomic_path(figure_path(folder, "val", loss, seed)) as partial:
        drive_validation_figure(sample, probability, f"{loss}, seed {seed}").savefig(partial, format="png", dpi=80)
    arrays = {"val_probability": probability.astype(np.float16), "val_id": sample.id}
    if data.extras["test"]:
        test = data.extras["test"][0]
        size = data.extras["image_size"]
        image = normalize_intensity(test.image, mask=test.fov, channel_axis=-1).transpose(2, 0, 1)
        image = torch.from_numpy(resize_image(image, (size, size)))[None]
        vessel = vessel_probability(model, image, test.image.shape[:2])[0] * test.fov
        with atomic_path(figure_path(folder, "test", loss, seed)) as partial:
            drive_test_figure(test, vessel, loss).savefig(partial, format="png", dpi=80)
        arrays.update(test_probability=vessel.astype(np.float16), test_id=test.id)
    with atomic_path(figure_path(folder, "probabilities", loss, seed, ".npz")) as partial:
        with open(partial, "wb") as handle:
            np.savez_compressed(handle, **arrays)


DRIVE = Task(
    name="drive",
    title="DRIVE retinal vessels, UNet",
    class_names=("background", "vessel"),
    in_channels=3,
    boundary_classes=(1,),  # the official code: the foreground only in binary tasks
    items="images",
    profiles={
        "fast": Profile(
            image_size=128,
            model="unet",
            width=8,
            epochs=60,
            batch_size=8,
            lr=2e-3,
            seeds=(0,),
            losses=("gdl+bl", "gdl", "ce", "ce+bl"),
            n_val=4,
            n_train=16,
        ),
        "full": Profile(  # the report: UNet, 256 px, 150 epochs, batch 8, alpha 0.05
            image_size=256,
            model="unet",
            width=64,
            epochs=150,
            batch_size=8,
            lr=1e-3,
            seeds=(0, 1, 2),
            losses=("gdl+bl", "gdl", "ce", "ce+bl"),
            n_val=4,
        ),
    },
    load=_load_drive,
    evaluate=_evaluate_drive,
    save_figures=_save_drive_figures,
)


# --------------------------------------------------------------------------- ACDC
def _load_acdc(profile: Profile, data_root: Path | None) -> TaskData:
    source = ensure_dataset("acdc", data_root)
    patients = {p.id: p for p in read_acdc(source, "training")}
    train_ids, val_ids = _split(list(patients), profile)
    val_set = AcdcDataset([patients[i] for i in val_ids], profile.image_size, profile.crop_mm)
    train_set = AcdcDataset(
        [patients[i] for i in train_ids], profile.image_size, profile.crop_mm, augment=profile.augment
    )
    return TaskData(
        source=source,
        train_set=train_set,
        select_set=val_set,
        report=val_set,
        splits={"train": train_ids, "select": val_ids, "report": val_ids},
    )


def _evaluate_acdc(model: nn.Module, data: TaskData) -> dict:
    return score_cardiac(model, data.report, CLASS_NAMES)


def _save_acdc_figure(model: nn.Module, data: TaskData, loss: str, seed: int, folder: Path, count: int = 6) -> None:
    from bl_tutorial.viz import cardiac_slices_figure

    dataset = data.report
    chosen = np.random.default_rng(seed).choice(len(dataset), size=min(count, len(dataset)), replace=False)
    pred = predict(model, torch.from_numpy(dataset.images[chosen])).argmax(1).numpy()
    title = f"ACDC validation slices, {loss}, seed {seed}"
    figure = cardiac_slices_figure(dataset.images[chosen, 0], dataset.labels[chosen], pred, title)
    with atomic_path(figure_path(folder, "slices", loss, seed)) as partial:
        figure.savefig(partial, format="png", dpi=80)


ACDC = Task(
    name="acdc",
    title="ACDC cardiac MRI, ENet",
    class_names=CLASS_NAMES,
    in_channels=1,
    boundary_classes=None,  # the official code: all four classes
    items="slices",
    profiles={
        "fast": Profile(
            image_size=64,
            model="enet",
            epochs=16,
            batch_size=8,
            lr=5e-3,
            seeds=(0,),
            losses=("bl", "gdl"),
            n_val=5,
            n_train=12,
            augment="none",
            crop_mm=128,
        ),
        "full": Profile(  # the official code: ENet, 256 px, Adam 5e-4, batch 8, 100 epochs, 25 patients
            image_size=256,
            model="enet",
            epochs=100,
            batch_size=8,
            lr=5e-4,
            seeds=(0, 1, 2),
            losses=("bl", "gdl", "gdl+bl"),
            n_val=25,
            augment="none",
            val_hd95=True,
        ),
    },
    load=_load_acdc,
    evaluate=_evaluate_acdc,
    save_figures=_save_acdc_figure,
)


TASKS: dict[str, Task] = {task.name: task for task in (DRIVE, ACDC)}
"""Every experiment, by name."""


def get_task(task: Task | str) -> Task:
    """A :class:`Task` given itself or its name (``"drive"``, ``"acdc"``)."""
    if isinstance(task, Task):
        return task
    if not isinstance(task, str):
        raise TypeError(f"task must be a Task or one of {list(TASKS)}, got {type(task).__name__}")
    return TASKS[check_choice(task, "task", tuple(TASKS))]
