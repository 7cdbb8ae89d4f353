"""Open every chapter of the built book in a headless browser, offline, and report what breaks.

    python tools/check_pages.py                 # checks _build/html
    python tools/check_pages.py path/to/html    # another build folder

The script serves the built pages on ``127.0.0.1`` (a random free port), opens each chapter
listed in ``_toc.yml`` in headless Chromium and blocks every request that does not go to
that local server, as a reader without a network would experience the book. For each page
it collects

* JavaScript page errors (uncaught exceptions, syntax errors such as a ``const`` declared twice);
* console messages of level ``error`` (a script or stylesheet that could not load, ...);
* local requests that failed or answered with an HTTP error (a missing ``_static`` file);
* math that MathJax did not typeset (the page has math but no ``mjx-container``), and
  formulas it could not read (a TeX error, or an undefined macro such as ``\\R`` if the
  ``mathjax3_config`` macros of ``_config.yml`` were lost).

Requests that were blocked because they leave the machine are listed as well: each one is
something the page fetches from the internet. The exit status is 1 when any page has a
problem, 0 when every page is clean, 2 when the tools are missing or the book is not built.

This is a developer check, not part of the book's requirements. It needs

* Chromium: ``apt-get install -y chromium`` (Debian/Ubuntu; the script looks for
  ``/usr/bin/chromium``, or pass ``--chromium PATH`` / set ``CHROMIUM``);
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


def check_page(browser, url: str, local_host: str, timeout_ms: int) -> tuple[list[str], list[str]]:
    """Open one page as a first-time reader would (fresh browser profile); return (problems, blocked URLs)."""
    problems: list[str] = []
    blocked: list[str] = []

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

    context = browser.new_context(service_workers="block")  # empty cache and local storage
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
    except Exception as error:  # a timeout or a crash is a problem of this page, not of the script
        problems.append(f"could not load the page: {error}")
    finally:
        context.close()
    return problems, blocked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("html_dir", nargs="?", default=str(ROOT / "_build" / "html"), help="built HTML folder")
    parser.add_argument("--toc", default=str(ROOT / "_toc.yml"), help="the book's _toc.yml (which pages to open)")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", DEFAULT_CHROMIUM), help="Chromium binary")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per page load")
    args = parser.parse_args(argv)

    html_dir = Path(args.html_dir)
    if not (html_dir / "index.html").is_file():
        print(f"error: {html_dir} holds no built book (no index.html). Build it first, see --help.", file=sys.stderr)
        return 2
    if not Path(args.toc).is_file():
        print(f"error: no table of contents at {args.toc} (it says which pages to open)", file=sys.stderr)
        return 2
    pages = chapter_pages(html_dir, Path(args.toc))
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
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for path in pages:
                relative = path.relative_to(html_dir).as_posix()
                if not path.is_file():
                    failed += 1
                    print(f"FAIL {relative}\n       not built (listed in {Path(args.toc).name})")
                    continue
                url = f"http://{local_host}/{relative}"
                problems, blocked = check_page(browser, url, local_host, timeout_ms=int(args.timeout * 1000))
                failed += bool(problems)
                print(f"{'FAIL' if problems else 'ok  '} {relative}")
                for problem in problems:
                    print(f"       {problem}")
                for url in sorted(set(blocked)):
                    print(f"       blocked (external): {url}")
            browser.close()
    finally:
        server.shutdown()
    print(f"\n{len(pages) - failed} of {len(pages)} pages load without errors offline.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
