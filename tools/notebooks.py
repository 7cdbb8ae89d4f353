"""Keep the notebooks in the form the repository stores them: no outputs, except in the cells
nbval compares (marked ``# NBVAL_CHECK_OUTPUT``), which keep their outputs and execution counts;
no trace of a run (cell timestamps, widget state).

    python tools/notebooks.py strip notebooks/*.ipynb      # drop every other output
    python tools/notebooks.py execute notebooks/05_drive.ipynb  # run (smoke profile), then strip
    python tools/notebooks.py setup notebooks/*.ipynb      # write the standard setup cell

``execute`` runs the notebook in place with ``BL_TUTORIAL_PROFILE=smoke`` (as nbval does),
so the compared outputs are those nbval will see.

``setup`` makes the first code cell of each notebook the standard setup cell
(:data:`SETUP_CELL`, with ``bl_tutorial.REPOSITORY_URL`` and ``bl_tutorial.RELEASE``): it installs
the pinned release where ``bl_tutorial`` is missing (Colab) and, where that install cannot
work (no network, a repository that is still a placeholder), stops with one sentence that
says what to do instead of a traceback; then it prints the device banner.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

MARK = "# NBVAL_CHECK_OUTPUT"
ROOT = Path(__file__).resolve().parents[1]
SETUP_CELL = """\
# Setup: installs bl_tutorial where it is missing (e.g. in Colab); offline it
# does nothing. The install is pinned to the release this book was built from.
import importlib.util
import subprocess
import sys

REPOSITORY_URL = "{repository_url}"
RELEASE = "{release}"
if importlib.util.find_spec("bl_tutorial") is None:
    package = f"bl_tutorial @ git+{{REPOSITORY_URL}}@{{RELEASE}}"
    pip = [sys.executable, "-m", "pip", "install", "-q", package]
    if subprocess.run(pip, capture_output=True).returncode != 0:

        class SetupError(Exception):
            def _render_traceback_(self):  # Jupyter shows this line only
                return [f"SetupError: {{self}}"]

        raise SetupError(
            f"bl_tutorial {{RELEASE}} could not be installed from "
            f"{{REPOSITORY_URL}} (no network, or the book is not published "
            "there yet): install it yourself, for example with "
            "`pip install -e .` in a clone of the book's repository, and "
            "run this cell again."
        )

from bl_tutorial.device import device_banner

print(device_banner())"""


def strip(path: Path) -> None:
    notebook = json.loads(path.read_text())
    notebook["metadata"].pop("widgets", None)  # widget state of a run, useless without its outputs
    for cell in notebook["cells"]:
        cell["metadata"].pop("execution", None)  # a run's timestamps
        if cell["cell_type"] != "code":
            continue
        if MARK not in "".join(cell["source"]):
            cell["outputs"], cell["execution_count"] = [], None
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def setup_cell() -> str:
    """The standard setup cell, for the repository and release of ``bl_tutorial/__init__.py``."""
    init = (ROOT / "bl_tutorial" / "__init__.py").read_text()
    version = re.search(r'__version__ = "([^"]+)"', init).group(1)
    url = re.search(r'REPOSITORY_URL = "([^"]+)"', init).group(1)
    return SETUP_CELL.format(repository_url=url, release=f"v{version}")


def setup(path: Path) -> None:
    """Make the first code cell of the notebook the standard setup cell."""
    notebook = json.loads(path.read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    lines = setup_cell().split("\n")
    cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
    cell["outputs"], cell["execution_count"] = [], None
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def execute(path: Path) -> None:
    env = {**os.environ, "BL_TUTORIAL_PROFILE": os.environ.get("BL_TUTORIAL_PROFILE", "smoke")}
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
               "--ExecutePreprocessor.timeout=1200", str(path)]  # fmt: skip
    subprocess.run(command, check=True, env=env)
    strip(path)


if __name__ == "__main__":
    action, *paths = sys.argv[1:]
    for name in paths:
        {"strip": strip, "execute": execute, "setup": setup}[action](Path(name))
