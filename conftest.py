"""Settings for every test run from the repository root (``python -m pytest``).

nbval executes the notebooks under the ``smoke`` profile: the same code paths as the book
on tiny sizes, in seconds, one run at a time. It checks that every cell runs and that the cells marked
``# NBVAL_CHECK_OUTPUT`` print what they printed when saved; the numbers the book quotes
come from the book build (``fast`` profile). An explicit ``BL_TUTORIAL_PROFILE`` wins.
"""

import os

os.environ.setdefault("BL_TUTORIAL_PROFILE", "smoke")
os.environ.setdefault("BL_TUTORIAL_WORKERS", "1")  # one run at a time; the tests of parallel runs ask for more
