"""Training datasets: DRIVE images or patches and ACDC slices with their distance maps, computed once.

Distance maps are computed once, on the largest grid available (a whole DRIVE image at
its native size, a whole ACDC volume), before any crop or patch is cut, so that a crop
never changes a distance. Their unit does not depend on the size the network sees, so
that the weight alpha of the boundary term means the same in every profile:

* DRIVE: pixels of the report's 256 x 256 images (:data:`DRIVE_MAP_GRID`), whatever the
  training size or patch: a map computed on a grid of R x C pixels uses the spacing
  (256 / R, 256 / C) (:func:`drive_map_spacing`). By default the map is computed on the
  native annotation and resampled to the training grid, so that vessels too thin to
  survive a shrinking still have their true distances (``maps="native"``);
  ``maps="resized"`` computes it on the shrunken annotation instead, as the report did.
* ACDC: millimetres, from the NIfTI headers.

Each item is a dict of tensors:

``image``      float32 (C, S, S), normalised per image (DRIVE, inside the field of view)
               or per volume (ACDC)
``target``     float32 one-hot (K, S, S)
``dist_maps``  float32 (K, S, S), :func:`~bl_tutorial.distance.class_distance_maps` of the
               labels at the training resolution, cached at construction
``roi``        bool (S, S): the DRIVE field of view; all True for ACDC
``spacing``    float32 (2,): the in-plane spacing (rows, cols) of the maps' grid, in the
               unit of the maps (after the item's augmentation)
``index``      int, the item's position (to find its patient, phase, slice)

Random flips and 90-degree rotations (``augment``) are applied identically to image,
target, maps and roi; they are exact for the cached maps (see
:mod:`bl_tutorial.data.transforms`). Random draws use torch's generator, which
:func:`bl_tutorial.device.seed_everything` and seeded DataLoaders control.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from bl_tutorial._validation import as_label_image, as_spacing, check_choice, check_int
from bl_tutorial.data.acdc import AcdcPatient
from bl_tutorial.data.drive import DriveSample
from bl_tutorial.data.transforms import (
    Isometry,
    apply_isometry,
    isometry_spacing,
    normalize_intensity,
    random_isometry,
    resize_image,
    resize_labels,
)
from bl_tutorial.distance import class_distance_maps

Augment = Literal["none", "flip", "isometry"]
AUGMENTS = ("none", "flip", "isometry")

__all__ = [
    "LabelledImages",
    "split_three",
    "DriveDataset",
    "DrivePatches",
    "AcdcDataset",
    "SliceInfo",
    "split_items",
    "drive_map_spacing",
    "DRIVE_MAP_GRID",
]

DRIVE_MAP_GRID = 256
"""DRIVE distance maps are measured in pixels of a 256 x 256 resize of the image (the report's training size)."""


def drive_map_spacing(shape: tuple[int, int]) -> tuple[float, float]:
    """The spacing (rows, cols) of a DRIVE grid of ``shape`` in the maps' unit (:data:`DRIVE_MAP_GRID`).

    >>> drive_map_spacing((256, 256)), drive_map_spacing((128, 128))
    ((1.0, 1.0), (2.0, 2.0))
    """
    return (DRIVE_MAP_GRID / shape[0], DRIVE_MAP_GRID / shape[1])


def split_items(ids: Sequence[str], n_val: int, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle ``ids`` with ``seed`` and split off ``n_val`` for validation: (train, val), each sorted.

    The split depends only on the set of ids and the seed, not on their order.

    >>> split_items(["a", "b", "c", "d"], 1, seed=0)
    (['a', 'b', 'd'], ['c'])
    """
    ids = sorted(ids)
    if not 0 < n_val < len(ids):
        raise ValueError(f"n_val must be between 1 and {len(ids) - 1} for {len(ids)} items, got {n_val}")
    order = np.random.default_rng(seed).permutation(len(ids))
    val = sorted(ids[i] for i in order[:n_val])
    train = sorted(ids[i] for i in order[n_val:])
    return train, val


def split_three(ids: Sequence[str], n_select: int, n_report: int, seed: int) -> tuple[list, list, list]:
    """Shuffle ``ids`` with ``seed`` into (train, select, report), each sorted.

    ``select`` chooses the epoch, ``report`` is scored; the three are disjoint, so the
    reported score is not flattered by the choice of epoch.

    >>> split_three([f"{i:02d}" for i in range(10)], 2, 3, seed=0)
    (['00', '01', '05', '08', '09'], ['02', '07'], ['03', '04', '06'])
    """
    held_out = check_int(n_select, "n_select", minimum=1) + check_int(n_report, "n_report", minimum=1)
    train, rest = split_items(ids, held_out, seed)
    order = np.random.default_rng(seed + 1).permutation(len(rest))
    return train, sorted(rest[i] for i in order[:n_select]), sorted(rest[i] for i in order[n_select:])


class _MapsDataset(Dataset):
    """Shared storage and augmentation: arrays stacked at construction, tensors out (2D or 3D items)."""

    images: np.ndarray  # (N, C, *spatial) float32
    labels: np.ndarray  # (N, *spatial) uint8
    maps: np.ndarray  # (N, K, *spatial) float32
    rois: np.ndarray  # (N, *spatial) bool
    spacings: np.ndarray  # (N, len(spatial)) float64, spacing of the maps' grid
    num_classes: int
    augment: str

    def __len__(self) -> int:
        return len(self.images)

    def _isometry(self) -> Isometry:
        if self.augment == "none":
            return Isometry()
        return random_isometry(rotations=self.augment == "isometry")

    def __getitem__(self, index: int) -> dict:
        return self.item(index)

    def item(self, index: int, window: tuple[slice, ...] | None = None) -> dict:
        """Item ``index``, cut to ``window`` (one slice per spatial axis; None: whole) and augmented
        (the same draw for every array; flips and rotations act on the last two axes)."""
        iso = self._isometry()
        window = tuple(window) if window is not None else (slice(None),) * (self.labels.ndim - 1)
        labels = apply_isometry(self.labels[(index, *window)], iso)
        target = np.moveaxis(np.eye(self.num_classes, dtype=np.float32)[labels], -1, 0)
        return {
            "image": torch.from_numpy(apply_isometry(self.images[(index, slice(None), *window)], iso)),
            "target": torch.from_numpy(np.ascontiguousarray(target)),
            "dist_maps": torch.from_numpy(apply_isometry(self.maps[(index, slice(None), *window)], iso)),
            "roi": torch.from_numpy(apply_isometry(self.rois[(index, *window)], iso)),
            "spacing": torch.tensor(isometry_spacing(tuple(self.spacings[index]), iso), dtype=torch.float32),
            "index": index,
        }


class LabelledImages(_MapsDataset):
    """Images (2D) or volumes (3D) and their labels held in memory, with their maps computed once (any task).

    Parameters
    ----------
    images : ndarray, shape (N, C, H, W) or (N, C, D, H, W)
    labels : ndarray of int, shape (N, H, W) or (N, D, H, W)
    num_classes : int
    spacing : float or sequence of float
        Voxel size per spatial axis ((rows, cols) or (z, rows, cols)) in the maps' unit.
    augment, convention
        As in :class:`DriveDataset`; flips and rotations act on the last two axes.

    Examples
    --------
    >>> volumes = LabelledImages(np.zeros((2, 1, 4, 8, 8)), np.ones((2, 4, 8, 8), int), 2, spacing=(3.0, 1.0, 1.0))
    >>> volumes[0]["dist_maps"].shape, volumes[0]["spacing"].tolist()
    (torch.Size([2, 4, 8, 8]), [3.0, 1.0, 1.0])
    """

    def __init__(
        self, images, labels, num_classes: int, spacing=(1.0, 1.0), augment: Augment = "none", convention="exact"
    ):
        self.augment = check_choice(augment, "augment", AUGMENTS)
        self.images = np.ascontiguousarray(images, dtype=np.float32)
        if self.images.ndim not in (4, 5) or len(self.images) == 0:
            raise ValueError(
                f"images must have shape (N, C, H, W) or (N, C, D, H, W) with N >= 1, got {self.images.shape}"
            )
        labels = np.asarray(labels)
        spatial = self.images.shape[2:]
        if labels.shape != (len(self.images), *spatial):
            raise ValueError(f"labels must have shape {(len(self.images), *spatial)}, got {labels.shape}")
        self.num_classes = num_classes
        spacing = as_spacing(spacing, len(spatial))
        self.labels = np.stack([as_label_image(lab, num_classes, "labels") for lab in labels])
        self.maps = np.stack([class_distance_maps(lab, num_classes, spacing, convention) for lab in self.labels])
        self.rois = np.ones(self.labels.shape, bool)
        self.spacings = np.tile(np.asarray(spacing), (len(self.images), 1))


class DriveDataset(_MapsDataset):
    """DRIVE images, resized to ``size`` x ``size`` or at native size, with vessel targets and cached maps.

    The maps are in pixels of the report's 256 x 256 images whatever ``size`` is (see the
    module docstring). With ``maps="resized"`` and ``size=256`` they are the report's
    maps; the default ``maps="native"`` measures the same unit on the native annotation.

    Parameters
    ----------
    samples : list of DriveSample
        From :func:`~bl_tutorial.data.read_drive`; each must have ``vessels``.
    size : int or None
        Side of the square images the network sees (the report: 256); None keeps the
        native size (584 x 565; all samples must share it).
    augment : {"none", "flip", "isometry"}
        ``"flip"``: random horizontal and vertical flips (the report used horizontal
        flips); ``"isometry"``: flips and 90-degree rotations.
    convention : {"exact", "official"}
        Distance-map convention.
    green_only : bool
        Use the green channel only (1 input channel) instead of RGB (3).
    maps : {"native", "resized"}
        ``"native"``: maps of the native annotation, resampled (bilinearly) to the
        training grid; ``"resized"``: maps of the annotation after resizing (the report).
        The same at native size.
    """

    num_classes = 2

    def __init__(
        self,
        samples: Sequence[DriveSample],
        size: int | None = 256,
        augment: Augment = "none",
        convention: str = "exact",
        green_only: bool = False,
        maps: Literal["native", "resized"] = "native",
    ):
        self.augment = check_choice(augment, "augment", AUGMENTS)
        check_choice(maps, "maps", ("native", "resized"))
        if not samples:
            raise ValueError("samples must hold at least one DRIVE image")
        self.size = None if size is None else check_int(size, "size", minimum=1)
        self.ids = [s.id for s in samples]
        shapes = {s.image.shape[:2] for s in samples}
        if size is None and len(shapes) > 1:
            raise ValueError(f"samples must share one size to be kept at native size, got sizes {sorted(shapes)}")
        images, labels, all_maps, rois = [], [], [], []
        for sample in samples:
            if sample.vessels is None:
                raise ValueError(f"DRIVE image {sample.id} has no vessel annotation; it cannot be used for training")
            shape = sample.image.shape[:2] if size is None else (size, size)
            pixels = sample.image[..., 1:2] if green_only else sample.image
            image = normalize_intensity(pixels, mask=sample.fov, channel_axis=-1).transpose(2, 0, 1)
            images.append(resize_image(image, shape))
            vessels = resize_labels(sample.vessels, shape).astype(np.uint8)
            labels.append(vessels)
            rois.append(resize_labels(sample.fov, shape))
            if maps == "native":
                native = sample.vessels.astype(np.uint8)
                all_maps.append(
                    resize_image(class_distance_maps(native, 2, drive_map_spacing(native.shape), convention), shape)
                )
            else:
                all_maps.append(class_distance_maps(vessels, 2, drive_map_spacing(shape), convention))
        self.images, self.labels = np.stack(images), np.stack(labels)
        self.maps, self.rois = np.stack(all_maps), np.stack(rois)
        self.spacings = np.array([drive_map_spacing(image.shape[-2:]) for image in images])


class DrivePatches(Dataset):
    """Random square patches of DRIVE images at native resolution, the usual way to train on DRIVE.

    The maps are computed once on each whole image (:class:`DriveDataset` with
    ``size=None``) and the patches cut from them, so a patch's map holds the true
    distances to vessels outside the patch. Each item draws a new patch whose centre lies
    in the field of view, from torch's generator (seeded by the training loop).

    Parameters
    ----------
    samples : list of DriveSample
    patch_size : int
        Side of the square patches (px).
    patches_per_image : int
        Items per image in one epoch.
    augment, convention, green_only
        As in :class:`DriveDataset`.
    """

    num_classes = 2

    def __init__(
        self,
        samples: Sequence[DriveSample],
        patch_size: int = 64,
        patches_per_image: int = 16,
        augment: Augment = "isometry",
        convention: str = "exact",
        green_only: bool = False,
    ):
        self.whole = DriveDataset(samples, None, augment, convention, green_only)  # maps of whole native images
        rows, cols = self.whole.labels.shape[-2:]
        self.patch_size = check_int(patch_size, "patch_size", minimum=1)
        if self.patch_size > min(rows, cols):
            raise ValueError(f"patch_size must fit in the {rows} x {cols} images, got {patch_size}")
        self.patches_per_image = check_int(patches_per_image, "patches_per_image", minimum=1)
        self.centres = [torch.from_numpy(np.argwhere(roi)) for roi in self.whole.rois]  # (n, 2) each

    def __len__(self) -> int:
        return len(self.whole) * self.patches_per_image

    def __getitem__(self, index: int) -> dict:
        image_index = index // self.patches_per_image
        centres = self.centres[image_index]
        centre = centres[int(torch.randint(len(centres), (1,)))]
        limits = torch.tensor(self.whole.labels.shape[-2:]) - self.patch_size
        top, left = (centre - self.patch_size // 2).clamp(min=0).minimum(limits).tolist()
        window = (slice(top, top + self.patch_size), slice(left, left + self.patch_size))
        item = self.whole.item(image_index, window)
        item["index"] = index
        return item


@dataclass(frozen=True)
class SliceInfo:
    """Where an ACDC slice comes from, and its spacing (mm, z y x) after resizing."""

    patient: str
    phase: str
    z: int
    spacing: tuple[float, float, float]


def _prepare_volume(frame, size: int, crop_mm: float | None, maps: str, convention: str):
    """Resize a volume so that ``crop_mm`` spans ``size`` px, compute its maps, then crop the centre."""
    dz, dy, dx = frame.spacing
    rows, cols = frame.image.shape[-2:]
    if crop_mm is None:
        shape = (size, size)
    else:
        shape = (max(size, round(rows * dy * size / crop_mm)), max(size, round(cols * dx * size / crop_mm)))
    spacing = (dz, dy * rows / shape[0], dx * cols / shape[1])
    image = normalize_intensity(resize_image(frame.image, shape))
    label = resize_labels(frame.labels, shape).astype(np.uint8)
    if maps == "3d":
        volume_maps = class_distance_maps(label, 4, spacing, convention).transpose(1, 0, 2, 3)
    else:
        volume_maps = np.stack([class_distance_maps(s, 4, spacing[1:], convention) for s in label])
    crop = (
        slice((shape[0] - size) // 2, (shape[0] - size) // 2 + size),
        slice((shape[1] - size) // 2, (shape[1] - size) // 2 + size),
    )
    return image[:, crop[0], crop[1]], label[:, crop[0], crop[1]], volume_maps[..., crop[0], crop[1]], spacing


class AcdcDataset(_MapsDataset):
    """ACDC 2D short-axis slices resized to ``size`` x ``size``, with one-vs-all maps of 4 classes.

    Each (patient, phase) volume is resized in-plane (image bilinear, labels nearest) so
    that ``crop_mm`` millimetres span ``size`` pixels (or the whole slice does, without
    ``crop_mm``; an axis shorter than ``crop_mm`` spans ``size`` pixels with its own,
    larger spacing), normalised, and its distance maps are computed *once*, on the whole
    resized volume: in 3D with its spacing (``maps="3d"``, default), or slice by slice
    with the in-plane spacing (``maps="2d"``), in millimetres. Only then is the
    ``size`` x ``size`` square at the centre of the image cut out and the volume cut into
    slices, so that the crop changes no distance. The spacing of each slice is kept.

    Parameters
    ----------
    patients : list of AcdcPatient
    size : int
        In-plane training resolution (the report: 256).
    crop_mm : float, optional
        Side of a central square crop in millimetres before resizing (e.g. 160 for a
        field of view around the heart); None keeps the whole slice.
    phases : sequence of {"ED", "ES"}
    augment : {"none", "flip", "isometry"}
    convention : {"exact", "official"}
    maps : {"3d", "2d"}
    """

    num_classes = 4

    def __init__(
        self,
        patients: Sequence[AcdcPatient],
        size: int = 256,
        crop_mm: float | None = None,
        phases: Sequence[str] = ("ED", "ES"),
        augment: Augment = "none",
        convention: str = "exact",
        maps: Literal["3d", "2d"] = "3d",
    ):
        self.augment = check_choice(augment, "augment", AUGMENTS)
        check_choice(maps, "maps", ("3d", "2d"))
        if not patients:
            raise ValueError("patients must hold at least one ACDC patient")
        if crop_mm is not None and not crop_mm > 0:
            raise ValueError(f"crop_mm must be positive or None, got {crop_mm!r}")
        if not phases or any(phase not in ("ED", "ES") for phase in phases):
            raise ValueError(f"phases must be a non-empty selection of 'ED' and 'ES', got {list(phases)}")
        self.size = check_int(size, "size", minimum=1)
        self.slices: list[SliceInfo] = []
        self.volumes: dict[tuple[str, str], list[int]] = {}
        images, labels, all_maps = [], [], []
        for patient in patients:
            for phase in phases:
                image, label, volume_maps, spacing = _prepare_volume(
                    patient.frames[phase], self.size, crop_mm, maps, convention
                )
                key = (patient.id, phase)
                self.volumes[key] = []
                for z in range(label.shape[0]):
                    self.volumes[key].append(len(self.slices))
                    self.slices.append(SliceInfo(patient.id, phase, z, spacing))
                    images.append(image[z][None])
                    labels.append(label[z])
                    all_maps.append(volume_maps[z])
        self.images, self.labels, self.maps = np.stack(images), np.stack(labels), np.stack(all_maps)
        self.rois = np.ones(self.labels.shape, bool)
        self.spacings = np.array([s.spacing[1:] for s in self.slices])
