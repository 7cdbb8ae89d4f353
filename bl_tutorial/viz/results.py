"""Figures and tables of the experiment chapters: learning curves, scores, paired differences, predictions.

Prediction figures are built on matplotlib's ``Figure`` (not pyplot), so that the
experiment runner can draw and save them with no global state, and a notebook can
display them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "error_map",
    "plot_history",
    "results_table",
    "summary_table",
    "comparison_table",
    "plot_seed_curves",
    "study_figure",
    "drive_validation_figure",
    "drive_test_figure",
    "cardiac_slices_figure",
]


def error_map(pred: np.ndarray, truth: np.ndarray, roi: np.ndarray | None = None) -> np.ndarray:
    """RGB image: true positives white, false positives red, false negatives blue, rest black."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"pred and truth must have the same shape, got {pred.shape} and {truth.shape}")
    if roi is not None:
        pred, truth = pred & roi, truth & roi
    out = np.zeros((*pred.shape, 3))
    out[pred & truth] = 1.0
    out[pred & ~truth] = (0.95, 0.2, 0.2)
    out[~pred & truth] = (0.2, 0.5, 1.0)
    return out


def plot_history(histories: dict, keys: Sequence[str], ax=None, title: str = "", labels: Sequence[str] | None = None):
    """Plot history entries (``keys``, e.g. ``["train_loss", "val_loss"]``) of several runs over epochs.

    ``histories`` maps a run name to its list of per-epoch dicts. A key whose value is a
    per-class list can be indexed as ``"val_dice[1]"``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for run, history in histories.items():
        for i, key in enumerate(keys):
            name, _, index = key.partition("[")
            values = [h[name] if not index else h[name][int(index[:-1])] for h in history]
            label = f"{run}: {labels[i] if labels else key}" if len(histories) > 1 else (labels[i] if labels else key)
            ax.plot([h["epoch"] for h in history], values, label=label)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def results_table(rows: Sequence[Sequence], header: Sequence[str], caption: str = "") -> str:
    """A small HTML table (no pandas needed); numbers are formatted with 3 decimals."""

    def cell(value):
        if isinstance(value, float):
            return f"{value:.3f}"
        return "" if value is None else str(value)

    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{caption}</caption>")
    parts.append("<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def _mean_sd(stats: dict | None) -> str:
    if stats is None:
        return ""
    return f"{stats['mean']:.3f}" + ("" if stats["std"] is None else f" &plusmn; {stats['std']:.3f}")


def summary_table(results: dict, caption: str = "", metrics: Sequence[dict] | None = None) -> str:
    """HTML table of a results file: per loss, each metric's mean &plusmn; standard deviation over
    seeds, at the selected epoch and at the last one."""
    metrics = metrics if metrics is not None else results["metrics"]
    header = ["loss", "seeds"]
    for metric in metrics:
        unit = f" ({metric['unit']})" if metric.get("unit") else ""
        header += [f"{metric['label']}{unit}, selected epoch", "last epoch"]
    rows = []
    for loss, entry in results["summary"].items():
        row = [loss, entry["n_seeds"]]
        for metric in metrics:
            row += [_mean_sd(entry.get(epoch, {}).get(metric["key"])) for epoch in ("selected", "last")]
        rows.append(row)
    return results_table(rows, header, caption)


def comparison_table(
    results: dict, caption: str = "", epochs: Sequence[str] = ("selected", "last"), movement: float = 0.0
) -> str:
    """HTML table of the paired differences (each compared loss minus its baseline, same seeds and items),
    with the verdict of :func:`~bl_tutorial.evaluation.verdict` and the smallest detectable difference."""
    from bl_tutorial.evaluation import Metric, verdict

    metrics = {m["key"]: Metric.coerce(m) for m in results["metrics"]}
    rows = []
    for c in results["comparisons"]:
        if c["epoch"] not in epochs:
            continue
        metric = metrics[c["metric"]]
        found = verdict(c, metric, movement)
        interval = "n/a (1 seed)" if c["interval"] is None else f"{c['interval'][0]:+.3f} to {c['interval'][1]:+.3f}"
        detectable = "" if found.detectable is None else f"{found.detectable:.3f}"
        unit = f" ({metric.unit})" if metric.unit else ""
        rows.append([f"{c['loss']} &minus; {c['baseline']}", f"{metric.label}{unit}", c["epoch"], c["n"],
                     f"{c['mean']:+.3f}", interval, detectable, found.label])  # fmt: skip
    header = ["pair", "metric", "epoch", "seeds", "mean difference", "95 % interval", "detectable", "verdict"]
    return results_table(rows, header, caption)


def plot_seed_curves(results: dict, key: str, ax=None, title: str = "", losses: Sequence[str] | None = None):
    """Per loss, the history entry ``key`` (e.g. ``"val_dice[1]"``) averaged over seeds, with its range."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    name, _, index = key.partition("[")
    by_loss: dict[str, list] = {}
    for run in results["runs"]:
        if run["status"] == "finished" and (losses is None or run["loss"] in losses):
            values = [h[name] if not index else h[name][int(index[:-1])] for h in run["history"]]
            by_loss.setdefault(run["loss"], []).append(values)
    for loss, curves in by_loss.items():
        curves = np.array(curves)
        epochs = np.arange(curves.shape[1])
        (line,) = ax.plot(epochs, curves.mean(0), label=f"{loss} ({len(curves)} seeds)")
        ax.fill_between(epochs, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def study_figure(studies: dict, metrics: Sequence[dict], markers: dict[str, float] | None = None):
    """A study's metrics against its condition (a foreground share in %), one line per loss,
    the mean over seeds with a 95 % t-interval (clipped at the metric's ``lower`` and ``upper``
    bounds: a Dice interval never drawn below 0 or above 1); ``markers`` draws named shares as
    vertical lines."""
    import matplotlib.pyplot as plt
    from scipy import stats

    conditions = sorted(studies)
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 3.8))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        for loss in studies[conditions[0]]["summary"]:
            means, halves = [], []
            for condition in conditions:
                values = [r["metrics"][metric["key"]] for r in studies[condition]["runs"]
                          if r["loss"] == loss and r["status"] == "finished"]  # fmt: skip
                means.append(np.mean(values))
                spread = np.std(values, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
                halves.append(stats.t.ppf(0.975, max(len(values) - 1, 1)) * spread)
            means, halves = np.array(means), np.array(halves)
            low, high = metric.get("lower"), metric.get("upper")  # an interval drawn past a bound is clipped to it
            below = means - (halves if low is None else np.minimum(halves, means - low))
            above = (means + halves) if high is None else np.minimum(means + halves, high)
            ax.errorbar(conditions, means, yerr=[means - below, above - means], marker="o", capsize=3, label=loss)
        for name, share in (markers or {}).items():
            ax.axvline(share, color="gray", linestyle=":", linewidth=1)
            ax.text(share, 0.02, name, rotation=90, transform=ax.get_xaxis_transform(), fontsize=8, color="gray")
        ax.set_xscale("log")
        ax.set_xlabel("foreground, % of the image")
        unit = f" ({metric['unit']})" if metric.get("unit") else ""
        ax.set_title(metric["label"] + unit)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- prediction figures
def drive_validation_figure(sample, probability: np.ndarray, title: str):
    """An annotated image, its truth, and the errors of ``probability >= 0.5`` (FP red, FN blue)."""
    from matplotlib.figure import Figure

    errors = error_map(probability >= 0.5, sample.vessels, sample.fov)
    fig = Figure(figsize=(12, 4.2))
    panels = [(sample.image, f"report image {sample.id}"), (sample.vessels, "truth"), (errors, "FP red, FN blue")]
    for ax, (image, name) in zip(fig.subplots(1, 3), panels):
        ax.imshow(image, cmap="gray")
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(title)
    return fig


def drive_test_figure(test, vessel_probability: np.ndarray, loss: str):
    """A test image and its thresholded prediction (test annotations are not public)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.2))
    axes = fig.subplots(1, 2)
    axes[0].imshow(test.image)
    axes[0].set_title(f"test image {test.id}")
    axes[1].imshow(vessel_probability >= 0.5, cmap="gray")
    axes[1].set_title(f"prediction ({loss})")
    for ax in axes:
        ax.axis("off")
    return fig


def cardiac_slices_figure(images: np.ndarray, truths: np.ndarray, preds: np.ndarray, title: str):
    """Input / truth / prediction / difference for a few slices (the report's Figure 3)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2 * len(images)))
    axes = fig.subplots(len(images), 4, squeeze=False)
    for row, (image, truth, pred) in enumerate(zip(images, truths, preds)):
        panels = [(image, "gray", None), (truth, "viridis", 3), (pred, "viridis", 3), (pred != truth, "gray", None)]
        for col, (panel, cmap, vmax) in enumerate(panels):
            axes[row, col].imshow(panel, cmap=cmap, vmin=0 if col else None, vmax=vmax)
            axes[row, col].axis("off")
            if row == 0:
                axes[row, col].set_title(["input", "truth", "prediction", "difference"][col])
    fig.suptitle(title)
    return fig
