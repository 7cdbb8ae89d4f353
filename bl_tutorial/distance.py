r"""Boundary sets and signed distance maps (the *distance maps* chapter).

The boundary loss multiplies the network's probabilities by a pre-computed map
:math:`\phi` that says, for every voxel, how far it lies from the ground-truth contour:
negative inside the object, positive outside (eq. 1-3 of the book). This module computes
that map exactly, in 2D and 3D, with a per-axis voxel spacing in millimetres.

Two conventions are offered, side by side:

``"exact"`` (the book's definition, eq. 1-3; called the "seed" definition in earlier versions)
    :math:`\phi_i = -d(i, \partial G)` inside the foreground :math:`G`,
    :math:`+d(i, \partial G)` outside, where :math:`\partial G` is the *boundary set*
    (foreground voxels with a background face neighbour) and :math:`d` the anisotropic
    Euclidean grid distance of eq. 1. The map is exactly 0 on the boundary set, for any
    spacing.

``"official"`` (the reference code of Kervadec et al.)
    outside: the distance to the nearest foreground voxel; inside: minus (the distance to
    the nearest background voxel, minus one). The "minus one" is in voxels, not
    millimetres, so with an anisotropic spacing some inner boundary voxels get a
    *positive* value (e.g. ``1 - 0.5 = +0.5`` for a 0.5 mm pixel). This module computes it
    in floating point (the official code silently truncated it to integers in 2D) and
    gives all-zero maps for full classes (where the official code returned a meaningless
    ramp). :func:`official_one_hot2dist` re-implements the official function, pitfalls
    included, for comparison.

Implementation. Distances come from the exact linear-time Euclidean distance transform
of the ``edt`` package when it is installed (scipy's ``distance_transform_edt`` otherwise;
both are exact). Per label image the work is reduced to one transform per class, and to
arithmetic on whole arrays around it: the exact convention transforms the complement of
each class's boundary set (which gives the distance inside and outside at once); the
official convention needs a single multi-label transform for two classes, and otherwise
one two-label transform per class, except for the largest class, whose maps follow from
the others' and from a transform of the small box around them. Signs are written by
multiplying by +-1 rather than by masked assignments, which cost several times more.
``benchmarks/distance_maps.py`` measures the gain over the official approach (two scipy
transforms per class) and the distance to the speed limit (one ``edt`` pass per class).
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
from scipy import ndimage

from bl_tutorial._validation import as_binary_mask, as_label_image, as_spacing, check_choice

try:  # the fast exact EDT; scipy is the fallback and the reference in the tests
    import edt as _edt_module
except ImportError:  # pragma: no cover - exercised only where edt is missing
    _edt_module = None

Convention = Literal["exact", "official"]
Backend = Literal["auto", "edt", "scipy"]
CONVENTIONS = ("exact", "official")
BACKENDS = ("auto", "edt", "scipy")

__all__ = [
    "boundary_set",
    "signed_distance",
    "signed_distance_reference",
    "class_distance_maps",
    "official_one_hot2dist",
    "CONVENTIONS",
]


# --------------------------------------------------------------------------- helpers
def _resolve_backend(backend: str) -> str:
    check_choice(backend, "backend", BACKENDS)
    if backend == "auto":
        return "edt" if _edt_module is not None else "scipy"
    if backend == "edt" and _edt_module is None:
        raise ValueError("backend='edt' needs the 'edt' package (pip install edt); use 'scipy'")
    return backend


def _threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _edt(image: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """edt: for each non-zero voxel, the distance to the nearest voxel of another value (float32, no copy)."""
    image = np.ascontiguousarray(image)  # edt reads the anisotropy in NumPy axis order for C order
    return _edt_module.edt(image, anisotropy=spacing, black_border=False, parallel=_threads())


def _distance_to_zeros(features: np.ndarray, spacing: tuple[float, ...], backend: str) -> np.ndarray:
    """Distance from every voxel to the nearest voxel where ``features`` is False (float32).

    ``features`` is boolean; the result is 0 where it is False. The caller guarantees
    at least one False voxel.
    """
    if backend == "edt":
        # edt's bool path runs one envelope of parabolas per image line, its integer path one
        # per run of equal non-zero values. Our features are mostly True (few zeros), which favours
        # bool in 2D (20-30 % faster); in 3D bool is several times slower: uint8, same bytes.
        return _edt(features if features.ndim == 2 else features.view(np.uint8), spacing)
    return ndimage.distance_transform_edt(features, sampling=spacing).astype(np.float32)


def _distance_to_other_labels(labels: np.ndarray, spacing: tuple[float, ...], backend: str) -> np.ndarray:
    """For every voxel, the distance to the nearest voxel of a *different* label (float32).

    One multi-label transform with ``edt``; one transform per label with scipy.
    The caller guarantees at least two labels are present.
    """
    if backend == "edt":
        # edt treats label 0 as background (distance 0): shift every label up by one.
        # Validated labels are uint8 up to 255 classes (so at most 254: no overflow) and int64 beyond.
        return _edt(labels + labels.dtype.type(1), spacing)
    out = np.zeros(labels.shape, dtype=np.float32)
    for value in np.unique(labels):
        inside = labels == value
        out[inside] = ndimage.distance_transform_edt(inside, sampling=spacing)[inside]
    return out


def _label_edges(labels: np.ndarray) -> np.ndarray:
    """True where a voxel has a face neighbour (inside the grid) with a different label."""
    edges = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        lower = [slice(None)] * labels.ndim
        upper = [slice(None)] * labels.ndim
        lower[axis] = slice(None, -1)
        upper[axis] = slice(1, None)
        differ = labels[tuple(lower)] != labels[tuple(upper)]
        edges[tuple(lower)] |= differ
        edges[tuple(upper)] |= differ
    return edges


def _signed(distance: np.ndarray, negative: np.ndarray, out: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """Write ``distance`` into ``out`` (not ``distance``), negated where ``negative`` (plus 1 there if ``plus_one``).

    Arithmetic, ``out = (1 - 2 * negative) * distance``: a masked assignment branches on every
    voxel and costs several times more. Where ``negative`` is False the product is ``distance``
    itself, so a boundary value 0 stays +0 (``-0.0`` would not).
    """
    np.copyto(out, negative)  # 1.0 where negative, else 0.0
    out *= np.float32(-2.0)
    out += np.float32(1.0)  # the sign: -1 or +1
    out *= distance
    if plus_one:
        out += negative  # 1 - distance inside: the same rounding as the subtraction itself
    return out


def _class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Number of voxels of each class."""
    if num_classes > 16:
        return np.bincount(labels.ravel(), minlength=num_classes)
    # bincount first converts every label to int64; for a few classes, counting each is faster
    return np.array([np.count_nonzero(labels == k) for k in range(num_classes)])


# --------------------------------------------------------------------------- public API
def boundary_set(mask, connectivity: int = 1, image_edge: bool = False) -> np.ndarray:
    r"""Foreground voxels that touch the background: :math:`\partial G` of the book.

    .. math:: \partial G = \{ i \in G_1 \mid N(i) \cap G_0 \neq \emptyset \}

    Parameters
    ----------
    mask : array_like of bool, 2D or 3D
        The foreground :math:`G_1` (0/1 or boolean).
    connectivity : int, optional
        Which neighbours :math:`N(i)` count: 1 for face neighbours (4 in 2D, 6 in 3D),
        up to ``mask.ndim`` for all neighbours (8 in 2D, 26 in 3D).
    image_edge : bool, optional
        If False (the default, the book's definition) only neighbours inside the grid
        count, so a mask that fills the image has an empty boundary set. If True,
        foreground voxels on the edge of the image are boundary voxels too, as in the
        surface-distance metrics (:mod:`bl_tutorial.metrics`).

    Returns
    -------
    ndarray of bool, same shape as ``mask``

    Examples
    --------
    >>> import numpy as np
    >>> square = np.zeros((5, 5), bool); square[1:4, 1:4] = True
    >>> boundary_set(square).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 0, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    mask = as_binary_mask(mask, "mask")
    if isinstance(connectivity, bool) or connectivity not in range(1, mask.ndim + 1):
        raise ValueError(
            f"connectivity must be an integer from 1 to {mask.ndim} for a {mask.ndim}D mask, got {connectivity!r}"
        )
    if connectivity == 1 and not image_edge:
        return mask & _label_edges(mask)
    structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
    eroded = ndimage.binary_erosion(mask, structure, border_value=0 if image_edge else 1)
    return mask & ~eroded


def signed_distance(
    mask,
    spacing=None,
    convention: Convention = "exact",
    *,
    backend: Backend = "auto",
) -> np.ndarray:
    r"""Signed distance map :math:`\phi` of a binary mask (eq. 3), in millimetres.

    With the default ``convention="exact"``:

    .. math::
        \phi_i = \begin{cases} -d(i, \Pi_{\partial G}(i)) & i \in G_1 \\
                               +d(i, \Pi_{\partial G}(i)) & \text{otherwise} \end{cases}
        \qquad d(x, y) = \sqrt{\textstyle\sum_a s_a^2 (x_a - y_a)^2}

    where :math:`s_a` is the spacing of axis :math:`a` (eq. 1) and
    :math:`\Pi_{\partial G}` the projection onto the boundary set (eq. 2). The map is
    exactly 0 on :func:`boundary_set`, negative deeper inside, positive outside.

    ``convention="official"`` gives the reference code's map instead: outside, the
    distance to the nearest foreground voxel; inside, ``-(distance to the nearest
    background voxel - 1)``, the ``- 1`` being in voxels whatever the spacing (see the
    module docstring). It is computed in float, never truncated to integers.

    A mask without foreground, or without background, has no contour to measure a
    distance to; its map is all zeros, so the class adds nothing to the boundary loss
    (the official code does the same for an empty class, but returns a meaningless ramp
    for a full one).

    Parameters
    ----------
    mask : array_like of bool, 2D or 3D
        Foreground mask (0/1 or boolean), axes (y, x) or (z, y, x).
    spacing : float or sequence of float, optional
        Voxel size along each axis in millimetres, in the array's axis order. Default 1.
    convention : {"exact", "official"}
    backend : {"auto", "edt", "scipy"}, keyword-only
        Distance-transform engine; ``"auto"`` uses ``edt`` when installed. Both are exact.

    Returns
    -------
    ndarray of float32, same shape as ``mask``

    Examples
    --------
    >>> import numpy as np
    >>> line = np.array([[0, 0, 1, 1, 1, 0]], bool)
    >>> signed_distance(line).tolist()
    [[2.0, 1.0, 0.0, -1.0, 0.0, 1.0]]
    >>> signed_distance(line, convention="official").tolist()
    [[2.0, 1.0, 0.0, -1.0, 0.0, 1.0]]
    >>> signed_distance(line, spacing=(1.0, 0.5), convention="official").tolist()
    [[1.0, 0.5, 0.5, 0.0, 0.5, 0.5]]
    """
    mask = as_binary_mask(mask, "mask")
    check_choice(convention, "convention", CONVENTIONS)
    spacing = as_spacing(spacing, mask.ndim)
    backend = _resolve_backend(backend)
    if mask.all() or not mask.any():
        return np.zeros(mask.shape, dtype=np.float32)
    out = np.empty(mask.shape, dtype=np.float32)
    if convention == "exact":
        boundary = mask & _label_edges(mask)
        distance = _distance_to_zeros(~boundary, spacing, backend)  # to the boundary set, inside and outside
        return _signed(distance, mask ^ boundary, out)  # minus on the interior; +0 on the boundary set
    distance = _distance_to_other_labels(mask.view(np.uint8), spacing, backend)
    return _signed(distance, mask, out, plus_one=True)


def class_distance_maps(
    labels,
    num_classes: int,
    spacing=None,
    convention: Convention = "exact",
    *,
    backend: Backend = "auto",
) -> np.ndarray:
    r"""One-vs-all signed distance maps of a label image, one channel per class.

    Channel :math:`k` is :func:`signed_distance` of ``labels == k`` (eq. 3), so that the
    multi-class boundary loss is the sum of the per-class inner products
    :math:`\sum_k \langle c_k, \phi_k \rangle`. Classes that are absent, or that fill the
    whole image, get an all-zero channel.

    Parameters
    ----------
    labels : array_like of int, 2D or 3D
        Label image with values in ``[0, num_classes)``, axes (y, x) or (z, y, x).
    num_classes : int
        Number of classes :math:`K` (at least 2).
    spacing : float or sequence of float, optional
        Voxel size per axis in millimetres, in the array's axis order.
    convention : {"exact", "official"}
        See :func:`signed_distance`.
    backend : {"auto", "edt", "scipy"}, keyword-only

    Returns
    -------
    ndarray of float32, shape ``(num_classes, *labels.shape)``

    Notes
    -----
    ``"exact"`` costs one exact distance transform per class present. ``"official"``
    costs one in total for two classes (each class's outside distance is then the other's
    inside distance), and otherwise one per class present, the largest class needing only
    a transform of the box around the others.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[0, 1, 1, 2, 2, 2]])
    >>> class_distance_maps(labels, 3).tolist()
    [[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]], [[1.0, 0.0, 0.0, 1.0, 2.0, 3.0]], [[3.0, 2.0, 1.0, 0.0, -1.0, -2.0]]]
    """
    labels = as_label_image(labels, num_classes, "labels")
    check_choice(convention, "convention", CONVENTIONS)
    spacing = as_spacing(spacing, labels.ndim)
    backend = _resolve_backend(backend)

    counts = _class_counts(labels, num_classes)
    contoured = [k for k in range(num_classes) if 0 < counts[k] < labels.size]
    maps = np.empty((num_classes, *labels.shape), dtype=np.float32)
    maps[[k for k in range(num_classes) if k not in contoured]] = 0.0  # the others are written in full below
    if not contoured:
        return maps
    if convention == "exact":
        _exact_class_maps(labels, contoured, spacing, backend, maps)
    elif np.count_nonzero(counts) == 2:
        _official_two_class_maps(labels, contoured, spacing, backend, maps)
    else:
        _official_class_maps(labels, counts, contoured, spacing, backend, maps)
    return maps


def _exact_class_maps(labels, contoured, spacing, backend, maps) -> None:
    """Exact convention: one transform per class, of the complement of its boundary set.

    That single transform gives the distance to the boundary set on both sides, so only the
    sign is left to write. The boundary sets of all classes come from one pass over the image
    (a voxel of class k with a neighbour of another class is on the boundary set of k).
    """
    edges = _label_edges(labels)
    for k in contoured:
        inside = labels == k
        boundary = inside & edges
        distance = _distance_to_zeros(~boundary, spacing, backend)
        inside ^= boundary  # the interior: minus sign, never 0, so never -0
        _signed(distance, inside, maps[k])


def _official_two_class_maps(labels, contoured, spacing, backend, maps) -> None:
    """Official convention, two labels present: one multi-label transform for both maps.

    From a voxel of either label, the distance to the other label is both its own inside
    distance and the other class's outside distance.
    """
    to_other = _distance_to_other_labels(labels, spacing, backend)
    for k in contoured:
        _signed(to_other, labels == k, maps[k], plus_one=True)


def _official_class_maps(labels, counts, contoured, spacing, backend, maps) -> None:
    """Official convention, three or more labels: one transform per class, a box for the largest.

    Each class k other than the largest ("big", the background of a cardiac slice) gets one
    two-label transform of (inside k, outside k): inside, the distance to the outside; outside,
    the distance to k. Exact shortcuts for big, which usually surrounds small classes:
    - inside big, the distance to the nearest other class is the minimum of the other
      classes' outside distances;
    - outside big, every voxel lies in the box around the other classes, grown by one voxel,
      and so does its nearest big voxel (a big voxel beyond the box has a face neighbour that
      is closer and also big), so a transform of the box is enough.
    """
    big = int(np.argmax(counts))
    nearest_other = maps[big]
    nearest_other.fill(np.inf)
    for k in contoured:
        if k == big:
            continue
        inside = labels == k
        across = _distance_to_other_labels(inside.view(np.uint8), spacing, backend)
        np.minimum(nearest_other, across, out=nearest_other)  # at big voxels: the distance to class k
        _signed(across, inside, maps[k], plus_one=True)
    np.subtract(np.float32(1.0), nearest_other, out=nearest_other)  # big's inside values, for now everywhere
    box = _bounding_box(labels != big, margin=1)
    big_in_box = labels[box] == big
    to_big = _distance_to_zeros(~big_in_box, spacing, backend)  # 0 on big voxels
    big_box = maps[big][box]
    big_box *= big_in_box  # keep big's voxels, clear the others ...
    big_box += to_big  # ... and give them their distance to big


def _bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Slices of the smallest box holding every True voxel, grown by ``margin`` (clipped)."""
    box = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=others))
        box.append(slice(max(0, hits[0] - margin), min(mask.shape[axis], hits[-1] + 1 + margin)))
    return tuple(box)


def signed_distance_reference(mask, spacing=None) -> np.ndarray:
    r"""The exact :math:`\phi` (eq. 1-3) by brute force, in float64. Slow; for teaching and tests.

    Written straight from the definitions, with no distance transform: the boundary set
    is found by looking at each voxel's face neighbours inside the grid, and every voxel's
    distance is the minimum of eq. 1 over all boundary voxels. Memory and time grow with
    (number of voxels) x (number of boundary voxels); keep inputs small.

    Parameters
    ----------
    mask : array_like of bool, 2D or 3D
    spacing : float or sequence of float, optional
        Voxel size per axis in millimetres.

    Returns
    -------
    ndarray of float64, same shape as ``mask``

    Examples
    --------
    >>> import numpy as np
    >>> disc = np.hypot(*np.mgrid[-3:4, -3:4]) <= 2
    >>> bool(np.allclose(signed_distance_reference(disc), signed_distance(disc)))
    True
    """
    mask = as_binary_mask(mask, "mask")
    spacing_arr = np.asarray(as_spacing(spacing, mask.ndim))
    if mask.all() or not mask.any():
        return np.zeros(mask.shape, dtype=np.float64)
    # eq. boundary set: foreground voxel with a background face neighbour (in the grid);
    # padding with True means "outside the grid is not background".
    padded = np.pad(mask, 1, constant_values=True)
    has_background_neighbour = np.zeros(mask.shape, dtype=bool)
    centre = tuple(slice(1, n + 1) for n in mask.shape)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            shifted = list(centre)
            shifted[axis] = slice(1 + step, mask.shape[axis] + 1 + step)
            has_background_neighbour |= ~padded[tuple(shifted)]
    boundary = mask & has_background_neighbour

    # eq. 1 and 2: distance to the closest boundary voxel, by exhaustive search
    points = np.indices(mask.shape).reshape(mask.ndim, -1).T * spacing_arr
    targets = points[boundary.ravel()]
    nearest = np.empty(len(points))
    chunk = max(1, 2_000_000 // len(targets))
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk, None, :] - targets[None, :, :]
        nearest[start : start + chunk] = np.sqrt((block**2).sum(-1)).min(1)
    nearest = nearest.reshape(mask.shape)
    # eq. 3: negative inside the foreground
    return np.where(mask, -nearest, nearest)


def official_one_hot2dist(seg, resolution=None, dtype=None) -> np.ndarray:
    """The official code's distance maps, re-implemented with its pitfalls, for comparison.

    Follows the reference implementation of Kervadec et al. step by step: for each
    channel of a one-hot ``seg`` of shape ``(K, *spatial)`` that has any foreground,
    ``edt(~pos) * ~pos - (edt(pos) - 1) * pos`` with scipy's transform and
    ``sampling=resolution``. Kept as it is, on purpose:

    * the output dtype defaults to the *input's* dtype, so an integer one-hot gives
      distances truncated to integers (1.414 becomes 1);
    * the ``- 1`` is in voxels, not scaled by ``resolution``;
    * a channel that fills the whole image has no background, and scipy then measures
      the distance to an imaginary point outside the grid.

    Use :func:`class_distance_maps` with ``convention="official"`` for the same map
    without these pitfalls. This function is the baseline of the speed benchmark.

    Parameters
    ----------
    seg : ndarray, shape (K, *spatial)
        One-hot segmentation (0/1 values).
    resolution : sequence of float, optional
        Spacing per spatial axis.
    dtype : numpy dtype, optional
        Output dtype; ``None`` keeps ``seg.dtype`` as the official code does.

    Examples
    --------
    >>> import numpy as np
    >>> seg = np.zeros((2, 1, 4), np.uint8); seg[1, 0, :2] = 1; seg[0, 0, 2:] = 1
    >>> official_one_hot2dist(seg, dtype=np.float32)[1].tolist()
    [[-1.0, 0.0, 1.0, 2.0]]
    """
    seg = np.asarray(seg)
    if seg.ndim < 2:
        raise ValueError(f"seg must be one-hot with shape (K, *spatial), got shape {seg.shape}")
    as_binary_mask(seg, "seg", ndims=(seg.ndim,))
    res = np.zeros_like(seg, dtype=dtype if dtype is not None else seg.dtype)
    for k in range(len(seg)):
        posmask = seg[k].astype(bool)
        if posmask.any():
            negmask = ~posmask
            res[k] = (
                ndimage.distance_transform_edt(negmask, sampling=resolution) * negmask
                - (ndimage.distance_transform_edt(posmask, sampling=resolution) - 1) * posmask
            )
    return res
