r"""Composing losses: :math:`L = w_R L_R + w_B L_B` (eq. 8) and its alpha schedules.

Kervadec et al. pair the boundary loss with a regional loss. This module holds every rule
about how the parts are weighted, in one place:

* **Schedules** give the two weights ``(w_R, w_B)`` as a function of :class:`Progress`,
  the fraction of training done, so that one schedule means the same thing in a 16-epoch
  and in a 200-epoch run:

  - :class:`ConstantAlpha` - :math:`L_R + \alpha L_B` with a fixed alpha (the report:
    0.05; the official author also trains with 0.01);
  - :class:`LinearAlpha` - alpha grows linearly, the regional weight stays 1;
  - :class:`RebalanceAlpha` - the official code's "steal" schedule, which moves weight
    from the regional to the boundary term (regional weight down to a floor of 0.1).

  Each progress-driven schedule has a literal form that steps per epoch whatever the run
  length (``over=None``), as the official code does.

* :class:`CombinedLoss` adds weighted regional terms and weighted boundary terms, the two
  groups weighted by the schedule, and returns the total with its named parts
  (:class:`LossParts`). Any module that returns a :class:`LossParts` (or a bare total)
  can be trained instead (:func:`as_loss_parts`).

Recipes such as ``"gdl+bl@rebalance"`` that name a combination and build it are in
:mod:`bl_tutorial.recipes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple, Union

import torch
from torch import Tensor, nn

from bl_tutorial._validation import check_choice, check_classes, check_int, check_number
from bl_tutorial.losses import (
    _check_dist_maps,
    _check_onehot,
    _check_probs,
    _compute_dtype,
    _Loss,
)

Kind = Literal["regional", "boundary"]
Update = Literal["epoch", "step"]
DEFAULT_ALPHA = 0.05
"""The weight of the boundary term next to a regional term when nothing else says (the report)."""
OFFICIAL_EPOCHS = 200
"""Length of the official MIDL runs (ISLES, WMH), over which the official 0.01-per-epoch steps were taken."""

__all__ = [
    "Progress",
    "ConstantAlpha",
    "LinearAlpha",
    "RebalanceAlpha",
    "SCHEDULES",
    "alpha_schedule",
    "LossParts",
    "as_loss_parts",
    "WeightedSum",
    "CombinedLoss",
    "DEFAULT_ALPHA",
]


# --------------------------------------------------------------------------- progress
@dataclass(frozen=True)
class Progress:
    """Where training stands: epoch ``epoch`` (0-based) of ``epochs``, step ``step`` of ``steps`` in it.

    >>> Progress(epoch=4, epochs=16).fraction("epoch"), Progress(4, 16, step=2, steps=4).fraction("step")
    (0.25, 0.28125)
    """

    epoch: int
    epochs: int | None = None
    """None: unknown (a schedule that needs the run length refuses it)."""
    step: int = 0
    steps: int = 1

    def fraction(self, update: Update = "epoch") -> float:
        """The fraction of training done at the start of this epoch (``"epoch"``) or step (``"step"``)."""
        if self.epochs is None:
            raise ValueError(
                f"this schedule follows the fraction of training done and needs the run length: "
                f"pass Progress(epoch, epochs), got epoch {self.epoch} of an unknown number"
            )
        within = self.step / self.steps if update == "step" else 0.0
        return (self.epoch + within) / self.epochs


ProgressLike = Union[Progress, int]


def _progress(progress: ProgressLike) -> Progress:
    if isinstance(progress, Progress):
        return progress
    return Progress(check_int(progress, "progress (an epoch)", minimum=0))


def _moved(step: float, over: int | None, update: Update, progress: Progress) -> float:
    """How far a schedule has moved: ``step`` per epoch of an ``over``-epoch run, or per epoch (``over=None``)."""
    if over is None:
        return step * progress.epoch
    return step * over * progress.fraction(update)


def _check_schedule(schedule, over, update) -> None:
    if over is not None:
        check_int(over, f"{type(schedule).__name__}.over", minimum=1)
    check_choice(update, f"{type(schedule).__name__}.update", ("epoch", "step"))


# --------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class ConstantAlpha:
    """:math:`L = L_R + \\alpha L_B` with a fixed alpha (eq. 8); the report uses 0.05.

    >>> ConstantAlpha(0.05).weights(Progress(3, 10))
    (1.0, 0.05)
    """

    alpha: float = DEFAULT_ALPHA

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_number(self.alpha, "alpha", minimum=0))

    def weights(self, progress: ProgressLike) -> tuple[float, float]:
        """(regional weight, boundary weight) at ``progress``."""
        return 1.0, float(self.alpha)


@dataclass(frozen=True)
class LinearAlpha:
    """Alpha grows linearly from ``start`` by ``step`` per epoch of an ``over``-epoch run, up to ``stop``.

    The regional weight stays 1. In a run of ``E`` epochs alpha grows by ``step * over / E``
    per epoch, so its value at a given fraction of training is the same whatever ``E``;
    ``over=None`` is the literal form, ``step`` per epoch. ``update="step"`` moves it at
    every optimiser step instead of once per epoch.

    >>> LinearAlpha().weights(Progress(50, 100)), LinearAlpha(over=None).weights(Progress(50, 100))
    ((1.0, 1.0), (1.0, 0.51))
    """

    start: float = 0.01
    step: float = 0.01
    stop: float = 1.0
    over: int | None = OFFICIAL_EPOCHS
    update: Update = "epoch"

    def __post_init__(self):
        if not (self.start >= 0 and self.step >= 0 and self.stop >= self.start):
            raise ValueError(f"LinearAlpha needs 0 <= start <= stop and step >= 0, got {self}")
        _check_schedule(self, self.over, self.update)

    def weights(self, progress: ProgressLike) -> tuple[float, float]:
        moved = _moved(self.step, self.over, self.update, _progress(progress))
        return 1.0, float(min(self.stop, self.start + moved))


@dataclass(frozen=True)
class RebalanceAlpha:
    """The official code's "steal" schedule: weight moves from the regional to the boundary term.

    From the weights ``(1, start)``, the regional weight falls and the boundary weight rises
    by ``step`` per epoch of an ``over``-epoch run: ``w_R = max(floor, 1 - m)`` and
    ``w_B = start + m`` once the weights have moved by ``m``. The default is the official
    MIDL trajectory (0.01 per epoch over 200 epochs: equal weights at a quarter of the run,
    the regional weight at its floor of 0.1 from 45 % of the run, ``w_B = 2`` at the end),
    stretched or shrunk to the run's length. ``over=None`` is the literal form: 0.01 per
    epoch whatever the run length, so a short run never leaves the start of the
    trajectory. The paper writes it as :math:`\\alpha L_R + (1 - \\alpha) L_B`.

    >>> RebalanceAlpha().weights(Progress(90, 200)), RebalanceAlpha().weights(Progress(9, 20))
    ((0.1, 0.91), (0.1, 0.91))
    >>> RebalanceAlpha(over=None).weights(Progress(9, 20))
    (0.91, 0.09999999999999999)
    """

    start: float = 0.01
    step: float = 0.01
    floor: float = 0.1
    over: int | None = OFFICIAL_EPOCHS
    update: Update = "epoch"

    def __post_init__(self):
        if not (self.start >= 0 and self.step >= 0 and 0 <= self.floor <= 1):
            raise ValueError(f"RebalanceAlpha needs start >= 0, step >= 0, 0 <= floor <= 1, got {self}")
        _check_schedule(self, self.over, self.update)

    def weights(self, progress: ProgressLike) -> tuple[float, float]:
        moved = _moved(self.step, self.over, self.update, _progress(progress))
        return max(self.floor, 1.0 - moved), self.start + moved

    def floor_fraction(self, epochs: int) -> float | None:
        """The fraction of a run of ``epochs`` epochs after which the regional weight is at its floor
        (None if never within the run)."""
        for epoch in range(epochs):
            if self.weights(Progress(epoch, epochs))[0] <= self.floor:
                return epoch / epochs
        return None


Schedule = Union[ConstantAlpha, LinearAlpha, RebalanceAlpha]
SCHEDULES: dict[str, type] = {"constant": ConstantAlpha, "linear": LinearAlpha, "rebalance": RebalanceAlpha}
"""The schedules a recipe can name after ``@``."""


def alpha_schedule(name: str, **params) -> Schedule:
    """Build a schedule by name: ``"constant"``, ``"linear"`` or ``"rebalance"``.

    >>> alpha_schedule("rebalance", over=None).weights(5)
    (0.95, 0.060000000000000005)
    """
    check_choice(name, "schedule", tuple(SCHEDULES))
    return SCHEDULES[name](**params)


# --------------------------------------------------------------------------- parts
class LossParts(NamedTuple):
    """What a training loss returns: the ``total`` to minimise, its named ``parts`` (unweighted),
    and the ``weights`` of the parts that have one.

    :class:`CombinedLoss` names its two groups ``"regional"`` and ``"boundary"`` (0 with
    weight 0 when absent), and each term of a group with more than one term by its name.
    """

    total: Tensor
    parts: Mapping[str, Tensor] = {}
    weights: Mapping[str, float] = {}


def as_loss_parts(output) -> LossParts:
    """A loss module's output as :class:`LossParts`: a ``LossParts`` as is, a bare tensor as the total."""
    if isinstance(output, LossParts):
        return output
    if isinstance(output, Tensor) and output.ndim == 0:
        return LossParts(output)
    raise TypeError(
        f"a training loss must return a scalar tensor or LossParts(total, parts, weights), got {type(output).__name__}"
        + (f" of shape {tuple(output.shape)}" if isinstance(output, Tensor) else "")
    )


class WeightedSum(nn.Module):
    """The sum of named terms ``weight * loss(probs, second)``; returns ``(sum, {name: value})``.

    ``terms`` maps a name to ``(weight, module)``; modules of :mod:`bl_tutorial.losses`
    are called with ``validate=False`` (the caller checked the inputs once).
    """

    def __init__(self, terms: Mapping[str, tuple[float, nn.Module]]):
        super().__init__()
        if not terms:
            raise ValueError("WeightedSum needs at least one term")
        self.names = list(terms)
        self.term_weights = [float(weight) for weight, _ in terms.values()]
        self.terms = nn.ModuleList(module for _, module in terms.values())

    def forward(self, probs: Tensor, second: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        values = {}
        for name, module in zip(self.names, self.terms):
            values[name] = module(probs, second, validate=False) if isinstance(module, _Loss) else module(probs, second)
        total = sum(weight * values[name] for name, weight in zip(self.names, self.term_weights))
        return total, values


def _group(part) -> WeightedSum | None:
    if part is None or isinstance(part, WeightedSum):
        return part
    return WeightedSum({"term": (1.0, part)})


class CombinedLoss(nn.Module):
    r"""Regional plus boundary loss, :math:`w_R(t)\,L_R + w_B(t)\,L_B` (eq. 8).

    ``forward(probs, target, dist_maps, progress=0)`` returns :class:`LossParts`; the
    weights come from ``schedule.weights(progress)`` (a :class:`Progress`, or an epoch for
    the schedules that do not need the run length). ``regional`` and ``boundary`` are a
    loss module each, or a :class:`WeightedSum` of several. With :class:`ConstantAlpha`
    this is the report's :math:`L_R + \alpha L_B`. The inputs are checked once for all
    parts (``validate=False`` skips that). ``boundary=None`` trains the regional loss
    alone, at full weight whatever the schedule, and ``regional=None`` the boundary loss
    alone (the missing part is reported as 0 with weight 0).

    Examples
    --------
    >>> import torch
    >>> from bl_tutorial.losses import BoundaryLoss, GeneralizedDiceLoss
    >>> loss = CombinedLoss(GeneralizedDiceLoss(), BoundaryLoss(classes=[1]), ConstantAlpha(0.05))
    >>> target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> phi = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    >>> loss(target, target, phi).total
    tensor(0.)
    """

    def __init__(self, regional: nn.Module | None, boundary: nn.Module | None = None, schedule: Schedule | None = None):
        super().__init__()
        if regional is None and boundary is None:
            raise ValueError("CombinedLoss needs a regional loss, a boundary loss, or both; got neither")
        self.regional = _group(regional)
        self.boundary = _group(boundary)
        self.schedule = schedule if schedule is not None else ConstantAlpha(DEFAULT_ALPHA)

    def _check(self, probs: Tensor, target: Tensor, dist_maps: Tensor | None) -> None:
        _check_probs(probs)
        _check_onehot(target, probs)
        if self.boundary is not None:
            if dist_maps is None:
                raise ValueError("dist_maps must be given when CombinedLoss has a boundary term")
            _check_dist_maps(dist_maps, probs)
        for group in (self.regional, self.boundary):
            for module in group.terms if group is not None else ():
                if getattr(module, "classes", None) is not None:
                    check_classes(module.classes, probs.shape[1], f"{type(module).__name__}.classes")

    def forward(
        self,
        probs: Tensor,
        target: Tensor,
        dist_maps: Tensor | None = None,
        progress: ProgressLike = 0,
        *,
        validate: bool = True,
    ) -> LossParts:
        if validate:  # once for every part
            self._check(probs, target, dist_maps)
        w_regional, w_boundary = self.schedule.weights(progress)
        zero = torch.zeros((), device=probs.device, dtype=_compute_dtype(probs))
        parts: dict[str, Tensor] = {}
        if self.regional is None:
            regional, w_regional = zero, 0.0
        else:
            regional, terms = self.regional(probs, target)
            parts.update(terms if len(terms) > 1 else {})
        if self.boundary is None:  # the regional loss alone, at full weight whatever the schedule
            boundary, w_boundary, w_regional = zero, 0.0, 1.0
        else:
            boundary, terms = self.boundary(probs, dist_maps)
            parts.update(terms if len(terms) > 1 else {})
        total = w_regional * regional + w_boundary * boundary
        weights = {"regional": w_regional, "boundary": w_boundary}
        return LossParts(total, {"regional": regional, "boundary": boundary, **parts}, weights)
