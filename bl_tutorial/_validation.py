"""Input checks shared by the public functions.

Every public function of :mod:`bl_tutorial` validates its arguments at the top and
raises a :class:`ValueError` whose message names the argument, what was expected and
what was received. The checks live here so that each is written once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def describe(array: np.ndarray) -> str:
    """A short description of an array for error messages: shape and dtype."""
    return f"shape {tuple(array.shape)} and dtype {array.dtype}"


def as_binary_mask(mask, name: str = "mask", ndims: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Return ``mask`` as a boolean array after checking it is binary and 2D or 3D.

    Accepts booleans, or numbers that are all 0 or 1. Anything else (other values,
    NaN, the wrong number of dimensions, an empty array) raises ``ValueError``.
    """
    array = np.asarray(mask)
    if array.ndim not in ndims:
        raise ValueError(
            f"{name} must be a {' or '.join(f'{d}D' for d in ndims)} array, got {array.ndim}D with {describe(array)}"
        )
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got {describe(array)}")
    if array.dtype == bool:
        return array
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be boolean or numeric 0/1, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
        raise ValueError(f"{name} must be binary (0/1 or bool), but it contains NaN")
    bad = (array != 0) & (array != 1)
    if bad.any():
        values = np.unique(array[bad])[:5]
        raise ValueError(f"{name} must be binary (0/1 or bool), but it contains other values, e.g. {values.tolist()}")
    return array.astype(bool)


def as_label_image(labels, num_classes: int, name: str = "labels", ndims: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Return an integer label image after checking its values lie in ``[0, num_classes)``."""
    check_num_classes(num_classes)
    array = np.asarray(labels)
    if array.ndim not in ndims:
        raise ValueError(
            f"{name} must be a {' or '.join(f'{d}D' for d in ndims)} integer label image, "
            f"got {array.ndim}D with {describe(array)}"
        )
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got {describe(array)}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} must hold integer labels, but it contains NaN or inf")
        if (array != np.round(array)).any():
            raise ValueError(f"{name} must hold integer labels, got non-integer floats")
    elif not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {array.dtype}")
    low, high = array.min(), array.max()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{name} must lie in [0, {num_classes}) for num_classes={num_classes}, got values from {low} to {high}"
        )
    return array.astype(np.int64 if num_classes > 255 else np.uint8, copy=False)


def check_num_classes(num_classes: int) -> int:
    """``num_classes`` must be an integer >= 2 (a one-vs-all problem needs two classes)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}")
    return int(num_classes)


def as_spacing(spacing, ndim: int, name: str = "spacing") -> tuple[float, ...]:
    """Return a per-axis spacing tuple of length ``ndim`` (all ones for ``None``).

    The spacing is the physical size of a voxel along each array axis, in millimetres,
    in the array's axis order ((z, y, x) for volumes). A scalar applies to every axis.
    """
    if spacing is None:
        return (1.0,) * ndim
    try:
        values = np.asarray(spacing, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or {ndim} positive numbers, got {spacing!r}") from None
    if values.ndim == 0:  # a scalar applies to every axis
        values = np.repeat(values, ndim)
    if values.ndim != 1:
        raise ValueError(f"{name} must be a sequence of {ndim} positive numbers, got {spacing!r}")
    if values.size != ndim:
        raise ValueError(f"{name} must have one value per array axis ({ndim}), got {values.size}: {spacing!r}")
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError(f"{name} must be finite and positive on every axis, got {spacing!r}")
    return tuple(float(v) for v in values)


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """``value`` must be one of ``choices``; the error lists the valid ones."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise if two arrays do not have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
