"""Open the distance-map explorer in a live JupyterLab, move every control, check the layout.

    python tools/check_explorer.py                      # JupyterLab window 1280 px wide
    python tools/check_explorer.py --width 1700 --screenshots /tmp/shots

The script starts a JupyterLab server on ``127.0.0.1`` (a free port, a random token) in a
temporary folder holding a one-cell notebook that shows ``distance_map_explorer()``, opens
it in headless Chromium, runs the cell, then sets the controls from the kernel one setting
at a time (every shape, the size at both ends, spacings that are refused or clipped, each
class and convention) and measures the panel after each redraw. It reports

* a control (or its label, input or button) that leaves the controls column, a control
  that wraps onto a second line, a label or button whose text is cut;
* a figure that overlaps the controls, moves, or changes size;
* a figure that is not drawn as an image (as "<Figure size ...>" in a kernel that never
  imported pyplot).

The exit status is 1 when any setting shows a problem, 0 when none does, 2 when the tools
are missing. This is a developer check, not part of the book's requirements. It needs
JupyterLab (``pip install jupyterlab``), Playwright for Python and Chromium (see
``tools/check_pages.py``; no browser is downloaded).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from check_pages import CHROMIUM_ARGS, DEFAULT_CHROMIUM, INSTALL_HELP

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "explorer",
            "metadata": {},
            "outputs": [],
            "source": [
                "from bl_tutorial.viz import distance_map_explorer\n",
                "panel = distance_map_explorer()\n",
                "c = {w.description: w for w in panel.children[0].children if getattr(w, 'description', '')}\n",
                "panel",
            ],
        }
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}

ROWS, COLUMNS = 'c["row spacing (mm)"]', 'c["column spacing (mm)"]'
SHAPES = ("disc", "square", "ring", "two blobs", "vessel")
SETTINGS = [
    ("defaults", ""),
    ("rows 0.5 mm", f"{ROWS}.value = 0.5"),
    ("rows -1 mm (refused)", f"{ROWS}.value = -1.0"),
    ("columns 0 mm (refused)", f"{COLUMNS}.value = 0.0"),
    ("long numbers, columns clipped", f"{ROWS}.value = 0.123456789; {COLUMNS}.value = 12345.678"),
    ("rows clipped to 0.01 mm, stretch capped", f"{ROWS}.value = 1e-6"),
    ("size at its maximum", f'{ROWS}.value = 1.0; {COLUMNS}.value = 3.0; c["size (px)"].value = c["size (px)"].max'),
    ("size at its minimum", 'c["size (px)"].value = c["size (px)"].min'),
    ("background, official", 'c["class"].value = "background"; c["convention"].value = "official"'),
    ("official at 0.5 mm", f'c["class"].value = "foreground"; {ROWS}.value = 0.5; {COLUMNS}.value = 0.5'),
    *[(f"shape {shape}", f'c["shape"].value = "{shape}"') for shape in SHAPES],
]

# The panel is an HBox: [controls column, figure Output]. Rectangles are [left, top, right, bottom].
MEASURE_JS = """() => {
    const panel = document.querySelector('.jp-OutputArea-output .widget-hbox');
    if (!panel) { return null; }
    panel.scrollIntoView();
    const rect = e => {
        const b = e.getBoundingClientRect();
        return [b.left, b.top, b.right, b.bottom].map(Math.round);
    };
    const [column, figure] = panel.children;
    const controls = [...column.children].map(c => ({
        text: c.innerText.trim().replace(/\\s+/g, ' ').slice(0, 100),
        rect: rect(c),
        parts: [...c.querySelectorAll('input, select, button, .widget-label, .slider-container, .widget-readout')]
            .filter(e => e.offsetWidth > 0).map(rect),
    }));
    const cut = [...panel.querySelectorAll('.widget-label, button, label, select')]
        .filter(e => e.offsetWidth > 0 && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText);
    const image = figure.querySelector('img');
    return {column: rect(column), figure: rect(figure), image: image ? rect(image) : null,
            figureText: figure.innerText.trim().slice(0, 80), controls, cut};
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab serving ``folder``; returns once it answers."""
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}"]
    command += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "w"))
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return server
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    server.terminate()
    log = (folder / "server.log").read_text().splitlines()[-15:]
    raise RuntimeError("JupyterLab did not start; the end of its log:\n" + "\n".join(log))


def wait_until_idle(page, timeout_s: float = 120) -> None:
    """Until no cell shows the busy prompt ``[*]``, then a moment for the widgets to redraw."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        prompts = page.eval_on_selector_all(".jp-InputPrompt", "ps => ps.map(p => p.innerText)")
        if prompts and not any("*" in p for p in prompts):
            time.sleep(1.5)
            return
        time.sleep(0.3)
    raise TimeoutError("the kernel stayed busy")


def run_cell(page, code: str) -> None:
    """Add a cell under the current one, type ``code`` into it and run it."""
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")
    wait_until_idle(page)


def size(rect: list[int]) -> tuple[int, int]:
    return rect[2] - rect[0], rect[3] - rect[1]


def layout_problems(m: dict | None, first: dict) -> list[str]:
    """What is wrong with one measurement ``m``, compared with the first (``first``)."""
    if m is None:
        return ["no panel"]
    problems = [f"text cut: {text!r}" for text in m["cut"]]
    left, top, right, bottom = m["column"]
    for control in m["controls"][:-1]:  # the last child is the note area, which may be tall
        if control["rect"][3] - control["rect"][1] > 40:
            problems.append(f"control {control['text']!r} wraps onto two lines: {control['rect']}")
    for control in m["controls"]:
        for part in [control["rect"], *control["parts"]]:
            if part[0] < left - 1 or part[2] > right + 1:
                problems.append(f"{control['text']!r} {part} leaves the controls column {m['column']}")
    f_left, f_top, f_right, f_bottom = m["figure"]
    if f_left < right - 1 and f_right > left + 1 and f_top < bottom - 1 and f_bottom > top + 1:
        problems.append(f"figure {m['figure']} overlaps the controls {m['column']}")
    if m["image"] is None:
        problems.append(f"figure not drawn as an image (shows {m['figureText']!r})")
    if m["column"] != first["column"]:
        problems.append(f"controls column moved or resized: {first['column']} -> {m['column']}")
    if m["figure"][:2] != first["figure"][:2]:
        problems.append(f"figure moved: {first['figure']} -> {m['figure']}")
    if m["image"] and first["image"] and size(m["image"]) != size(first["image"]):
        problems.append(f"figure size changed: {size(first['image'])} -> {size(m['image'])}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1280, help="browser window width in px (default 1280)")
    parser.add_argument("--screenshots", type=Path, help="save one screenshot per setting in this folder")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", DEFAULT_CHROMIUM))
    args = parser.parse_args()
    try:
        import jupyterlab  # noqa: F401 - only checks that it is installed
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        print(f"missing: {error.name}\n{INSTALL_HELP}\n    pip install jupyterlab", file=sys.stderr)
        return 2
    if not Path(args.chromium).exists() and shutil.which(args.chromium) is None:
        print(f"no Chromium at {args.chromium}\n{INSTALL_HELP}", file=sys.stderr)
        return 2
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        folder, port, token = Path(tmp), free_port(), secrets.token_hex(16)
        (folder / "explorer.ipynb").write_text(json.dumps(NOTEBOOK))
        server = start_lab(folder, port, token)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/lab/tree/explorer.ipynb?token={token}")
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
                page.wait_for_timeout(3000)
                while page.query_selector(".jp-Dialog"):  # "Select Kernel": take the default
                    page.click(".jp-Dialog .jp-mod-accept")
                    page.wait_for_timeout(1000)
                page.click(".jp-Cell .jp-InputArea-editor")
                page.keyboard.press("Shift+Enter")
                page.wait_for_selector(".jp-OutputArea-output .widget-hbox", timeout=120_000)
                wait_until_idle(page)
                first = None
                for number, (name, code) in enumerate(SETTINGS):
                    if code:
                        run_cell(page, code)
                    measured = page.evaluate(MEASURE_JS)
                    first = first or measured
                    if args.screenshots:
                        page.screenshot(path=str(args.screenshots / f"{number:02d}.png"))
                    problems = layout_problems(measured, first) if first else ["no panel"]
                    failures += bool(problems)
                    note = measured["controls"][-1]["text"] if measured else ""
                    print(f"{'PROBLEM' if problems else 'ok':7s} {name}" + (f"  [{note}]" if note else ""))
                    for problem in problems:
                        print(f"        {problem}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{failures} of {len(SETTINGS)} settings with a problem (window {args.width} px wide)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
