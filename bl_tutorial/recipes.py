r"""Recipes: a loss combination named in a few characters, built from a registry of losses.

:class:`LossSpec` reads ``"gdl+bl"``, ``"ce"``, ``"bl"``, ``"focal(gamma=1)+bl"``,
``"0.5*ce+0.5*gdl+bl"``, ``"gdl+0.01*bl"``, ``"gdl+bl@rebalance"`` or
``"gdl+bl@rebalance(over=none)"`` and builds the :class:`~bl_tutorial.combined.CombinedLoss`
it describes from the losses of a registry (:data:`LOSSES`, which a task may extend with
:class:`LossEntry` declarations):

* terms are joined by ``+``; a term is ``[weight*]name[(option=value, ...)]``; an option
  is any keyword argument of the loss (``focal(gamma=1)``), ``classes`` excepted (the
  task gives them);
* ``@schedule[(option=value, ...)]`` names the alpha schedule
  (:data:`~bl_tutorial.combined.SCHEDULES`);
* names are canonical (:attr:`LossSpec.name`): case, spaces, the order of the terms,
  options equal to their defaults and weights of 1 do not matter, so two spellings of one
  loss are one loss, and ``gdl+0.01*bl`` is ``gdl+bl@constant(alpha=0.01)``.

Every rule about the boundary weight is in :meth:`LossSpec.build_schedule`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from bl_tutorial._validation import check_choice, check_number
from bl_tutorial.combined import (
    DEFAULT_ALPHA,
    SCHEDULES,
    CombinedLoss,
    Kind,
    Schedule,
    WeightedSum,
)
from bl_tutorial.losses import BoundaryLoss, CrossEntropyLoss, DiceLoss, FocalLoss, GeneralizedDiceLoss

__all__ = ["LossEntry", "LOSSES", "Term", "LossSpec", "loss_identity"]


# --------------------------------------------------------------------------- the registry
class _FunctionLoss(nn.Module):
    """A loss function ``fn(probs, second, **options)`` as a module."""

    def __init__(self, function: Callable, **options):
        super().__init__()
        self.function, self.options = function, options
        self.classes = options.get("classes")

    def forward(self, probs: Tensor, second: Tensor) -> Tensor:
        return self.function(probs, second, **self.options)

    def extra_repr(self) -> str:
        return f"{getattr(self.function, '__name__', self.function)}, {self.options}"


@dataclass(frozen=True)
class LossEntry:
    """A loss a recipe can name: a module class or a function, and what it is compared with.

    ``build`` is a :class:`torch.nn.Module` class whose ``forward(probs, second)`` takes
    the one-hot target (``kind="regional"``) or the distance maps (``kind="boundary"``),
    or a function ``build(probs, second, **options)`` doing the same. Its keyword
    arguments are the options a recipe may set (``focal(gamma=1)``); a ``classes``
    argument receives the task's classes.
    """

    build: Callable
    kind: Kind = "regional"

    def __post_init__(self):
        if not callable(self.build):
            raise TypeError(f"LossEntry.build must be a module class or a function, got {self.build!r}")
        check_choice(self.kind, "LossEntry.kind", ("regional", "boundary"))

    @property
    def _is_class(self) -> bool:
        return inspect.isclass(self.build)

    def defaults(self) -> dict[str, Any]:
        """The options a recipe may set, with their defaults (``classes`` comes from the task)."""
        parameters = list(inspect.signature(self.build).parameters.values())
        if not self._is_class:
            parameters = parameters[2:]  # probs and the target or maps
        return {
            p.name: p.default
            for p in parameters
            if p.default is not inspect.Parameter.empty
            and p.kind != p.VAR_KEYWORD
            and p.name != "classes"
            and p.kind != p.KEYWORD_ONLY  # fmt: skip
        }

    def create(self, classes, options: Mapping[str, Any]) -> nn.Module:
        accepts_classes = "classes" in inspect.signature(self.build).parameters
        arguments = {**({"classes": classes} if accepts_classes else {}), **options}
        return self.build(**arguments) if self._is_class else _FunctionLoss(self.build, **arguments)


LOSSES: Mapping[str, LossEntry] = {
    "ce": LossEntry(CrossEntropyLoss),
    "gdl": LossEntry(GeneralizedDiceLoss),
    "focal": LossEntry(FocalLoss),
    "dice": LossEntry(DiceLoss),
    "bl": LossEntry(BoundaryLoss, "boundary"),
}
"""The losses recipes can name. Extend it by passing ``{**LOSSES, "name": LossEntry(...)}`` as
``registry`` (a task's :attr:`~bl_tutorial.tasks.Task.losses` does this for an experiment)."""


# --------------------------------------------------------------------------- recipes
_NAME = r"[a-z_][a-z0-9_]*"
_NUMBER = r"[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?"
_CALL = re.compile(rf"^(?:(?P<weight>{_NUMBER})\*)?(?P<name>{_NAME})(?:\((?P<options>[^()]*)\))?$")


def _value(text: str, where: str):
    """A recipe option's value: a number, true/false/none, or a word."""
    if re.fullmatch(_NUMBER, text):
        number = float(text)
        return int(number) if re.fullmatch(r"[0-9]+", text) else number
    special = {"true": True, "false": False, "none": None}
    if text in special:
        return special[text]
    if re.fullmatch(_NAME, text):
        return text
    raise ValueError(f"{where}: option value {text!r} must be a number, true, false, none or a word")


def _options(text: str | None, where: str) -> dict[str, Any]:
    if not text:
        return {}
    options = {}
    for item in text.split(","):
        key, equals, value = item.partition("=")
        if not equals or not re.fullmatch(_NAME, key):
            raise ValueError(f"{where}: options are written name=value, separated by commas; got {item!r}")
        if key in options:
            raise ValueError(f"{where}: option {key!r} is given twice")
        options[key] = _value(value, where)
    return options


def _format(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _call_text(name: str, options: tuple[tuple[str, Any], ...]) -> str:
    inner = ",".join(f"{key}={_format(value)}" for key, value in options)
    return f"{name}({inner})" if options else name


def _same(value, default) -> bool:
    """Whether an option equals its default (2 and 2.0 do; True and 1 do not)."""
    if isinstance(value, bool) or isinstance(default, bool) or value is None or default is None:
        return value is default
    return (
        type(value) is type(default) or isinstance(value, (int, float)) and isinstance(default, (int, float))
        if value == default
        else False
    )


def _check_options(owner: str, given: dict, defaults: dict, where: str) -> tuple[tuple[str, Any], ...]:
    """Options checked against the valid ones; those equal to their default are dropped (canonical)."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{where}: {owner} has no option {unknown[0]!r}; its options: {sorted(defaults) or 'none'}")
    return tuple(sorted((key, value) for key, value in given.items() if not _same(value, defaults[key])))


@dataclass(frozen=True)
class Term:
    """One term of a recipe: ``weight * name(options)``, regional or boundary."""

    name: str
    kind: Kind
    weight: float = 1.0
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def text(self) -> str:
        call = _call_text(self.name, self.options)
        return call if self.weight == 1 else f"{self.weight:g}*{call}"


def _schedule_defaults(name: str) -> dict[str, Any]:
    return {p.name: p.default for p in inspect.signature(SCHEDULES[name]).parameters.values()}


@dataclass(frozen=True)
class LossSpec:
    """A recipe: weighted regional and boundary terms and an alpha schedule, by name.

    Build one with :meth:`parse` (``"gdl+bl"``, ``"focal(gamma=1)+bl@rebalance"``, ...)
    and the module with :meth:`build`. Without ``@``, a boundary term next to a regional
    term is weighted by the experiment's alpha (:data:`DEFAULT_ALPHA` unless told
    otherwise); a weight written on it (``"gdl+0.01*bl"``) is that alpha, and the boundary
    loss alone has weight 1. With a schedule (``"gdl+bl@rebalance"``) the schedule sets
    both weights.
    """

    terms: tuple[Term, ...]
    schedule: str = "constant"
    schedule_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        if not self.terms:
            raise ValueError("a recipe needs at least one loss, e.g. 'gdl' or 'gdl+bl'")
        check_choice(self.schedule, "schedule", tuple(SCHEDULES))
        texts = [(t.name, t.options) for t in self.terms]
        if len(set(texts)) != len(texts):
            raise ValueError(f"recipe {self.name!r} names a loss twice")
        if self.schedule != "constant" and not self.boundary_terms:
            raise ValueError(
                f"a schedule sets the weight of the boundary term; {self.name!r} has none (got @{self.schedule})"
            )
        ordered = tuple(sorted(self.terms, key=lambda t: (t.kind == "boundary", t.text)))
        object.__setattr__(self, "terms", ordered)

    @classmethod
    def parse(cls, text: str, registry: Mapping[str, LossEntry] = LOSSES) -> LossSpec:
        """A recipe from its text; case and spaces do not matter.

        >>> LossSpec.parse("GDL + BL").name, LossSpec.parse("bl+focal(gamma=2.0)").name
        ('gdl+bl', 'focal+bl')
        >>> LossSpec.parse("gdl+bl@rebalance(over=none)").schedule_options
        (('over', None),)
        """
        if isinstance(text, LossSpec):
            return text
        if not isinstance(text, str):
            raise TypeError(f"a loss must be named by a string such as 'gdl+bl', got {text!r}")
        compact = re.sub(r"\s+", "", text.lower())
        body, _, schedule_text = compact.partition("@")
        terms = [cls._term(part, registry, text) for part in body.split("+")]
        schedule, schedule_options = "constant", ()
        if schedule_text:
            match = _CALL.match(schedule_text)
            if not match or match["weight"] or match["name"] not in SCHEDULES:
                raise ValueError(
                    f"{text!r}: after '@' comes a schedule, one of {list(SCHEDULES)}, got {schedule_text!r}"
                )
            schedule = match["name"]
            given = _options(match["options"], repr(text))
            schedule_options = _check_options(f"schedule {schedule!r}", given, _schedule_defaults(schedule), repr(text))
        return cls._constant_weight_as_alpha(cls(tuple(terms), schedule, schedule_options), text)

    @staticmethod
    def _term(part: str, registry: Mapping[str, LossEntry], text: str) -> Term:
        match = _CALL.match(part)
        if not match:
            raise ValueError(
                f"{text!r}: cannot read {part!r}; write terms as [weight*]name[(option=value, ...)] joined by '+', "
                f"e.g. 'gdl+bl', '0.5*ce+0.5*gdl+bl', 'focal(gamma=1)+bl', 'gdl+bl@rebalance'"
            )
        name = match["name"]
        if name not in registry:
            raise ValueError(f"{text!r}: unknown loss {name!r}; the registry holds {sorted(registry)}")
        entry = registry[name]
        options = _check_options(f"loss {name!r}", _options(match["options"], repr(text)), entry.defaults(), repr(text))
        weight = check_number(float(match["weight"]) if match["weight"] else 1.0, f"weight of {name!r}", minimum=0)
        return Term(name, entry.kind, weight, options)

    @classmethod
    def _constant_weight_as_alpha(cls, spec: LossSpec, text: str) -> LossSpec:
        """``gdl+0.01*bl`` is ``gdl+bl@constant(alpha=0.01)``: one boundary term's weight becomes alpha."""
        boundary = spec.boundary_terms
        if spec.schedule != "constant" or len(boundary) != 1 or not spec.regional_terms:
            return spec
        options = dict(spec.schedule_options)
        if boundary[0].weight != 1 and "alpha" in options:
            raise ValueError(f"{text!r}: the boundary weight is given twice (a weight and alpha)")
        if boundary[0].weight != 1:
            options["alpha"] = boundary[0].weight
        unit = Term(boundary[0].name, "boundary", 1.0, boundary[0].options)
        return cls((*spec.regional_terms, unit), "constant", tuple(sorted(options.items())))

    @property
    def regional_terms(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.kind == "regional")

    @property
    def boundary_terms(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.kind == "boundary")

    @property
    def regional(self) -> bool:
        """Whether the recipe has a regional term."""
        return bool(self.regional_terms)

    @property
    def boundary(self) -> bool:
        """Whether the recipe has a boundary term."""
        return bool(self.boundary_terms)

    @property
    def alpha(self) -> float | None:
        """The constant weight of the boundary term written in the recipe, if any."""
        return dict(self.schedule_options).get("alpha") if self.schedule == "constant" else None

    @property
    def name(self) -> str:
        """The canonical text: one loss, one name."""
        options = dict(self.schedule_options)
        alpha = options.pop("alpha", None) if self.schedule == "constant" else None
        texts = [t.text for t in self.regional_terms]
        texts += [f"{alpha:g}*{t.text}" if alpha is not None else t.text for t in self.boundary_terms]
        base = "+".join(texts)
        if self.schedule == "constant" and not options:
            return base
        return f"{base}@{_call_text(self.schedule, tuple(sorted(options.items())))}"

    @property
    def baseline(self) -> str | None:
        """The recipe without its boundary terms (what a "+ BL" loss is compared with), or None."""
        if not (self.regional and self.boundary):
            return None
        return "+".join(t.text for t in self.regional_terms)

    def build_schedule(self, alpha: float | None = None) -> Schedule:
        """The schedule, with ``alpha`` (the experiment's, else :data:`DEFAULT_ALPHA`) where the recipe sets none.

        Every rule about the boundary weight is here: a written weight wins; otherwise the
        experiment's alpha next to a regional term, and 1 for the boundary loss alone.
        """
        options = dict(self.schedule_options)
        if self.schedule == "constant" and "alpha" not in options:
            options["alpha"] = (DEFAULT_ALPHA if alpha is None else alpha) if self.regional else 1.0
        return SCHEDULES[self.schedule](**options)

    def build(
        self,
        *,
        alpha: float | None = None,
        classes=None,
        boundary_classes=None,
        registry: Mapping[str, LossEntry] = LOSSES,
    ) -> CombinedLoss:
        """The :class:`CombinedLoss` of this recipe; ``classes`` go to the regional terms and
        ``boundary_classes`` to the boundary terms (None: all). The module carries its
        ``name`` and the ``identity`` a checkpoint records (:func:`loss_identity`)."""
        groups = {}
        for kind, chosen in (("regional", classes), ("boundary", boundary_classes)):
            terms = [t for t in self.terms if t.kind == kind]
            entries = {t.text: (t.weight, registry[t.name].create(chosen, dict(t.options))) for t in terms}
            groups[kind] = WeightedSum(entries) if terms else None
        schedule = self.build_schedule(alpha)
        module = CombinedLoss(groups["regional"], groups["boundary"], schedule)
        module.name = self.name
        module.identity = {
            **loss_identity(self),
            "alpha": getattr(schedule, "alpha", None),
            "classes": None if classes is None else list(classes),
            "boundary_classes": None if boundary_classes is None else list(boundary_classes),
        }
        return module


def loss_identity(loss) -> dict:
    """What identifies a training loss in a checkpoint and a run record: a recipe's canonical
    name, terms and schedule (and, once built, its alpha and classes), or a module's class
    and representation."""
    if getattr(loss, "identity", None) is not None:
        return dict(loss.identity)
    if isinstance(loss, LossSpec):
        return {"name": loss.name, "regional": loss.regional, "boundary": loss.boundary,
                "terms": [t.text for t in loss.terms], "schedule": loss.schedule,
                "schedule_options": dict(loss.schedule_options)}  # fmt: skip
    kind = type(loss)
    return {"name": getattr(loss, "name", kind.__name__), "module": f"{kind.__module__}.{kind.__qualname__}",
            "repr": repr(loss)}  # fmt: skip
