"""bl_tutorial: the code behind the boundary-loss book.

One module per idea, in the order the book teaches them:

- :mod:`bl_tutorial.distance` - boundary sets and signed distance maps (chapter 2)
- :mod:`bl_tutorial.losses` - the boundary loss and the regional losses (chapters 3-4)
- :mod:`bl_tutorial.metrics` - Dice, precision, recall, IoU, HD95, ASSD (chapter 4, experiments)
- :mod:`bl_tutorial.device` - GPU detection, banner, seeding (every notebook)

Submodules are imported on demand so that ``import bl_tutorial`` stays light.
"""

__version__ = "0.1.0"
REPOSITORY_URL = "https://github.com/bl-tutorial/boundary-loss-book"
"""Where the notebooks install the package from in Colab (kept in this one place)."""

__all__ = ["__version__", "REPOSITORY_URL"]
