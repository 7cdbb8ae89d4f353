"""A real fundus photograph for figures, with an automatically derived *pseudo*-label.

No package ships a real fundus image with an expert vessel annotation. scikit-image
ships a real photograph (``skimage.data.retina()``, CC0) without one. For figures that
benefit from a real image (the distance-map chapter's Figure 1), :func:`real_fundus`
derives a vessel map with a vesselness filter. It is **not** an expert annotation, and
every figure that uses it says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FundusExample", "real_fundus"]

PSEUDO_LABEL_NOTE = (
    "pseudo-label: vessels found automatically by a Sato vesselness filter on the green channel, "
    "not an expert annotation"
)


@dataclass(frozen=True)
class FundusExample:
    """``image`` (uint8 RGB), ``vessels`` (bool pseudo-label), ``fov`` (bool), and ``note`` saying what the label is."""

    image: np.ndarray
    vessels: np.ndarray
    fov: np.ndarray
    note: str
    source: str


def real_fundus(size: int = 512, vessel_fraction: float = 0.12) -> FundusExample:
    """The CC0 fundus photograph of scikit-image, resized, with a pseudo vessel map.

    Parameters
    ----------
    size : int
        Side of the square output (the original is 1411 x 1411).
    vessel_fraction : float
        Fraction of the field of view labelled as vessel (the strongest vesselness
        responses), about 12 % in DRIVE.

    Examples
    --------
    >>> example = real_fundus(256)
    >>> example.image.shape, example.vessels.dtype, "not an expert annotation" in example.note
    ((256, 256, 3), dtype('bool'), True)
    """
    if not 0 < vessel_fraction < 1:
        raise ValueError(f"vessel_fraction must lie in (0, 1), got {vessel_fraction!r}")
    if size < 32:
        raise ValueError(f"size must be at least 32, got {size}")
    from scipy import ndimage
    from skimage import data, filters, morphology, transform

    photo = data.retina()
    image = transform.resize(photo, (size, size), anti_aliasing=True, preserve_range=True).astype(np.uint8)
    green = image[..., 1].astype(float) / 255
    fov = ndimage.binary_erosion(ndimage.binary_fill_holes(image.sum(-1) > 30), iterations=max(2, size // 100))
    scale = size / 512
    response = filters.sato(green, sigmas=[s * scale for s in (1, 2, 3, 4)], black_ridges=True)
    response[~fov] = 0
    threshold = np.quantile(response[fov], 1 - vessel_fraction)
    vessels = morphology.remove_small_objects(response > threshold, max_size=int(30 * scale**2)) & fov
    return FundusExample(image, vessels, fov, PSEUDO_LABEL_NOTE, "skimage.data.retina() (CC0)")
