"""The book: configuration, the stored notebooks, and (after a build) the HTML of every page."""

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

import bl_tutorial
from conftest import built

ROOT = Path(__file__).resolve().parents[1]


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


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


HTML_DIR = Path(os.environ.get("BL_TUTORIAL_BOOK_HTML", ROOT / "_build" / "html"))


@pytest.fixture(scope="module")
def html():
    return built(HTML_DIR)


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


def _names(source: str) -> tuple[set[str], set[str]]:
    """The names a code cell defines and the names it reads (IPython magics and shell lines left out)."""
    import ast

    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    defined, read = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return defined, read


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_code_shown_in_the_book_uses_no_name_defined_only_in_removed_cells(notebook):
    """A page shows every cell but those tagged remove-cell (hide-input cells can be unfolded): code a
    reader can see must run as shown, so it may not read a name that only a removed cell defines."""
    hidden, shown, problems = set(), set(), []
    for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        defined, read = _names("".join(cell["source"]))
        if "remove-cell" in cell.get("metadata", {}).get("tags", []):
            hidden |= defined - shown
        else:
            problems += [f"cell {index} reads {name!r}" for name in sorted((read - defined) & (hidden - shown))]
            shown |= defined
    assert not problems, f"{notebook.name}: names defined only in removed cells: {problems}"
