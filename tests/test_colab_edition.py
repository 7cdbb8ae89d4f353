"""The Colab edition (tools/colab_edition.py, written by the book build to _build/colab) and the
notebooks' setup cell, which must fail with one sentence where the pinned install cannot work.

The conversion is tested on small pieces of MyST here; the edition itself once the book has
been built (skipped otherwise, unless ``BL_TUTORIAL_REQUIRE_BOOK`` is set, as in CI): plain
CommonMark, absolute links, the glued numbers of the build, collapsed glue cells, Colab buttons
that open it, and every notebook running under nbval outside the repository with bl_tutorial
installed from a wheel (smoke profile).
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bl_tutorial
from conftest import built as built_folder

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HTML_DIR = Path(os.environ.get("BL_TUTORIAL_BOOK_HTML", ROOT / "_build" / "html"))
EDITION = HTML_DIR.parent / "colab"


def _load(tool, name):
    """A script of tools/ as a module (registered under ``name``: dataclasses look it up)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{tool}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


edition = _load("colab_edition", "colab_edition")
BASE = "https://owner.github.io/book/"


@pytest.fixture
def ctx():
    return edition.Context(
        base_url=BASE,
        repository_url="https://github.com/owner/book",
        docs={d: f"{d}.html" for d in ("notebooks/01_a", "notebooks/02_b", "book/notation", "book/bibliography")},
        titles={"book/notation": "Notation", "notebooks/02_b": "Distance maps"},
        glue={
            "notebooks/01_a": {
                "share": {"text/plain": "12.3456"},
                "count": {"text/plain": "1606"},
                "kind": {"text/plain": "'stand-in'"},
                "tiny": {"text/plain": "1.1e-16"},
                "sentence": {"text/markdown": "Dice rose by $0.01$ ({glue:text}`share:.1f` %).", "text/plain": "x"},
            },
            "notebooks/02_b": {"other": {"text/plain": "2.5"}},
        },
        equations={"eq-loss": ("notebooks/02_b", 4)},
        labels={"sec-min": ("notebooks/02_b", "the-minimum", "Where the minimum is")},
        citations={"kervadec2019": ("Kervadec et al.", "2019"), "sudre2017": ("Sudre et al.", "2017")},
        macros={"R": "\\mathbb{R}"},
    )


def convert(text, ctx, docname="notebooks/01_a"):
    return edition.convert_markdown(text, docname, ctx)


def test_glue_roles_become_the_values_formatted_as_the_role_says(ctx):
    text = "{glue:text}`share:.1f` %, {glue:text}`count:d` slices of {glue:text}`kind` data, {glue:text}`tiny:.0e`"
    assert convert(text, ctx) == "12.3 %, 1606 slices of stand-in data, 1e-16"
    assert convert("{glue}`share` and {glue:text}`02_b.ipynb::other:.2f`", ctx) == "12.3456 and 2.50"
    assert convert("{glue:md}`sentence`", ctx) == "Dice rose by $0.01$ (12.3 %)."
    assert convert("{glue:md}`sentence:myst`", ctx) == "Dice rose by $0.01$ (12.3 %)."
    with pytest.raises(edition.EditionError, match="no glued value 'missing'"):
        convert("{glue:text}`missing:.2f`", ctx)


def test_glue_text_is_formatted_exactly_as_myst_nb_does():
    from myst_nb.core.variables import format_plain_text

    for text, spec in [("12.3456", ".1f"), ("0.5", ".0%"), ("'gdl+bl'", ""), ("3", "d"), ("1e-05", ".0e"), ("7", "s")]:
        assert edition.format_plain_text(text, spec) == format_plain_text(text, spec)


def test_links_become_absolute_addresses_of_the_published_book(ctx):
    text = (
        "[notation](../book/notation.md), [chapter 2](02_b.ipynb#the-minimum), [here](#top), "
        "![a figure](figures/a.png), [code](../bl_tutorial/losses.py), {doc}`../book/notation`, "
        "{doc}`the chapter <02_b>`, {ref}`sec-min`, [web](https://example.org/x.md)"
    )
    assert convert(text, ctx) == (
        f"[notation]({BASE}book/notation.html), [chapter 2]({BASE}notebooks/02_b.html#the-minimum), "
        f"[here]({BASE}notebooks/01_a.html#top), "
        "![a figure](https://raw.githubusercontent.com/owner/book/main/notebooks/figures/a.png), "
        "[code](https://github.com/owner/book/blob/main/bl_tutorial/losses.py), "
        f"[Notation]({BASE}book/notation.html), [the chapter]({BASE}notebooks/02_b.html), "
        f"[Where the minimum is]({BASE}notebooks/02_b.html#the-minimum), [web](https://example.org/x.md)"
    )


def test_citations_equations_and_macros_become_text(ctx):
    text = "{cite:p}`kervadec2019,sudre2017` and {cite:t}`sudre2017`; eq. {eq}`eq-loss`; $x \\in \\R^n$"
    assert convert(text, ctx) == (
        f"([Kervadec et al. 2019; Sudre et al. 2017]({BASE}book/bibliography.html)) and "
        f"[Sudre et al. (2017)]({BASE}book/bibliography.html); eq. (4); $x \\in \\mathbb{{R}}^n$"
    )
    labelled = convert("$$\nL = 1\n$$ (eq-loss)", ctx)
    assert labelled == "$$\nL = 1\n\\tag{4}\n$$"


def test_code_stays_code(ctx):
    text = "Write `{glue:text}` in MyST; ``a `b` c``.\n\n```python\nx = '[a](b.md) {glue}`k`'\n```"
    assert convert(text, ctx) == text


def test_dropdowns_become_details_and_admonitions_quotes(ctx):
    text = (
        "## Exercises\n\n:::{admonition} Solutions\n:class: dropdown\n\n1. {glue:text}`share:.0f` %.\n"
        "2. $\\phi = 0$.\n:::\n\n```{note}\nSee [this](../book/notation.md).\n```\n\n(a-target)=\n% a comment\n"
    )
    assert convert(text, ctx).rstrip("\n") + "\n" == (
        "## Exercises\n\n<details>\n<summary><b>Solutions</b></summary>\n\n1. 12 %.\n2. $\\phi = 0$.\n\n"
        f"</details>\n\n> **Note**\n>\n> See [this]({BASE}book/notation.html).\n"
    )


def test_amsmath_environments_go_inside_dollars_with_their_tag(ctx):
    text = "\\begin{equation*}\n\\begin{aligned}\na &= b \\\\\n&= c\n\\end{aligned}\n\\tag{4c}\n\\end{equation*}"
    assert convert(text, ctx) == "$$\n\\begin{aligned}\na &= b \\\\\n&= c\n\\end{aligned}\n\\tag{4c}\n$$"
    assert convert("\\begin{align*}\nx &= 1\n\\end{align*}", ctx) == (
        "$$\n\\begin{aligned}\nx &= 1\n\\end{aligned}\n$$"
    )


def test_unknown_markup_is_an_error_not_a_silent_loss(ctx):
    with pytest.raises(edition.EditionError, match="role"):
        convert("{unknownrole}`x`", ctx)
    with pytest.raises(edition.EditionError, match="directive"):
        convert(":::{unknowndirective}\nx\n:::", ctx)


def _cell(kind, source, **extra):
    return {"cell_type": kind, "id": extra.pop("id", "c"), "metadata": extra.pop("metadata", {}), "source": source,
            **({"outputs": extra.pop("outputs", []), "execution_count": 1} if kind == "code" else {})}  # fmt: skip


def test_a_chapter_becomes_its_edition(ctx):
    stream = {"output_type": "stream", "name": "stdout", "text": ["share = 12.35\n"]}
    progress = {"output_type": "stream", "name": "stderr", "text": ["10%|#  | 1/10\n"]}
    executed = {
        "metadata": {"kernelspec": {"name": "python3"}, "widgets": {}},
        "nbformat": 4,
        "nbformat_minor": 5,
        "cells": [
            _cell("markdown", "# Title\n\nSee [chapter 2](02_b.ipynb)."),
            _cell("code", "# NBVAL_CHECK_OUTPUT\nprint(1)", outputs=[stream, progress, stream]),
            _cell("code", "glue_values(share=share)", metadata={"tags": ["remove-cell"]}, outputs=[stream]),
            _cell("markdown", "Vessels cover {glue:text}`share:.1f` %."),
            _cell("code", "plt.plot()", metadata={"tags": ["hide-input"]}),
            _cell("code", "explorer()", metadata={"tags": ["remove-output"]}, outputs=[stream]),
        ],
    }
    result = edition.convert_notebook(executed, "notebooks/01_a", ctx, {"version": "0.2.0", "profile": "fast"})
    note, title, plain, glue, text, hidden, widget = result["cells"]
    assert "Colab edition" in note["source"][0] and "profile `fast`" in "".join(note["source"])
    assert "".join(title["source"]).endswith(f"[chapter 2]({BASE}notebooks/02_b.html).")
    assert plain["source"] == ["print(1)"]  # no nbval marker
    assert plain["outputs"] == [{**stream, "text": ["share = 12.35\n"] * 2}]  # no stderr; one stream
    assert glue["source"][0].startswith("#@title Numbers quoted in the text") and glue["outputs"] == []
    assert glue["metadata"]["cellView"] == "form"
    assert "".join(text["source"]) == "Vessels cover 12.3 %."
    assert hidden["source"][0].startswith("#@title") and hidden["metadata"]["cellView"] == "form"
    assert widget["outputs"] == []
    assert "widgets" not in result["metadata"] and result["metadata"]["colab"]["toc_visible"]
    assert edition.check_notebook(result, "a") == []


def test_the_check_finds_what_colab_would_show_raw():
    notebook = {
        "cells": [
            _cell("markdown", "Colab edition"),
            _cell("markdown", "{glue:text}`x:.2f`\n:::{note}\n:class: dropdown\n:::\n[a](b.md) <img src='c.png'>"),
            _cell("code", "glue_values(a=1)", metadata={"tags": ["remove-cell"]}),
            _cell("code", "#@title x\nprint(1)"),
        ]
    }
    problems = "\n".join(edition.check_notebook(notebook, "nb"))
    for what in ("MyST role", "directive", "colon fence", "directive option", "relative link", "relative src"):
        assert what in problems, what
    assert "not collapsed" in problems and "go together" in problems


def test_the_published_address_comes_from_the_repository_url():
    config = edition.book_config()
    assert config["repository_url"] == bl_tutorial.REPOSITORY_URL
    assert config["base_url"] == edition.pages_url(bl_tutorial.REPOSITORY_URL)
    assert config["colab_branch"] == "colab"


# ----------------------------------------------------------------- the setup cell
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_the_setup_cell_fails_with_one_sentence_when_the_install_cannot_work(notebook, monkeypatch):
    """bl_tutorial missing and pip failing (no network, placeholder repository): no traceback,
    one line that says what to do."""
    import importlib.util as util

    cells = json.loads(notebook.read_text())["cells"]
    setup = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    calls = []
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None if name == "bl_tutorial" else object())
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or subprocess.CompletedProcess(a, 1))
    with pytest.raises(Exception) as raised:
        exec(compile(setup, notebook.name, "exec"), {"__name__": "__main__"})
    assert calls and "pip" in calls[0][0], "the cell must try the pinned install first"
    render = getattr(raised.value, "_render_traceback_", None)
    assert render is not None, f"a traceback would be shown: {raised.value!r}"
    (line,) = render()
    assert "install it yourself" in line and bl_tutorial.REPOSITORY_URL in line and "\n" not in line


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_the_standard_setup_cell(notebook):
    """One setup cell for the whole book: `python tools/notebooks.py setup notebooks/*.ipynb` writes it."""
    cells = json.loads(notebook.read_text())["cells"]
    setup = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    assert setup == _load("notebooks", "notebooks_tool").setup_cell()


# ----------------------------------------------------------------- the built edition
@pytest.fixture(scope="module")
def built():
    return built_folder(EDITION)


def test_the_edition_holds_every_built_chapter_in_plain_commonmark(built):
    chapters = sorted((HTML_DIR / "notebooks").glob("*.html"))
    assert chapters
    assert sorted(p.stem for p in (built / "notebooks").glob("*.ipynb")) == [p.stem for p in chapters]
    notebooks, problems = edition.check_edition(built)
    assert not problems, "\n".join(problems)
    for path in notebooks:
        text = path.read_text()
        assert "glue:" not in text.replace("glue_values", ""), path.name
        assert not re.search(r"\]\((\.\./|[\w-]+\.(md|ipynb))", text), path.name


def test_the_edition_quotes_the_numbers_of_the_build(built):
    executed = HTML_DIR.parent / "jupyter_execute" / "notebooks"
    for path in sorted((built / "notebooks").glob("*.ipynb")):
        glue = edition.read_glue(executed / path.name)
        source = json.loads((ROOT / "notebooks" / path.name).read_text())
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        for cell in source["cells"]:
            for key, spec in re.findall(r"\{glue:text\}`(\w+):?([^`]*)`", "".join(cell["source"])):
                if cell["cell_type"] == "markdown":
                    quoted = edition.escape_markdown(edition.format_plain_text(glue[key]["text/plain"], spec))
                    assert quoted in text, (path.name, key)


def test_the_colab_buttons_open_the_edition(built):
    page = (HTML_DIR / "notebooks" / NOTEBOOKS[0].with_suffix(".html").name).read_text()
    links = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page)
    assert links and all(f"/blob/{edition.book_config()['colab_branch']}/notebooks/" in url for url in links), links


@pytest.mark.slow
def test_the_edition_runs_outside_the_repository_from_a_wheel(built, tmp_path_factory):
    """nbval over every notebook of the edition (smoke profile), in a temporary folder, with
    bl_tutorial installed from a wheel built from the repository: as Colab would install it."""
    workdir = tmp_path_factory.mktemp("colab-edition")
    if workdir.resolve().is_relative_to(ROOT):
        pytest.skip("the temporary folder is inside the repository")
    assert edition.run_edition(built, ROOT, workdir=workdir, profile="smoke") == 0
