"""Resizing, intensity normalisation and exact augmentations of images, labels and distance maps.

Images are resized bilinearly (with antialiasing when shrinking), labels with nearest
neighbours. Random flips and 90-degree rotations are *isometries of the grid*: applied
identically to an image, its labels and its cached distance maps, they give exactly the
maps one would compute on the transformed labels (with the spacing of the two in-plane
axes swapped by an odd rotation). Any other augmentation must recompute the maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "resize_image",
    "resize_labels",
    "normalize_intensity",
    "Isometry",
    "random_isometry",
    "apply_isometry",
    "isometry_spacing",
]


def _check_shape(shape) -> tuple[int, int]:
    if len(shape) != 2 or any(int(s) < 1 for s in shape):
        raise ValueError(f"shape must be two positive sizes (rows, cols), got {shape!r}")
    return int(shape[0]), int(shape[1])


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of the last two axes of ``image`` (..., rows, cols) to ``shape``; float32.

    >>> resize_image(np.ones((3, 8, 6)), (4, 3)).shape
    (3, 4, 3)
    """
    shape = _check_shape(shape)
    array = np.asarray(image, dtype=np.float32)
    if array.ndim < 2:
        raise ValueError(f"image must have at least 2 axes (rows, cols), got shape {array.shape}")
    if array.shape[-2:] == shape:
        return array.copy()
    lead = array.shape[:-2]
    tensor = torch.from_numpy(np.ascontiguousarray(array.reshape(-1, 1, *array.shape[-2:])))
    shrinking = shape[0] < array.shape[-2] or shape[1] < array.shape[-1]
    out = F.interpolate(tensor, size=shape, mode="bilinear", align_corners=False, antialias=shrinking)
    return out.numpy().reshape(*lead, *shape)


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the last two axes of an integer or boolean array.

    >>> resize_labels(np.eye(4, dtype=np.uint8), (2, 2)).tolist()
    [[1, 0], [0, 1]]
    """
    shape = _check_shape(shape)
    array = np.asarray(labels)
    if array.ndim < 2:
        raise ValueError(f"labels must have at least 2 axes (rows, cols), got shape {array.shape}")
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * array.shape[-2] / shape[0]).astype(int), array.shape[-2] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * array.shape[-1] / shape[1]).astype(int), array.shape[-1] - 1)
    return array[..., rows[:, None], cols[None, :]]


def normalize_intensity(
    image: np.ndarray, mask: np.ndarray | None = None, channel_axis: int | None = None
) -> np.ndarray:
    """Zero mean, unit variance per volume (per channel), statistics taken inside ``mask`` if given.

    Voxels outside ``mask`` are set to 0 (the mean). Raises ``ValueError`` on NaN or a
    constant image.

    >>> out = normalize_intensity(np.arange(10.0))
    >>> abs(round(float(out.mean()), 6)), round(float(out.std()), 6)
    (0.0, 1.0)
    """
    array = np.asarray(image, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError("image must be finite, but it contains NaN or inf")
    channels = [array] if channel_axis is None else list(np.moveaxis(array, channel_axis, 0))
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != channels[0].shape:
            raise ValueError(
                f"mask must have the image's shape {channels[0].shape} (without channels), got {mask.shape}"
            )
    out = []
    for channel in channels:
        values = channel[mask] if mask is not None else channel
        if values.size == 0:
            raise ValueError("mask selects no voxel to take intensity statistics from")
        std = float(values.std())
        if std == 0:
            raise ValueError("image is constant (standard deviation 0); cannot normalise it")
        normalised = (channel - float(values.mean())) / std
        if mask is not None:
            normalised = np.where(mask, normalised, 0.0)
        out.append(normalised.astype(np.float32))
    return out[0] if channel_axis is None else np.stack(out, axis=channel_axis)


@dataclass(frozen=True)
class Isometry:
    """A grid isometry of the last two axes: ``flip`` the columns, then rotate by ``quarter_turns`` x 90 deg."""

    flip: bool = False
    quarter_turns: int = 0


def random_isometry(generator: torch.Generator | None = None, rotations: bool = True) -> Isometry:
    """Draw one of the 8 isometries of the square (4 if ``rotations=False``: flips only)."""
    flip = bool(torch.randint(0, 2, (1,), generator=generator))
    turns = (
        int(torch.randint(0, 4, (1,), generator=generator))
        if rotations
        else 2 * int(torch.randint(0, 2, (1,), generator=generator))
    )
    return Isometry(flip, turns)


def apply_isometry(array: np.ndarray, isometry: Isometry) -> np.ndarray:
    """Apply ``isometry`` to the last two axes of ``array`` (images, labels, maps alike)."""
    out = np.asarray(array)
    if isometry.flip:
        out = out[..., ::-1]
    if isometry.quarter_turns % 4:
        out = np.rot90(out, isometry.quarter_turns, axes=(-2, -1))
    return np.ascontiguousarray(out)


def isometry_spacing(spacing: tuple[float, ...], isometry: Isometry) -> tuple[float, ...]:
    """Spacing (..., rows, cols) after ``isometry``: the last two swapped by an odd number of quarter turns.

    >>> isometry_spacing((10.0, 1.5, 1.2), Isometry(quarter_turns=1))
    (10.0, 1.2, 1.5)
    """
    spacing = tuple(spacing)
    return (*spacing[:-2], spacing[-1], spacing[-2]) if isometry.quarter_turns % 2 else spacing
