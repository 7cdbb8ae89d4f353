"""Time to generate the stand-ins, read each data set, and build its training items with cached maps.

Run: ``python benchmarks/data_loading.py``. Generation is timed in a fresh temporary cache
(so it measures a first run); reading and dataset construction use that cache.
"""

from __future__ import annotations

import os
import tempfile
import time

from bl_tutorial.data import AcdcDataset, DriveDataset, DrivePatches, ensure_dataset, read_acdc, read_drive


def timed(label: str, func):
    start = time.perf_counter()
    result = func()
    print(f"{label:55s} {time.perf_counter() - start:7.2f} s")
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        os.environ["BL_TUTORIAL_CACHE"] = cache
        drive = timed("generate DRIVE stand-in (20 + 20 images)", lambda: ensure_dataset("drive"))
        acdc = timed("generate ACDC stand-in (100 + 50 patients)", lambda: ensure_dataset("acdc"))
        samples = timed("read DRIVE training (20 TIFF + 40 GIF)", lambda: read_drive(drive))
        patients = timed("read ACDC training (100 patients, ED + ES NIfTI)", lambda: read_acdc(acdc))
        timed("DrivePatches (20 native images, maps of whole images)", lambda: DrivePatches(samples, 64))
        for size in (128, 256):
            timed(
                f"DriveDataset at {size} px (20 images, native maps resampled)",
                lambda size=size: DriveDataset(samples, size),
            )
        timed("AcdcDataset at 64 px, 128 mm square, 3D maps (all slices)", lambda: AcdcDataset(patients, 64, 128))
        timed("AcdcDataset at 256 px, full slice, 3D maps (all slices)", lambda: AcdcDataset(patients, 256))


if __name__ == "__main__":
    main()
