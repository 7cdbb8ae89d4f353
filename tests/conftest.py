"""Shared pytest settings: hypothesis profiles and small strategies."""

import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def masks(ndim: int, max_side: int = 9):
    """Random binary masks, 2D or 3D, small enough for the brute-force reference."""
    side = st.integers(2, max_side)
    shape = st.tuples(*[st.integers(1, 4) if (ndim == 3 and i == 0) else side for i in range(ndim)])
    return shape.flatmap(lambda s: arrays(bool, s))


def spacings(ndim: int):
    """Random positive, anisotropic spacings (mm)."""
    return st.tuples(*[st.floats(0.25, 8.0, allow_nan=False) for _ in range(ndim)])


def label_images(num_classes: int, ndim: int = 2, max_side: int = 10):
    side = st.integers(2, max_side)
    shape = st.tuples(*[side for _ in range(ndim)])
    return shape.flatmap(lambda s: arrays(np.uint8, s, elements=st.integers(0, num_classes - 1)))
