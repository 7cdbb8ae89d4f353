"""bl_tutorial: the code behind the boundary-loss book.

One module per idea, in the order the book teaches them:

- :mod:`bl_tutorial.distance` - boundary sets and signed distance maps (chapter 2)
- :mod:`bl_tutorial.losses` - the boundary loss and the regional losses (chapters 3-4)
- :mod:`bl_tutorial.metrics` - Dice, precision, recall, IoU, HD95, ASSD (chapter 4, experiments)
- :mod:`bl_tutorial.device` - GPU detection, banner, seeding (every notebook)

Submodules are imported on demand so that ``import bl_tutorial`` stays light.
"""

__version__ = "0.2.0"
REPOSITORY_URL = "https://github.com/bl-tutorial/boundary-loss-book"
"""Where the notebooks install the package from in Colab (kept here, in _config.yml and in
every notebook's setup cell; a test keeps them equal)."""
RELEASE = f"v{__version__}"
"""The tag the notebooks' setup cell installs: the install is pinned, never a moving branch."""
REPOSITORY_IS_PLACEHOLDER = True
"""True while REPOSITORY_URL is not yet the published repository. Publishing the book runs
the tests with ``BL_TUTORIAL_PUBLISH=1``, which fail while this is True: set the real URL
(here, in _config.yml and in the notebooks), tag the release, then set this to False."""

__all__ = ["__version__", "REPOSITORY_URL", "RELEASE", "REPOSITORY_IS_PLACEHOLDER"]
