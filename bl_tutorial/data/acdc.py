"""Reader for the ACDC cardiac cine-MRI data set in its official layout.

ACDC (Bernard et al. 2018) has 100 training and 50 testing patients::

    training/patient001/Info.cfg                      ED: 1, ES: 12, Group: DCM, Height, NbFrame, Weight
    training/patient001/patient001_frame01.nii.gz     ED volume
    training/patient001/patient001_frame01_gt.nii.gz  labels 0 background, 1 RV, 2 MYO, 3 LV
    training/patient001/patient001_frame12.nii.gz     ES volume (and its _gt)
    testing/patient101/...

NIfTI stores arrays as (x, y, z). :func:`read_acdc` returns them as (z, y, x) = (slice,
row, column) with the spacing in the same order, read from the header, in millimetres.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("training", "testing")
CLASS_NAMES = ("background", "RV", "MYO", "LV")
HOW_TO_GET = (
    "ACDC (CC BY-NC-SA 4.0) can be downloaded from the Creatis humanheart-project database; "
    "run bl_tutorial.data.download.download_acdc(data_root)."
)

__all__ = ["AcdcFrame", "AcdcPatient", "acdc_patient_ids", "read_acdc", "read_info", "read_nifti", "CLASS_NAMES"]


@dataclass(frozen=True)
class AcdcFrame:
    """One cardiac phase: ``image`` (float32, z y x), ``labels`` (uint8 in {0,1,2,3}), ``spacing`` (mm, z y x)."""

    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]


@dataclass(frozen=True)
class AcdcPatient:
    """A patient: ``id`` ("patient001"), parsed ``info`` and ``frames`` {"ED": AcdcFrame, "ES": AcdcFrame}."""

    id: str
    info: dict
    frames: dict = field(default_factory=dict)


def read_info(path: Path | str) -> dict:
    """Parse an ``Info.cfg``: ED, ES and NbFrame as int, Height and Weight as float, Group as str.

    The file is read as UTF-8 (a byte-order mark is allowed) or, with its byte-order
    mark, UTF-16; other encodings are refused with a ``ValueError``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Info.cfg missing")
    info: dict = {}
    for line in _read_text(path).splitlines():
        if ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            info[key] = value
    for key in ("ED", "ES"):
        if key not in info:
            raise ValueError(f"{path}: no '{key}:' line (expected lines like 'ED: 1' and 'ES: 12')")
    try:
        for key in ("ED", "ES", "NbFrame"):
            if key in info:
                info[key] = int(info[key])
        for key in ("Height", "Weight"):
            if key in info:
                info[key] = float(info[key])
    except ValueError as error:
        raise ValueError(f"{path}: unreadable value: {error}") from None
    return info


def _read_text(path: Path) -> str:
    """Text of a small file in UTF-8 (a byte-order mark is dropped) or, with its byte-order mark, UTF-16."""
    raw = path.read_bytes()
    try:
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Windows "Unicode" text
            return raw.decode("utf-16")
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {raw[error.start]:#04x} at position {error.start}); expected plain "
            "text lines like 'ED: 1' and 'ES: 12'. Save the file as UTF-8."
        ) from None


def _raw_voxel_sizes(image) -> np.ndarray | None:
    """``pixdim[1:4]`` as stored in the file's header (nibabel replaces a 0 by 1 when it loads); None without one."""
    from nibabel.openers import ImageOpener

    header_class = type(image.header)
    if "pixdim" not in (header_class.template_dtype.names or ()):
        return None
    holder = image.file_map.get("header", image.file_map["image"])  # .nii files hold their header
    with ImageOpener(holder.filename) as handle:
        raw = header_class.from_fileobj(handle, check=False)
    return np.asarray(raw["pixdim"][1:4], dtype=float)


def read_nifti(path: Path | str) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a 3D NIfTI file as a (z, y, x) array and its (z, y, x) spacing in millimetres.

    A voxel size of 0 (or NaN) in the header is an error, not 1 mm.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: NIfTI file missing")
    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj)
        zooms = image.header.get_zooms()
        stored = _raw_voxel_sizes(image)
    except Exception as error:  # nibabel raises several types for corrupt or truncated files
        raise ValueError(f"{path}: not a readable NIfTI file (corrupt or truncated?): {error}") from None
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume, got shape {data.shape}")
    if stored is not None and not (np.isfinite(stored) & (stored != 0)).all():
        raise ValueError(
            f"{path}: the header's voxel sizes (pixdim[1:4], x y z) are {stored.tolist()}; each must be a non-zero, "
            "finite number of millimetres (nibabel would silently read 0 as 1 mm). Fix the header, e.g. with "
            "nibabel's header.set_zooms."
        )
    spacing = tuple(float(z) for z in zooms[:3][::-1])
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"{path}: voxel sizes in the header must be positive, got {zooms[:3]}")
    return np.ascontiguousarray(data.transpose(2, 1, 0)), spacing  # (x, y, z) -> (z, y, x)


def _read_frame(folder: Path, patient: str, frame: int) -> AcdcFrame:
    image_path = folder / f"{patient}_frame{frame:02d}.nii.gz"
    labels_path = folder / f"{patient}_frame{frame:02d}_gt.nii.gz"
    image, spacing = read_nifti(image_path)
    labels, label_spacing = read_nifti(labels_path)
    if image.shape != labels.shape:
        raise ValueError(f"{labels_path}: labels have shape {labels.shape} but the image {image.shape}")
    if not np.allclose(spacing, label_spacing, rtol=1e-4):
        raise ValueError(f"{labels_path}: spacing {label_spacing} differs from the image's {spacing}")
    if np.issubdtype(labels.dtype, np.floating) and (labels != np.round(labels)).any():
        raise ValueError(f"{labels_path}: labels must be integers 0-3")
    values = np.unique(labels)
    if values.min() < 0 or values.max() > 3:
        raise ValueError(f"{labels_path}: labels must lie in {{0, 1, 2, 3}}, found {values.tolist()}")
    if not np.isfinite(image).all():
        raise ValueError(f"{image_path}: the image contains NaN or inf")
    return AcdcFrame(image.astype(np.float32), labels.astype(np.uint8), spacing)


def _patient_folders(root: Path | str, split: str) -> list[Path]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    folder = Path(root) / split
    folders = sorted(folder.glob("patient[0-9][0-9][0-9]")) if folder.is_dir() else []
    if not folders:
        raise FileNotFoundError(
            f"{folder}: no ACDC patients found. Expected the official layout "
            f"{split}/patientXXX/Info.cfg, patientXXX_frameYY.nii.gz, patientXXX_frameYY_gt.nii.gz. {HOW_TO_GET}"
        )
    return folders


def acdc_patient_ids(root: Path | str, split: str = "training") -> list[str]:
    """The sorted ids (``"patient001"``, ...) of one split of an ACDC tree, without reading any file.

    So that an experiment can choose its patients first and read only those with
    :func:`read_acdc`. Raises ``FileNotFoundError`` when the split holds no patient folder.
    """
    return [folder.name for folder in _patient_folders(root, split)]


def read_acdc(root: Path | str, split: str = "training", patients: list[str] | None = None) -> list[AcdcPatient]:
    """Read the ED and ES frames of every patient in one split of an ACDC tree.

    Parameters
    ----------
    root : path
        Folder holding ``training/`` and ``testing/``.
    split : {"training", "testing"}
    patients : list of str, optional
        Only these patient ids (e.g. ``["patient001"]``).

    Returns
    -------
    list of AcdcPatient, sorted by id

    Raises
    ------
    FileNotFoundError
        The split folder, an ``Info.cfg`` or a frame is missing.
    ValueError
        A corrupt file, an ``Info.cfg`` without ED/ES, labels outside {0,1,2,3}, or an
        image and labels of different shapes.

    Examples
    --------
    >>> from bl_tutorial.data import ensure_dataset
    >>> patient = read_acdc(ensure_dataset("acdc"))[0]              # doctest: +SKIP
    >>> patient.frames["ED"].spacing                                 # doctest: +SKIP
    (10.0, 1.5625, 1.5625)
    """
    folders = _patient_folders(root, split)
    folder = Path(root) / split
    if patients is not None:
        wanted = set(patients)
        folders = [f for f in folders if f.name in wanted]
        missing = wanted - {f.name for f in folders}
        if missing:
            raise FileNotFoundError(f"{folder}: patients not found: {sorted(missing)}")
    result = []
    for patient_folder in folders:
        info = read_info(patient_folder / "Info.cfg")
        frames = {phase: _read_frame(patient_folder, patient_folder.name, info[phase]) for phase in ("ED", "ES")}
        result.append(AcdcPatient(patient_folder.name, info, frames))
    return result
