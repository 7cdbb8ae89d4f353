"""Scoring trained models, and comparing losses over seeds (the experiment chapters).

Scoring (one function per kind of data; the task descriptions of :mod:`bl_tutorial.tasks`
say which one an experiment uses):

* :func:`score_vessels` - DRIVE: Dice inside the field of view, per image, thresholded at
  0.5, at the images' native resolution;
* :func:`score_cardiac` - ACDC: Dice and HD95 (mm) per structure, per 2D slice and per 3D
  volume;
* :func:`score_lesions` - synthetic lesions: Dice and HD95 (px) per image.

Statistics (every experiment):

* :func:`paired_difference` - mean difference of two losses over the same seeds, its
  standard error and 95 % t-interval;
* :func:`summarize` - mean and spread per loss, and every "+ BL" loss paired with its
  regional baseline;
* :func:`comparison_sentence` - the sentence the book prints, which never says more than
  the interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from bl_tutorial.combined import LossSpec
from bl_tutorial.metrics import class_labels, dice_score, hd95, per_class
from bl_tutorial.training import predict

__all__ = [
    "vessel_probability",
    "score_vessels",
    "trivial_vessel_scores",
    "score_cardiac",
    "score_lesions",
    "paired_difference",
    "plateau",
    "summarize",
    "find_comparison",
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


def score_lesions(model: nn.Module, dataset) -> dict:
    """Dice and HD95 (px) of the lesions, per image, averaged; and the predicted against the true share.

    An image with lesions and an empty prediction has the image diagonal as HD95 (the
    convention of :func:`~bl_tutorial.metrics.hd95`).
    """
    pred = class_labels(predict(model, torch.from_numpy(dataset.images))).numpy() == 1
    truth = dataset.labels == 1
    counts = [_binary_counts(p, t, np.ones_like(t)) for p, t in zip(pred, truth)]
    return {
        "dice": float(np.mean([dice_score(p, t) for p, t in zip(pred, truth)])),
        "hd95": float(np.mean([hd95(p, t) for p, t in zip(pred, truth)])),
        **_mean_counts(counts),
    }


# --------------------------------------------------------------------------- statistics
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


def summarize(runs: Sequence[dict], keys: Sequence[str] = ("dice",)) -> dict:
    """Mean and spread over seeds per loss, and each "+bl" loss paired with its regional baseline.

    For every metric in ``keys`` and both epochs (``"selected"``: ``run["metrics"]``;
    ``"last"``: ``run["metrics_last"]``, when recorded). Returns ``{"summary": {loss:
    {"n_seeds", "best_epochs", "selected": {key: {"mean", "std"}}, "last": ...}},
    "comparisons": [...]}``; a comparison names the loss, its baseline, the metric and
    the epoch, the seeds both losses finished with, and :func:`paired_difference` of
    their scores. A loss ``"gdl+bl@rebalance"`` is paired with ``"gdl"`` too.
    """
    by_loss = _by_loss(runs)
    summary = {}
    for loss, by_seed in by_loss.items():
        entry = {"n_seeds": len(by_seed), "best_epochs": [r["best_epoch"] for r in by_seed.values()]}
        for epoch, field in EPOCHS.items():
            if all(field in r for r in by_seed.values()):
                entry[epoch] = {key: _spread([r[field][key] for r in by_seed.values()]) for key in keys}
        summary[loss] = entry
    comparisons = []
    for loss, by_seed in by_loss.items():
        spec = LossSpec.parse(loss)
        if not (spec.boundary and spec.regional) or spec.regional not in by_loss:
            continue
        baseline = by_loss[spec.regional]
        seeds = sorted(set(by_seed) & set(baseline))
        for epoch, field in EPOCHS.items():
            if not seeds or not all(field in r for r in [*by_seed.values(), *baseline.values()]):
                continue
            for key in keys:
                difference = paired_difference(
                    [by_seed[s][field][key] for s in seeds], [baseline[s][field][key] for s in seeds]
                )
                comparisons.append(
                    {
                        "loss": loss,
                        "baseline": spec.regional,
                        "metric": key,
                        "epoch": epoch,
                        "seeds": seeds,
                        **difference,
                    }
                )
    return {"summary": summary, "comparisons": comparisons}


def find_comparison(comparisons: Sequence[dict], loss: str, metric: str = "dice", epoch: str = "selected") -> dict:
    """The comparison of ``loss`` with its baseline on ``metric`` at ``epoch`` (KeyError if absent)."""
    for comparison in comparisons:
        if (comparison["loss"], comparison["metric"], comparison["epoch"]) == (loss, metric, epoch):
            return comparison
    raise KeyError(f"no comparison of {loss!r} on {metric!r} at the {epoch} epoch")


def comparison_sentence(
    comparison: dict, label: str = "Dice", unit: str = "", higher_is_better: bool | None = True
) -> str:
    """One sentence on a paired difference that never says more than its interval.

    ``higher_is_better=None`` for a quantity with no better direction (the sentence then
    says higher or lower).

    >>> sentence = comparison_sentence({"loss": "gdl+bl", "baseline": "gdl", "n": 3, "mean": 0.01,
    ...                                 "se": 0.01, "interval": [-0.03, 0.05]})
    >>> sentence[:64]
    'gdl+bl minus gdl: +0.010 Dice over 3 seeds (95 % interval -0.030'
    >>> sentence.endswith("includes zero, so these runs cannot tell the two losses apart.")
    True
    """
    unit = f" {unit}" if unit else ""
    head = f"{comparison['loss']} minus {comparison['baseline']}: {comparison['mean']:+.3f}{unit} {label}"
    if comparison["interval"] is None:
        return f"{head} from a single seed: the spread between seeds is unknown, so this cannot be told from noise."
    low, high = comparison["interval"]
    head += f" over {comparison['n']} seeds (95 % interval {low:+.3f} to {high:+.3f})"
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 <= high:
        return f"{head}; the interval includes zero, so these runs cannot tell the two losses apart."
    if higher_is_better is None:
        verdict = "higher" if low > 0 else "lower"
    else:
        verdict = "better" if (low > 0) == higher_is_better else "worse"
    loss, baseline = comparison["loss"], comparison["baseline"]
    return f"{head}; the interval excludes zero: in these runs {loss} is {verdict} than {baseline} on this {label}."
