"""The book's figures and widgets (every chapter), and the ``glue`` helper for numbers in prose.

Each interactive widget has a static equivalent that works without a kernel (the
published book): :func:`distance_map_explorer` (ipywidgets) and
:func:`distance_map_animation` (a matplotlib animation rendered to HTML with its own
slider) show the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bl_tutorial.distance import boundary_set, signed_distance

__all__ = [
    "glue",
    "plot_signed_distance",
    "figure_distance_maps",
    "error_map",
    "ExplorerState",
    "explorer_state",
    "distance_map_explorer",
    "distance_map_animation",
    "plot_history",
    "results_table",
    "summary_table",
    "drive_validation_figure",
    "drive_test_figure",
    "cardiac_slices_figure",
    "SHAPES",
]

SHAPES = ("disc", "square", "ring", "two blobs", "vessel")


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for ``{glue:text}`` references in the book's prose.

    Uses ``myst_nb.glue`` when MyST-NB is installed (the book build); does nothing
    otherwise (e.g. in Colab, where the prose shows the reference instead).
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    if isinstance(value, np.generic):  # np.float64 -> float, so that {glue:text}`name:.2f` can format it
        value = value.item()
    myst_glue(name, value, display=display)


# --------------------------------------------------------------------------- static figures
def plot_signed_distance(ax, phi: np.ndarray, mask: np.ndarray | None = None, title: str = "", colorbar=True):
    """Draw a signed distance map with a diverging colormap centred on 0 and the mask's contour."""
    limit = float(np.abs(phi).max()) or 1.0
    image = ax.imshow(phi, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    if mask is not None and mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors="k", linewidths=0.8)
    ax.set_title(title)
    ax.axis("off")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    return image


def figure_distance_maps(image: np.ndarray, mask: np.ndarray, title: str = "", spacing=None):
    """The report's Figure 1: input, segmentation, distance map to G0 and to G1 (exact convention)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    axes[0].imshow(image)
    axes[0].set_title("(a) input")
    axes[1].imshow(mask, cmap="gray")
    axes[1].set_title("(b) segmentation $G_1$")
    for ax in axes[:2]:
        ax.axis("off")
    plot_signed_distance(axes[2], signed_distance(~mask, spacing), None, r"(c) $\phi$ of $G_0$ (background)")
    plot_signed_distance(axes[3], signed_distance(mask, spacing), None, r"(d) $\phi$ of $G_1$ (vessels)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


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


# --------------------------------------------------------------------------- explorer
@dataclass(frozen=True)
class ExplorerState:
    """What the distance-map explorer shows for one choice of controls."""

    mask: np.ndarray
    phi: np.ndarray
    spacing: tuple[float, float]
    message: str


def _shape_mask(shape: str, size: float, grid: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[:grid, :grid] - (grid - 1) / 2
    if shape == "disc":
        return np.hypot(yy, xx) <= size
    if shape == "square":
        return (np.abs(yy) <= size) & (np.abs(xx) <= size)
    if shape == "ring":
        radius = np.hypot(yy, xx)
        return (radius <= size) & (radius >= size * 0.55)
    if shape == "two blobs":
        return (np.hypot(yy + size * 0.6, xx + size * 0.6) <= size * 0.55) | (np.hypot(yy - size, xx - size) <= 3)
    # vessel: a thin curved line whose half-width grows with size
    curve = 6 * np.sin(xx / 9)
    return np.abs(yy - curve) <= max(0.5, size / 8)


def explorer_state(
    shape: str = "disc",
    size: float = 10.0,
    spacing_y: float = 1.0,
    spacing_x: float = 1.0,
    target: str = "foreground",
    convention: str = "exact",
    previous_spacing: tuple[float, float] = (1.0, 1.0),
) -> ExplorerState:
    """Validate the explorer's controls and compute the map. Never raises on a bad choice.

    Out-of-range values are clamped or replaced by the last valid one, and ``message``
    says why (for example a spacing of zero), so the widget's callback never fails.
    """
    notes = []
    if shape not in SHAPES:
        notes.append(f"unknown shape {shape!r}; showing a disc")
        shape = "disc"
    clamped = float(np.clip(size, 1, 22))
    if clamped != size:
        notes.append(f"size must lie in [1, 22] pixels; used {clamped:g}")
    spacing = []
    for name, value, fallback in (("row", spacing_y, previous_spacing[0]), ("column", spacing_x, previous_spacing[1])):
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = float("nan")
        if not np.isfinite(value) or value <= 0:
            notes.append(f"{name} spacing must be a positive number of mm (got {value:g}); kept {fallback:g}")
            value = fallback
        elif value > 10:
            notes.append(f"{name} spacing above 10 mm is not shown; used 10")
            value = 10.0
        spacing.append(value)
    if convention not in ("exact", "official"):
        notes.append(f"unknown convention {convention!r}; using 'exact'")
        convention = "exact"
    mask = _shape_mask(shape, clamped)
    if target == "background":
        mask = ~mask
    phi = signed_distance(mask, tuple(spacing), convention)
    if convention == "official":
        inside_positive = int((phi[mask] > 0).sum())
        if inside_positive:
            notes.append(f"official convention: {inside_positive} boundary pixels inside the object are positive")
    return ExplorerState(mask, phi, (spacing[0], spacing[1]), "; ".join(notes) or "ok")


def distance_map_explorer():
    """An ipywidgets panel: shape, size, spacing per axis, foreground/background, convention.

    Needs a running kernel (Jupyter, Colab). In the static book, see
    :func:`distance_map_animation`.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    shape = widgets.Dropdown(options=SHAPES, value="disc", description="shape")
    size = widgets.FloatSlider(value=10, min=1, max=22, step=0.5, description="size (px)")
    spacing_y = widgets.FloatText(value=1.0, description="row mm")
    spacing_x = widgets.FloatText(value=1.0, description="column mm")
    target = widgets.ToggleButtons(options=["foreground", "background"], description="class")
    convention = widgets.ToggleButtons(options=["exact", "official"], description="convention")
    message = widgets.HTML()
    output = widgets.Output()
    last = {"spacing": (1.0, 1.0)}

    def redraw(*_):
        state = explorer_state(
            shape.value, size.value, spacing_y.value, spacing_x.value, target.value, convention.value, last["spacing"]
        )
        last["spacing"] = state.spacing
        if (spacing_y.value, spacing_x.value) != state.spacing:  # show the value actually used
            spacing_y.value, spacing_x.value = state.spacing
        message.value = "" if state.message == "ok" else f"<b>Note:</b> {state.message}"
        with output:
            output.clear_output(wait=True)
            fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
            axes[0].imshow(state.mask, cmap="gray")
            axes[0].contour(boundary_set(state.mask).astype(float), levels=[0.5], colors="orange", linewidths=0.6)
            axes[0].set_title("mask and boundary set")
            axes[0].axis("off")
            plot_signed_distance(
                axes[1], state.phi, state.mask, rf"$\phi$ ({convention.value}), spacing {state.spacing}"
            )
            plt.show()

    for control in (shape, size, spacing_y, spacing_x, target, convention):
        control.observe(redraw, names="value")
    redraw()
    controls = widgets.VBox([shape, size, widgets.HBox([spacing_y, spacing_x]), target, convention, message])
    return widgets.HBox([controls, output])


def distance_map_animation(
    shapes: Sequence[str] = ("disc", "ring", "vessel"),
    spacings: Sequence[tuple[float, float]] = ((1.0, 1.0), (2.0, 1.0), (1.0, 3.0)),
    size: float = 12.0,
) -> str:
    """The static equivalent of the explorer: an HTML/JS animation with a slider, no kernel needed.

    Each frame is one (shape, spacing) pair, drawn with the exact and the official
    convention side by side. Returns the HTML string (display it with ``IPython.display.HTML``).
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation

    frames = [(s, sp) for s in shapes for sp in spacings]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))

    def draw(index):
        shape, spacing = frames[index]
        for ax in axes:
            ax.clear()
        exact = explorer_state(shape, size, *spacing, convention="exact")
        official = explorer_state(shape, size, *spacing, convention="official")
        axes[0].imshow(exact.mask, cmap="gray")
        axes[0].set_title(f"{shape}, spacing {spacing} mm")
        axes[0].axis("off")
        plot_signed_distance(axes[1], exact.phi, exact.mask, "exact convention", colorbar=False)
        plot_signed_distance(axes[2], official.phi, official.mask, "official convention", colorbar=False)
        return []

    anim = animation.FuncAnimation(fig, draw, frames=len(frames), interval=900, blit=False)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return html


# --------------------------------------------------------------------------- training results
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


def summary_table(results: dict, caption: str = "") -> str:
    """HTML table of a results file: per loss, the headline score's mean and spread over seeds."""
    rows = [
        [loss, s["dice_mean"], s["dice_std"], s["n_seeds"], ", ".join(map(str, s["best_epochs"]))]
        for loss, s in results["summary"].items()
    ]
    return results_table(rows, ["loss", "Dice (mean)", "std over seeds", "seeds", "best epoch(s)"], caption)


# --------------------------------------------------------------------------- experiment figures
# Built on matplotlib's Figure (not pyplot), so that the runner can draw them with no
# global state and save them, and a notebook can display them.
def drive_validation_figure(sample, probability: np.ndarray, title: str):
    """A validation image, its truth, and the errors of ``probability >= 0.5`` (FP red, FN blue)."""
    from matplotlib.figure import Figure

    errors = error_map(probability >= 0.5, sample.vessels, sample.fov)
    fig = Figure(figsize=(12, 4.2))
    panels = [(sample.image, f"validation image {sample.id}"), (sample.vessels, "truth"), (errors, "FP red, FN blue")]
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
