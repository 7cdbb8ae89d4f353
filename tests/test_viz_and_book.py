"""The figure helpers, the notebooks' setup cells, and (after a build) the HTML of the book."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import bl_tutorial
from bl_tutorial.viz import distance_map_animation, error_map, explorer_state, glue, results_table

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
    text = "".join("".join(c["source"]) for c in content["cells"] if c["cell_type"] == "markdown")
    assert "What you will learn" in text and "## Summary" in text and "## Exercises" in text


# ----------------------------------------------------------------- the built book
HTML_DIR = ROOT / "_build" / "html"


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
