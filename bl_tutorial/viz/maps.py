"""Figures and widgets of the distance-map chapter.

Each interactive widget has a static equivalent that works without a kernel (the
published book): :func:`distance_map_explorer` (ipywidgets) and
:func:`distance_map_animation` (a matplotlib animation rendered to HTML with its own
slider) show the same thing.

Maps drawn with a ``spacing`` are drawn in millimetres: with a row spacing of 2 mm and a
column spacing of 1 mm a square grid covers a rectangle twice as tall as it is wide, and
the figure shows it so. Without a spacing they are drawn in pixels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from bl_tutorial.distance import boundary_set, signed_distance

__all__ = [
    "plot_signed_distance",
    "plot_mask",
    "extent_mm",
    "figure_distance_maps",
    "ExplorerState",
    "explorer_state",
    "explorer_figure",
    "distance_map_explorer",
    "distance_map_animation",
    "SHAPES",
]

SHAPES = ("disc", "square", "ring", "two blobs", "vessel")


# --------------------------------------------------------------------------- static figures
def extent_mm(shape: tuple[int, int], spacing) -> tuple[float, float, float, float]:
    """``imshow``'s ``extent`` that draws a ``shape`` image in millimetres: (left, right, bottom, top).

    Row 0 stays at the top, as in a pixel plot.

    >>> extent_mm((48, 40), (2.0, 0.5))
    (0.0, 20.0, 96.0, 0.0)
    """
    rows, cols = shape
    spacing_y, spacing_x = (float(v) for v in spacing)
    return (0.0, cols * spacing_x, rows * spacing_y, 0.0)


def _pixel_centres_mm(shape: tuple[int, int], spacing) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the pixel centres in millimetres, to draw contours on top of an ``extent_mm`` image."""
    rows, cols = shape
    return (np.arange(cols) + 0.5) * float(spacing[1]), (np.arange(rows) + 0.5) * float(spacing[0])


def _draw_in_mm(ax, shape, spacing) -> dict:
    """Label the axes in mm and return the ``imshow`` keywords for a physical aspect (none in pixels)."""
    if spacing is None:
        ax.axis("off")
        return {}
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    return {"extent": extent_mm(shape, spacing)}


def _contour(ax, image: np.ndarray, spacing, **style) -> None:
    """The 0.5 level line of a binary image, placed on the pixel centres (in mm when a spacing is given)."""
    if not image.any() or image.all():
        return
    if spacing is None:
        ax.contour(image.astype(float), levels=[0.5], **style)
    else:
        x, y = _pixel_centres_mm(image.shape, spacing)
        ax.contour(x, y, image.astype(float), levels=[0.5], **style)


def plot_signed_distance(
    ax,
    phi: np.ndarray,
    mask: np.ndarray | None = None,
    title: str = "",
    colorbar=True,
    spacing=None,
    label: str | None = None,
    limit: float | None = None,
):
    """Draw a signed distance map with a diverging colormap centred on 0 and the mask's contour.

    With ``spacing`` (row, column) in mm the map is drawn in millimetres, with its physical
    aspect and axes labelled in mm; without it, in pixels and without axes. The colour bar
    says what it shows and in which unit: ``label``, else "phi (mm)" or "phi (px)" after
    ``spacing``. The colours span ``-limit`` to ``limit`` (default: the largest magnitude;
    a smaller one saturates the extremes so that small values stay visible).
    """
    limit = limit or float(np.abs(phi).max()) or 1.0
    where = _draw_in_mm(ax, phi.shape, spacing)
    image = ax.imshow(phi, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest", **where)
    if mask is not None:
        _contour(ax, mask, spacing, colors="k", linewidths=0.8)
    ax.set_title(title)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
        bar.set_label(label or (r"$\phi$ (mm)" if spacing is not None else r"$\phi$ (px)"))
    return image


def plot_mask(ax, mask: np.ndarray, title: str = "mask and boundary set", spacing=None):
    """Draw a binary mask in grey with its boundary set outlined in orange (in mm when ``spacing`` is given)."""
    where = _draw_in_mm(ax, mask.shape, spacing)
    image = ax.imshow(mask, cmap="gray", vmin=0, vmax=1, interpolation="nearest", **where)
    _contour(ax, boundary_set(mask), spacing, colors="orange", linewidths=0.6)
    ax.set_title(title)
    return image


def figure_distance_maps(image: np.ndarray, mask: np.ndarray, title: str = "", spacing=None):
    """The report's Figure 1: input, segmentation, distance map to G0 and to G1 (exact convention).

    With ``spacing`` (row, column) in mm, the four panels are drawn in millimetres.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    axes[0].imshow(image, **_draw_in_mm(axes[0], mask.shape, spacing))
    axes[0].set_title("(a) input")
    axes[1].imshow(mask, cmap="gray", **_draw_in_mm(axes[1], mask.shape, spacing))
    axes[1].set_title("(b) segmentation $G_1$")
    background, vessels = signed_distance(~mask, spacing), signed_distance(mask, spacing)
    plot_signed_distance(axes[2], background, None, r"(c) $\phi$ of $G_0$ (background)", spacing=spacing)
    plot_signed_distance(axes[3], vessels, None, r"(d) $\phi$ of $G_1$ (vessels)", spacing=spacing)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- explorer
@dataclass(frozen=True)
class ExplorerState:
    """What the distance-map explorer shows for one choice of controls."""

    mask: np.ndarray
    phi: np.ndarray
    spacing: tuple[float, float]
    message: str
    convention: str = "exact"
    notes: tuple[str, ...] = ()  # the message's notes, one by one ("ok" has none)


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


MIN_SPACING_MM, MAX_SPACING_MM = 0.01, 10.0  # the explorer's range of spacings (a pixel at most 1000:1)


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
        elif value > MAX_SPACING_MM:
            notes.append(f"{name} spacing above {MAX_SPACING_MM:g} mm is not shown; used {MAX_SPACING_MM:g}")
            value = MAX_SPACING_MM
        elif value < MIN_SPACING_MM:
            notes.append(f"{name} spacing below {MIN_SPACING_MM:g} mm is not shown; used {MIN_SPACING_MM:g}")
            value = MIN_SPACING_MM
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
    return ExplorerState(mask, phi, (spacing[0], spacing[1]), "; ".join(notes) or "ok", convention, tuple(notes))


MAX_DRAWN_STRETCH = 4.0  # the explorer draws a pixel at most 4 times longer one way than the other


def _height_to_width(ratio: float) -> str:
    """``4.001:1``, ``1:20``, ``1,000:1``: enough digits that a capped ratio never reads as the cap."""
    larger = max(ratio, 1 / ratio)
    text = f"{larger:,.0f}" if larger >= 100 else f"{larger:.4g}"
    return f"{text}:1" if ratio >= 1 else f"1:{text}"


def explorer_figure(state: ExplorerState, figsize=(7.6, 3.5)):
    """The explorer's figure for one state: the mask with its boundary set, and phi, both in mm.

    Both panels have the physical aspect of the grid (``extent_mm``): with a row spacing of
    2 mm the shape is drawn twice as tall as with 1 mm. Beyond a stretch of
    ``MAX_DRAWN_STRETCH`` (a 0.1 x 10 mm pixel would be a sliver) the pixels are drawn at
    that stretch and the title says so. Returns a matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    axes = fig.subplots(1, 2)
    plot_mask(axes[0], state.mask, spacing=state.spacing)
    plot_signed_distance(axes[1], state.phi, state.mask, rf"$\phi$ ({state.convention})", spacing=state.spacing)
    row, column = state.spacing
    title = f"spacing: rows {row:g} mm, columns {column:g} mm"
    ratio = row / column  # a pixel's height over its width
    drawn = min(max(ratio, 1 / MAX_DRAWN_STRETCH), MAX_DRAWN_STRETCH)
    if drawn != ratio:  # a thin sliver shows nothing: stretch less, and say so
        for ax in axes:
            ax.set_aspect(drawn / ratio)
        title += f"\npixels drawn {_height_to_width(drawn)} (height:width), not {_height_to_width(ratio)}"
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# Sizes of the explorer's panel. Every control has a fixed width, and the note area a fixed
# width and height (long notes wrap, then scroll inside it), so that nothing moves when a
# control changes or a note appears. The figure sits to the right of the controls, or under
# them when the window is too narrow for both.
CONTROL_WIDTH = "380px"
LABEL_WIDTH = "150px"  # the longest description, "column spacing (mm)", needs 142 px in JupyterLab
NOTE_HEIGHT = "120px"
FIGURE_DPI = 100  # the figure is sent as a PNG of fixed size: 7.6 x 3.5 in -> 760 x 350 px


def _figure_png(fig) -> bytes:
    """The figure as PNG bytes, whatever matplotlib backend the kernel runs (an unshown
    ``Figure`` is only drawn by Jupyter's inline backend once pyplot has been imported)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
    return buffer.getvalue()


def _note_html(state: ExplorerState) -> str:
    """The note area's content: one line per note, wrapped inside the fixed-size box."""
    if not state.notes:
        return ""
    lines = "<br>".join(escape(note) for note in state.notes)
    return (
        '<div style="white-space: normal; overflow-wrap: anywhere; line-height: 1.35; font-size: 0.9em;">'
        f"<b>Note:</b><br>{lines}</div>"
    )


def distance_map_explorer():
    """An ipywidgets panel: shape, size, spacing per axis, foreground/background, convention.

    Needs a running kernel (Jupyter, Colab). In the static book, see
    :func:`distance_map_animation`. Returns the panel, an ``HBox`` of the controls (a
    ``VBox`` ending with the note area, an ``HTML`` widget) and the figure (an ``Output``).
    """
    import ipywidgets as widgets
    from IPython.display import Image, display

    def fixed():  # every control: the same width, the same width for its description
        return {"layout": widgets.Layout(width=CONTROL_WIDTH), "style": {"description_width": LABEL_WIDTH}}

    shape = widgets.Dropdown(options=SHAPES, value="disc", description="shape", **fixed())
    size = widgets.FloatSlider(value=10, min=1, max=22, step=0.5, description="size (px)", **fixed())
    spacing_y = widgets.FloatText(value=1.0, description="row spacing (mm)", **fixed())
    spacing_x = widgets.FloatText(value=1.0, description="column spacing (mm)", **fixed())
    # drop-downs, not toggle buttons: ipywidgets 8 puts a ToggleButtons' description above
    # its buttons, out of line with the other controls
    target = widgets.Dropdown(options=["foreground", "background"], description="class", **fixed())
    convention = widgets.Dropdown(options=["exact", "official"], description="convention", **fixed())
    note = widgets.HTML(layout=widgets.Layout(width=CONTROL_WIDTH, height=NOTE_HEIGHT, overflow="auto"))
    output = widgets.Output()
    last = {"spacing": (1.0, 1.0), "busy": False}

    def redraw(*_):
        if last["busy"]:  # our own write-back of a corrected spacing below: already drawn
            return
        state = explorer_state(
            shape.value, size.value, spacing_y.value, spacing_x.value, target.value, convention.value, last["spacing"]
        )
        last["spacing"] = state.spacing
        last["busy"] = True
        try:  # show the spacing actually used (a refused value is replaced by the last valid one)
            spacing_y.value, spacing_x.value = state.spacing
        finally:
            last["busy"] = False
        note.value = _note_html(state)
        with output:
            output.clear_output(wait=True)
            display(Image(data=_figure_png(explorer_figure(state)), format="png"))

    for control in (shape, size, spacing_y, spacing_x, target, convention):
        control.observe(redraw, names="value")
    redraw()
    controls = widgets.VBox(
        [shape, size, spacing_y, spacing_x, target, convention, note],
        layout=widgets.Layout(width="390px", flex="0 0 auto"),  # never grows or shrinks
    )
    return widgets.HBox([controls, output], layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))


# matplotlib's animation buttons show Font Awesome icons (<i class="fa fa-...">) from a stylesheet
# on a CDN; these characters replace them (each button keeps its title as a tooltip).
BUTTON_LABELS = {
    "fa fa-minus": "−",  # decrease speed (a minus sign)
    "fa fa-fast-backward": "«",  # first frame
    "fa fa-step-backward": "‹",  # previous frame
    "fa fa-play fa-flip-horizontal": "◁",  # play backwards
    "fa fa-pause": "||",  # pause
    "fa fa-play": "▷",  # play
    "fa fa-step-forward": "›",  # next frame
    "fa fa-fast-forward": "»",  # last frame
    "fa fa-plus": "+",  # increase speed
}


def _without_icon_font(html: str) -> str:
    """Drop the Font Awesome ``<link>`` of matplotlib's animation HTML; label its buttons with characters."""
    html = re.sub(r"<link\b[^>]*font-awesome[^>]*>\s*", "", html)

    def label(match):
        classes = match.group(1)
        return BUTTON_LABELS.get(classes, classes.split("fa-")[-1])  # an unknown icon still gets a name

    return re.sub(r'<i class="(fa [^"]*)"></i>', label, html)


def _draw_animation_frame(axes, shape: str, spacing: tuple[float, float], size: float) -> None:
    """One frame of :func:`distance_map_animation`: the mask, then phi in both conventions, in mm."""
    for ax in axes:
        ax.clear()
    exact = explorer_state(shape, size, *spacing, convention="exact")
    official = explorer_state(shape, size, *spacing, convention="official")
    plot_mask(axes[0], exact.mask, f"{shape}, spacing {spacing[0]:g} x {spacing[1]:g} mm", spacing=exact.spacing)
    plot_signed_distance(axes[1], exact.phi, exact.mask, "exact convention", colorbar=False, spacing=exact.spacing)
    plot_signed_distance(
        axes[2], official.phi, official.mask, "official convention", colorbar=False, spacing=official.spacing
    )


def distance_map_animation(
    shapes: Sequence[str] = ("disc", "ring", "vessel"),
    spacings: Sequence[tuple[float, float]] = ((1.0, 1.0), (2.0, 1.0), (1.0, 3.0)),
    size: float = 12.0,
) -> str:
    """The static equivalent of the explorer: an HTML/JS animation with a slider, no kernel needed.

    Each frame is one (shape, spacing) pair, drawn with the exact and the official
    convention side by side, in millimetres: a row spacing of 2 mm draws the grid twice as
    tall. Every frame has the same size (one figure, saved frame by frame). Returns the
    HTML string (display it with ``IPython.display.HTML``).

    The HTML loads nothing from the internet. matplotlib's player draws its buttons with
    Font Awesome icons and links a Font Awesome stylesheet on a CDN; that link is removed
    and each icon is replaced by a plain character (« ‹ ◁ || ▷ › » and − + for the speed),
    each button keeping its tooltip. The book's theme does ship Font Awesome, so the icons
    alone would work in the book, but Jupyter and Colab have no Font Awesome and the
    buttons would be blank there offline; characters look the same everywhere and need
    neither a network nor the theme.
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation

    frames = [(s, sp) for s in shapes for sp in spacings]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    # fixed margins (no tight layout per frame), so the panels keep their place from frame to frame
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.9, wspace=0.35)

    def draw(index):
        _draw_animation_frame(axes, *frames[index], size)
        return []

    anim = animation.FuncAnimation(fig, draw, frames=len(frames), interval=900, blit=False)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return _without_icon_font(html)
