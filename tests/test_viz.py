"""The figure helpers and the distance-map explorer (its widgets, layout and static equivalent)."""

import base64
import io
import re

import numpy as np
import pytest

from bl_tutorial.viz import (
    comparison_table,
    distance_map_animation,
    error_map,
    explorer_state,
    fork_curves,
    glue,
    maps,
    results_table,
    study_figure,
    study_table,
    summary_table,
)


def test_explorer_refuses_bad_controls_with_a_reason():
    state = explorer_state("disc", 10, 0.0, 2.0, previous_spacing=(1.5, 1.0))
    assert state.spacing == (1.5, 2.0) and "row spacing must be a positive number" in state.message
    state = explorer_state("hexagon", 99, 1.0, float("nan"))
    assert "unknown shape" in state.message and "size must lie in [1, 22]" in state.message
    assert "column spacing" in state.message and state.mask.any()
    ok = explorer_state("ring", 12, 1.0, 1.0, target="background")
    assert ok.message == "ok" and ok.mask.mean() > 0.5
    official = explorer_state("disc", 10, 0.5, 0.5, convention="official")
    assert "positive" in official.message


def test_static_equivalent_is_self_contained_html_with_a_slider():
    html = distance_map_animation(shapes=("disc",), spacings=((1.0, 1.0), (2.0, 1.0)), size=8)
    assert 'type="range"' in html and ("<img" in html or "data:image/png" in html)


def _widget_tree(widget):
    """Every widget of an ipywidgets panel, depth first."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _widget_tree(child)


def _layout_snapshot(panel) -> list:
    """What decides where things sit: each widget's sizes and, for controls, their description width."""
    snapshot = []
    for w in _widget_tree(panel):
        layout = w.layout
        style = getattr(w, "style", None)
        snapshot.append(
            (
                type(w).__name__,
                getattr(w, "description", None),
                layout.width,
                layout.height,
                layout.flex,
                layout.overflow,
                getattr(style, "description_width", None),
            )
        )
    return snapshot


@pytest.fixture
def explorer():
    pytest.importorskip("ipywidgets")
    panel = maps.distance_map_explorer()
    controls, _figure = panel.children
    by_name = {w.description: w for w in controls.children if getattr(w, "description", "")}
    note = next(w for w in controls.children if type(w).__name__ == "HTML")
    return panel, by_name, note


def test_explorer_controls_have_fixed_widths_and_a_fixed_note_area(explorer):
    panel, controls, note = explorer
    assert set(controls) == {"shape", "size (px)", "row spacing (mm)", "column spacing (mm)", "class", "convention"}
    for name, control in controls.items():
        assert control.layout.width == maps.CONTROL_WIDTH, name
        assert control.style.description_width == maps.LABEL_WIDTH, name
    assert (note.layout.width, note.layout.height) == (maps.CONTROL_WIDTH, maps.NOTE_HEIGHT)
    assert note.layout.overflow == "auto"  # a long note scrolls inside the box instead of growing it
    column = panel.children[0]
    assert column.layout.width and column.layout.flex == "0 0 auto"  # the controls column never grows or shrinks
    assert note.value == ""  # the default controls need no note


def test_explorer_layout_holds_for_every_control_value_that_produces_a_note(explorer):
    panel, controls, note = explorer
    before = _layout_snapshot(panel)
    # every kind of note the panel can produce: a spacing <= 0 or > 10 mm, on either axis, and the
    # official convention's positive boundary pixels
    axes = ("row spacing (mm)", "column spacing (mm)")
    bad_spacings = [(axis, value) for axis in axes for value in (0.0, -2.0, 50.0)]
    steps = 0
    for convention in ("exact", "official"):
        controls["convention"].value = convention
        for k, (name, value) in enumerate(bad_spacings):
            controls["shape"].value = maps.SHAPES[k % len(maps.SHAPES)]
            controls["class"].value = ("foreground", "background")[k % 2]
            controls[name].value = value  # redraws; a refused spacing is written back as the last valid one
            steps += 1
            assert "Note:" in note.value and "spacing" in note.value, (convention, name, value, note.value)
            assert 0 < controls[name].value <= 10
            assert _layout_snapshot(panel) == before, (convention, name, value)
    longest = maps._note_html(explorer_state("disc", 10, -2.0, 50.0, convention="official", previous_spacing=(0.5, 1)))
    assert longest.count("<br>") == 3 and "overflow-wrap" in longest  # three notes, one line each, wrapped
    assert steps == 12


def test_static_equivalent_loads_nothing_from_the_internet():
    html = distance_map_animation(shapes=("disc",), spacings=((1.0, 1.0), (2.0, 1.0)), size=8)
    assert not re.search(r"<link\b[^>]*href=[\"']?(https?:)?//", html), "an external stylesheet"
    assert not re.search(r"<script\b[^>]*src=[\"']?(https?:)?//", html), "an external script"
    assert "font-awesome" not in html and 'class="fa ' not in html
    labels = re.findall(r"<button\b[^>]*>\s*([^<]*?)\s*</button>", html)
    assert len(labels) == 9 and all(labels), labels  # every button has a visible label
    assert set(labels) == set(maps.BUTTON_LABELS.values())


def _frame_sizes(html: str) -> set:
    from PIL import Image

    frames = re.findall(r'frames\[\d+\] = "data:image/png;base64,(.*?)"', html, re.S)
    return {Image.open(io.BytesIO(base64.b64decode(f.replace("\\\n", "")))).size for f in frames}, len(frames)


def test_animation_frames_keep_one_size_across_spacings():
    html = distance_map_animation(shapes=("disc",), spacings=((1.0, 1.0), (2.0, 1.0), (1.0, 3.0)), size=8)
    sizes, count = _frame_sizes(html)
    assert count == 3 and len(sizes) == 1, sizes


def test_explorer_figure_has_the_physical_aspect():
    state = explorer_state("disc", 10, 2.0, 0.5)
    fig = maps.explorer_figure(state)
    rows, cols = state.mask.shape
    for ax in fig.axes[:2]:
        assert ax.images[0].get_extent() == [0.0, cols * 0.5, rows * 2.0, 0.0]  # in mm: 4 times taller than wide
        assert ax.get_aspect() == 1.0  # one mm is as long across as down
        assert "mm" in ax.get_xlabel() and "mm" in ax.get_ylabel()
    assert "2 mm" in fig._suptitle.get_text() and "0.5 mm" in fig._suptitle.get_text()
    assert "drawn" not in fig._suptitle.get_text()  # 4:1 is drawn as it is


@pytest.mark.parametrize(
    ("row", "column", "drawn", "true"),
    [
        (10.0, 0.1, "4:1", "100:1"),
        (0.25, 5.0, "1:4", "1:20"),
        (4.001, 1.0, "4:1", "4.001:1"),  # enough digits that the true ratio never reads as the cap
        (10, 1e-9, "4:1", "1,000:1"),  # the column spacing clipped to 0.01 mm
    ],
)
def test_explorer_figure_caps_the_stretch_and_says_so(row, column, drawn, true):
    state = explorer_state("disc", 10, row, column)
    fig = maps.explorer_figure(state)
    limit = maps.MAX_DRAWN_STRETCH
    for ax in fig.axes[:2]:
        left, right, bottom, top = ax.images[0].get_extent()
        rows, cols = state.mask.shape
        pixel_drawn = ax.get_aspect() * (bottom - top) / rows / ((right - left) / cols)  # height over width
        assert pixel_drawn == pytest.approx(limit if row > column else 1 / limit)
    assert f"pixels drawn {drawn} (height:width), not {true}" in fig._suptitle.get_text()


@pytest.mark.parametrize("tiny", [1e-9, 5e-324])
def test_explorer_clips_tiny_spacings_with_a_note(tiny):
    """A positive spacing too small to draw is clipped, like one that is too large, never a crash."""
    state = explorer_state("disc", 10, tiny, 10.0)
    assert state.spacing == (maps.MIN_SPACING_MM, maps.MAX_SPACING_MM)
    assert any("below 0.01 mm" in note for note in state.notes)
    maps.explorer_figure(state)  # draws


def test_explorer_sends_its_figure_as_a_png_whatever_the_backend(monkeypatch):
    """A bare ``Figure`` shows as "<Figure size ...>" in a kernel that never imported pyplot."""
    pytest.importorskip("ipywidgets")
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects, **kw: shown.extend(objects))
    maps.distance_map_explorer()
    (image,) = shown
    assert isinstance(image, IPython.display.Image) and image.format == "png"
    assert image.data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(image.data[16:20], "big"), int.from_bytes(image.data[20:24], "big")
    assert (width, height) == (760, 350)  # a fixed size, so the panel does not move when the figure changes


def test_animation_frames_draw_each_spacing_in_mm():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3)
    try:
        for spacing in ((1.0, 1.0), (2.0, 1.0), (1.0, 3.0)):
            maps._draw_animation_frame(axes, "ring", spacing, 8)
            for ax in axes:
                left, right, bottom, top = ax.images[0].get_extent()
                assert (right - left, bottom - top) == (48 * spacing[1], 48 * spacing[0])
                assert ax.get_aspect() == 1.0 and ax.get_xlabel() == "x (mm)"
    finally:
        plt.close(fig)


def test_plots_without_spacing_stay_in_pixels_and_with_one_in_mm():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        maps.plot_signed_distance(ax, np.zeros((4, 6)), colorbar=False)
        assert ax.images[0].get_extent() == [-0.5, 5.5, 3.5, -0.5] and not ax.axison
    finally:
        plt.close(fig)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True
    fig = maps.figure_distance_maps(np.ones((20, 30, 3)), mask, spacing=(2.0, 1.0))
    try:
        assert all(ax.images[0].get_extent() == [0.0, 30.0, 40.0, 0.0] for ax in fig.axes[:4])
    finally:
        plt.close(fig)


def test_error_map_colours_and_table():
    pred = np.array([[1, 1, 0, 0]], bool)
    truth = np.array([[1, 0, 1, 0]], bool)
    colours = error_map(pred, truth)
    assert colours[0, 0].tolist() == [1, 1, 1] and colours[0, 3].tolist() == [0, 0, 0]
    assert colours[0, 1, 0] > 0.9 and colours[0, 2, 2] > 0.9  # FP red, FN blue
    with pytest.raises(ValueError, match="same shape"):
        error_map(pred, truth[:, :2])
    table = results_table([["a", 0.12345, None]], ["name", "value", "empty"], "cap")
    assert "<td>0.123</td>" in table and "<caption>cap</caption>" in table


def test_glue_works_inside_and_outside_the_book():
    assert glue("unused", 1.0) is None


# ----------------------------------------------------------------- tables and figures of results
def _results(condition=None):
    from bl_tutorial.evaluation import Comparison, Metric, metric_dicts, summarize

    metrics = [Metric("dice", "Dice", resolution=0.04, upper=1.0), Metric("hd95", "HD95", "px", False, 2.0)]
    runs = []
    for seed, (a, b) in enumerate([(0.70, 0.74), (0.72, 0.76), (0.71, 0.75)]):
        for loss, dice in (("gdl", a), ("gdl+bl", b)):
            history = [{"epoch": e, "val_foreground_dice": dice - 0.1 / (e + 1)} for e in range(4)]
            runs.append({"loss": loss, "seed": seed, "status": "finished", "best_epoch": 3, "history": history,
                         "metrics": {"dice": dice, "hd95": 5.0 - dice}, "metrics_last": {"dice": dice - 0.01,
                         "hd95": 5.0}})  # fmt: skip
    results = {"runs": runs, "metrics": metric_dicts(metrics), "condition": condition, "seeds": [0, 1, 2],
               "profile": {"training": {"epochs": 4}}, "warm_starts": [{"history": runs[0]["history"]}]}  # fmt: skip
    results.update(summarize(runs, metrics, [Comparison("gdl+bl", "gdl")]))
    return results


def test_summary_and_comparison_tables_show_spread_verdicts_and_the_last_epoch():
    results = _results()
    summary = summary_table(results, "caption")
    assert "<caption>caption</caption>" in summary and "last epoch (4)" in summary
    assert "0.750 &plusmn; 0.010" in summary  # gdl+bl over three seeds, mean and sd
    comparison = comparison_table(results)
    assert "gdl+bl &minus; gdl" in comparison and "better" in comparison and "detectable" in comparison
    assert comparison.count("<tr>") == 1 + 4  # header, two metrics at two epochs


def test_study_figure_clips_intervals_at_the_bounds_and_marks_shares_on_top():
    import matplotlib

    matplotlib.use("Agg")
    studies = {10.0: _results(10.0), 1.0: _results(1.0)}
    for results in studies.values():
        for run in results["runs"]:
            run["metrics"]["dice"] = 0.98 if run["seed"] != 1 else 1.0  # an interval that would pass 1
    figure = study_figure(studies, studies[10.0]["metrics"], {"DRIVE vessels": 12.0})
    dice_axes = figure.axes[0]
    tops = [segment[1][1] for collection in dice_axes.collections for segment in collection.get_segments()]
    assert tops and max(tops) <= 1.0 + 1e-9
    top = dice_axes.child_axes[0]  # the shares of other structures, on the top axis
    assert [t.get_text() for t in top.get_xticklabels()] == ["DRIVE vessels"]
    table = study_table(studies, "study")
    assert table.count("<tr>") == 1 + 2 * 2 and "10 %" in table and "1 %" in table


def test_fork_curves_draw_the_warm_start_then_each_loss():
    import matplotlib

    matplotlib.use("Agg")
    ax = fork_curves(_results())
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0].startswith("warm start") and {"gdl", "gdl+bl"} <= set(labels)
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "selection Dice"
