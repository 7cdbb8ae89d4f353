"""Open every chapter of the built book in a headless browser, offline, and report what breaks.

    python tools/check_pages.py                 # checks _build/html
    python tools/check_pages.py path/to/html    # another build folder
    python tools/check_pages.py --widths 1024,1280,1700   # other window widths

The script serves the built pages on ``127.0.0.1`` (a random free port), opens each page
listed in the ``_toc.yml`` next to the build (``BOOK/_toc.yml`` for ``BOOK/_build/html``; else
this repository's, or ``--toc``) in headless Chromium and blocks every request that does not go to
that local server, as a reader without a network would experience the book. For each page
it collects

* JavaScript page errors (uncaught exceptions, syntax errors such as a ``const`` declared twice);
* console messages of level ``error`` (a script or stylesheet that could not load, ...);
* local requests that failed or answered with an HTTP error (a missing ``_static`` file);
* math that MathJax did not typeset (the page has math but no ``mjx-container``), and
  formulas it could not read (a TeX error, or an undefined macro such as ``\\R`` if the
  ``mathjax3_config`` macros of ``_config.yml`` were lost).

and it measures each page as a reader sees it, in a window 1280 px wide (``--widths``: 1280
and 1700 by default), counting

* **clipped equations**: a display equation with glyphs that cannot be seen: cut off by a
  container that hides its overflow, left of a scrolling container (a scroll bar reaches
  only what overflows to the right), or drawn outside the text column. An equation wider
  than the column inside its own scroll bar is fine (counted apart in the summary);
* **wide blocks**: code cells, outputs and other code blocks wider than the column (a
  horizontal scroll bar on a cell whose lines fit in 80 characters is a font that is
  too large, not a long line);
* **raw text**: markup a reader should never see: ``$`` outside typeset math, MyST roles
  (``{glue:text}`...```), colon fences, reprs such as ``<Axes ...>`` or ``<Figure size ...>``,
  and paths of the machine that built the book (``/tmp/...``, ``/home/...``);
* **split outputs**: one cell's printed output spread over several output boxes.

Requests that were blocked because they leave the machine are listed as well: each one is
something the page fetches from the internet. The exit status is 1 when any page has a
problem, 0 when every page is clean, 2 when the tools are missing or the book is not built.

CI runs it on the built book (``tests/test_pages.py``, which also tries each measure on
small pages that have the faults). It is not part of the book's requirements; it needs

* Chromium: ``apt-get install -y chromium`` (Debian/Ubuntu; the script looks for
  ``/usr/bin/chromium``, or pass ``--chromium PATH`` / set ``CHROMIUM``, e.g. to
  ``/usr/bin/google-chrome`` on GitHub's runners);
* Playwright for Python: ``pip install playwright``. Do **not** run ``playwright install``:
  the script drives the system's Chromium and downloads no browser.

Build the book first. ``jupyter-book build .`` (the full build) gives the pages readers get.
For a quick check, a build that executes no notebook takes seconds, but its pages have no
cell outputs (no figures, no animation, no widgets), so what outputs load goes unchecked::

    sed 's/execute_notebooks: force/execute_notebooks: "off"/' _config.yml > /tmp/config_off.yml
    jupyter-book build . --config /tmp/config_off.yml --path-output /tmp/book -n --keep-going
    python tools/check_pages.py /tmp/book/_build/html

(``execute.exclude_patterns`` in such a temporary configuration executes only some chapters.)
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHROMIUM = "/usr/bin/chromium"
DEFAULT_WIDTHS = (1280, 1700)  # px: a laptop, and a wide screen
WINDOW_HEIGHT = 900
CHROMIUM_ARGS = [
    "--no-sandbox",  # needed when running as root (containers, CI)
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HELP = """\
This check needs Chromium and Playwright for Python:
    apt-get install -y chromium      # Debian/Ubuntu; or pass --chromium PATH
    pip install playwright           # do NOT run `playwright install`: the system Chromium is used"""

# After the page has loaded: wait for MathJax (when it is there), count what it typeset, and
# list the formulas it could not read. MathJax draws an undefined macro in red (mathcolor="red"
# in its MathML) and a TeX syntax error as an <merror>.
MATH_STATUS_JS = """async () => {
    const startup = window.MathJax && window.MathJax.startup;
    if (startup && startup.promise) { await startup.promise; }
    const errors = [];
    if (startup && startup.document && startup.toMML) {
        for (const item of startup.document.math) {
            const mathml = startup.toMML(item.root);
            if (mathml.includes("<merror") || mathml.includes('mathcolor="red"')) { errors.push(item.math); }
        }
    }
    return {
        math: document.querySelectorAll(".math").length,
        typeset: document.querySelectorAll("mjx-container").length,
        mathjaxLoaded: Boolean(startup),
        errors: errors,
    };
}"""


# After MathJax has typeset the page: measure it against the text column (the article). Every
# count is something a reader meets; each entry says where, so that it can be found and fixed.
LAYOUT_JS = r"""() => {
    const column = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
    // what a reader can open is measured open: hidden cells (details), dropdowns such as the solutions
    for (const details of column.querySelectorAll("details")) { details.open = true; }
    for (const hidden of column.querySelectorAll(".toggle-hidden")) { hidden.classList.remove("toggle-hidden"); }
    const col = column.getBoundingClientRect();
    const result = {column: [Math.round(col.left), Math.round(col.right)], equations: [], wide: [], raw: [], split: []};
    const snippet = (text, n = 70) => text.replace(/\s+/g, " ").trim().slice(0, n);

    // How much of [left, right] (the glyphs of an equation) a reader cannot reach. Walking up
    // from the equation, an ancestor that clips (overflow other than visible) hides what lies
    // outside its box; one that scrolls lets the reader reach its whole scroll width, but only
    // what overflows to its right (a scroll bar starts at the left edge), and from there on it
    // is the scrolling box that must be visible. What is left must lie in the text column.
    function unreachable(element, left, right) {
        let cutLeft = 0, cutRight = 0, scrolls = false;
        for (let a = element; a && a !== document.body; a = a.parentElement) {
            const style = getComputedStyle(a);
            if (style.overflowX === "visible") { continue; }
            const box = a.getBoundingClientRect();
            const inner = box.left + a.clientLeft;
            if ((style.overflowX === "auto" || style.overflowX === "scroll") && a.scrollWidth > a.clientWidth + 1) {
                cutLeft += Math.max(0, inner - left);
                cutRight += Math.max(0, right - (inner + a.scrollWidth - a.scrollLeft));
                [left, right, scrolls] = [box.left, box.right, true];
            } else {
                cutLeft += Math.max(0, inner - left);
                cutRight += Math.max(0, right - (inner + a.clientWidth));
                [left, right] = [Math.max(left, inner), Math.min(right, inner + a.clientWidth)];
            }
        }
        cutLeft += Math.max(0, col.left - left);
        cutRight += Math.max(0, right - col.right);
        return {cutLeft, cutRight, scrolls};
    }

    for (const eq of column.querySelectorAll('mjx-container[display="true"]')) {
        const glyphs = [...eq.querySelectorAll("mjx-c, mjx-line, mjx-stretchy-h")]
            .map(g => g.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0);
        if (!glyphs.length) { continue; }
        const left = Math.min(...glyphs.map(r => r.left)), right = Math.max(...glyphs.map(r => r.right));
        const {cutLeft, cutRight, scrolls} = unreachable(eq, left, right);
        const item = window.MathJax && MathJax.startup && MathJax.startup.document ?
            [...MathJax.startup.document.math].find(m => m.typesetRoot === eq) : null;
        const tex = snippet(item ? item.math : eq.textContent, 60);
        if (cutLeft > 1 || cutRight > 1) {
            result.equations.push({tex, cutLeft: Math.round(cutLeft), cutRight: Math.round(cutRight), scrolls: false});
        } else if (scrolls) {
            result.equations.push({tex, cutLeft: 0, cutRight: 0, scrolls: true});
        }
    }

    // code blocks (cells, outputs, literal blocks) and rich outputs (HTML tables, images)
    const blocks = new Set([...column.querySelectorAll("pre")]);
    for (const output of column.querySelectorAll(".cell_output > .output:not(.stream)")) { blocks.add(output); }
    for (const block of blocks) {
        const box = block.getBoundingClientRect();
        if (!box.width) { continue; }
        const excess = Math.max(block.scrollWidth - block.clientWidth, box.right - col.right, col.left - box.left);
        if (excess > 1) {
            const kind = block.closest(".cell_input") ? "code cell"
                : block.closest(".cell_output") ? "output" : "code block";
            const lines = (block.innerText || "").split("\n");
            const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
            result.wide.push({kind, excess: Math.round(excess), chars: longest.length, text: snippet(longest)});
        }
    }

    // text a reader should not see: unrendered markup in the prose, roles anywhere but in inline
    // code (where the text may talk about them), reprs and machine paths anywhere
    const patterns = [
        ["raw $", /\$/, "prose"],
        ["MyST role", /\{[a-z][\w:.-]*\}`/, "text"],
        ["colon fence", /(^|\s):::/, "prose"],
        ["repr", /<(Axes|Figure size|matplotlib\.|IPython\.core\.)|object at 0x[0-9a-f]+/, "all"],
        ["machine path", /(^|[\s"'(=])(\/(tmp|home|root|Users|private|var\/folders|work)\/|[A-Z]:\\Users\\)/, "all"],
    ];
    const skipProse = "pre, code, script, style, mjx-container, .cell_input, .cell_output, .MathJax, textarea";
    const walker = document.createTreeWalker(column, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const text = node.textContent;
        if (!text.trim()) { continue; }
        const parent = node.parentElement;
        if (!parent || parent.closest("script, style, .cell_input") || !parent.getClientRects().length) { continue; }
        const prose = !parent.closest(skipProse);
        for (const [what, regex, where] of patterns) {
            const match = regex.exec(text);
            const shown = where === "all" || (where === "prose" ? prose : !parent.closest("code"));
            if (match && shown) {
                const at = Math.max(0, match.index - 25);
                result.raw.push({what, text: snippet(text.slice(at, at + 80))});
            }
        }
    }

    // one result spread over several output boxes (e.g. a table printed line by line)
    for (const output of column.querySelectorAll(".cell_output")) {
        let run = 0, longest = 0;
        for (const child of output.children) {
            run = child.matches(".output.stream") ? run + 1 : 0;
            longest = Math.max(longest, run);
        }
        if (longest > 1) {
            result.split.push({boxes: longest, text: snippet(output.innerText || "", 60)});
        }
    }
    return result;
}"""


def chapter_pages(html_dir: Path, toc: Path) -> list[Path]:
    """The HTML file of every page listed in ``_toc.yml`` (its root and every ``file:`` entry), built or not."""
    import yaml

    entries = []

    def collect(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    entries.append(node[key])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(yaml.safe_load(toc.read_text()))
    return [html_dir / (str(Path(entry).with_suffix("")) + ".html") for entry in entries]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def serve(html_dir: Path) -> http.server.ThreadingHTTPServer:
    """Serve ``html_dir`` on 127.0.0.1 on a free port, in a background thread."""
    handler = functools.partial(QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_page(browser, url: str, local_host: str, timeout_ms: int, widths=DEFAULT_WIDTHS):
    """Open one page as a first-time reader would (fresh browser profile).

    Returns (problems, blocked URLs, layout): ``layout`` maps each window width to what
    :data:`LAYOUT_JS` measured there (None where the page could not be measured).
    """
    problems: list[str] = []
    blocked: list[str] = []
    layout: dict[int, dict | None] = {}

    def is_local(request_url: str) -> bool:
        return urlsplit(request_url).netloc == local_host

    def only_local_requests(route):  # the browser is offline: nothing leaves the machine
        if is_local(route.request.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    def on_console(message):
        if message.type == "error":
            where = (message.location or {}).get("url", "")
            problems.append(f"console error: {message.text}" + (f" ({where})" if where else ""))

    def on_page_error(error):
        problems.append(f"page error: {error}")

    def on_request_failed(request):
        if is_local(request.url):
            problems.append(f"local request failed: {request.url} ({request.failure})")

    def on_response(response):
        if is_local(response.url) and response.status >= 400:
            problems.append(f"local request answered {response.status}: {response.url}")

    # empty cache and local storage; the first width is the one the page loads at
    context = browser.new_context(service_workers="block", viewport={"width": widths[0], "height": WINDOW_HEIGHT})
    page = context.new_page()
    page.route("**/*", only_local_requests)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)
    try:
        page.goto(url, wait_until="load", timeout=timeout_ms)
        try:
            page.wait_for_load_state("networkidle", timeout=timeout_ms)
        except Exception:  # a page that keeps polling is not an error in itself
            pass
        status = page.evaluate(MATH_STATUS_JS)
        if status["math"] and not status["typeset"]:
            why = "MathJax did not load" if not status["mathjaxLoaded"] else "MathJax loaded but typeset nothing"
            problems.append(f"math not rendered: {status['math']} math elements, none typeset ({why})")
        for formula in status["errors"]:
            problems.append(f"MathJax could not read: {formula}")
        page.wait_for_timeout(300)  # let timers started on load (e.g. the animation's setup) run
        for width in widths:
            if width != widths[0]:
                page.set_viewport_size({"width": width, "height": WINDOW_HEIGHT})
                page.wait_for_timeout(200)  # the theme's layout settles
            layout[width] = page.evaluate(LAYOUT_JS)
    except Exception as error:  # a timeout or a crash is a problem of this page, not of the script
        problems.append(f"could not load the page: {error}")
    finally:
        context.close()
    return problems, blocked, layout


def layout_problems(measured: dict | None) -> tuple[dict[str, int], list[str]]:
    """Counts per kind of layout fault, and one line per fault, from one :data:`LAYOUT_JS` result."""
    if measured is None:
        return {"not measured": 1}, ["the page could not be measured"]
    clipped = [e for e in measured["equations"] if not e["scrolls"]]
    counts = {
        "clipped equations": len(clipped),
        "wide blocks": len(measured["wide"]),
        "raw text": len(measured["raw"]),
        "split outputs": len(measured["split"]),
    }
    lines = [f"clipped equation ({e['cutLeft']} px cut on the left, {e['cutRight']} px on the right): {e['tex']}"
             for e in clipped]  # fmt: skip
    lines += [f"{w['kind']} {w['excess']} px wider than the column (longest line {w['chars']} characters): "
              f"{w['text']}" for w in measured["wide"]]  # fmt: skip
    lines += [f"{r['what']}: {r['text']}" for r in measured["raw"]]
    lines += [f"one output in {s['boxes']} boxes: {s['text']}" for s in measured["split"]]
    return counts, lines


def default_toc(html_dir: Path) -> Path:
    """The ``_toc.yml`` of the book that ``html_dir`` (``BOOK/_build/html``) was built from, else this repository's."""
    candidate = html_dir.resolve().parent.parent / "_toc.yml"
    return candidate if candidate.is_file() else ROOT / "_toc.yml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("html_dir", nargs="?", default=str(ROOT / "_build" / "html"), help="built HTML folder")
    parser.add_argument("--toc", help="the book's _toc.yml (which pages to open); default: the one next to _build")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", DEFAULT_CHROMIUM), help="Chromium binary")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per page load")
    parser.add_argument(
        "--widths",
        default=",".join(map(str, DEFAULT_WIDTHS)),
        help="window widths in px at which to measure each page, comma-separated (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    html_dir = Path(args.html_dir)
    toc = Path(args.toc) if args.toc else default_toc(html_dir)
    widths = tuple(int(w) for w in args.widths.split(",") if w.strip())
    if not (html_dir / "index.html").is_file():
        print(f"error: {html_dir} holds no built book (no index.html). Build it first, see --help.", file=sys.stderr)
        return 2
    if not toc.is_file():
        print(f"error: no table of contents at {toc} (it says which pages to open)", file=sys.stderr)
        return 2
    pages = chapter_pages(html_dir, toc)
    if not Path(args.chromium).is_file():
        print(f"error: no Chromium at {args.chromium}.\n{INSTALL_HELP}", file=sys.stderr)
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print(f"error: the Python package playwright is not installed.\n{INSTALL_HELP}", file=sys.stderr)
        return 2

    server = serve(html_dir)
    local_host = f"127.0.0.1:{server.server_address[1]}"
    failed = 0
    totals = {width: {} for width in widths}
    scrolling = dict.fromkeys(widths, 0)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for path in pages:
                relative = path.relative_to(html_dir).as_posix()
                if not path.is_file():
                    failed += 1
                    print(f"FAIL {relative}\n       not built (listed in {toc.name})")
                    continue
                url = f"http://{local_host}/{relative}"
                timeout_ms = int(args.timeout * 1000)
                problems, blocked, layout = check_page(browser, url, local_host, timeout_ms, widths)
                for width in widths:
                    measured = layout.get(width)
                    scrolling[width] += sum(e["scrolls"] for e in (measured or {}).get("equations", []))
                    counts, lines = layout_problems(measured)
                    for kind, count in counts.items():
                        totals[width][kind] = totals[width].get(kind, 0) + count
                    problems += [f"at {width} px: {line}" for line in lines]
                failed += bool(problems)
                print(f"{'FAIL' if problems else 'ok  '} {relative}")
                for problem in problems:
                    print(f"       {problem}")
                for url in sorted(set(blocked)):
                    print(f"       blocked (external): {url}")
            browser.close()
    finally:
        server.shutdown()
    print()
    for width in widths:
        summary = ", ".join(f"{count} {kind}" for kind, count in totals[width].items())
        print(f"At {width} px: {summary} ({scrolling[width]} equations wider than the column in their own scroll bar).")
    print(f"{len(pages) - failed} of {len(pages)} pages load without errors offline and fit their column.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
