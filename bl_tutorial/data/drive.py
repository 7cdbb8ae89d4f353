"""Reader for the DRIVE retinal-vessel data set in its official layout.

DRIVE (Staal et al. 2004) is distributed as a zip after a free registration on its
challenge site; redistribution is not allowed. Unpacked, it reads::

    training/images/21_training.tif ... 40_training.tif     RGB, 584 x 565, 8 bit
    training/1st_manual/21_manual1.gif ...                  vessels, 0/255
    training/mask/21_training_mask.gif ...                  field of view, 0/255
    test/images/01_test.tif ... 20_test.tif
    test/mask/01_test_mask.gif ...
    (test/1st_manual/01_manual1.gif ... in older releases only)

:func:`read_drive` reads such a tree, real or the stand-in of
:mod:`bl_tutorial.data.synthetic`, with the same code.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("training", "test")
HOW_TO_GET = (
    "DRIVE is free for research and education after registering at "
    "https://drive.grand-challenge.org; download the zip, then run "
    "bl_tutorial.data.download.install_drive_zip(zip_path, data_root)."
)

EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")
"""Pillow modes with at most 8 bits per channel: their conversion to 8-bit RGB loses nothing."""

__all__ = ["DriveSample", "read_drive", "read_binary_gif", "check_drive_layout"]


@dataclass(frozen=True)
class DriveSample:
    """One DRIVE image: ``id`` ("21"), ``image`` (uint8, rows x cols x 3), ``vessels``
    (bool, or None without annotation), ``fov`` (bool field of view)."""

    id: str
    image: np.ndarray
    vessels: np.ndarray | None
    fov: np.ndarray


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow warns before failing on truncated files
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.load()
                return img.copy()
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image (corrupt or truncated?): {error}") from None


def read_binary_gif(path: Path | str) -> np.ndarray:
    """Read a 0/255 (or 0/1) GIF mask as a boolean array; anything else is an error."""
    path = Path(path)
    array = np.asarray(_open_image(path).convert("L"))
    values = np.unique(array)
    if not (set(values.tolist()) <= {0, 255} or set(values.tolist()) <= {0, 1}):
        raise ValueError(f"{path}: expected a binary mask with values 0/255, found values {values[:8].tolist()}")
    return array > 0


def _read_rgb(path: Path) -> np.ndarray:
    """Read an 8-bit image as RGB; refuse deeper ones (16-bit, float), whose conversion would clip or zero them."""
    img = _open_image(path)
    if img.mode not in EIGHT_BIT_MODES:
        raise ValueError(
            f"{path}: expected an 8-bit image like the official DRIVE TIFFs (RGB, 8 bits per channel), got Pillow "
            f"mode {img.mode!r} (16-bit, 32-bit or floating-point pixels); converting it to 8 bits would clip or "
            "zero the intensities. Convert the file to 8-bit RGB first."
        )
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def _check_fov(fov: np.ndarray, path: Path) -> np.ndarray:
    """Check that a field-of-view mask is the central disc of a fundus image; return it.

    A fundus camera sees the retina through a circular aperture, so the field of view
    covers the centre of the image and never reaches its corners (in DRIVE it is a disc
    about 540 px across in a 584 x 565 image). A mask whose centre pixel is outside or
    any of whose four corner pixels is inside is inverted (0 and 255 swapped), empty,
    or not a field-of-view mask; it is refused rather than used to score the wrong
    pixels.
    """
    rows, cols = fov.shape
    centre_inside = bool(fov[rows // 2, cols // 2])
    corners_inside = int(fov[[0, 0, -1, -1], [0, -1, 0, -1]].sum())
    if centre_inside and corners_inside == 0:
        return fov
    raise ValueError(
        f"{path}: not a field of view: the field of view must be the central disc of the image (255 inside, 0 "
        f"outside), containing the image centre and none of the four corners; here the centre is "
        f"{'inside' if centre_inside else 'outside'} and {corners_inside} of the 4 corners are inside. "
        "Is the mask inverted (0 and 255 swapped)?"
    )


def _image_files(folder: Path) -> list[Path]:
    """The images of a split, sorted; hidden files such as macOS's ``._21_training.tif`` are not images."""
    return sorted(path for path in folder.glob("images/*.tif") if not path.name.startswith("."))


def check_drive_layout(root: Path | str, split: str = "training") -> Path:
    """Return ``root/split`` if it holds DRIVE images, else raise ``FileNotFoundError`` saying what is expected."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    folder = Path(root) / split / "images"
    if not folder.is_dir() or not _image_files(folder.parent):
        raise FileNotFoundError(
            f"{folder}: no DRIVE images found. Expected the official layout "
            f"{split}/images/*.tif, {split}/mask/*_mask.gif"
            + (", training/1st_manual/*_manual1.gif" if split == "training" else "")
            + f". {HOW_TO_GET}"
        )
    return Path(root) / split


def read_drive(root: Path | str, split: str = "training") -> list[DriveSample]:
    """Read one split of a DRIVE tree (real or stand-in), sorted by image number.

    Parameters
    ----------
    root : path
        Folder holding ``training/`` and ``test/``.
    split : {"training", "test"}

    Returns
    -------
    list of DriveSample
        ``vessels`` is None where the split has no ``1st_manual`` annotation (the
        current official test set).

    Raises
    ------
    FileNotFoundError
        The folder or a field-of-view mask is missing (the message gives the layout).
    ValueError
        A file is corrupt or truncated, an image has more than 8 bits per channel, a
        mask is not binary, a field-of-view mask is not the central disc (e.g.
        inverted), or shapes differ.

    Examples
    --------
    >>> from bl_tutorial.data import ensure_dataset
    >>> samples = read_drive(ensure_dataset("drive"), "training")   # doctest: +SKIP
    >>> samples[0].id, samples[0].image.shape                        # doctest: +SKIP
    ('21', (584, 565, 3))
    """
    folder = check_drive_layout(root, split)
    samples = []
    for image_path in _image_files(folder):
        match = re.match(r"(\d+)_", image_path.name)
        if match is None:
            raise ValueError(f"{image_path}: expected a name like 21_training.tif")
        number = match.group(1)
        mask_path = folder / "mask" / f"{image_path.stem}_mask.gif"
        if not mask_path.is_file():
            raise FileNotFoundError(f"{mask_path}: field-of-view mask missing for {image_path.name}")
        image = _read_rgb(image_path)
        fov = read_binary_gif(mask_path)
        manual_path = folder / "1st_manual" / f"{number}_manual1.gif"
        vessels = read_binary_gif(manual_path) if manual_path.is_file() else None
        for name, array in (("mask", fov), ("1st_manual", vessels)):
            if array is not None and array.shape != image.shape[:2]:
                raise ValueError(f"{image_path.name}: image is {image.shape[:2]} but its {name} is {array.shape}")
        _check_fov(fov, mask_path)
        samples.append(DriveSample(number, image, vessels, fov))
    return samples
