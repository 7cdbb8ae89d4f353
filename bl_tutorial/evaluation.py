"""Scoring trained models, and comparing losses over seeds (the experiment chapters).

Scoring (one function per kind of data; the task descriptions of :mod:`bl_tutorial.tasks`
say which one an experiment uses):

* :func:`score_vessels` - DRIVE: Dice inside the field of view, per image, thresholded at
  0.5, at the images' native resolution;
* :func:`score_cardiac` - ACDC: Dice and HD95 (mm) per structure, per 2D slice and per 3D
  volume;
* :func:`score_lesions` - synthetic lesions: Dice and HD95 per image with lesions, false
  alarms on images without; :func:`threshold_scores` - the global-threshold baseline.

Statistics (every experiment):

* :class:`Metric` - a score, its unit, its better direction and the smallest difference
  the question asks about; :class:`Comparison` - a pair of losses a task compares;
* :func:`paired_difference` - mean difference of two losses over the same seeds, its
  standard error and 95 % t-interval;
* :func:`summarize` - mean and spread per loss, and every declared pair;
* :func:`verdict` - the one function that turns a paired difference into its verdict and
  its sentence, which never says more than the interval. Tables, figures, chapters and the
  command line all call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from bl_tutorial.metrics import class_labels, dice_score, hd95, per_class
from bl_tutorial.recipes import LossSpec
from bl_tutorial.training import predict

__all__ = [
    "vessel_probability",
    "score_vessels",
    "trivial_vessel_scores",
    "score_cardiac",
    "score_lesions",
    "threshold_scores",
    "Metric",
    "Comparison",
    "Verdict",
    "paired_difference",
    "plateau",
    "settled",
    "summarize",
    "find_comparison",
    "verdict",
    "comparison_sentence",
    "EPOCHS",
]


# --------------------------------------------------------------------------- scoring
def vessel_probability(model: nn.Module, images: torch.Tensor, native_shape: tuple[int, int]) -> np.ndarray:
    """Vessel probabilities ``(N, rows, cols)`` of ``images``, resized bilinearly to ``native_shape``."""
    return _native(predict(model, images), native_shape)


def _native(probs: torch.Tensor, native_shape: tuple[int, int]) -> np.ndarray:
    vessels = probs[:, 1:2]
    if tuple(vessels.shape[-2:]) != tuple(native_shape):
        vessels = torch.nn.functional.interpolate(vessels, size=tuple(native_shape), mode="bilinear")
    return vessels[:, 0].numpy()


def _binary_counts(pred: np.ndarray, truth: np.ndarray, roi: np.ndarray) -> dict:
    """Predicted and true foreground, false positives and false negatives, as shares of the ROI."""
    pred, truth = pred & roi, truth & roi
    size = max(int(roi.sum()), 1)
    return {
        "predicted_fraction": float(pred.sum() / size),
        "true_fraction": float(truth.sum() / size),
        "fp_fraction": float((pred & ~truth).sum() / size),
        "fn_fraction": float((~pred & truth).sum() / size),
    }


def _mean_counts(counts: Sequence[dict]) -> dict:
    return {key: float(np.mean([c[key] for c in counts])) for key in counts[0]}


def score_vessels(model: nn.Module, samples: Sequence, dataset) -> dict:
    """Dice of the vessels inside the field of view, per image, at native resolution (threshold 0.5).

    ``samples`` are the :class:`~bl_tutorial.data.DriveSample` images (native size, with
    their annotation and field of view); ``dataset`` holds the same images as the network
    sees them (at native size or resized). Also returns how much of the field of view is
    predicted as vessel against the truth, and the false positives and false negatives
    as shares of the field of view (means over the images).
    """
    native = _native(predict(model, torch.from_numpy(dataset.images)), samples[0].image.shape[:2])
    per_image = [dice_score(prob >= 0.5, s.vessels, mask=s.fov) for s, prob in zip(samples, native)]
    counts = [_binary_counts(prob >= 0.5, s.vessels, s.fov) for s, prob in zip(samples, native)]
    return {
        "dice": float(np.mean(per_image)),
        "dice_per_image": per_image,
        "image_ids": [s.id for s in samples],
        **_mean_counts(counts),
    }


def trivial_vessel_scores(samples: Sequence) -> dict:
    """Dice of predicting 'vessel' everywhere inside the field of view (the trivial baseline)."""
    scores = [dice_score(s.fov, s.vessels, mask=s.fov) for s in samples]
    return {"all_vessel_dice": float(np.mean(scores)), "all_background_dice": 0.0}


def score_cardiac(model: nn.Module, dataset, class_names: Sequence[str]) -> dict:
    """Dice and HD95 (mm) per foreground class, per 2D slice and per 3D volume.

    Slice scores average over the slices in which the class is present in the truth;
    volume scores over the (patient, phase) volumes of ``dataset``, with the spacing of the
    resized volumes. ``dice`` and ``hd95`` are the means of the 3D scores over the classes;
    ``dice_<class>`` and ``hd95_<class>`` the 3D score of each.
    """
    pred = class_labels(predict(model, torch.from_numpy(dataset.images))).numpy().astype(np.uint8)
    classes = list(range(1, len(class_names)))
    slice_dice, slice_hd = {k: [] for k in classes}, {k: [] for k in classes}
    for index in range(len(pred)):
        truth, spacing = dataset.labels[index], tuple(dataset.spacings[index])
        for k in classes:
            if (truth == k).any():
                slice_dice[k].append(dice_score(pred[index] == k, truth == k))
                slice_hd[k].append(hd95(pred[index] == k, truth == k, spacing))
    volume_dice, volume_hd = [], []
    for indices in dataset.volumes.values():
        spacing = dataset.slices[indices[0]].spacing
        p, t = pred[indices], dataset.labels[indices]
        volume_dice.append(per_class(dice_score, p, t, len(class_names), classes=classes))
        volume_hd.append(per_class(hd95, p, t, len(class_names), classes=classes, spacing=spacing))
    dice_3d, hd95_3d = np.mean(volume_dice, axis=0), np.mean(volume_hd, axis=0)
    return {
        "classes": [class_names[k] for k in classes],
        "dice_2d": [float(np.mean(slice_dice[k])) for k in classes],
        "hd95_2d": [float(np.mean(slice_hd[k])) for k in classes],
        "dice_3d": dice_3d.tolist(),
        "dice_3d_std": np.std(volume_dice, axis=0).tolist(),
        "hd95_3d": hd95_3d.tolist(),
        "hd95_3d_std": np.std(volume_hd, axis=0).tolist(),
        "dice": float(np.mean(volume_dice)),
        "hd95": float(np.mean(volume_hd)),
        **{f"dice_{class_names[k]}": float(v) for k, v in zip(classes, dice_3d)},
        **{f"hd95_{class_names[k]}": float(v) for k, v in zip(classes, hd95_3d)},
        "n_volumes": len(volume_dice),
        "n_slices": len(pred),
    }


def _lesion_scores(pred: np.ndarray, truth: np.ndarray, spacings: np.ndarray) -> dict:
    """Dice and HD95 over the images with lesions, false alarms over those without, and the shares."""
    with_lesions = [i for i, t in enumerate(truth) if t.any()]
    empty = [i for i, t in enumerate(truth) if not t.any()]
    counts = [_binary_counts(pred[i], truth[i], np.ones_like(truth[i])) for i in with_lesions]
    scores = {
        "dice": float(np.mean([dice_score(pred[i], truth[i]) for i in with_lesions])),
        "hd95": float(np.mean([hd95(pred[i], truth[i], tuple(spacings[i])) for i in with_lesions])),
        "false_alarms": float(np.mean([pred[i].any() for i in empty])) if empty else float("nan"),
        "n_lesion_images": len(with_lesions),
        "n_empty_images": len(empty),
    }
    return {**scores, **_mean_counts(counts)}


def score_lesions(model: nn.Module, dataset) -> dict:
    """Lesion scores of a model on a dataset of lesion images, some of them without lesions.

    ``dice`` and ``hd95`` (in the unit of the dataset's spacing) are means over the images
    that have lesions; an empty prediction there has the image diagonal as HD95 (the
    convention of :func:`~bl_tutorial.metrics.hd95`). ``false_alarms`` is the share of the
    images *without* lesions on which anything is predicted. Predicted and true shares,
    false positives and false negatives are means over the images with lesions.
    """
    pred = class_labels(predict(model, torch.from_numpy(dataset.images))).numpy() == 1
    return _lesion_scores(pred, dataset.labels == 1, dataset.spacings)


def threshold_scores(select, report, quantiles: int = 80) -> dict:
    """The global-threshold baseline: the intensity threshold with the best mean Dice on the
    ``select`` images (with lesions), scored on the ``report`` images like a model
    (:func:`score_lesions`). ``select`` and ``report`` hold ``images`` (N, 1, H, W),
    ``labels`` and ``spacings``; thresholds are tried at ``quantiles`` upper quantiles.
    """
    intensities = select.images[:, 0]
    truth = select.labels == 1
    lesion_images = [i for i, t in enumerate(truth) if t.any()]
    candidates = np.quantile(intensities, np.linspace(0.5, 0.9995, quantiles))

    def mean_dice(threshold: float) -> float:
        return float(np.mean([dice_score(intensities[i] >= threshold, truth[i]) for i in lesion_images]))

    best = max(candidates, key=mean_dice)
    scores = _lesion_scores(report.images[:, 0] >= best, report.labels == 1, report.spacings)
    return {"threshold": float(best), **scores}


# --------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class Metric:
    """A score the runner summarises over seeds and compares between losses.

    ``resolution`` is the smallest difference the question asks about (Dice: 0.04, half
    the paper's ISLES gain): an interval that includes zero and is no wider than that is
    read as "no difference larger than X", a wider one as "cannot tell".
    """

    key: str
    label: str
    unit: str = ""
    higher_is_better: bool | None = True
    """None for a quantity with no better direction (e.g. how much is predicted)."""
    resolution: float | None = None
    lower: float | None = 0.0
    """The smallest value the score can take (None: unbounded); figures clip intervals there."""
    upper: float | None = None
    """The largest value the score can take (Dice: 1)."""

    @classmethod
    def coerce(cls, metric) -> Metric:
        """A :class:`Metric` from itself, its dict (as stored in results files) or its key."""
        if isinstance(metric, Metric):
            return metric
        if isinstance(metric, dict):
            return cls(**metric)
        if isinstance(metric, str):
            return cls(metric, metric)
        raise TypeError(f"a metric must be a Metric, its dict or its key, got {metric!r}")


@dataclass(frozen=True)
class Comparison:
    """A pair a task compares: ``loss`` against ``baseline``, on ``metrics`` (None: all the task's)."""

    loss: str
    baseline: str
    metrics: tuple[str, ...] | None = None

    def canonical(self, registry=None) -> Comparison:
        """The same pair with canonical loss names (so that spelling cannot lose it)."""
        parse = LossSpec.parse if registry is None else (lambda text: LossSpec.parse(text, registry))
        return Comparison(parse(self.loss).name, parse(self.baseline).name, self.metrics)


def paired_difference(values: Sequence[float], baseline: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of ``values - baseline`` (paired, e.g. by seed), its standard error and t-interval.

    With ``n`` pairs the interval is ``mean +- t_{n-1} * sd / sqrt(n)``; with one pair the
    spread is unknown and the standard error and interval are None.

    >>> result = paired_difference([0.80, 0.82, 0.81], [0.78, 0.80, 0.80])
    >>> round(result["mean"], 4), [round(v, 3) for v in result["interval"]]
    (0.0167, [0.002, 0.031])
    """
    from scipy import stats

    values, baseline = np.asarray(values, float), np.asarray(baseline, float)
    if values.ndim != 1 or values.shape != baseline.shape or values.size == 0:
        raise ValueError(
            f"values and baseline must be non-empty 1D sequences of one length, got shapes {values.shape} "
            f"and {baseline.shape}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1 (0.95 for 95 %), got {confidence!r}")
    diffs = values - baseline
    n, mean = int(diffs.size), float(diffs.mean())
    if n < 2:
        return {"n": n, "differences": diffs.tolist(), "mean": mean, "se": None, "interval": None}
    se = float(diffs.std(ddof=1) / np.sqrt(n))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return {"n": n, "differences": diffs.tolist(), "mean": mean, "se": se, "interval": [mean - half, mean + half]}


def plateau(history: Sequence[dict], key: str = "val_foreground_dice", last: int = 3) -> float:
    """How much ``key`` moves over the last ``last`` epochs (max - min): small when a run has converged.

    >>> plateau([{"d": 0.2}, {"d": 0.70}, {"d": 0.71}, {"d": 0.69}], "d")
    0.020000000000000018
    """
    values = [record[key] for record in history[-last:]]
    return float(max(values) - min(values))


def settled(history: Sequence[dict], key: str = "val_foreground_dice", share: float = 0.2) -> float:
    """How much ``key`` moves (max - min) over the last ``share`` of the epochs (at least two):
    the convergence check of a baseline at a constant learning rate.

    >>> round(settled([{"d": 0.1}] * 5 + [{"d": 0.70}, {"d": 0.72}, {"d": 0.70}, {"d": 0.705}, {"d": 0.71}], "d"), 3)
    0.005
    """
    return plateau(history, key, max(2, int(np.ceil(share * len(history)))))


def _by_loss(runs: Sequence[dict]) -> dict[str, dict[int, dict]]:
    by_loss: dict[str, dict[int, dict]] = {}
    for run in runs:
        if run.get("status", "finished") == "finished":
            by_loss.setdefault(run["loss"], {})[run["seed"]] = run
    return by_loss


EPOCHS = {"selected": "metrics", "last": "metrics_last"}
"""The two scores of every run: at the epoch chosen on the selection split, and at the last epoch."""


def _spread(values: Sequence[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def default_comparisons(losses: Sequence[str]) -> list[Comparison]:
    """Each "+ BL" recipe against its regional part, where both are among ``losses``.

    >>> [(c.loss, c.baseline) for c in default_comparisons(["gdl", "gdl+bl", "ce+bl"])]
    [('gdl+bl', 'gdl')]
    """
    present, pairs = set(losses), []
    for loss in losses:
        baseline = LossSpec.parse(loss).baseline
        if baseline in present:
            pairs.append(Comparison(loss, baseline))
    return pairs


def _pairs(by_loss: dict, comparisons: Sequence[Comparison] | None) -> list[Comparison]:
    declared = default_comparisons(list(by_loss)) if comparisons is None else list(comparisons)
    return [c for c in declared if c.loss in by_loss and c.baseline in by_loss]


def summarize(
    runs: Sequence[dict],
    metrics: Sequence = ("dice",),
    comparisons: Sequence[Comparison] | None = None,
    movement: dict[str, float] | None = None,
) -> dict:
    """Mean and spread over seeds per loss, and each declared pair's paired differences with their verdicts.

    For every metric (a :class:`Metric` or its key) and both epochs (``"selected"``:
    ``run["metrics"]``; ``"last"``: ``run["metrics_last"]``, when recorded). Returns
    ``{"summary": {loss: {"n_seeds", "best_epochs", "selected": {key: {"mean", "std"}},
    "last": ...}}, "comparisons": [...]}``; a comparison names the loss, its baseline,
    the metric and the epoch, the seeds both losses finished with, the
    :func:`paired_difference` of their scores and its :func:`verdict`. ``comparisons``
    are the pairs to compare (by canonical name); None pairs every "+ BL" recipe with its
    regional part (:func:`default_comparisons`). ``movement`` is how much a difference of
    each metric moves between two builds (:func:`~bl_tutorial.store.measured_movement`):
    a verdict is stated only where the interval clears zero by more than that.
    """
    metrics = [Metric.coerce(m) for m in metrics]
    by_loss = _by_loss(runs)
    summary = {}
    for loss, by_seed in by_loss.items():
        entry = {"n_seeds": len(by_seed), "best_epochs": [r["best_epoch"] for r in by_seed.values()]}
        for epoch, field in EPOCHS.items():
            if all(field in r for r in by_seed.values()):
                entry[epoch] = {m.key: _spread([r[field][m.key] for r in by_seed.values()]) for m in metrics}
        summary[loss] = entry
    results = []
    for pair in _pairs(by_loss, comparisons):
        runs_a, runs_b = by_loss[pair.loss], by_loss[pair.baseline]
        seeds = sorted(set(runs_a) & set(runs_b))
        chosen = [m for m in metrics if pair.metrics is None or m.key in pair.metrics]
        for epoch, field in EPOCHS.items():
            if not seeds or not all(field in r for r in [*runs_a.values(), *runs_b.values()]):
                continue
            for metric in chosen:
                difference = paired_difference(
                    [runs_a[s][field][metric.key] for s in seeds], [runs_b[s][field][metric.key] for s in seeds]
                )
                comparison = {"loss": pair.loss, "baseline": pair.baseline, "metric": metric.key, "epoch": epoch,
                              "seeds": seeds, **difference}  # fmt: skip
                found = verdict(comparison, metric, (movement or {}).get(metric.key, 0.0))
                comparison.update(verdict=found.kind, detectable=found.detectable, sentence=found.sentence)
                results.append(comparison)
    return {"summary": summary, "comparisons": results}


def find_comparison(comparisons: Sequence[dict], loss: str, metric: str = "dice", epoch: str = "selected") -> dict:
    """The comparison of ``loss`` with its baseline on ``metric`` at ``epoch`` (KeyError if absent).

    ``loss`` may be spelled in any way :class:`~bl_tutorial.combined.LossSpec` reads.
    """
    name = LossSpec.parse(loss).name
    for comparison in comparisons:
        if (comparison["loss"], comparison["metric"], comparison["epoch"]) == (name, metric, epoch):
            return comparison
    raise KeyError(f"no comparison of {name!r} on {metric!r} at the {epoch} epoch")


VerdictKind = Literal["better", "worse", "higher", "lower", "no difference larger than", "cannot tell",
                      "within noise", "single seed"]  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What a paired difference says, in a word (``kind``) and a sentence.

    ``detectable`` is the half-width of the 95 % interval: the smallest mean difference
    that would have excluded zero with this spread (plus the between-build movement when
    one is given). ``bound`` is the largest difference the interval allows.
    """

    kind: VerdictKind
    sentence: str
    detectable: float | None = None
    bound: float | None = None

    @property
    def label(self) -> str:
        """A few words for a table cell."""
        if self.kind == "no difference larger than":
            return f"no difference larger than {self.bound:.3f}"
        if self.kind == "cannot tell":
            return f"cannot tell (detectable: {self.detectable:.3f})"
        return self.kind


def _sizes(comparison: dict, movement: float) -> tuple[float, float, float, float]:
    low, high = comparison["interval"]
    half = (high - low) / 2
    return low, high, half + movement, max(abs(low), abs(high))


def verdict(comparison: dict, metric=None, movement: float = 0.0) -> Verdict:
    """The verdict of a paired difference (from :func:`summarize` or :func:`paired_difference` with
    ``loss`` and ``baseline``), and the sentence the book prints. It never says more than the interval:

    * the interval excludes zero by more than ``movement`` (how much this difference moves
      between two builds; 0 when unknown): better or worse (higher or lower for a metric
      with no better direction);
    * it excludes zero by less than that: "within noise", not stated as a verdict;
    * it includes zero and its half-width is at most the metric's ``resolution``: "no
      difference larger than" the largest value it allows;
    * it includes zero and is wider: "cannot tell", with the smallest detectable difference.

    >>> found = verdict({"loss": "gdl+bl", "baseline": "gdl", "n": 6, "mean": 0.004, "se": 0.005,
    ...                  "interval": [-0.009, 0.017]}, Metric("dice", "Dice", resolution=0.04))
    >>> found.kind, found.label
    ('no difference larger than', 'no difference larger than 0.017')
    """
    metric = Metric.coerce(metric if metric is not None else comparison.get("metric", "dice"))
    unit = f" {metric.unit}" if metric.unit else ""
    loss, baseline = comparison["loss"], comparison["baseline"]
    head = f"{loss} minus {baseline}: {metric.label} {comparison['mean']:+.3f}{unit}"
    if comparison["interval"] is None:
        sentence = f"{head} from a single seed: the spread between seeds is unknown, so this cannot be told from noise."
        return Verdict("single seed", sentence)
    low, high, detectable, bound = _sizes(comparison, float(movement))
    head += f" over {comparison['n']} seeds (95 % interval {low:+.3f} to {high:+.3f}{unit})"
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 <= high:
        narrow = metric.resolution is not None and (high - low) / 2 <= metric.resolution
        if narrow:
            sentence = (f"{head}: no difference larger than {bound:.3f}{unit} (the smallest difference these "
                        f"seeds could detect is {detectable:.3f}{unit}).")  # fmt: skip
            return Verdict("no difference larger than", sentence, detectable, bound)
        sentence = (f"{head}; the interval includes zero, so these runs cannot tell the two losses apart "
                    f"(the smallest difference they could detect is {detectable:.3f}{unit}).")  # fmt: skip
        return Verdict("cannot tell", sentence, detectable, bound)
    if min(abs(low), abs(high)) <= movement:
        sentence = (f"{head}; the interval excludes zero, but by less than the {movement:.3f}{unit} this difference "
                    "moves between two builds, so it is not stated as a verdict.")  # fmt: skip
        return Verdict("within noise", sentence, detectable, bound)
    if metric.higher_is_better is None:
        kind = "higher" if low > 0 else "lower"
    else:
        kind = "better" if (low > 0) == metric.higher_is_better else "worse"
    clears = f" by more than the {movement:.3f}{unit} it moves between builds" if movement else ""
    sentence = (f"{head}; the interval excludes zero{clears}: in these runs {loss} is {kind} than {baseline} "
                f"on this {metric.label} (the smallest difference these seeds could detect is "
                f"{detectable:.3f}{unit}).")  # fmt: skip
    return Verdict(kind, sentence, detectable, bound)


def comparison_sentence(
    comparison: dict, label: str = "Dice", unit: str = "", higher_is_better: bool | None = True
) -> str:
    """The sentence of :func:`verdict` for a metric given by its label, unit and direction.

    >>> sentence = comparison_sentence({"loss": "gdl+bl", "baseline": "gdl", "n": 3, "mean": 0.01,
    ...                                 "se": 0.01, "interval": [-0.03, 0.05]})
    >>> sentence[:64]
    'gdl+bl minus gdl: Dice +0.010 over 3 seeds (95 % interval -0.030'
    >>> "cannot tell the two losses apart" in sentence
    True
    """
    metric = Metric(comparison.get("metric", label), label, unit, higher_is_better)
    return verdict(comparison, metric).sentence


def metric_dicts(metrics: Sequence[Metric]) -> list[dict]:
    """Metrics as stored in results files."""
    return [asdict(m) for m in metrics]
