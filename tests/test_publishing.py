"""The notebooks install a pinned release of the package, and publishing refuses a placeholder."""

import json
import os
from pathlib import Path

import pytest

import bl_tutorial

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cells_install_the_pinned_release(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    setup = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    assert f'RELEASE = "{bl_tutorial.RELEASE}"' in setup
    assert "@{RELEASE}" in setup, "the install must be pinned to the release tag"
    assert bl_tutorial.RELEASE == f"v{bl_tutorial.__version__}"


@pytest.mark.skipif(not os.environ.get("BL_TUTORIAL_PUBLISH"), reason="only when publishing the book")
def test_the_published_book_does_not_install_from_a_placeholder():
    assert not bl_tutorial.REPOSITORY_IS_PLACEHOLDER, (
        f"{bl_tutorial.REPOSITORY_URL} is still marked as a placeholder: set the published repository's URL "
        "in bl_tutorial/__init__.py, _config.yml and the notebooks, tag the release, then set "
        "REPOSITORY_IS_PLACEHOLDER = False"
    )
