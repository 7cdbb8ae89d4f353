"""The pages of the built book as a reader sees them, measured in headless Chromium (tools/check_pages.py).

The layout checks are first tried on small pages made here (a clipped equation, a code block
wider than its column, raw markup), so that a check that finds nothing has been seen to find
something; then on every page of the built book. They need Chromium and Playwright (see
tools/check_pages.py); without them they are skipped, unless ``BL_TUTORIAL_REQUIRE_BOOK`` is
set (CI), where they fail.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("BL_TUTORIAL_BOOK_HTML", ROOT / "_build" / "html"))


def _load_tool():
    spec = importlib.util.spec_from_file_location("check_pages", ROOT / "tools" / "check_pages.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


check_pages = _load_tool()


@pytest.fixture(scope="module")
def chromium():
    """The Chromium binary, once Playwright is known to be importable."""
    binary = os.environ.get("CHROMIUM", check_pages.DEFAULT_CHROMIUM)
    if not Path(binary).is_file():
        missing(f"no Chromium at {binary} (apt-get install -y chromium, or set CHROMIUM)")
    if importlib.util.find_spec("playwright") is None:
        missing("playwright is not installed (pip install playwright)")
    return binary


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=check_pages.CHROMIUM_ARGS)
        yield browser
        browser.close()


PAGE = """<!doctype html><html><head><style>
body {{ margin: 0; font: 16px sans-serif; }}
article.bd-article {{ width: 400px; margin-left: 300px; }}
div.math {{ display: flex; flex-direction: row-reverse; overflow: hidden; }}
div.math mjx-container {{ flex-grow: 1; overflow: auto; }}
mjx-c {{ display: inline-block; height: 10px; }}
pre {{ overflow-x: auto; margin: 0; }}
</style></head><body><article class="bd-article">{body}</article></body></html>"""


def measure(browser, body: str, width: int = 1280) -> dict:
    page = browser.new_page(viewport={"width": width, "height": 600})
    try:
        page.set_content(PAGE.format(body=body))
        return page.evaluate(check_pages.LAYOUT_JS)
    finally:
        page.close()


def test_an_equation_wider_than_the_column_in_a_reversed_flex_row_is_clipped_on_the_left(browser):
    """The theme's layout of a numbered equation: the overflow goes left, where no scroll bar reaches."""
    wide = '<div class="math"><mjx-container display="true" style="min-width: 700px">'
    wide += '<mjx-c style="width: 690px"></mjx-c></mjx-container></div>'
    measured = measure(browser, wide)
    (equation,) = measured["equations"]
    assert not equation["scrolls"] and equation["cutLeft"] > 250
    counts, lines = check_pages.layout_problems(measured)
    assert counts["clipped equations"] == 1 and "clipped equation" in lines[0]


def test_an_equation_in_its_own_scroll_bar_is_not_clipped(browser):
    scrolls = '<div class="math"><mjx-container display="true" style="min-width: 0">'
    scrolls += '<mjx-c style="width: 690px"></mjx-c></mjx-container></div>'
    measured = measure(browser, scrolls)
    assert measured["equations"] == [{"tex": "", "cutLeft": 0, "cutRight": 0, "scrolls": True}]
    assert check_pages.layout_problems(measured)[0]["clipped equations"] == 0


def test_code_wider_than_the_column_raw_markup_and_split_outputs_are_counted(browser):
    body = f"<div class='cell'><div class='cell_input'><pre>{'x' * 120}</pre></div>"
    body += "<div class='cell_output'><div class='output stream'><pre>a</pre></div>"
    body += "<div class='output stream'><pre>b at /tmp/cache/x</pre></div></div></div>"
    body += "<p>raw {glue:text}`name:.2f` and $x$ and &lt;Axes: &gt;</p>"
    counts, lines = check_pages.layout_problems(measure(browser, body))
    assert counts == {"clipped equations": 0, "wide blocks": 1, "raw text": 4, "split outputs": 1}, lines
    joined = "\n".join(lines)
    for what in ("code cell", "MyST role", "raw $", "repr", "machine path", "2 boxes"):
        assert what in joined, what


def test_the_book_styles_are_registered():
    config = (ROOT / "_config.yml").read_text()
    assert "html_css_files: [book.css]" in config and "html_static_path: [book/_static]" in config
    assert "nb_merge_streams: true" in config
    css = (ROOT / "book" / "_static" / "book.css").read_text()
    assert "white-space: pre-wrap" in css and "min-width: 0 !important" in css
    assert re.search(r"span\.pasted-text \{\s*font-weight: inherit;", css), "glued text in bold"


# ----------------------------------------------------------------- the built book
@pytest.fixture(scope="module")
def html():
    if not (HTML_DIR / "index.html").is_file():
        missing(f"{HTML_DIR} holds no built book: build it first (jupyter-book build .)")
    return HTML_DIR


def test_every_page_fits_its_column_and_shows_no_raw_markup(html, chromium):
    """tools/check_pages.py on the built book: 0 clipped equations, 0 blocks wider than the column,
    0 raw markup, reprs or machine paths, 0 outputs split over boxes, no page or console error
    (in a process of its own: Playwright's synchronous API runs one instance per thread)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_pages.py"), str(html), "--chromium", chromium],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for width in check_pages.DEFAULT_WIDTHS:
        expected = f"At {width} px: 0 clipped equations, 0 wide blocks, 0 raw text, 0 split outputs"
        assert expected in result.stdout, result.stdout
