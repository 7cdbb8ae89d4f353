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
    "fork_curves",
    "study_table",
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
    """HTML table of a results file: per loss, its seeds and each metric's mean &plusmn; standard
    deviation over seeds, at the selected epoch (chosen on the selection split) and at the last
    epoch (named by its number)."""
    metrics = metrics if metrics is not None else results["metrics"]
    last = results.get("profile", {}).get("training", {}).get("epochs")
    header = ["loss", "seeds"]
    for metric in metrics:
        unit = f" ({metric['unit']})" if metric.get("unit") else ""
        header += [f"{metric['label']}{unit}, selected epoch", "last epoch" + (f" ({last})" if last else "")]
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


def _clipped(means: np.ndarray, halves: np.ndarray, metric: dict) -> list[np.ndarray]:
    """Error-bar lengths below and above ``means``, an interval drawn past a bound of the metric clipped to it."""
    low, high = metric.get("lower"), metric.get("upper")
    below = halves if low is None else np.minimum(halves, means - low)
    above = halves if high is None else np.minimum(halves, high - means)
    return [np.maximum(below, 0), np.maximum(above, 0)]


def _mean_and_half(values: Sequence[float]) -> tuple[float, float]:
    from scipy import stats

    if len(values) < 2:
        return float(np.mean(values)), 0.0
    return float(np.mean(values)), float(
        stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    )


def _scores(results: dict, loss: str, key: str) -> list[float]:
    return [r["metrics"][key] for r in results["runs"] if r["loss"] == loss and r["status"] == "finished"]


def study_figure(studies: dict, metrics: Sequence[dict], markers: dict[str, float] | None = None):
    """A study's metrics against its condition (a foreground share in %), one line per loss,
    the mean over seeds with a 95 % t-interval (clipped at the metric's ``lower`` and ``upper``
    bounds: a Dice interval is never drawn below 0 or above 1). ``markers`` names shares of
    other structures, marked on the top axis (labels there cannot cover the data)."""
    import matplotlib.pyplot as plt

    conditions = sorted(studies)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        losses = list(studies[conditions[0]]["summary"])
        for index, loss in enumerate(losses):
            pairs = [_mean_and_half(_scores(studies[c], loss, metric["key"])) for c in conditions]
            means, halves = np.array([m for m, _ in pairs]), np.array([h for _, h in pairs])
            shifted = np.array(conditions) * 1.06 ** (index - (len(losses) - 1) / 2)  # side by side, not on top
            ax.errorbar(shifted, means, yerr=_clipped(means, halves, metric), marker="o", capsize=3, label=loss)
        ax.set_xscale("log")
        ax.set_xlabel("lesions, % of the image")
        unit = f" ({metric['unit']})" if metric.get("unit") else ""
        ax.set_ylabel(metric["label"] + unit)
        ax.grid(alpha=0.3)
        if markers:
            for share in markers.values():
                ax.axvline(share, color="gray", linestyle=":", linewidth=1)
            top = ax.secondary_xaxis("top")
            top.set_xticks(list(markers.values()), list(markers), rotation=60, fontsize=7, color="gray", ha="left")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def fork_curves(results: dict, ax=None, key: str = "val_foreground_dice", title: str = ""):
    """A warm-started experiment over its epochs: the warm start (mean over seeds, range shaded),
    then each loss continuing from it (mean over seeds)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    warm = np.array([[h[key] for h in w["history"]] for w in results.get("warm_starts", []) if "history" in w])
    offset = warm.shape[1] if warm.size else 0
    if warm.size:
        epochs = np.arange(1, offset + 1)
        (line,) = ax.plot(epochs, warm.mean(0), color="black", label=f"warm start ({len(warm)} seeds)")
        ax.fill_between(epochs, warm.min(0), warm.max(0), color=line.get_color(), alpha=0.12)
        ax.axvline(offset + 0.5, color="gray", linestyle=":", linewidth=1)
    by_loss: dict[str, list] = {}
    for run in results["runs"]:
        if run["status"] == "finished":
            by_loss.setdefault(run["loss"], []).append([h[key] for h in run["history"]])
    for loss, curves in by_loss.items():
        curves = np.array(curves)
        ax.plot(offset + 1 + np.arange(curves.shape[1]), curves.mean(0), label=loss)
    ax.set_xlabel("epoch")
    ax.set_ylabel("selection Dice")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def study_table(studies: dict, caption: str = "", epoch: str = "selected", movement: float | dict = 0.0) -> str:
    """HTML table of a study's paired differences, condition by condition, with their verdicts
    (:func:`~bl_tutorial.evaluation.verdict`) and the smallest difference each could detect.
    ``movement``: how much a difference moves between builds (one number, or one per metric key)."""
    from bl_tutorial.evaluation import Metric, verdict

    rows = []
    for condition in sorted(studies):
        results = studies[condition]
        metrics = {m["key"]: Metric.coerce(m) for m in results["metrics"]}
        for c in results["comparisons"]:
            if c["epoch"] != epoch:
                continue
            metric = metrics[c["metric"]]
            moved = movement.get(c["metric"], 0.0) if isinstance(movement, dict) else movement
            found = verdict(c, metric, moved)
            interval = "n/a" if c["interval"] is None else f"{c['interval'][0]:+.3f} to {c['interval'][1]:+.3f}"
            detectable = "" if found.detectable is None else f"{found.detectable:.3f}"
            unit = f" ({metric.unit})" if metric.unit else ""
            rows.append([f"{condition:g} %", f"{c['loss']} &minus; {c['baseline']}", f"{metric.label}{unit}",
                         f"{c['mean']:+.3f}", interval, detectable, found.label])  # fmt: skip
    header = ["lesions", "pair", "metric", "mean difference", "95 % interval", "detectable", "verdict"]
    return results_table(rows, header, caption)


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


def cardiac_slices_figure(
    images: np.ndarray,
    truths: np.ndarray,
    preds: np.ndarray,
    title: str,
    class_names: Sequence[str] = ("background", "RV", "MYO", "LV"),
):
    """Input / truth / prediction / difference for a few slices (the report's Figure 3), with a
    legend of the class colours (white in the difference: a pixel whose class is wrong)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    colours = colormaps["viridis"].resampled(len(class_names))
    fig = Figure(figsize=(8, 2 * len(images) + 0.6))
    axes = fig.subplots(len(images), 4, squeeze=False)
    top = len(class_names) - 1
    for row, (image, truth, pred) in enumerate(zip(images, truths, preds)):
        panels = [(image, "gray", None), (truth, colours, top), (pred, colours, top), (pred != truth, "gray", 1)]
        for col, (panel, cmap, vmax) in enumerate(panels):
            axes[row, col].imshow(panel, cmap=cmap, vmin=0 if col else None, vmax=vmax, interpolation="nearest")
            axes[row, col].axis("off")
            if row == 0:
                axes[row, col].set_title(["input", "truth", "prediction", "difference"][col])
    legend = [Patch(color=colours(k), label=name) for k, name in enumerate(class_names)]
    legend.append(Patch(facecolor="white", edgecolor="black", label="wrong class (difference)"))
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return fig
