r"""The combination :math:`L = w_R L_R + w_B L_B` (eq. 8), its alpha schedules, and named recipes.

Kervadec et al. pair the boundary loss with a regional loss: :class:`CombinedLoss` adds
them with weights that an alpha schedule sets per epoch:

* :class:`ConstantAlpha` - :math:`L_R + \alpha L_B` with a fixed alpha (the report: 0.05);
* :class:`LinearAlpha` - alpha grows linearly, the regional weight stays 1;
* :class:`RebalanceAlpha` - the official code's "steal" schedule, which moves weight from
  the regional to the boundary term.

:class:`LossSpec` names a combination in a few characters (``"gdl+bl"``, ``"ce"``,
``"bl"``) and builds it; the experiments and the command line use those names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from bl_tutorial._validation import check_choice, check_classes, check_number
from bl_tutorial.losses import (
    BoundaryLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    GeneralizedDiceLoss,
    _check_dist_maps,
    _check_onehot,
    _check_probs,
    _compute_dtype,
    _Loss,
)

REGIONAL_LOSSES = {"ce": CrossEntropyLoss, "gdl": GeneralizedDiceLoss, "focal": FocalLoss, "dice": DiceLoss}
"""The regional losses a recipe can name."""
Regional = Literal["ce", "gdl", "focal", "dice"]
Schedule = Literal["constant", "linear", "rebalance"]

__all__ = [
    "CombinedLoss",
    "LossParts",
    "ConstantAlpha",
    "LinearAlpha",
    "RebalanceAlpha",
    "alpha_schedule",
    "SCHEDULES",
    "LossSpec",
    "REGIONAL_LOSSES",
]


# --------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class ConstantAlpha:
    """:math:`L = L_R + \\alpha L_B` with a fixed alpha (eq. 8); the report uses 0.05."""

    alpha: float = 0.05

    def __post_init__(self):
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")

    def weights(self, epoch: int) -> tuple[float, float]:
        """(regional weight, boundary weight) for ``epoch`` (0-based)."""
        return 1.0, float(self.alpha)


@dataclass(frozen=True)
class LinearAlpha:
    """Alpha grows linearly: ``min(stop, start + step * epoch)``; the regional weight stays 1."""

    start: float = 0.01
    step: float = 0.01
    stop: float = 1.0

    def __post_init__(self):
        if not (self.start >= 0 and self.step >= 0 and self.stop >= self.start):
            raise ValueError(f"LinearAlpha needs 0 <= start <= stop and step >= 0, got {self}")

    def weights(self, epoch: int) -> tuple[float, float]:
        return 1.0, float(min(self.stop, self.start + self.step * epoch))


@dataclass(frozen=True)
class RebalanceAlpha:
    """The official code's "steal" schedule: weight moves from the regional to the boundary term.

    Starting from weights ``(1, start)``, after each epoch the regional weight becomes
    ``max(floor, w_R - step)`` and the boundary weight ``w_B + step``, so at epoch ``e``:
    ``w_R = max(floor, 1 - step*e)`` and ``w_B = start + step*e``. The paper writes it as
    :math:`\\alpha L_R + (1 - \\alpha) L_B` with alpha falling by 0.01 per epoch.
    """

    start: float = 0.01
    step: float = 0.01
    floor: float = 0.1

    def __post_init__(self):
        if not (self.start >= 0 and self.step >= 0 and 0 <= self.floor <= 1):
            raise ValueError(f"RebalanceAlpha needs start >= 0, step >= 0, 0 <= floor <= 1, got {self}")

    def weights(self, epoch: int) -> tuple[float, float]:
        return max(self.floor, 1.0 - self.step * epoch), self.start + self.step * epoch


SCHEDULES = {"constant": ConstantAlpha, "linear": LinearAlpha, "rebalance": RebalanceAlpha}


def alpha_schedule(name: str, **params) -> ConstantAlpha | LinearAlpha | RebalanceAlpha:
    """Build a schedule by name: ``"constant"``, ``"linear"`` or ``"rebalance"``.

    >>> alpha_schedule("rebalance").weights(5)
    (0.95, 0.060000000000000005)
    """
    check_choice(name, "schedule", tuple(SCHEDULES))
    return SCHEDULES[name](**params)


class LossParts(NamedTuple):
    """What :class:`CombinedLoss` returns: the total and each part (unweighted and weights)."""

    total: Tensor
    regional: Tensor
    boundary: Tensor
    regional_weight: float
    boundary_weight: float


class CombinedLoss(nn.Module):
    r"""Regional plus boundary loss, :math:`w_R(e)\,L_R + w_B(e)\,L_B` (eq. 8).

    ``forward(probs, target, dist_maps, epoch=0)`` returns :class:`LossParts`; the
    weights come from ``schedule.weights(epoch)``. With :class:`ConstantAlpha` this is
    the report's :math:`L_R + \alpha L_B`. The inputs are checked once for all parts
    (``validate=False`` skips that, for a caller that has checked them). ``boundary=None`` trains the regional loss
    alone and ``regional=None`` the boundary loss alone (the missing part is reported
    as 0 with weight 0).

    Examples
    --------
    >>> import torch
    >>> loss = CombinedLoss(GeneralizedDiceLoss(), BoundaryLoss(classes=[1]), ConstantAlpha(0.05))
    >>> target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> phi = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    >>> loss(target, target, phi).total
    tensor(0.)
    """

    def __init__(
        self,
        regional: nn.Module | None,
        boundary: BoundaryLoss | None = None,
        schedule: ConstantAlpha | LinearAlpha | RebalanceAlpha | None = None,
    ):
        super().__init__()
        if regional is None and boundary is None:
            raise ValueError("CombinedLoss needs a regional loss, a boundary loss, or both; got neither")
        self.regional = regional
        self.boundary = boundary
        self.schedule = schedule if schedule is not None else ConstantAlpha(0.05)

    def forward(
        self, probs: Tensor, target: Tensor, dist_maps: Tensor | None = None, epoch: int = 0, *, validate: bool = True
    ) -> LossParts:
        w_regional, w_boundary = self.schedule.weights(epoch)
        if validate:  # once for every part
            _check_probs(probs)
            _check_onehot(target, probs)
            if self.boundary is not None:
                if dist_maps is None:
                    raise ValueError("dist_maps must be given when CombinedLoss has a boundary term")
                _check_dist_maps(dist_maps, probs)
            for part in (self.regional, self.boundary):
                if part is not None and getattr(part, "classes", None) is not None:
                    check_classes(part.classes, probs.shape[1], f"{type(part).__name__}.classes")
        zero = torch.zeros((), device=probs.device, dtype=_compute_dtype(probs))
        if self.regional is None:
            regional, w_regional = zero, 0.0
        elif isinstance(self.regional, _Loss):
            regional = self.regional(probs, target, validate=False)
        else:  # a module of the reader's own
            regional = self.regional(probs, target)
        if self.boundary is None:  # the regional loss alone, at full weight whatever the schedule
            boundary, w_boundary, w_regional = zero, 0.0, 1.0
        else:
            boundary = self.boundary(probs, dist_maps, validate=False)
        total = w_regional * regional + w_boundary * boundary
        return LossParts(total, regional, boundary, w_regional, w_boundary)


@dataclass(frozen=True)
class LossSpec:
    """What to minimise: ``regional`` ("ce", "gdl", "focal", "dice" or None) plus, if
    ``boundary``, the boundary loss on ``boundary_classes`` (None = all) weighted by an
    alpha schedule: "constant" with ``alpha`` (default 0.05 with a regional loss, 1 for
    the boundary loss alone), "linear" or "rebalance". Only a boundary term under the
    constant schedule uses ``alpha``; elsewhere it must stay None (the other schedules
    set their own weights).

    Build one from a short name with :meth:`parse`: ``"gdl+bl"``, ``"ce"``, ``"bl"``.
    """

    regional: Regional | None
    boundary: bool
    alpha: float | None = None
    schedule: Schedule = "constant"
    boundary_classes: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.regional is not None:
            check_choice(self.regional, "regional", tuple(REGIONAL_LOSSES), " or None")
        check_choice(self.schedule, "schedule", tuple(SCHEDULES))
        if self.regional is None and not self.boundary:
            raise ValueError("a LossSpec needs a regional loss, the boundary loss, or both")
        if not self.boundary and self.schedule != "constant":
            raise ValueError(
                f"a schedule sets the weight of the boundary term; {self.regional!r} has none "
                f"(got schedule={self.schedule!r})"
            )
        if self.alpha is not None and not (self.boundary and self.schedule == "constant"):
            raise ValueError(
                "alpha weighs the boundary term under the constant schedule only; "
                f"{self.name!r} with the {self.schedule} schedule does not use it (got alpha={self.alpha})"
            )
        if self.boundary and self.schedule == "constant" and self.alpha is None:  # the defaults
            object.__setattr__(self, "alpha", 0.05 if self.regional else 1.0)
        if self.alpha is not None:
            object.__setattr__(self, "alpha", check_number(self.alpha, "alpha", minimum=0))
        if self.boundary_classes is not None:
            object.__setattr__(self, "boundary_classes", tuple(check_classes(self.boundary_classes, None)))

    @classmethod
    def parse(cls, name: str, **options) -> LossSpec:
        """``"gdl+bl"`` -> GDL + alpha BL; ``"ce"`` -> CE alone; ``"bl"`` -> boundary loss alone.

        A schedule may follow an ``@``: ``"gdl+bl@rebalance"`` (it overrides ``schedule=``).

        >>> LossSpec.parse("gdl+bl@rebalance").schedule
        'rebalance'
        """
        if not isinstance(name, str):
            raise TypeError(f"a loss name must be a string such as 'gdl+bl', got {name!r}")
        name, _, schedule = name.lower().partition("@")
        if schedule:
            options["schedule"] = check_choice(schedule, "the schedule after '@'", tuple(SCHEDULES))
        parts = name.split("+")
        valid = [*REGIONAL_LOSSES, "bl"]
        if any(p not in valid for p in parts) or len(set(parts)) != len(parts):
            examples = ", ".join([*REGIONAL_LOSSES, *(f"{r}+bl" for r in REGIONAL_LOSSES), "bl", "gdl+bl@rebalance"])
            raise ValueError(f"unknown loss {name!r}; valid names: {examples}")
        regional = [p for p in parts if p != "bl"]
        if len(regional) > 1:
            raise ValueError(f"loss {name!r} names two regional losses; use one, optionally with '+bl'")
        return cls(regional[0] if regional else None, "bl" in parts, **options)

    @property
    def name(self) -> str:
        """The short name, with ``@schedule`` when the schedule is not the constant one."""
        base = "+".join(([self.regional] if self.regional else []) + (["bl"] if self.boundary else []))
        return base if self.schedule == "constant" or not self.boundary else f"{base}@{self.schedule}"

    def build(self) -> CombinedLoss:
        """The :class:`~bl_tutorial.losses.CombinedLoss` this spec describes."""
        regional = REGIONAL_LOSSES[self.regional]() if self.regional else None
        classes = None if self.boundary_classes is None else list(self.boundary_classes)
        boundary = BoundaryLoss(classes) if self.boundary else None
        params = {"alpha": self.alpha} if self.alpha is not None else {}
        return CombinedLoss(regional, boundary, alpha_schedule(self.schedule, **params))
