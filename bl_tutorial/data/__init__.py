"""Data: readers of the official DRIVE and ACDC layouts, offline stand-ins, datasets.

- :func:`ensure_dataset` - a tree in the official layout (real when available, else a stand-in)
- :func:`read_drive`, :func:`read_acdc` - the readers
- :class:`DriveDataset`, :class:`DrivePatches`, :class:`AcdcDataset`, :class:`LabelledImages` -
  training items with distance maps computed once
- :func:`lesion_images` - synthetic lesions of a chosen size (the imbalance chapter)
- :func:`real_fundus` - a real CC0 fundus photograph with a *pseudo*-label, for figures
- :mod:`~bl_tutorial.data.download` - getting the real sets
"""

from bl_tutorial.data.acdc import CLASS_NAMES, AcdcFrame, AcdcPatient, acdc_patient_ids, read_acdc
from bl_tutorial.data.datasets import (
    AcdcDataset,
    DriveDataset,
    DrivePatches,
    LabelledImages,
    SliceInfo,
    split_items,
    split_three,
)
from bl_tutorial.data.drive import DriveSample, read_drive
from bl_tutorial.data.fundus import FundusExample, real_fundus
from bl_tutorial.data.lesions import lesion_images
from bl_tutorial.data.sources import DatasetSource, cache_dir, ensure_dataset

__all__ = [
    "ensure_dataset",
    "DatasetSource",
    "cache_dir",
    "read_drive",
    "read_acdc",
    "acdc_patient_ids",
    "DriveSample",
    "AcdcPatient",
    "AcdcFrame",
    "CLASS_NAMES",
    "DriveDataset",
    "DrivePatches",
    "AcdcDataset",
    "LabelledImages",
    "SliceInfo",
    "split_items",
    "split_three",
    "lesion_images",
    "real_fundus",
    "FundusExample",
]
