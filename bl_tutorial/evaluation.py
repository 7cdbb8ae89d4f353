"""Scoring trained models, and comparing losses over seeds (the experiment chapters).

Scoring (one function per kind of data; the task descriptions of :mod:`bl_tutorial.tasks`
say which one an experiment uses):

* :func:`score_vessels` - DRIVE: Dice inside the field of view, per image, thresholded at
  0.5, at the images' native resolution;
* :func:`score_cardiac` - ACDC: Dice and HD95 (mm) per structure, per 2D slice and per 3D
  volume.

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
from bl_tutorial.metrics import dice_score, hd95, per_class
from bl_tutorial.training import predict

__all__ = [
    "vessel_probability",
    "score_vessels",
    "trivial_vessel_scores",
    "score_cardiac",
    "paired_difference",
    "summarize",
    "comparison_sentence",
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


def score_vessels(model: nn.Module, samples: Sequence, dataset) -> dict:
    """Dice of the vessels inside the field of view, per image, at native resolution (threshold 0.5).

    ``samples`` are the :class:`~bl_tutorial.data.DriveSample` images (native size, with
    their annotation and field of view); ``dataset`` holds the same images as the network
    sees them. Also returns the Dice at the network's input size (inside the resized field
    of view).
    """
    probs = predict(model, torch.from_numpy(dataset.images))
    native = _native(probs, samples[0].image.shape[:2])
    per_image = [dice_score(prob >= 0.5, s.vessels, mask=s.fov) for s, prob in zip(samples, native)]
    labels = probs.argmax(1).numpy()
    at_input_size = [dice_score(p == 1, t == 1, mask=roi) for p, t, roi in zip(labels, dataset.labels, dataset.rois)]
    return {
        "dice": float(np.mean(per_image)),
        "dice_per_image": per_image,
        "image_ids": [s.id for s in samples],
        "dice_at_training_size": float(np.mean(at_input_size)),
    }


def trivial_vessel_scores(samples: Sequence) -> dict:
    """Dice of predicting 'vessel' everywhere inside the field of view (the trivial baseline)."""
    scores = [dice_score(s.fov, s.vessels, mask=s.fov) for s in samples]
    return {"all_vessel_dice": float(np.mean(scores)), "all_background_dice": 0.0}


def score_cardiac(model: nn.Module, dataset, class_names: Sequence[str]) -> dict:
    """Dice and HD95 (mm) per foreground class, per 2D slice and per 3D volume.

    Slice scores average over the slices in which the class is present in the truth;
    volume scores over the (patient, phase) volumes of ``dataset``, with the spacing of the
    resized volumes.
    """
    pred = predict(model, torch.from_numpy(dataset.images)).argmax(1).numpy().astype(np.uint8)
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
    return {
        "classes": [class_names[k] for k in classes],
        "dice_2d": [float(np.mean(slice_dice[k])) for k in classes],
        "hd95_2d": [float(np.mean(slice_hd[k])) for k in classes],
        "dice_3d": np.mean(volume_dice, axis=0).tolist(),
        "dice_3d_std": np.std(volume_dice, axis=0).tolist(),
        "hd95_3d": np.mean(volume_hd, axis=0).tolist(),
        "hd95_3d_std": np.std(volume_hd, axis=0).tolist(),
        "dice": float(np.mean(volume_dice)),
        "n_volumes": len(volume_dice),
        "n_slices": len(pred),
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

    diffs = np.asarray(values, float) - np.asarray(baseline, float)
    if diffs.ndim != 1 or diffs.size == 0:
        raise ValueError(f"values and baseline must be non-empty 1D sequences of one length, got {diffs.shape}")
    n, mean = int(diffs.size), float(diffs.mean())
    if n < 2:
        return {"n": n, "differences": diffs.tolist(), "mean": mean, "se": None, "interval": None}
    se = float(diffs.std(ddof=1) / np.sqrt(n))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return {"n": n, "differences": diffs.tolist(), "mean": mean, "se": se, "interval": [mean - half, mean + half]}


def _by_loss(runs: Sequence[dict]) -> dict[str, dict[int, dict]]:
    by_loss: dict[str, dict[int, dict]] = {}
    for run in runs:
        if run.get("status", "finished") == "finished":
            by_loss.setdefault(run["loss"], {})[run["seed"]] = run
    return by_loss


def summarize(runs: Sequence[dict], key: str = "dice") -> dict:
    """Mean and spread over seeds per loss, and each "+bl" loss paired with its baseline.

    Reads ``run["metrics"][key]`` of every finished run. Returns ``{"summary": {loss: ...},
    "comparisons": [...]}``; a comparison holds the seeds both losses finished with and
    :func:`paired_difference` of their scores.
    """
    by_loss = _by_loss(runs)
    summary = {}
    for loss, by_seed in by_loss.items():
        scores = [r["metrics"][key] for r in by_seed.values()]
        summary[loss] = {
            f"{key}_mean": float(np.mean(scores)),
            f"{key}_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
            "n_seeds": len(scores),
            "best_epochs": [r["best_epoch"] for r in by_seed.values()],
        }
    comparisons = []
    for loss, by_seed in by_loss.items():
        spec = LossSpec.parse(loss)
        if not (spec.boundary and spec.regional) or spec.regional not in by_loss:
            continue
        baseline = by_loss[spec.regional]
        seeds = sorted(set(by_seed) & set(baseline))
        if not seeds:
            continue
        difference = paired_difference(
            [by_seed[s]["metrics"][key] for s in seeds], [baseline[s]["metrics"][key] for s in seeds]
        )
        comparisons.append({"loss": loss, "baseline": spec.regional, "metric": key, "seeds": seeds, **difference})
    return {"summary": summary, "comparisons": comparisons}


def comparison_sentence(comparison: dict, unit: str = "Dice") -> str:
    """One sentence on a paired difference that never says more than its interval.

    >>> sentence = comparison_sentence({"loss": "gdl+bl", "baseline": "gdl", "n": 3, "mean": 0.01,
    ...                                 "se": 0.01, "interval": [-0.03, 0.05]})
    >>> sentence[:64]
    'gdl+bl minus gdl: +0.010 Dice over 3 seeds (95 % interval -0.030'
    >>> sentence.endswith("includes zero, so these runs cannot tell the two losses apart.")
    True
    """
    head = f"{comparison['loss']} minus {comparison['baseline']}: {comparison['mean']:+.3f} {unit}"
    if comparison["interval"] is None:
        return f"{head} from a single seed: the spread between seeds is unknown, so this cannot be told from noise."
    low, high = comparison["interval"]
    head += f" over {comparison['n']} seeds (95 % interval {low:+.3f} to {high:+.3f})"
    if low <= 0 <= high:
        return f"{head}; the interval includes zero, so these runs cannot tell the two losses apart."
    direction = "higher" if low > 0 else "lower"
    return f"{head}; the interval excludes zero: with the boundary term the score is {direction} in these runs."
