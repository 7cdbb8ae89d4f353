"""Time to generate the stand-ins, read each data set, and build its training items with cached maps.

Run: ``python benchmarks/data_loading.py``. Generation is timed in a fresh temporary cache
(so it measures a first run); reading and dataset construction use that cache.
"""

from __future__ import annotations

import os
import tempfile
import time

from bl_tutorial.data import AcdcDataset, DriveDataset, ensure_dataset, read_acdc, read_drive


def timed(label: str, func):
    start = time.perf_counter()
    result = func()
    print(f"{label:55s} {time.perf_counter() - start:7.2f} s")
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        os.environ["BL_TUTORIAL_CACHE"] = cache
        drive = timed("generate DRIVE stand-in (20 + 20 images)", lambda: ensure_dataset("drive"))
        acdc = timed("generate ACDC stand-in (30 + 10 patients)", lambda: ensure_dataset("acdc"))
        samples = timed("read DRIVE training (20 TIFF + 40 GIF)", lambda: read_drive(drive))
        patients = timed("read ACDC training (30 patients, ED + ES NIfTI)", lambda: read_acdc(acdc))
        for size in (128, 256):
            timed(f"DriveDataset at {size} px (20 images, maps cached)", lambda size=size: DriveDataset(samples, size))
        timed("AcdcDataset at 96 px, 160 mm crop, 3D maps (all slices)", lambda: AcdcDataset(patients, 96, 160))
        timed("AcdcDataset at 256 px, full slice, 3D maps (all slices)", lambda: AcdcDataset(patients, 256))


if __name__ == "__main__":
    main()
