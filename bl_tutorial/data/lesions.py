"""Synthetic lesion images whose foreground share is set by hand (the imbalance chapter).

Kervadec et al. gain most where the foreground is tiny (ISLES stroke lesions). To see
whether that holds, and where, this module draws images in which only the lesions'
share of the image changes, from about 10 % down to well under 1 %, everything else
staying alike:

* a textured background (smooth "tissue" plus noise);
* one to three lesions: blobs with irregular outlines, brighter than the tissue, whose
  total area is ``percent`` % of the image (one lesion when that area is small);
* two bright, thin, curved streaks that are *not* lesions: as bright as a lesion, so a
  network must use shape, and a tempting source of false positives far from any lesion.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same arguments give the
same arrays. The data are synthetic by design and are labelled so wherever they appear.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bl_tutorial._validation import check_int, check_number

__all__ = ["lesion_images", "lesion_image"]


def _blob(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, area: float, size: int) -> np.ndarray:
    """A blob of about ``area`` pixels with an irregular outline, placed at random inside the image."""
    radius = np.sqrt(area / np.pi)
    margin = radius * 1.4 + 2
    cy, cx = rng.uniform(margin, size - margin, 2)
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = sum(rng.uniform(0, 0.18) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    return np.hypot(yy - cy, xx - cx) <= radius * (1 + wobble)


def _streak(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    """A thin curved line across the image (a distractor as bright as a lesion)."""
    t = np.linspace(0, 1, 4 * size)
    start, end = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
    bend = rng.normal(0, size / 6, 2)
    points = start[None] + t[:, None] * (end - start)[None] + np.sin(np.pi * t)[:, None] * bend[None]
    line = np.zeros((size, size), bool)
    rows, cols = np.round(points).astype(int).T
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    line[rows[inside], cols[inside]] = True
    return line


def lesion_image(rng: np.random.Generator, size: int, percent: float, contrast: float = 3.0, streaks: float = 1.5):
    """One image ``(size, size)`` float32 (zero mean, unit variance) and its lesion mask (uint8).

    ``contrast`` and ``streaks`` are the brightness of the lesions and of the distracting
    streaks above the tissue, in units of the tissue's standard deviation.
    """
    yy, xx = np.mgrid[:size, :size].astype(float)
    tissue = ndimage.gaussian_filter(rng.normal(size=(size, size)), 3)
    image = tissue / (tissue.std() + 1e-8) * 0.5 + rng.normal(0, 0.35, (size, size))
    for _ in range(2):
        streak = ndimage.gaussian_filter(_streak(rng, yy, xx, size).astype(float), 0.6)
        image += streaks * np.clip(streak * 3, 0, 1)
    total = percent / 100 * size * size
    count = 1 if total < 60 else int(rng.integers(1, 4))
    lesions = np.zeros((size, size), bool)
    for share in rng.dirichlet(np.full(count, 4.0)):
        lesions |= _blob(rng, yy, xx, max(total * share, 3.0), size)
    image += contrast * ndimage.gaussian_filter(lesions.astype(float), 0.7) * (1 + rng.normal(0, 0.15, image.shape))
    image = (image - image.mean()) / image.std()
    return image.astype(np.float32), lesions.astype(np.uint8)


def lesion_images(count: int, size: int = 64, percent: float = 1.0, seed: int = 0):
    """``count`` synthetic lesion images ``(count, 1, size, size)`` float32 and masks ``(count, size, size)`` uint8.

    Parameters
    ----------
    count : int
        Number of images.
    size : int
        Side of the square images (px).
    percent : float
        The lesions' share of each image, in per cent (0 < percent <= 30).
    seed : int
        Seed of the generator; the same arguments give the same arrays.

    Examples
    --------
    >>> images, labels = lesion_images(4, 64, percent=3.0, seed=0)
    >>> images.shape, labels.shape
    ((4, 1, 64, 64), (4, 64, 64))
    >>> bool(1.5 < 100 * labels.mean() < 4.5)
    True
    """
    count = check_int(count, "count", minimum=1)
    size = check_int(size, "size", minimum=16)
    percent = check_number(percent, "percent", minimum=0, strict=True)
    if percent > 30:
        raise ValueError(f"percent must be at most 30 (small lesions), got {percent:g}")
    rng = np.random.default_rng([check_int(seed, "seed", minimum=0), int(round(percent * 1000))])
    pairs = [lesion_image(rng, size, percent) for _ in range(count)]
    return np.stack([p[0] for p in pairs])[:, None], np.stack([p[1] for p in pairs])
