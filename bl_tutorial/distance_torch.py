r"""Signed distance maps of a batch of label images, computed where the labels live (CPU or GPU).

:mod:`bl_tutorial.distance` computes the maps of one label image with NumPy and the ``edt``
package, which suits maps cached once per data set. An augmentation that is not an
isometry of the grid (a rotation by any angle, a zoom, an elastic warp) changes the
distances, so the maps of the warped labels must be computed again, every batch, on the
training device (:mod:`bl_tutorial.data.warp`). :func:`batch_distance_maps` does that:
same definitions (eq. (1)-(3), both conventions), same numbers as
:func:`~bl_tutorial.distance.class_distance_maps` (within 1e-4), for a whole batch at once.

The exact Euclidean distance transform in torch. The squared distance is separable: a
first pass along the last axis, then one pass per remaining axis,

.. math:: g_a(p) = \min_q \; g_{a-1}(q) + s_a^2 (p - q)^2 ,

each along the lines of one axis. The first pass, on a binary image, is the distance to the
nearest zero of the line on either side: two cumulative extrema (``cummax``, ``cummin``),
linear time. The later passes are min-plus convolutions with the parabola
:math:`s_a^2 d^2`. The usual sequential algorithm for them (the lower envelope of
Felzenszwalb and Huttenlocher) keeps a stack per line whose pops depend on the data: in
torch it would be a Python loop over positions with several small kernels each, bound by
kernel launches. Brute force (every q for every p) is one large kernel but costs ``n``
operations per voxel and ``n`` times the image in memory. Here instead the parabola is
grown in blocks: since :math:`d^2 = \sum_{k=1}^{|d|} (2k - 1)`, the convolution with
:math:`s^2 d^2` restricted to :math:`|d| \le a + w` is the one restricted to
:math:`|d| \le a` followed by one with the block kernel :math:`s^2 (d^2 + 2 a |d|)`,
:math:`|d| \le w`; a block is a window (``unfold``), an addition and a minimum over the
window. Once a block changes nothing, no later block can (their kernels are pointwise
larger, and a wider one is a chain of unit steps that already changed nothing), so the
pass stops: its work grows with the largest distance along that axis, not with the line
length. Block widths double (2, 4, 8, 16, 16, ...: :data:`WIDEST`), narrower where the
memory budget :data:`BLOCK_BUDGET` requires; lines are processed in chunks that fit it.
The result is exact, like the NumPy path. Each block ends with one comparison read on the
host (a single boolean), the range check of the labels reads their two extremes and the
spacing (a few numbers) is copied to the device; nothing else crosses.

On the CPU, :func:`batch_distance_maps` delegates to the NumPy path by default: there the
compiled ``edt`` is 18 to 85 times faster than this transform (see its ``backend``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from bl_tutorial._validation import as_spacing, check_choice, check_num_classes
from bl_tutorial.distance import CONVENTIONS, class_distance_maps

Convention = Literal["exact", "official"]
Backend = Literal["auto", "torch", "numpy"]
BACKENDS = ("auto", "torch", "numpy")

# largest temporary of one min-plus block, in float32 elements: 512 MiB on a GPU, 16 MiB on a CPU
BLOCK_BUDGET = {"cuda": 2**27, "cpu": 2**22}
WIDEST = 16  # widest block of a min-plus pass (voxels on each side)

__all__ = ["batch_distance_maps", "euclidean_distance_transform", "BACKENDS"]


# --------------------------------------------------------------------------- checks
def _check_labels(labels, num_classes: int) -> torch.Tensor:
    """``labels``: an integer (or boolean) tensor (B, *spatial), 2 or 3 spatial axes, values in range."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor of integer labels (B, *spatial), got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex:
        raise TypeError(f"labels must hold integer labels, got dtype {labels.dtype}")
    if labels.ndim not in (3, 4):
        raise ValueError(
            f"labels must have shape (B, *spatial) with 2 or 3 spatial axes, got shape {tuple(labels.shape)}"
        )
    if labels.numel() == 0:
        raise ValueError(f"labels must not be empty, got shape {tuple(labels.shape)}")
    low, high = (int(v) for v in torch.aminmax(labels.to(torch.int64) if labels.dtype == torch.bool else labels))
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}) for num_classes={num_classes}, got values from {low} to {high}"
        )
    return labels


def _check_spacing(spacing, batch: int, ndim: int) -> list[tuple[float, ...]]:
    """``spacing`` as one tuple of ``ndim`` positive floats per item.

    Accepts None (ones), a number, ``ndim`` numbers (every item alike), or one row of
    ``ndim`` numbers per item (a tensor or array of shape (B, ndim)).
    """
    if isinstance(spacing, torch.Tensor):
        spacing = spacing.detach().cpu().numpy()  # a few numbers; never the labels
    try:
        table = None if spacing is None else np.asarray(spacing, dtype=float)
    except (TypeError, ValueError):
        table = None  # as_spacing raises the TypeError
    if table is not None and table.ndim == 2:
        if table.shape != (batch, ndim):
            raise ValueError(
                f"spacing must have one value per spatial axis ({ndim}) or shape (B, {ndim}) = ({batch}, {ndim}), "
                f"got shape {table.shape}"
            )
        rows = [as_spacing(row, ndim) for row in table]
    else:
        rows = [as_spacing(spacing, ndim)] * batch
    return rows


# --------------------------------------------------------------------------- the transform
def _first_pass(zeros: torch.Tensor, step2: torch.Tensor) -> torch.Tensor:
    """Squared distance along the last axis to the nearest True of the same line (inf if none).

    ``step2`` is the squared spacing of that axis, broadcastable to ``zeros``.
    """
    n = zeros.shape[-1]
    position = torch.arange(n, device=zeros.device, dtype=torch.float32)
    inf = torch.tensor(float("inf"), device=zeros.device)
    before = torch.where(zeros, position, -inf).cummax(-1).values  # last zero at or before p
    after = torch.where(zeros, position, inf).flip(-1).cummin(-1).values.flip(-1)  # first zero at or after p
    steps = torch.minimum(position - before, after - position)
    return steps.square_() * step2


def _min_plus_block_pass(lines: torch.Tensor, step2: torch.Tensor, budget: int) -> torch.Tensor:
    """``min_q lines[q] + step2 * (p - q)^2`` along the last axis of ``lines`` (N, n), by blocks.

    ``step2`` is (N, 1): each line's squared spacing. See the module docstring.
    """
    count, n = lines.shape
    widest = min(WIDEST, max(1, (budget // (count * n) - 1) // 2))
    reach, width = 0, 2
    while reach < n - 1:
        w = min(width, widest, n - 1 - reach)
        d = torch.arange(-w, w + 1, device=lines.device, dtype=torch.float32)
        kernel = step2 * (d * d + 2 * reach * d.abs())  # (N, 2w + 1)
        windows = F.pad(lines, (w, w), value=float("inf")).unfold(-1, 2 * w + 1, 1)  # (N, n, 2w + 1), a view
        updated = (windows + kernel[:, None, :]).amin(-1)
        if torch.equal(updated, lines):  # nothing changed: no later block can change anything
            break
        lines, reach, width = updated, reach + w, 2 * width
    return lines


def _min_plus_pass(squared: torch.Tensor, axis: int, step2: torch.Tensor, budget: int) -> torch.Tensor:
    """One separable pass along ``axis`` (>= 2) of ``squared`` (B, C, *spatial); ``step2`` is (B,)."""
    moved = squared.movedim(axis, -1)
    shape = moved.shape
    lines = moved.reshape(-1, shape[-1])
    per_line = step2.repeat_interleave(lines.shape[0] // shape[0])[:, None]
    rows = max(1, budget // ((2 * WIDEST + 1) * shape[-1]))  # lines per chunk: the widest blocks fit the budget
    rows = -(-lines.shape[0] // -(-lines.shape[0] // rows))  # as many chunks, of even sizes
    out = torch.cat(
        [
            _min_plus_block_pass(lines[start : start + rows], per_line[start : start + rows], budget)
            for start in range(0, lines.shape[0], rows)
        ]
    )
    return out.reshape(shape).movedim(-1, axis)


def euclidean_distance_transform(zeros: torch.Tensor, spacing: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Exact Euclidean distance from every voxel to the nearest True voxel of ``zeros``, in torch.

    Parameters
    ----------
    zeros : Tensor of bool, shape (B, C, *spatial), 2 or 3 spatial axes
        The voxels the distance is measured to (distance 0 there). An image without any
        gets ``inf`` everywhere.
    spacing : Tensor, shape (B, n_spatial)
        Each item's voxel size per spatial axis.
    squared : bool
        Return the squared distance (skips the square root).

    Returns
    -------
    Tensor of float32, the shape of ``zeros``, on its device

    Examples
    --------
    >>> zeros = torch.tensor([[[[True, False, False, False]]]])
    >>> euclidean_distance_transform(zeros, torch.tensor([[1.0, 0.5]])).tolist()
    [[[[0.0, 0.5, 1.0, 1.5]]]]
    """
    budget = BLOCK_BUDGET["cpu" if zeros.device.type == "cpu" else "cuda"]
    step2 = spacing.to(device=zeros.device, dtype=torch.float32).square()
    last = zeros.ndim - 1
    first = step2[:, -1].reshape(-1, *[1] * last)
    out = _first_pass(zeros, first)
    for axis in range(2, last):
        out = _min_plus_pass(out, axis, step2[:, axis - 2], budget)
    return out if squared else out.sqrt_()


# --------------------------------------------------------------------------- maps
def _label_edges(labels: torch.Tensor) -> torch.Tensor:
    """True where a voxel has a face neighbour inside the grid with another label; labels (B, *spatial)."""
    edges = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    for axis in range(1, labels.ndim):
        n = labels.shape[axis]
        differ = labels.narrow(axis, 0, n - 1) != labels.narrow(axis, 1, n - 1)
        edges.narrow(axis, 0, n - 1).logical_or_(differ)
        edges.narrow(axis, 1, n - 1).logical_or_(differ)
    return edges


def _torch_maps(labels: torch.Tensor, num_classes: int, rows: list, convention: str) -> torch.Tensor:
    """The maps of every item and class at once, in torch, on the labels' device."""
    spacing = torch.tensor(rows, dtype=torch.float32, device=labels.device)
    classes = torch.arange(num_classes, device=labels.device).reshape(1, -1, *[1] * (labels.ndim - 1))
    inside = labels[:, None] == classes  # (B, K, *spatial)
    counts = inside.flatten(2).sum(-1)
    contoured = (counts > 0) & (counts < labels[0].numel())  # a class with a contour in this item
    contoured = contoured.reshape(*contoured.shape, *[1] * (labels.ndim - 1))
    if convention == "exact":
        boundary = inside & _label_edges(labels)[:, None]  # eq. boundary set, face neighbours in the grid
        distance = euclidean_distance_transform(boundary, spacing)
        maps = torch.where(inside & ~boundary, -distance, distance)  # +0 on the boundary set
    else:
        both = euclidean_distance_transform(torch.cat([inside, ~inside], 1), spacing)
        to_inside, to_outside = both.split(num_classes, 1)
        maps = torch.where(inside, 1.0 - to_outside, to_inside)
    return torch.where(contoured, maps, 0.0)


def _numpy_maps(labels: torch.Tensor, num_classes: int, rows: list, convention: str) -> torch.Tensor:
    """The maps item by item with :func:`~bl_tutorial.distance.class_distance_maps` (NumPy and ``edt``)."""
    array = labels.cpu().numpy()
    maps = [class_distance_maps(item, num_classes, row, convention) for item, row in zip(array, rows)]
    return torch.from_numpy(np.stack(maps)).to(labels.device)


def batch_distance_maps(
    labels: torch.Tensor,
    num_classes: int,
    spacing=None,
    convention: Convention = "exact",
    *,
    backend: Backend = "auto",
) -> torch.Tensor:
    r"""One-vs-all signed distance maps :math:`\phi` (eq. (1)-(3)) of a batch of label images.

    Item ``b``, channel ``k`` is
    ``bl_tutorial.distance.class_distance_maps(labels[b], num_classes, spacing, convention)[k]``
    (within 1e-4): with ``"exact"``, minus the anisotropic Euclidean distance (eq. 1) to the
    boundary set of class ``k`` (its voxels with a face neighbour of another class inside the
    grid; eq. 2) inside the class, 0 on the boundary set, plus that distance outside (eq. 3);
    with ``"official"``, the official code's convention in float (outside: the distance to
    the class; inside: minus (the distance to the other classes - 1)). A class that is absent
    from an item, or fills it, gets an all-zero channel for that item.

    Parameters
    ----------
    labels : Tensor of int, shape (B, *spatial)
        Label images with values in ``[0, num_classes)``, spatial axes (y, x) or (z, y, x).
    num_classes : int
        Number of classes :math:`K` (at least 2).
    spacing : float, sequence of float, or array/tensor of shape (B, n_spatial), optional
        Voxel size per spatial axis in the maps' unit, in the array's axis order; one row
        per item when the items differ. Default 1.
    convention : {"exact", "official"}
    backend : {"auto", "torch", "numpy"}, keyword-only
        ``"torch"``: the transform of the module docstring, on the labels' device (no copy
        to the host). ``"numpy"``: :func:`~bl_tutorial.distance.class_distance_maps` per
        item, on the host. ``"auto"`` (default): NumPy for labels on the CPU, torch on any
        other device. On two CPU cores, ``benchmarks/distance_maps_torch.py`` measured the
        NumPy path 18 to 85 times faster than the torch path (two runs on a shared machine;
        sixteen two-class 256 x 256 images, and a four-class 10 x 224 x 256 volume, the
        slowest for torch): ``edt`` is a compiled linear-time transform, the torch path
        makes a few passes over memory per voxel and axis for every voxel of reach.

    Returns
    -------
    Tensor of float32, shape (B, num_classes, *spatial), on ``labels.device``

    Examples
    --------
    >>> labels = torch.tensor([[[0, 1, 1, 2, 2, 2]]])  # one 1 x 6 image
    >>> batch_distance_maps(labels, 3)[0].tolist()
    [[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]], [[1.0, 0.0, 0.0, 1.0, 2.0, 3.0]], [[3.0, 2.0, 1.0, 0.0, -1.0, -2.0]]]
    >>> torch.equal(batch_distance_maps(labels, 3, backend="torch"), batch_distance_maps(labels, 3))
    True
    """
    num_classes = check_num_classes(num_classes)
    labels = _check_labels(labels, num_classes)
    check_choice(convention, "convention", CONVENTIONS)
    check_choice(backend, "backend", BACKENDS)
    spacing = _check_spacing(spacing, labels.shape[0], labels.ndim - 1)
    if backend == "numpy" or (backend == "auto" and labels.device.type == "cpu"):
        return _numpy_maps(labels, num_classes, spacing, convention)
    return _torch_maps(labels, num_classes, spacing, convention)
