"""The figure helpers, the notebooks' setup cells, and (after a build) the HTML of the book."""

import base64
import importlib.util
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import bl_tutorial
from bl_tutorial.viz import distance_map_animation, error_map, explorer_state, glue, maps, results_table

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


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


def test_config_serves_mathjax_offline_and_keeps_the_launch_buttons():
    config_module = pytest.importorskip("jupyter_book.config")
    assert importlib.util.find_spec("sphinx-mathjax-offline"), "missing: pip install -r requirements.txt"
    config, _ = config_module.get_final_config(
        user_yaml=ROOT / "_config.yml", sourcedir=ROOT, cli_config={"latex_individualpages": False}
    )
    extensions = config["extensions"]
    assert "sphinx-mathjax-offline" in extensions and "sphinxcontrib.bibtex" in extensions
    # every default extension of Jupyter Book but sphinx_thebe, whose script would be written twice
    defaults = config_module.get_default_sphinx_config()["extensions"]
    assert [e for e in defaults if e not in extensions] == ["sphinx_thebe"]
    assert config["mathjax3_config"]["tex"]["macros"]["R"] == "\\mathbb{R}"
    assert config["html_theme_options"]["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["html_context"]["default_mode"] in ("auto", "light", "dark")


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


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_install_from_the_one_repository_url(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    setup = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    assert f'REPOSITORY_URL = "{bl_tutorial.REPOSITORY_URL}"' in setup
    assert 'find_spec("bl_tutorial") is None' in setup and "device_banner()" in setup
    config = (ROOT / "_config.yml").read_text()
    assert f"url: {bl_tutorial.REPOSITORY_URL}" in config


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_saved_without_errors_and_end_with_exercises(notebook):
    content = json.loads(notebook.read_text())
    assert not any(o.get("output_type") == "error" for c in content["cells"] for o in c.get("outputs", []))
    # no traces of a run saved by mistake: cell timestamps, or widget state whose outputs are gone
    assert not [c["id"] for c in content["cells"] if "execution" in c["metadata"]]
    assert "widgets" not in content["metadata"]
    text = "".join("".join(c["source"]) for c in content["cells"] if c["cell_type"] == "markdown")
    assert "What you will learn" in text and "## Summary" in text and "## Exercises" in text


def test_notebook_strip_keeps_compared_outputs_and_drops_traces_of_a_run(tmp_path):
    spec = importlib.util.spec_from_file_location("notebooks_tool", ROOT / "tools" / "notebooks.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    output = {"output_type": "stream", "name": "stdout", "text": ["1\n"]}
    cells = [
        {"cell_type": "code", "source": [tool.MARK + "\nprint(1)"], "outputs": [output], "execution_count": 3},
        {"cell_type": "code", "source": ["print(1)"], "outputs": [output], "execution_count": 4},
        {"cell_type": "markdown", "source": ["text"]},
    ]
    for cell in cells:
        cell["metadata"] = {"execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"}, "tags": ["x"]}
    path = tmp_path / "a.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {"widgets": {"state": {}}, "kernelspec": {}}}))
    tool.strip(path)
    stripped = json.loads(path.read_text())
    compared, other, text = stripped["cells"]
    assert compared["outputs"] == [output] and compared["execution_count"] == 3
    assert other["outputs"] == [] and other["execution_count"] is None
    assert all(cell["metadata"] == {"tags": ["x"]} for cell in stripped["cells"])
    assert stripped["metadata"] == {"kernelspec": {}}


# ----------------------------------------------------------------- the built book
# another build (e.g. one made with --path-output) can be checked with BL_TUTORIAL_BOOK_HTML=path/_build/html
HTML_DIR = Path(os.environ.get("BL_TUTORIAL_BOOK_HTML", ROOT / "_build" / "html"))


@pytest.fixture(scope="module")
def html():
    if not HTML_DIR.is_dir():
        if os.environ.get("BL_TUTORIAL_REQUIRE_BOOK"):
            pytest.fail(f"{HTML_DIR} is missing: build the book first (jupyter-book build .)")
        pytest.skip("the book has not been built (jupyter-book build .); .ci/run builds it before this test")
    return HTML_DIR


def test_book_has_every_chapter(html):
    expected = [
        Path("book/intro.html"),
        Path("book/notation.html"),
        Path("book/faq.html"),
        Path("book/bibliography.html"),
    ]
    expected += [Path("notebooks") / (nb.stem + ".html") for nb in NOTEBOOKS]
    missing = [str(p) for p in expected if not (html / p).is_file()]
    assert not missing, missing


def test_book_renders_math_citations_glue_and_static_widgets(html):
    chapter = (html / "notebooks" / "03_boundary_loss.html").read_text()
    assert 'class="math notranslate nohighlight"' in chapter
    assert "{glue" not in chapter and "glue:text" not in chapter
    bibliography = (html / "book" / "bibliography.html").read_text()
    assert "Kervadec" in bibliography and "Sudre" in bibliography and "Paszke" in bibliography
    distance = (html / "notebooks" / "02_distance_maps.html").read_text()
    assert 'type="range"' in distance  # the animation's own slider: works without a kernel
    for page in html.glob("notebooks/*.html"):
        text = page.read_text()
        assert not re.search(r"Traceback \(most recent call last\)", text), page.name
        assert "it/s]" not in text, f"{page.name}: a progress bar leaked into the page"


def test_book_pages_declare_each_script_once_and_serve_mathjax_themselves(html):
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    pages = sorted(html.glob("book/*.html")) + sorted(html.glob("notebooks/*.html"))
    assert pages
    for page in pages:
        text = page.read_text()
        inline = re.findall(r"<script>(.*?)</script>", text, re.S)
        twice = {body for body in inline if inline.count(body) > 1 and re.search(r"\b(const|let)\s", body)}
        assert not twice, f"{page.name}: declared twice (a JavaScript error): {twice}"
        assert "THEBE_JS_URL" not in text, page.name
        mathjax = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', text)
        assert all("_static/mathjax/" in src for src in mathjax), f"{page.name}: MathJax from {mathjax}"
        assert "font-awesome" not in text, f"{page.name}: a Font Awesome stylesheet from a CDN"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_quoted_number_is_printed_where_the_notebook_runs(notebook):
    """Outside the built book, {glue:text} roles show as raw text: each key a paragraph quotes
    must be glued by glue_values in an earlier cell, which prints it above the paragraph."""
    printed, missing = set(), []
    for cell in json.loads(notebook.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "glue_values(" in source:
            call = source[source.index("glue_values(") :]
            printed |= set(re.findall(r"(\w+)\s*=", call))
        elif cell["cell_type"] == "markdown":
            quoted = re.findall(r"\{glue:text\}`(\w+)", source)
            missing += [key for key in quoted if key not in printed]
    assert not missing, f"quoted before glue_values prints them: {missing}"
    assert "{doc}" not in notebook.read_text() and "{cite:" not in notebook.read_text()
