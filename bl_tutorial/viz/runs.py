"""The figures an experiment run saves (the tasks of :mod:`bl_tutorial.tasks` name them).

Each function draws one trained model's predictions on its task's report split (and, for
DRIVE, on a test image), and writes PNG figures and the probabilities behind them under
``folder/figures`` (:func:`~bl_tutorial.store.figure_path`), atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from bl_tutorial._io import atomic_path
from bl_tutorial.evaluation import vessel_probability
from bl_tutorial.metrics import class_labels
from bl_tutorial.store import figure_path
from bl_tutorial.training import predict

__all__ = ["save_drive_figures", "save_cardiac_figure"]


def _save_figure(figure, path: Path) -> None:
    with atomic_path(path) as partial:
        figure.savefig(partial, format="png", dpi=80, bbox_inches="tight")


def _save_arrays(path: Path, **arrays) -> None:
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _network_input(sample, size: int | None) -> torch.Tensor:
    from bl_tutorial.data.transforms import normalize_intensity, resize_image

    image = normalize_intensity(sample.image, mask=sample.fov, channel_axis=-1).transpose(2, 0, 1)
    return torch.from_numpy(resize_image(image, sample.image.shape[:2] if size is None else (size, size)))[None]


def save_drive_figures(model: nn.Module, data, loss: str, seed: int, folder: Path) -> None:
    """A report image with its errors, a test image with its prediction, and their probabilities."""
    from bl_tutorial.viz.results import drive_test_figure, drive_validation_figure

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


def save_cardiac_figure(model: nn.Module, data, loss: str, seed: int, folder: Path, count: int = 6) -> None:
    """Input, truth, prediction and difference for ``count`` report slices drawn at random (the report's Figure 3)."""
    from bl_tutorial.viz.results import cardiac_slices_figure

    dataset = data.report
    chosen = np.random.default_rng(seed).choice(len(dataset), size=min(count, len(dataset)), replace=False)
    pred = class_labels(predict(model, torch.from_numpy(dataset.images[chosen]))).numpy()
    title = f"ACDC report slices, {loss}, seed {seed}"
    figure = cardiac_slices_figure(dataset.images[chosen, 0], dataset.labels[chosen], pred, title)
    _save_figure(figure, figure_path(folder, "slices", loss, seed))
