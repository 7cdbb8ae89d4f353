"""Shared pytest settings and fixtures: hypothesis profiles, small strategies, small data trees,
a stand-in cache of their own for each test, and tiny profiles of every task."""

import os
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bl_tutorial import tasks
from bl_tutorial.data import DriveDataset, read_drive, sources, synthetic
from bl_tutorial.distance import class_distance_maps
from bl_tutorial.models import ENetConfig, UNetConfig
from bl_tutorial.tasks import AcdcData, DriveData, LesionData, Profile, Training

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

SMALL_DRIVE = synthetic.DriveStandinConfig(n_training=2, n_test=1, seed=0)
SMALL_ACDC = synthetic.AcdcStandinConfig(n_training=2, n_test=1, seed=0)
QUIET = {"quiet": True, "log": lambda *a: None}
"""Options of run_experiment that keep a test's output clean."""


# ----------------------------------------------------------------- strategies and small cases
def masks(ndim: int, max_side: int = 9):
    """Random binary masks, 2D or 3D, small enough for the brute-force reference."""
    side = st.integers(2, max_side)
    shape = st.tuples(*[st.integers(1, 4) if (ndim == 3 and i == 0) else side for i in range(ndim)])
    return shape.flatmap(lambda s: arrays(bool, s))


def spacings(ndim: int):
    """Random positive, anisotropic spacings (mm)."""
    return st.tuples(*[st.floats(0.25, 8.0, allow_nan=False) for _ in range(ndim)])


def label_images(num_classes: int, ndim: int = 2, max_side: int = 10):
    side = st.integers(2, max_side)
    shape = st.tuples(*[side for _ in range(ndim)])
    return shape.flatmap(lambda s: arrays(np.uint8, s, elements=st.integers(0, num_classes - 1)))


def random_case(seed, batch=2, classes=3, spatial=(6, 7)):
    """Softmax probabilities, one-hot targets, their exact maps and labels, drawn from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, *spatial, generator=gen)
    probs = logits.softmax(1)
    labels = torch.randint(0, classes, (batch, *spatial), generator=gen)
    target = torch.nn.functional.one_hot(labels, classes).movedim(-1, 1).float()
    maps = torch.from_numpy(np.stack([class_distance_maps(lab.numpy(), classes) for lab in labels]))
    return probs, target, maps, labels


# ----------------------------------------------------------------- data trees and caches
@pytest.fixture(scope="module")
def drive_tree(tmp_path_factory):
    """A small DRIVE stand-in in the official layout (2 training and 1 test image)."""
    return synthetic.write_drive_standin(tmp_path_factory.mktemp("drive"), SMALL_DRIVE)


@pytest.fixture(scope="module")
def acdc_tree(tmp_path_factory):
    """A small ACDC stand-in in the official layout (2 training and 1 test patient)."""
    return synthetic.write_acdc_standin(tmp_path_factory.mktemp("acdc"), SMALL_ACDC)


def use_small_standins(monkeypatch, **configs):
    """Make ensure_dataset generate small stand-ins (config per data-set name)."""
    for name, config in configs.items():
        monkeypatch.setitem(sources.DATASETS, name, replace(sources.DATASETS[name], standin=config))


@pytest.fixture
def small_cache(tmp_path, monkeypatch):
    """A stand-in cache of the test's own, where small stand-ins are generated."""
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(sources.DATA_ENV, raising=False)
    use_small_standins(monkeypatch, drive=SMALL_DRIVE, acdc=SMALL_ACDC)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def tiny_drive(tmp_path_factory):
    """A training and a validation set of DRIVE stand-in images at 32 px."""
    root = synthetic.write_drive_standin(
        tmp_path_factory.mktemp("drive"), synthetic.DriveStandinConfig(n_training=4, n_test=1)
    )
    samples = read_drive(root)
    return DriveDataset(samples[:3], 32, augment="flip"), DriveDataset(samples[3:], 32)


def copy_tree(src: Path, dst: Path) -> Path:
    """A copy of the tree ``src`` at ``dst``."""
    return Path(shutil.copytree(src, dst))


def zip_tree(tree: Path, archive: Path, skip: str | None = None) -> Path:
    """Zip ``tree`` under a top folder ``DRIVE/`` like the official archive, leaving out sub-folders named ``skip``."""
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(tree.rglob("*")):
            if path.is_file() and skip not in path.relative_to(tree).parts:
                zipped.write(path, Path("DRIVE") / path.relative_to(tree))
    return archive


def missing(reason: str):
    """A test needs what is missing (a built book, Chromium): it fails under BL_TUTORIAL_REQUIRE_BOOK (CI),
    and is skipped otherwise."""
    if os.environ.get("BL_TUTORIAL_REQUIRE_BOOK"):
        pytest.fail(reason)
    pytest.skip(reason)


def built(folder: Path) -> Path:
    """A folder the book build writes, or :func:`missing` when the book has not been built."""
    if not folder.is_dir():
        missing(f"{folder} is missing: build the book first (jupyter-book build .); .ci/run builds it first")
    return folder


# ----------------------------------------------------------------- tiny experiments
TINY = {
    "drive": Profile(
        training=Training(epochs=2, batch_size=2, lr=3e-3, seeds=(0,), losses=("gdl+bl", "gdl")),
        data=DriveData(n_select=1, n_report=1, patch_size=32, patches_per_image=2),
        model=UNetConfig(width=4),
    ),
    "acdc": Profile(
        training=Training(epochs=1, batch_size=4, lr=5e-3, seeds=(0,), losses=("bl", "gdl"), val_hd95=True),
        data=AcdcData(n_select=1, n_report=1, image_size=32, crop_mm=128),
        model=ENetConfig(),
    ),
    "imbalance": Profile(
        training=Training(
            epochs=2,
            batch_size=4,
            lr=3e-3,
            seeds=(0, 1),
            losses=("gdl", "gdl+bl", "gdl+bl@rebalance"),
            warm_start="gdl",
            warm_epochs=1,
        ),
        data=LesionData(n_train=4, n_select=2, n_report=3, image_size=32, augment="flip", conditions=(10.0, 6.0)),
        model=UNetConfig(width=4, depth=2),
    ),
}
"""Profiles of every task small enough for a test (seconds)."""


@pytest.fixture
def tiny_experiments(tmp_path, monkeypatch):
    """Every task with its tiny profile under every profile name, and small stand-ins in a cache of its own."""
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(sources.DATA_ENV, raising=False)
    use_small_standins(monkeypatch, drive=synthetic.DriveStandinConfig(3, 1), acdc=synthetic.AcdcStandinConfig(3, 1))
    for name, profile in TINY.items():
        task = tasks.TASKS[name]
        for profile_name in ("smoke", "fast", "full"):
            task = task.with_profile(profile_name, profile)
        monkeypatch.setitem(tasks.TASKS, name, task)
    return tmp_path
