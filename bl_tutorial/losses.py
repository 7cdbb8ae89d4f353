r"""The boundary loss and the regional losses it is paired with (the *loss* chapters).

Every loss takes softmax probabilities ``probs`` of shape ``(B, K, *spatial)`` (2D or 3D
spatial axes) and either one-hot targets of the same shape or, for the boundary loss,
the signed distance maps of :mod:`bl_tutorial.distance`. Each has a functional form and a
thin :class:`torch.nn.Module` wrapper, and checks its input at the top.

* :func:`boundary_loss` - :math:`\langle c, \phi \rangle` (eq. 4), Kervadec et al. 2019.
* :func:`cross_entropy` - eq. 5.
* :func:`generalized_dice_loss` - eq. 6, Sudre et al. 2017.
* :func:`focal_loss` - eq. 7, Lin et al. 2017.
* :func:`dice_loss` - the soft Dice loss, 1 - DSC.

Their combination :math:`L_R + \alpha L_B` (eq. 8), the alpha schedules and the named
recipes (``"gdl+bl"``, ...) are in :mod:`bl_tutorial.combined`.

Losses are computed in float32 even when the network runs in half precision (float64
inputs stay float64, so that ``torch.autograd.gradcheck`` applies). Wrong types raise
``TypeError``, wrong values ``ValueError``; ``validate=False`` skips the checks for
callers that have made them already (:class:`CombinedLoss` does, once per step).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from bl_tutorial._validation import check_choice, check_classes, check_number

Reduction = Literal["mean", "sum"]
Weighting = Literal["sudre", "report"]
REDUCTIONS = ("mean", "sum")
WEIGHTINGS = ("sudre", "report")
SIMPLEX_TOLERANCE = 1e-3
"""How far the class probabilities of a voxel may sum from 1 (float16 rounding included)."""
EPS = 1e-10

__all__ = [
    "boundary_loss",
    "cross_entropy",
    "generalized_dice_loss",
    "focal_loss",
    "dice_loss",
    "BoundaryLoss",
    "CrossEntropyLoss",
    "GeneralizedDiceLoss",
    "FocalLoss",
    "DiceLoss",
]


# --------------------------------------------------------------------------- validation
# Each public loss checks its inputs once, at the top (``validate=True``). CombinedLoss
# checks the inputs it shares with its parts once and calls them with validate=False, so
# that a training step pays for one set of checks, not one per part.
def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _check_tensor(x, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, K, *spatial), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{name} must have shape (B, K, *spatial) with 1 to 3 spatial axes, got shape {_shape(x)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must hold at least one image with at least one voxel, got shape {_shape(x)}")
    return x


def _check_probs(probs, name: str = "probs") -> Tensor:
    """Probabilities must be finite, in [0, 1] and sum to 1 over the class axis."""
    probs = _check_tensor(probs, name)
    if probs.shape[1] < 2:
        raise ValueError(
            f"{name} must hold K >= 2 softmax channels on axis 1, got shape {_shape(probs)}; "
            "for a one-channel sigmoid output p use torch.cat([1 - p, p], dim=1)"
        )
    with torch.no_grad():
        p = probs.detach()
        finite = torch.isfinite(p).all()
        in_range = ((p >= 0) & (p <= 1)).all()
        tolerance = max(SIMPLEX_TOLERANCE, 4 * torch.finfo(p.dtype).eps)  # bfloat16 rounds more coarsely
        on_simplex = ((p.sum(1) - 1).abs() <= tolerance).all()
        flags = torch.stack([finite, in_range, on_simplex]).tolist()  # one device sync
    if not flags[0]:
        raise ValueError(f"{name} must be finite, but it contains NaN or inf")
    if not flags[1]:
        raise ValueError(
            f"{name} must be probabilities in [0, 1] (apply softmax over axis 1 to the logits), "
            f"got values from {p.min().item():.4g} to {p.max().item():.4g}"
        )
    if not flags[2]:
        worst = (p.sum(1) - 1).abs().max().item()
        raise ValueError(
            f"{name} must sum to 1 over the class axis 1 (softmax), but a voxel's sum is off by {worst:.4g}"
        )
    return probs


def _check_onehot(target, probs: Tensor, name: str = "target") -> Tensor:
    if not isinstance(target, Tensor):
        raise TypeError(f"{name} must be a one-hot torch.Tensor, got {type(target).__name__}")
    if _shape(target) != _shape(probs):
        raise ValueError(
            f"{name} must have the same shape as probs {_shape(probs)} (one-hot over axis 1), got {_shape(target)}"
        )
    with torch.no_grad():
        t = target.detach()
        binary = ((t == 0) | (t == 1)).all()
        one_per_voxel = (t.sum(1) == 1).all()
        flags = torch.stack([binary, one_per_voxel]).tolist()
    if not flags[0]:
        raise ValueError(f"{name} must be one-hot (values 0 or 1), got other values")
    if not flags[1]:
        raise ValueError(f"{name} must be one-hot: exactly one class per voxel along axis 1")
    return target


def _check_dist_maps(dist_maps, probs: Tensor) -> Tensor:
    dist_maps = _check_tensor(dist_maps, "dist_maps")
    if _shape(dist_maps) != _shape(probs):
        raise ValueError(f"dist_maps must have the same shape as probs {_shape(probs)}, got {_shape(dist_maps)}")
    if not bool(torch.isfinite(dist_maps).all()):
        raise ValueError("dist_maps must be finite, but it contains NaN or inf")
    return dist_maps


def _check_reduction(reduction) -> str:
    return check_choice(reduction, "reduction", REDUCTIONS)


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float32 for half-precision inputs, else the input's own dtype (float64 stays float64)."""
    return torch.promote_types(x.dtype, torch.float32)


def _select(x: Tensor, index: list[int] | None) -> Tensor:
    chosen = x if index is None else x[:, index]
    return chosen.to(_compute_dtype(x))


def _reduce(per_voxel: Tensor, reduction: str) -> Tensor:
    """``"mean"`` over every element; ``"sum"`` over all but the batch, then batch mean."""
    if reduction == "mean":
        return per_voxel.mean()
    return per_voxel.sum() / per_voxel.shape[0]


def _normalise_labelled(terms: Tensor, target: Tensor, reduction: str) -> Tensor:
    """Sum of per-voxel terms over the batch, divided by the voxels labelled with the chosen
    classes (``"mean"``, the official code's normaliser) or by the batch size (``"sum"``)."""
    if reduction == "mean":
        return terms.sum() / target.sum().clamp(min=EPS)
    return terms.sum() / terms.shape[0]


def _check_regional(probs, target, classes) -> list[int] | None:
    """The checks every regional loss makes: probabilities, one-hot target, class selection."""
    probs = _check_probs(probs)
    _check_onehot(target, probs)
    return check_classes(classes, probs.shape[1])


# --------------------------------------------------------------------------- functional
def boundary_loss(
    probs: Tensor,
    dist_maps: Tensor,
    classes: Sequence[int] | None = None,
    reduction: Reduction = "mean",
    *,
    validate: bool = True,
) -> Tensor:
    r"""Boundary loss :math:`L_B = \langle c, \phi \rangle` (eq. 4), Kervadec et al. 2019.

    .. math:: L_B = \frac{1}{B}\sum_{b} \sum_{k \in \text{classes}} \sum_i c_{b,k,i}\, \phi_{b,k,i}

    With ``reduction="sum"`` this is the book's inner product: summed over the chosen
    classes and voxels, averaged over the batch. ``reduction="mean"`` divides further by
    (number of classes x number of voxels), the official code's normalisation; the weight
    alpha of eq. 8 then does not depend on the image size.

    The loss is linear in ``probs``: its gradient is ``dist_maps`` (over the normaliser),
    so voxels outside the object are pushed down and voxels inside pushed up, in
    proportion to their distance from the contour. It is negative whenever probability
    mass sits inside the object, and its minimum over binary segmentations is reached at
    the ground truth.

    Parameters
    ----------
    probs : Tensor, shape (B, K, *spatial)
        Softmax probabilities.
    dist_maps : Tensor, shape (B, K, *spatial)
        Signed distance maps of the ground truth (:func:`bl_tutorial.distance.class_distance_maps`).
    classes : sequence of int, optional
        Channels to include; ``None`` (default) includes all. The official code uses
        ``[1]`` for binary tasks and all four classes for ACDC.
    reduction : {"mean", "sum"}
    validate : bool, keyword-only
        Check the inputs (default). ``False`` skips the checks, for callers that made them.

    Returns
    -------
    Tensor, scalar

    Examples
    --------
    >>> import torch
    >>> probs = torch.tensor([[[[0.9, 0.2]], [[0.1, 0.8]]]])          # (1, 2, 1, 2)
    >>> phi = torch.tensor([[[[-1.0, 1.0]], [[1.0, -1.0]]]])
    >>> boundary_loss(probs, phi, classes=[1], reduction="sum")
    tensor(-0.7000)
    """
    if validate:
        probs = _check_probs(probs)
        dist_maps = _check_dist_maps(dist_maps, probs)
        classes = check_classes(classes, probs.shape[1])
        _check_reduction(reduction)
    product = _select(probs, classes) * _select(dist_maps, classes)
    return _reduce(product, reduction)


def cross_entropy(
    probs: Tensor,
    target: Tensor,
    classes: Sequence[int] | None = None,
    reduction: Reduction = "mean",
    eps: float = EPS,
    *,
    validate: bool = True,
) -> Tensor:
    r"""Cross-entropy (eq. 5) between softmax probabilities and one-hot targets.

    .. math:: L_{CE} = -\sum_{k} \langle g_k, \log c_k \rangle

    which for two classes is the book's
    :math:`-\langle g, \log c\rangle - \langle 1 - g, \log(1 - c)\rangle`.

    ``"mean"`` divides the sum by the number of voxels whose true class is among
    ``classes`` (the official code's normalisation; with every class, that is every voxel
    of the batch). ``"sum"`` sums over voxels and averages over the batch.

    Parameters
    ----------
    probs, target : Tensor, shape (B, K, *spatial)
        Softmax probabilities and one-hot ground truth.
    classes : sequence of int, optional
        Classes whose terms are included (default all).
    reduction : {"mean", "sum"}
    eps : float
        Added inside the logarithm to keep it finite.
    validate : bool, keyword-only
        Check the inputs (default).

    Examples
    --------
    >>> import torch
    >>> probs = torch.tensor([[[0.5, 0.9], [0.5, 0.1]]])   # (1, 2, 2)
    >>> target = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    >>> round(float(cross_entropy(probs, target)), 4)       # (log 2 + log(1/0.9)) / 2
    0.3993
    """
    if validate:
        classes = _check_regional(probs, target, classes)
        _check_reduction(reduction)
    g = _select(target, classes)
    terms = -(g * torch.log(_select(probs, classes) + eps))
    return _normalise_labelled(terms, g, reduction)


def focal_loss(
    probs: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    classes: Sequence[int] | None = None,
    reduction: Reduction = "mean",
    eps: float = EPS,
    *,
    validate: bool = True,
) -> Tensor:
    r"""Focal loss (eq. 7), Lin et al. 2017: cross-entropy that down-weights easy voxels.

    .. math:: L_{FL} = -\sum_k \langle g_k, (1 - c_k)^\gamma \log c_k \rangle

    For two classes this is eq. 7 of the book. ``gamma = 0`` gives :func:`cross_entropy`;
    larger ``gamma`` shrinks the loss of voxels already classified with confidence.

    Parameters
    ----------
    probs, target : Tensor, shape (B, K, *spatial)
    gamma : float
        Focusing parameter, >= 0. The factor :math:`(1 - c)^\gamma` is evaluated with
        :math:`1 - c` kept above ``eps``, so that its gradient stays finite where a voxel
        is classified with certainty (:math:`c = 1`) and :math:`0 < \gamma < 1`.
    classes, reduction, eps, validate
        As in :func:`cross_entropy`.

    Examples
    --------
    >>> import torch
    >>> probs = torch.tensor([[[0.5, 0.9], [0.5, 0.1]]])
    >>> target = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    >>> bool(torch.isclose(focal_loss(probs, target, gamma=0), cross_entropy(probs, target)))
    True
    """
    if validate:
        gamma = check_number(gamma, "gamma", minimum=0)
        classes = _check_regional(probs, target, classes)
        _check_reduction(reduction)
    p, g = _select(probs, classes), _select(target, classes)
    terms = -(g * (1 - p).clamp(min=eps).pow(gamma) * torch.log(p + eps))
    return _normalise_labelled(terms, g, reduction)


def generalized_dice_loss(
    probs: Tensor,
    target: Tensor,
    classes: Sequence[int] | None = None,
    weighting: Weighting = "sudre",
    eps: float = EPS,
    *,
    validate: bool = True,
) -> Tensor:
    r"""Generalised Dice loss (eq. 6), Sudre et al. 2017, averaged over the batch.

    For each image, with class weights :math:`w_k`:

    .. math::
        L_{GDL} = 1 - 2\,\frac{\sum_k w_k \langle g_k, c_k \rangle}
                                {\sum_k w_k \langle g_k + c_k, \mathbf{1} \rangle}

    ``weighting="sudre"`` (default, as Sudre et al. and the official code):
    :math:`w_k = 1 / (\sum_i g_{k,i} + \epsilon)^2`, the inverse *squared* class size.
    ``weighting="report"``: :math:`w_k = \|g_k\|_F^{-2} = 1/\sum_i g_{k,i}`, which is what
    the seed report's notation literally gives for a binary mask (inverse class size).

    With Sudre's weights a class absent from an image gets a weight of
    :math:`1/\epsilon^2`, so any probability placed on it dominates the loss; this is the
    official behaviour.

    Parameters
    ----------
    probs, target : Tensor, shape (B, K, *spatial)
    classes : sequence of int, optional
        Classes in the sums (default all; the official code uses both classes in binary
        tasks).
    weighting : {"sudre", "report"}
    eps : float
    validate : bool, keyword-only
        Check the inputs (default).

    Examples
    --------
    >>> import torch
    >>> target = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]]])  # (1, 2, 4)
    >>> round(float(generalized_dice_loss(target, target)), 6)                   # perfect
    0.0
    """
    if validate:
        check_choice(weighting, "weighting", WEIGHTINGS)
        classes = _check_regional(probs, target, classes)
    p = _select(probs, classes).flatten(2)
    g = _select(target, classes).flatten(2)
    size = g.sum(-1)  # (B, K)
    weights = 1.0 / (size + eps) ** (2 if weighting == "sudre" else 1)
    intersection = (weights * (p * g).sum(-1)).sum(-1)
    union = (weights * (p.sum(-1) + size)).sum(-1)
    per_image = 1.0 - 2.0 * (intersection + eps) / (union + eps)
    return per_image.mean()


def dice_loss(
    probs: Tensor,
    target: Tensor,
    classes: Sequence[int] | None = None,
    smooth: float = 1e-6,
    *,
    validate: bool = True,
) -> Tensor:
    r"""Soft Dice loss, :math:`1 - \mathrm{DSC}`, per image and class, then averaged.

    .. math:: L_{Dice} = 1 - \frac{1}{B\,|K|}\sum_{b,k}
              \frac{2\langle g_{b,k}, c_{b,k}\rangle + s}{\langle g_{b,k} + c_{b,k}, \mathbf{1}\rangle + s}

    ``smooth`` (:math:`s`, which must be > 0) makes a class absent from both prediction
    and truth score 1 (with :math:`s = 0` that ratio would be 0/0).

    Examples
    --------
    >>> import torch
    >>> target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> round(float(dice_loss(target, target)), 6)
    0.0
    """
    if validate:
        check_number(smooth, "smooth", minimum=0, strict=True)
        classes = _check_regional(probs, target, classes)
    p = _select(probs, classes).flatten(2)
    g = _select(target, classes).flatten(2)
    dice = (2 * (p * g).sum(-1) + smooth) / (p.sum(-1) + g.sum(-1) + smooth)
    return 1.0 - dice.mean()


# --------------------------------------------------------------------------- modules
def _class_list(classes) -> list[int] | None:
    """A module's class selection: checked now, and against the number of channels at each call."""
    return check_classes(classes, None)


class _Loss(nn.Module):
    """Base of the loss modules: ``forward(probs, second, *, validate=True)``."""

    def forward(self, probs: Tensor, second: Tensor, *, validate: bool = True) -> Tensor:
        raise NotImplementedError


class BoundaryLoss(_Loss):
    """Module form of :func:`boundary_loss`; ``forward(probs, dist_maps)``."""

    def __init__(self, classes: Sequence[int] | None = None, reduction: Reduction = "mean"):
        super().__init__()
        self.classes = _class_list(classes)
        self.reduction = _check_reduction(reduction)

    def forward(self, probs: Tensor, dist_maps: Tensor, *, validate: bool = True) -> Tensor:
        return boundary_loss(probs, dist_maps, self.classes, self.reduction, validate=validate)


class CrossEntropyLoss(_Loss):
    """Module form of :func:`cross_entropy` on probabilities; ``forward(probs, target)``."""

    def __init__(self, classes: Sequence[int] | None = None, reduction: Reduction = "mean"):
        super().__init__()
        self.classes = _class_list(classes)
        self.reduction = _check_reduction(reduction)

    def forward(self, probs: Tensor, target: Tensor, *, validate: bool = True) -> Tensor:
        return cross_entropy(probs, target, self.classes, self.reduction, validate=validate)


class FocalLoss(_Loss):
    """Module form of :func:`focal_loss`; ``forward(probs, target)``."""

    def __init__(self, gamma: float = 2.0, classes: Sequence[int] | None = None, reduction: Reduction = "mean"):
        super().__init__()
        self.gamma = check_number(gamma, "gamma", minimum=0)
        self.classes = _class_list(classes)
        self.reduction = _check_reduction(reduction)

    def forward(self, probs: Tensor, target: Tensor, *, validate: bool = True) -> Tensor:
        return focal_loss(probs, target, self.gamma, self.classes, self.reduction, validate=validate)


class GeneralizedDiceLoss(_Loss):
    """Module form of :func:`generalized_dice_loss`; ``forward(probs, target)``."""

    def __init__(self, classes: Sequence[int] | None = None, weighting: Weighting = "sudre"):
        super().__init__()
        self.classes = _class_list(classes)
        self.weighting = check_choice(weighting, "weighting", WEIGHTINGS)

    def forward(self, probs: Tensor, target: Tensor, *, validate: bool = True) -> Tensor:
        return generalized_dice_loss(probs, target, self.classes, self.weighting, validate=validate)


class DiceLoss(_Loss):
    """Module form of :func:`dice_loss`; ``forward(probs, target)``."""

    def __init__(self, classes: Sequence[int] | None = None, smooth: float = 1e-6):
        super().__init__()
        self.classes = _class_list(classes)
        self.smooth = check_number(smooth, "smooth", minimum=0, strict=True)

    def forward(self, probs: Tensor, target: Tensor, *, validate: bool = True) -> Tensor:
        return dice_loss(probs, target, self.classes, self.smooth, validate=validate)
