r"""Overlap and surface-distance metrics (the *Dice* chapter and the experiments).

Binary metrics take a predicted and a true mask (NumPy arrays of the same shape, 2D or
3D) and an optional region of interest ``mask`` (for DRIVE, the field of view): voxels
outside it are ignored. Surface metrics take a per-axis ``spacing`` in millimetres.

Conventions for empty inputs, chosen so that averages stay defined:

* Dice, IoU, precision, recall: prediction and truth both empty score 1.0; a score whose
  denominator is zero while the other mask is not empty is 0.0. A region of interest
  ``mask`` that selects no voxel leaves nothing to score: a ``ValueError``.
* HD95 and ASSD: both empty give 0.0; exactly one empty gives the diagonal of the image
  in millimetres (the largest distance the grid allows), a finite worst case.

Surface metrics differ between libraries; this module's choices, and the reason:

* HD95 is the *larger of the two directed* 95th percentiles (prediction to truth, truth
  to prediction), as MONAI's ``compute_hausdorff_distance(percentile=95)``; MedPy's
  ``hd95`` takes the 95th percentile of both directions pooled.
* ASSD is the *mean of the two directed means*; MedPy (0.5) and MONAI
  (``symmetric=True``) pool both directions and take one mean.

Pooling lets the surface with more voxels outweigh the other: a far fragment of false
positives, or a missed structure, that is a sizeable part of one surface can be a small
part of the pooled distances, and vanish from their 95th percentile. Treating the two
directions separately makes HD95 a symmetric worst case: an outlier that holds more than
5 % of its own surface sets the score, whatever the size of the other surface. It also
gives each direction half of the ASSD, whatever the sizes of the two surfaces. The
examples of :func:`hd95` and :func:`assd` show the difference on a square with a far
fragment.

The identity of the Dice chapter, :math:`\mathrm{DSC} = 2 / (1/P + 1/R)`, holds under
these conventions; :func:`dice_from_precision_recall` computes its right-hand side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from bl_tutorial._validation import (
    as_binary_mask,
    as_label_image,
    as_spacing,
    check_classes,
    check_num_classes,
    check_same_shape,
)
from bl_tutorial.distance import boundary_set

__all__ = [
    "Confusion",
    "confusion",
    "dice_score",
    "iou_score",
    "precision",
    "recall",
    "dice_from_precision_recall",
    "surface_distances",
    "hd95",
    "assd",
    "per_class",
    "batch_dice",
    "dice_counts",
    "pooled_dice",
    "class_labels",
]


class Confusion(NamedTuple):
    """Voxel counts: true positives, false positives, false negatives, true negatives."""

    tp: int
    fp: int
    fn: int
    tn: int


def _pair(pred, target, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction/truth pair (and ROI) and return them restricted to the ROI."""
    pred = as_binary_mask(pred, "pred", ndims=(1, 2, 3))
    target = as_binary_mask(target, "target", ndims=(1, 2, 3))
    check_same_shape(pred, target, "pred", "target")
    if mask is not None:
        roi = as_binary_mask(mask, "mask", ndims=(1, 2, 3))
        check_same_shape(pred, roi, "pred", "mask")
        if not roi.any():
            raise ValueError(
                f"mask selects no voxel (all {roi.size} are False): there is nothing to score inside it. "
                "Expected a region of interest with at least one True voxel, or mask=None for the whole image"
            )
        return pred[roi], target[roi]
    return pred, target


def _ratio(numerator: int, denominator: int, other_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if other_empty else 0.0
    return numerator / denominator


def confusion(pred, target, mask=None) -> Confusion:
    """Count TP, FP, FN and TN of a binary prediction, inside ``mask`` when given.

    Examples
    --------
    >>> confusion([1, 1, 0, 0], [1, 0, 1, 0])
    Confusion(tp=1, fp=1, fn=1, tn=1)
    """
    pred, target = _pair(pred, target, mask)
    tp = int(np.count_nonzero(pred & target))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(target)) - tp
    return Confusion(tp, fp, fn, int(pred.size) - tp - fp - fn)


def dice_score(pred, target, mask=None) -> float:
    r"""Dice similarity coefficient :math:`2|C_1 \cap G_1| / (|C_1| + |G_1|)`.

    Parameters
    ----------
    pred, target : array_like of bool, same shape
        Predicted and true foreground.
    mask : array_like of bool, optional
        Region of interest (e.g. the DRIVE field of view); voxels outside are ignored.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both are empty.

    Raises
    ------
    ValueError
        Shapes differ, a mask is not binary, or ``mask`` selects no voxel.

    Examples
    --------
    >>> dice_score([1, 1, 0, 0], [1, 0, 0, 0])
    0.6666666666666666
    >>> dice_score([0, 0], [0, 0])
    1.0
    """
    c = confusion(pred, target, mask)
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, other_empty=True)


def iou_score(pred, target, mask=None) -> float:
    r"""Intersection over union (Jaccard), :math:`|C_1 \cap G_1| / |C_1 \cup G_1|`; 1.0 if both empty.

    >>> iou_score([1, 1, 0, 0], [1, 0, 0, 0])
    0.5
    """
    c = confusion(pred, target, mask)
    return _ratio(c.tp, c.tp + c.fp + c.fn, other_empty=True)


def precision(pred, target, mask=None) -> float:
    """Precision TP / (TP + FP); with no predicted foreground, 1.0 if the truth is empty too, else 0.0.

    >>> precision([1, 1, 0, 0], [1, 0, 0, 0])
    0.5
    """
    c = confusion(pred, target, mask)
    return _ratio(c.tp, c.tp + c.fp, other_empty=c.fn == 0)


def recall(pred, target, mask=None) -> float:
    """Recall (sensitivity) TP / (TP + FN); with an empty truth, 1.0 if the prediction is empty too, else 0.0.

    >>> recall([1, 0, 0, 0], [1, 1, 0, 0])
    0.5
    """
    c = confusion(pred, target, mask)
    return _ratio(c.tp, c.tp + c.fn, other_empty=c.fp == 0)


def dice_from_precision_recall(precision_value: float, recall_value: float) -> float:
    r"""Harmonic mean of precision and recall, which equals Dice (the Dice chapter).

    .. math:: \mathrm{DSC} = \frac{2}{1/P + 1/R} = \frac{2PR}{P + R}
              = \frac{2\,TP}{2\,TP + FP + FN}

    Returns 0.0 when either is 0 (no true positive).

    >>> dice_from_precision_recall(0.5, 1.0)
    0.6666666666666666
    """
    for name, value in (("precision_value", precision_value), ("recall_value", recall_value)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    if precision_value == 0 or recall_value == 0:
        return 0.0
    return 2.0 / (1.0 / precision_value + 1.0 / recall_value)


def _diagonal(shape: Sequence[int], spacing: Sequence[float]) -> float:
    return float(np.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing))))


def surface_distances(pred, target, spacing=None) -> tuple[np.ndarray, np.ndarray] | None:
    """The two directed surface distances (mm): ``pred`` to ``target``, and ``target`` to ``pred``.

    The surface of a mask is its :func:`~bl_tutorial.distance.boundary_set` with face
    connectivity, counting voxels on the image edge as surface. The first array holds,
    for each surface voxel of ``pred``, the Euclidean distance (with ``spacing``) to the
    nearest surface voxel of ``target``; the second the same from ``target`` to
    ``pred``. :func:`hd95` and :func:`assd` reduce each direction separately (see the
    module docstring); pooling them, ``np.concatenate(...)``, gives the pooled variants
    (MedPy's HD95, MedPy's and MONAI's ASSD). Returns ``None`` when either mask is empty (no surface to measure
    from).

    Returns
    -------
    (pred_to_target, target_to_pred) : tuple of 1D float arrays, or None

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((1, 10), bool); a[0, 2:4] = True
    >>> b = np.zeros((1, 10), bool); b[0, 5:7] = True
    >>> [d.tolist() for d in surface_distances(a, b)]
    [[3.0, 2.0], [2.0, 3.0]]
    """
    pred = as_binary_mask(pred, "pred")
    target = as_binary_mask(target, "target")
    check_same_shape(pred, target, "pred", "target")
    spacing = as_spacing(spacing, pred.ndim)
    if not pred.any() or not target.any():
        return None
    pred_surface = boundary_set(pred, image_edge=True)
    target_surface = boundary_set(target, image_edge=True)
    to_target = ndimage.distance_transform_edt(~target_surface, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    return to_target[pred_surface], to_pred[target_surface]


def hd95(pred, target, spacing=None) -> float:
    r"""95th-percentile Hausdorff distance in millimetres: the larger of the two directed 95th percentiles.

    .. math:: \mathrm{HD95} = \max\big(P_{95}\{d(s, \partial G)\}_{s \in \partial C},
                                        P_{95}\{d(g, \partial C)\}_{g \in \partial G}\big)

    where :math:`\partial C` and :math:`\partial G` are the surfaces of the prediction
    and the truth and :math:`d` the distance to the nearest voxel of the other surface
    (:func:`surface_distances`). This is MONAI's
    ``compute_hausdorff_distance(percentile=95)``; MedPy's ``hd95`` instead takes the
    95th percentile of both directions pooled, which a one-sided outlier can hide in
    (module docstring). Both empty: 0.0; exactly one empty: the image diagonal in mm
    (worst case).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((1, 10), bool); a[0, 2] = True
    >>> b = np.zeros((1, 10), bool); b[0, 5] = True
    >>> hd95(a, b, spacing=(1.0, 0.5))
    1.5

    A square, and a prediction with the same square plus a far fragment of false
    positives: the fragment sets the score here, and disappears from the pooled
    percentile.

    >>> truth = np.zeros((40, 40), bool); truth[5:25, 5:25] = True
    >>> pred = truth.copy(); pred[33:36, 33:36] = True
    >>> round(hd95(pred, truth), 2)
    14.1
    >>> pooled = np.concatenate(surface_distances(pred, truth))
    >>> round(float(np.percentile(pooled, 95)), 2)
    0.64
    """
    return _surface_metric(pred, target, spacing, lambda a, b: max(np.percentile(a, 95), np.percentile(b, 95)))


def assd(pred, target, spacing=None) -> float:
    r"""Average symmetric surface distance in millimetres: the mean of the two directed means.

    .. math:: \mathrm{ASSD} = \tfrac12 \big(\operatorname{mean}_{s \in \partial C} d(s, \partial G)
                                      + \operatorname{mean}_{g \in \partial G} d(g, \partial C)\big)

    Each direction weighs one half whatever the number of voxels on each surface. MedPy
    (0.5) and MONAI (``symmetric=True``) pool both directions into one mean instead, so
    that the surface with more voxels weighs more (module docstring). Both empty: 0.0;
    exactly one empty: the image diagonal in mm.

    >>> import numpy as np
    >>> a = np.zeros((1, 10), bool); a[0, 2:4] = True
    >>> b = np.zeros((1, 10), bool); b[0, 5:7] = True
    >>> assd(a, b)
    2.5

    With the square and the far fragment of :func:`hd95`'s example, the pooled mean is
    larger here, because the prediction's surface (with the fragment) has more voxels:

    >>> truth = np.zeros((40, 40), bool); truth[5:25, 5:25] = True
    >>> pred = truth.copy(); pred[33:36, 33:36] = True
    >>> round(assd(pred, truth), 3)
    0.675
    >>> round(float(np.concatenate(surface_distances(pred, truth)).mean()), 3)
    0.708
    """
    return _surface_metric(pred, target, spacing, lambda a, b: (a.mean() + b.mean()) / 2)


def _surface_metric(pred, target, spacing, reduce: Callable[[np.ndarray, np.ndarray], float]) -> float:
    """``reduce`` the two directed surface distances; the documented values when a mask is empty."""
    distances = surface_distances(pred, target, spacing)
    if distances is not None:
        return float(reduce(*distances))
    pred = np.asarray(pred, bool)
    if not pred.any() and not np.asarray(target, bool).any():
        return 0.0
    return _diagonal(pred.shape, as_spacing(spacing, pred.ndim))


def per_class(
    metric: Callable[..., float],
    pred,
    target,
    num_classes: int,
    classes: Sequence[int] | None = None,
    **kwargs,
) -> np.ndarray:
    """Apply a binary metric to each class of two label images (one-vs-all).

    Parameters
    ----------
    metric : callable
        Any binary metric of this module, e.g. :func:`dice_score` or :func:`hd95`.
    pred, target : array_like of int, same shape
        Label images with values in ``[0, num_classes)``.
    num_classes : int
    classes : sequence of int, optional
        Classes to score (default all).
    **kwargs
        Passed on to ``metric`` (``mask=`` or ``spacing=``).

    Returns
    -------
    ndarray of float, one value per chosen class

    Examples
    --------
    >>> per_class(dice_score, [[0, 1, 2, 2]], [[0, 1, 1, 2]], 3).tolist()
    [1.0, 0.6666666666666666, 0.6666666666666666]
    """
    pred = as_label_image(pred, num_classes, "pred", ndims=(1, 2, 3))
    target = as_label_image(target, num_classes, "target", ndims=(1, 2, 3))
    check_same_shape(pred, target, "pred", "target")
    chosen = check_classes(classes, num_classes)
    if chosen is None:
        chosen = range(num_classes)
    return np.array([metric(pred == k, target == k, **kwargs) for k in chosen], dtype=float)


def dice_counts(pred_labels, target_labels, num_classes: int, roi=None):
    """Per image and class, the overlap ``|P and T|`` and the total ``|P| + |T|``: two ``(B, K)`` tensors.

    The counts behind :func:`batch_dice` (and :func:`pooled_dice`), on the tensors' device.

    >>> import torch
    >>> dice_counts(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 1, 0]]), 2)
    (tensor([[1., 1.]]), tensor([[3., 3.]]))
    """
    import torch

    tensors = {"pred_labels": pred_labels, "target_labels": target_labels, "roi": roi}
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor) and not (name == "roi" and value is None):
            raise TypeError(
                f"{name} must be a torch tensor (batch_dice works on the tensors' device; use dice_score or "
                f"per_class for NumPy arrays), got {type(value).__name__}"
            )
    check_num_classes(num_classes)
    if pred_labels.shape != target_labels.shape:
        raise ValueError(
            f"pred_labels and target_labels must have the same shape, "
            f"got {tuple(pred_labels.shape)} and {tuple(target_labels.shape)}"
        )
    classes = torch.arange(num_classes, device=pred_labels.device).view(1, -1, *([1] * (pred_labels.ndim - 1)))
    pred = (pred_labels.unsqueeze(1) == classes).flatten(2)
    target = (target_labels.unsqueeze(1) == classes).flatten(2)
    if roi is not None:
        inside = roi.unsqueeze(1).flatten(2).bool()
        pred, target = pred & inside, target & inside
    return (pred & target).sum(-1).float(), pred.sum(-1).float() + target.sum(-1).float()


def batch_dice(pred_labels, target_labels, num_classes: int, roi=None):
    """Dice per image and class of label tensors, on their device: a ``(B, K)`` tensor.

    For learning curves during training, without moving predictions to the CPU.
    ``pred_labels`` and ``target_labels`` are integer tensors ``(B, *spatial)``;
    ``roi`` an optional boolean tensor of the same shape. A class absent from both the
    prediction and the truth of an image scores 1, as in :func:`dice_score`.

    >>> import torch
    >>> batch_dice(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 1, 0]]), 2)
    tensor([[0.6667, 0.6667]])
    """
    import torch

    overlap, total = dice_counts(pred_labels, target_labels, num_classes, roi)
    return torch.where(total > 0, 2 * overlap / total.clamp(min=1), torch.ones_like(total))


def pooled_dice(overlap, total):
    """The Dice of voxels pooled over many images, per class, from the summed ``overlap`` (|P and T|)
    and ``total`` (|P| + |T|) of each class: ``2 overlap / total`` (1 where a class is nowhere).

    Unlike the mean of per-image Dice, an image where the truth is empty does not swing the
    score between 0 and 1: its false positives count like any other.

    >>> import torch
    >>> pooled_dice(torch.tensor([0.0, 30.0]), torch.tensor([0.0, 80.0]))
    tensor([1.0000, 0.7500])
    """
    import torch

    return torch.where(total > 0, 2 * overlap / total.clamp(min=1e-12), torch.ones_like(total))


def class_labels(scores):
    """The class of every voxel of ``scores`` ``(B, K, *spatial)``: ``scores.argmax(1)``, computed fast.

    Equal to ``torch.argmax(scores, dim=1)`` (the first class wins a tie), for
    probabilities, logits or one-hot targets, on their device. PyTorch's ``argmax``
    along the channel axis of a contiguous tensor walks memory with a stride of one
    image per step and is 20-200x slower on the CPU than this loop over channels, which
    compares whole images (``benchmarks/run_time.py`` shows what it saves in a run).

    >>> import torch
    >>> class_labels(torch.tensor([[[0.2, 0.5, 0.7]], [[0.8, 0.5, 0.3]]]).unsqueeze(0))
    tensor([[[1, 0, 0]]])
    """
    import torch

    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"scores must be a torch tensor (B, K, *spatial), got {type(scores).__name__}")
    if scores.ndim < 2 or scores.shape[1] < 1:
        raise ValueError(f"scores must have shape (B, K, *spatial) with K >= 1, got {tuple(scores.shape)}")
    classes = scores.shape[1]
    if classes == 2:
        return (scores[:, 1] > scores[:, 0]).long()  # strictly: a tie keeps the lower class, as argmax does
    best = scores[:, 0]
    labels = torch.zeros(best.shape, dtype=torch.long, device=scores.device)
    for k in range(1, classes):
        labels.masked_fill_(scores[:, k] > best, k)
        if k < classes - 1:
            best = torch.maximum(best, scores[:, k])
    return labels
