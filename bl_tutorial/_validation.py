"""Input checks shared by the public functions.

Every public function of :mod:`bl_tutorial` validates its arguments at the top and
raises, with a message that names the argument, what was expected and what was
received:

* :class:`TypeError` for a value of the wrong type (a string where an array is expected,
  text labels, a float number of classes), as Python, scikit-image and kornia do;
* :class:`ValueError` for a value of the right type but outside what is allowed (a
  non-binary mask, a label out of range, NaN, a negative spacing, an unknown option).

The checks live here so that each is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

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
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must be boolean or numeric 0/1, got dtype {array.dtype}")
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
        raise TypeError(f"{name} must hold integer labels, got dtype {array.dtype}")
    low, high = array.min(), array.max()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{name} must lie in [0, {num_classes}) for num_classes={num_classes}, got values from {low} to {high}"
        )
    return array.astype(np.int64 if num_classes > 255 else np.uint8, copy=False)


def check_num_classes(num_classes: int) -> int:
    """``num_classes`` must be an integer >= 2 (a one-vs-all problem needs two classes)."""
    return check_int(num_classes, "num_classes", minimum=2)


def check_int(value, name: str, minimum: int | None = None) -> int:
    """``value`` must be an integer (not a bool), at least ``minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_number(value, name: str, minimum: float | None = None, strict: bool = False) -> float:
    """``value`` must be a finite real number (not a bool), ``>= minimum`` (``>`` if ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value:g}")
    return value


def check_classes(classes, num_classes: int | None, name: str = "classes") -> list[int] | None:
    """A selection of class indices: distinct integers in ``[0, num_classes)``; ``None`` means all.

    Shared by the losses (channels of ``probs``) and the metrics (labels of an image).
    With ``num_classes=None`` (not known yet) only the upper bound is left unchecked.

    >>> check_classes((1, 3), 4)
    [1, 3]
    """
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise TypeError(f"{name} must be a sequence of class indices such as [1] or None, got {classes!r}")
    chosen = list(classes)
    if not chosen:
        raise ValueError(f"{name} must name at least one class, got an empty selection")
    for k in chosen:
        if isinstance(k, bool) or not isinstance(k, Integral):
            raise TypeError(f"{name} must hold integer class indices, got {chosen!r}")
        if k < 0 or (num_classes is not None and k >= num_classes):
            bound = "be >= 0" if num_classes is None else f"lie in [0, {num_classes}) for {num_classes} classes"
            raise ValueError(f"{name} must {bound}, got {chosen}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{name} must not repeat a class, got {chosen}")
    return [int(k) for k in chosen]


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
        raise TypeError(f"{name} must be a number or {ndim} positive numbers, got {spacing!r}") from None
    if values.ndim == 0:  # a scalar applies to every axis
        values = np.repeat(values, ndim)
    if values.ndim != 1:
        raise ValueError(f"{name} must be a sequence of {ndim} positive numbers, got {spacing!r}")
    if values.size != ndim:
        raise ValueError(f"{name} must have one value per array axis ({ndim}), got {values.size}: {spacing!r}")
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError(f"{name} must be finite and positive on every axis, got {spacing!r}")
    return tuple(float(v) for v in values)


def check_choice(value, name: str, choices: Sequence, extra: str = ""):
    """``value`` must be one of ``choices``; the error lists the valid ones (and ``extra``).

    >>> check_choice("sum", "reduction", ("mean", "sum"))
    'sum'
    """
    try:
        valid = value in choices
    except TypeError:  # e.g. an unhashable value looked up in a dict
        valid = False
    if not valid:
        raise ValueError(f"{name} must be one of {list(choices)}{extra}, got {value!r}")
    return value


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise if two arrays do not have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
