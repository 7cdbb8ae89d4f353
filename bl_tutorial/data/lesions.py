"""Synthetic lesion images whose foreground share is set by hand (the imbalance chapter).

Kervadec et al. gain most where the foreground is tiny (ISLES stroke lesions). To see
whether that holds, and where, this module draws images in which only the lesions'
share of the image changes, everything else staying alike:

* a textured background (smooth "tissue" plus noise);
* lesions: one to three compact blobs with irregular outlines, brighter than the tissue,
  whose total area is ``percent`` % of the image. Each lesion is large enough to have an
  inside (at least :data:`MIN_LESION_PIXELS` pixels, so that most of its pixels lie off its
  boundary set, where :math:`\\phi < 0`): at small shares there is one lesion, and the
  image must be large enough to hold it (:func:`lesion_images` refuses a share too small
  for the image);
* distractors that are *as bright as the lesions*: thin curved streaks and elongated
  ribbons. Intensity alone cannot tell them from lesions (a global threshold keeps both);
  their shape can, and they invite false positives far from any lesion;
* a share of the images (``empty_share``) has no lesion at all, as most ISLES and WMH
  slices have none; they still have their distractors.

Everything is drawn from ``numpy.random.default_rng``: the same arguments give the same
arrays. The data are synthetic by design and are labelled so wherever they appear.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bl_tutorial._validation import check_int, check_number

__all__ = ["lesion_images", "lesion_image", "lesion_layers", "MIN_LESION_PIXELS", "smallest_share"]

MIN_LESION_PIXELS = 60
"""The smallest lesion drawn (pixels): blobs this large keep more than half of their pixels
strictly inside (off the boundary set), even with irregular outlines."""


def smallest_share(size: int) -> float:
    """The smallest lesion share (%) an image of ``size`` x ``size`` pixels can hold with an inside.

    >>> round(smallest_share(96), 3)
    0.651
    """
    return 100 * MIN_LESION_PIXELS / size**2


def _blob(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, area: float, size: int) -> np.ndarray:
    """A compact blob of about ``area`` pixels with an irregular outline, at a random place inside the image."""
    radius = np.sqrt(area / np.pi)
    margin = radius * 1.3 + 2
    cy, cx = rng.uniform(margin, size - margin, 2)
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = sum(rng.uniform(0, 0.12) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    return np.hypot(yy - cy, xx - cx) <= radius * (1 + wobble)


def _curve(rng: np.random.Generator, size: int, width: float) -> np.ndarray:
    """A curved line across the image, ``width`` pixels wide, as a soft mask in [0, 1]."""
    t = np.linspace(0, 1, 4 * size)
    start, end = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
    bend = rng.normal(0, size / 6, 2)
    points = start[None] + t[:, None] * (end - start)[None] + np.sin(np.pi * t)[:, None] * bend[None]
    line = np.zeros((size, size), bool)
    rows, cols = np.round(points).astype(int).T
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    line[rows[inside], cols[inside]] = True
    if width > 1.5:
        line = ndimage.binary_dilation(line, iterations=int(round((width - 1) / 2)))
    return np.clip(ndimage.gaussian_filter(line.astype(float), 0.6) * (3 if width <= 1.5 else 1.5), 0, 1)


def _lesion_areas(rng: np.random.Generator, total: float) -> np.ndarray:
    """The areas of the lesions that make up ``total`` pixels, none smaller than :data:`MIN_LESION_PIXELS`."""
    most = int(min(3, total // MIN_LESION_PIXELS))
    count = 1 if most <= 1 else int(rng.integers(1, most + 1))
    shares = rng.dirichlet(np.full(count, 4.0))
    areas = MIN_LESION_PIXELS + shares * (total - count * MIN_LESION_PIXELS)
    return np.maximum(areas, MIN_LESION_PIXELS)


def lesion_layers(rng: np.random.Generator, size: int, percent: float, contrast: float = 3.0, empty: bool = False):
    """The parts of one image before they are added and standardised: ``tissue``, the ``distractors``
    and ``lesion`` intensity layers (in tissue standard deviations) and the lesions' ``mask``.

    >>> layers = lesion_layers(np.random.default_rng(0), 96, 3.0)
    >>> sorted(layers)
    ['distractors', 'lesion', 'mask', 'tissue']
    >>> core = layers["distractors"] > 1.5  # on the streaks and the ribbon
    >>> lesion = layers["lesion"][layers["mask"]]
    >>> round(float(np.median(layers["distractors"][core])), 1), round(float(np.median(lesion)), 1)
    (3.0, 2.7)
    """
    yy, xx = np.mgrid[:size, :size].astype(float)
    tissue = ndimage.gaussian_filter(rng.normal(size=(size, size)), 3)
    tissue = tissue / (tissue.std() + 1e-8) * 0.5 + rng.normal(0, 0.35, (size, size))
    distractors = sum(contrast * _curve(rng, size, width) for width in (1.0, 1.0, 3.0))  # streaks, a ribbon
    mask = np.zeros((size, size), bool)
    if not empty:
        for area in _lesion_areas(rng, percent / 100 * size * size):
            mask |= _blob(rng, yy, xx, area, size)
    lesion = contrast * ndimage.gaussian_filter(mask.astype(float), 0.7) * (1 + rng.normal(0, 0.15, (size, size)))
    return {"tissue": tissue, "distractors": distractors, "lesion": lesion, "mask": mask}


def lesion_image(rng: np.random.Generator, size: int, percent: float, contrast: float = 3.0, empty: bool = False):
    """One image ``(size, size)`` float32 (zero mean, unit variance) and its lesion mask (uint8).

    ``contrast`` is the brightness of the lesions *and* of the distractors above the
    tissue, in units of the tissue's standard deviation; ``empty`` draws an image without
    lesions (distractors only).
    """
    layers = lesion_layers(rng, size, percent, contrast, empty)
    image = layers["tissue"] + layers["distractors"] + layers["lesion"]
    image = (image - image.mean()) / image.std()
    return image.astype(np.float32), layers["mask"].astype(np.uint8)


def lesion_images(count: int, size: int = 64, percent: float = 1.0, seed: int = 0, empty_share: float = 0.0):
    """``count`` synthetic lesion images ``(count, 1, size, size)`` float32 and masks ``(count, size, size)`` uint8.

    Parameters
    ----------
    count : int
        Number of images.
    size : int
        Side of the square images (px).
    percent : float
        The lesions' share of each image that has lesions, in per cent (at most 30, and at
        least :func:`smallest_share` of ``size``, so that every lesion has an inside).
    seed : int
        Seed of the generator; the same arguments give the same arrays.
    empty_share : float
        The share of the images (0 to 1) drawn without lesions; which ones is drawn at random.

    Examples
    --------
    >>> images, labels = lesion_images(4, 64, percent=3.0, seed=0)
    >>> images.shape, labels.shape
    ((4, 1, 64, 64), (4, 64, 64))
    >>> bool(2.0 < 100 * labels.mean() < 4.5)
    True
    """
    count = check_int(count, "count", minimum=1)
    size = check_int(size, "size", minimum=16)
    percent = check_number(percent, "percent", minimum=0, strict=True)
    empty_share = check_number(empty_share, "empty_share", minimum=0)
    if percent > 30:
        raise ValueError(f"percent must be at most 30 (small lesions), got {percent:g}")
    if percent < smallest_share(size):
        raise ValueError(
            f"percent must be at least {smallest_share(size):.3g} for {size} x {size} images (a lesion of "
            f"{MIN_LESION_PIXELS} pixels, the smallest with an inside), got {percent:g}; use larger images"
        )
    if empty_share > 1:
        raise ValueError(f"empty_share must lie in [0, 1], got {empty_share:g}")
    rng = np.random.default_rng([check_int(seed, "seed", minimum=0), int(round(percent * 1000))])
    empty = rng.permutation(count) < int(round(empty_share * count))
    pairs = [lesion_image(rng, size, percent, empty=bool(e)) for e in empty]
    return np.stack([p[0] for p in pairs])[:, None], np.stack([p[1] for p in pairs])
