"""Training datasets: DRIVE images and ACDC slices with their distance maps, computed once.

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

from bl_tutorial._validation import check_choice, check_int
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

__all__ = ["DriveDataset", "AcdcDataset", "SliceInfo", "split_items"]


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


class _MapsDataset(Dataset):
    """Shared storage and augmentation: arrays stacked at construction, tensors out."""

    images: np.ndarray  # (N, C, S, S) float32
    labels: np.ndarray  # (N, S, S) uint8
    maps: np.ndarray  # (N, K, S, S) float32
    rois: np.ndarray  # (N, S, S) bool
    spacings: np.ndarray  # (N, 2) float64, in-plane spacing of the maps
    num_classes: int
    augment: str

    def __len__(self) -> int:
        return len(self.images)

    def _isometry(self) -> Isometry:
        if self.augment == "none":
            return Isometry()
        return random_isometry(rotations=self.augment == "isometry")

    def __getitem__(self, index: int) -> dict:
        iso = self._isometry()
        labels = apply_isometry(self.labels[index], iso)
        target = np.eye(self.num_classes, dtype=np.float32)[labels].transpose(2, 0, 1)
        return {
            "image": torch.from_numpy(apply_isometry(self.images[index], iso)),
            "target": torch.from_numpy(np.ascontiguousarray(target)),
            "dist_maps": torch.from_numpy(apply_isometry(self.maps[index], iso)),
            "roi": torch.from_numpy(apply_isometry(self.rois[index], iso)),
            "spacing": torch.tensor(isometry_spacing(tuple(self.spacings[index]), iso), dtype=torch.float32),
            "index": index,
        }


class DriveDataset(_MapsDataset):
    """DRIVE images resized to ``size`` x ``size`` with vessel targets and cached maps.

    Distances are in pixels of the training resolution (DRIVE has no physical spacing
    in its files), as in the official code.

    Parameters
    ----------
    samples : list of DriveSample
        From :func:`~bl_tutorial.data.read_drive`; each must have ``vessels``.
    size : int
        Training resolution (the report: 256).
    augment : {"none", "flip", "isometry"}
        ``"flip"``: random horizontal and vertical flips (the report used horizontal
        flips); ``"isometry"``: flips and 90-degree rotations.
    convention : {"exact", "official"}
        Distance-map convention (computed at the training resolution, unit spacing).
    green_only : bool
        Use the green channel only (1 input channel) instead of RGB (3).
    """

    num_classes = 2

    def __init__(
        self,
        samples: Sequence[DriveSample],
        size: int = 256,
        augment: Augment = "none",
        convention: str = "exact",
        green_only: bool = False,
    ):
        self.augment = check_choice(augment, "augment", AUGMENTS)
        if not samples:
            raise ValueError("samples must hold at least one DRIVE image")
        self.size = check_int(size, "size", minimum=1)
        self.ids = [s.id for s in samples]
        images, labels, maps, rois = [], [], [], []
        for sample in samples:
            if sample.vessels is None:
                raise ValueError(f"DRIVE image {sample.id} has no vessel annotation; it cannot be used for training")
            pixels = sample.image[..., 1:2] if green_only else sample.image
            image = normalize_intensity(pixels, mask=sample.fov, channel_axis=-1).transpose(2, 0, 1)
            images.append(resize_image(image, (size, size)))
            vessels = resize_labels(sample.vessels, (size, size)).astype(np.uint8)
            labels.append(vessels)
            rois.append(resize_labels(sample.fov, (size, size)))
            maps.append(class_distance_maps(vessels, 2, convention=convention))
        self.images, self.labels = np.stack(images), np.stack(labels)
        self.maps, self.rois = np.stack(maps), np.stack(rois)
        self.spacings = np.ones((len(samples), 2))


@dataclass(frozen=True)
class SliceInfo:
    """Where an ACDC slice comes from, and its spacing (mm, z y x) after resizing."""

    patient: str
    phase: str
    z: int
    spacing: tuple[float, float, float]


def _central_crop(volume: np.ndarray, rows: int, cols: int, fill) -> np.ndarray:
    """Crop (or pad with ``fill``) the last two axes around their centre to rows x cols."""
    out = np.full((*volume.shape[:-2], rows, cols), fill, dtype=volume.dtype)
    src_r0 = max(0, (volume.shape[-2] - rows) // 2)
    src_c0 = max(0, (volume.shape[-1] - cols) // 2)
    dst_r0 = max(0, (rows - volume.shape[-2]) // 2)
    dst_c0 = max(0, (cols - volume.shape[-1]) // 2)
    h = min(rows, volume.shape[-2])
    w = min(cols, volume.shape[-1])
    out[..., dst_r0 : dst_r0 + h, dst_c0 : dst_c0 + w] = volume[..., src_r0 : src_r0 + h, src_c0 : src_c0 + w]
    return out


class AcdcDataset(_MapsDataset):
    """ACDC 2D short-axis slices resized to ``size`` x ``size``, with one-vs-all maps of 4 classes.

    Each (patient, phase) volume is optionally cropped around its centre to ``crop_mm``
    millimetres, resized in-plane (image bilinear, labels nearest), normalised, and its
    distance maps are computed *once*: in 3D on the whole resized volume with its new
    spacing (``maps="3d"``, default), or slice by slice with the in-plane spacing
    (``maps="2d"``), in millimetres. Then the volume is cut into slices.

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
                frame = patient.frames[phase]
                image, label = frame.image, frame.labels
                dz, dy, dx = frame.spacing
                if crop_mm is not None:
                    rows, cols = int(round(crop_mm / dy)), int(round(crop_mm / dx))
                    image = _central_crop(image, rows, cols, fill=float(image.min()))
                    label = _central_crop(label, rows, cols, fill=0)
                spacing = (dz, dy * image.shape[-2] / size, dx * image.shape[-1] / size)
                image = normalize_intensity(resize_image(image, (size, size)))
                label = resize_labels(label, (size, size)).astype(np.uint8)
                if maps == "3d":
                    volume_maps = class_distance_maps(label, 4, spacing, convention).transpose(1, 0, 2, 3)
                else:
                    volume_maps = np.stack([class_distance_maps(s, 4, spacing[1:], convention) for s in label])
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
