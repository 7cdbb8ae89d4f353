"""Keep the notebooks in the form the repository stores them: no outputs, except in the cells
nbval compares (marked ``# NBVAL_CHECK_OUTPUT``), which keep their outputs and execution counts;
no trace of a run (cell timestamps, widget state).

    python tools/notebooks.py strip notebooks/*.ipynb      # drop every other output
    python tools/notebooks.py execute notebooks/05_drive.ipynb  # run (smoke profile), then strip

``execute`` runs the notebook in place with ``BL_TUTORIAL_PROFILE=smoke`` (as nbval does),
so the compared outputs are those nbval will see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MARK = "# NBVAL_CHECK_OUTPUT"


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


def execute(path: Path) -> None:
    env = {**os.environ, "BL_TUTORIAL_PROFILE": os.environ.get("BL_TUTORIAL_PROFILE", "smoke")}
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
               "--ExecutePreprocessor.timeout=1200", str(path)]  # fmt: skip
    subprocess.run(command, check=True, env=env)
    strip(path)


if __name__ == "__main__":
    action, *paths = sys.argv[1:]
    for name in paths:
        {"strip": strip, "execute": execute}[action](Path(name))
