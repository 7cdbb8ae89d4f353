"""The book's figures, tables and widgets, and the ``glue`` helpers for numbers in prose.

* :mod:`bl_tutorial.viz.maps` - distance maps: the report's Figure 1, the interactive
  explorer (ipywidgets) and its static equivalent (an animation that needs no kernel);
* :mod:`bl_tutorial.viz.results` - experiment results: learning curves, tables of scores
  and of paired differences, prediction figures.

Everything is importable from :mod:`bl_tutorial.viz` directly.
"""

from __future__ import annotations

import numpy as np

from bl_tutorial.viz.maps import (
    SHAPES,
    ExplorerState,
    distance_map_animation,
    distance_map_explorer,
    explorer_state,
    figure_distance_maps,
    plot_signed_distance,
)
from bl_tutorial.viz.results import (
    cardiac_slices_figure,
    comparison_table,
    drive_test_figure,
    drive_validation_figure,
    error_map,
    fork_curves,
    plot_history,
    plot_seed_curves,
    results_table,
    study_figure,
    study_table,
    summary_table,
)

__all__ = [
    "glue",
    "glue_values",
    "plot_signed_distance",
    "figure_distance_maps",
    "error_map",
    "ExplorerState",
    "explorer_state",
    "distance_map_explorer",
    "distance_map_animation",
    "plot_history",
    "results_table",
    "summary_table",
    "comparison_table",
    "plot_seed_curves",
    "study_figure",
    "fork_curves",
    "study_table",
    "drive_validation_figure",
    "drive_test_figure",
    "cardiac_slices_figure",
    "SHAPES",
]


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for ``{glue:text}`` references in the book's prose.

    Uses ``myst_nb.glue`` when MyST-NB is installed (the book build); does nothing
    otherwise (e.g. in Colab). Prefer :func:`glue_values`, which also prints the values
    for readers who open the notebook outside the built book.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    if isinstance(value, np.generic):  # np.float64 -> float, so that {glue:text}`name:.2f` can format it
        value = value.item()
    myst_glue(name, value, display=display)


def _readable(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def glue_values(**values) -> None:
    """Glue each value for the book's prose and print it, one line each.

    The book's sentences quote computed numbers with ``{glue:text}`name``` roles, which
    only the built book renders. Each notebook calls this in a small cell just before
    the paragraph that quotes the numbers, tagged ``remove-cell``: the built book hides
    the cell and fills in the numbers, while a reader in Jupyter or Colab sees the cell's
    output, the same numbers under the same names, right above the paragraph.

    >>> glue_values(vessel_share=12.3456, best_loss="gdl+bl")
    vessel_share = 12.35
    best_loss = gdl+bl
    """
    for name, value in values.items():
        glue(name, value)
        print(f"{name} = {_readable(value)}")
