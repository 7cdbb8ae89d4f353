"""Speed of class_distance_maps against the official approach (two scipy EDTs per class).

Run: ``python benchmarks/distance_maps.py``. Both sides get the same inputs in the same
run; the script prints the median time of each and their ratio, and the largest
difference between the official code's maps and ``convention="official"`` (where the
official code is defined, i.e. no class fills the image). Target: ratio >= 3 on every
workload.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
from _timing import median_seconds
from scipy import ndimage

from bl_tutorial.distance import class_distance_maps, official_one_hot2dist


def vessel_masks(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Thin branching, vessel-like binary masks (ridges of smoothed noise), about 10 % foreground."""
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(count):
        field = ndimage.gaussian_filter(rng.standard_normal((size, size)), 6)
        ridges = np.abs(field) < 0.08 * field.std() * 4
        masks.append(ridges)
    return masks


def cardiac_labels(count: int, shape: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    """Four-class label images: LV disc (3), myocardial ring (2), RV crescent (1), background."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        grid = np.indices(shape[-2:]).astype(float)
        cy, cx = np.array(shape[-2:]) / 2 + rng.normal(0, 8, 2)
        r = np.hypot(grid[0] - cy, grid[1] - cx)
        r_rv = np.hypot(grid[0] - cy + 5, grid[1] - cx - 30)
        labels = np.zeros(shape[-2:], np.uint8)
        radius = rng.uniform(14, 22)
        labels[(r_rv < radius * 1.7) & (r > radius + 8)] = 1
        labels[r < radius + 7] = 2
        labels[r < radius] = 3
        images.append(labels)
    return images


def cardiac_volume(depth: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    slices = cardiac_labels(depth, shape, seed)
    for z in range(depth - 2, depth):  # apical slices: no RV
        slices[z][slices[z] == 1] = 0
    return np.stack(slices)


def official(label_images, num_classes, spacing):
    out = []
    for labels in label_images:
        onehot = np.stack([labels == k for k in range(num_classes)]).astype(np.uint8)
        out.append(official_one_hot2dist(onehot, resolution=spacing, dtype=np.float32))
    return out


def ours(label_images, num_classes, spacing, convention):
    return [class_distance_maps(labels, num_classes, spacing, convention) for labels in label_images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    workloads = [
        ("8 binary vessel-like 256x256", [m.astype(np.uint8) for m in vessel_masks(8, 256)], 2, None),
        ("8 four-class cardiac 256x256", cardiac_labels(8, (256, 256)), 4, None),
        ("1 four-class volume 10x224x256", [cardiac_volume(10, (224, 256))], 4, (10.0, 1.5, 1.5)),
    ]
    print(
        f"{'workload':34s} {'official ms':>11s} {'seed ms':>9s} {'ratio':>6s} "
        f"{'official-conv ms':>16s} {'ratio':>6s} {'max |diff|':>10s}"
    )
    worst = np.inf
    for name, images, k, spacing in workloads:
        t_official = median_seconds(partial(official, images, k, spacing), args.repeats)
        t_seed = median_seconds(partial(ours, images, k, spacing, "exact"), args.repeats)
        t_conv = median_seconds(partial(ours, images, k, spacing, "official"), args.repeats)
        diff = max(
            float(np.abs(a - b).max())
            for a, b in zip(official(images, k, spacing), ours(images, k, spacing, "official"))
        )
        worst = min(worst, t_official / t_seed, t_official / t_conv)
        print(
            f"{name:34s} {t_official * 1e3:11.1f} {t_seed * 1e3:9.1f} {t_official / t_seed:5.1f}x "
            f"{t_conv * 1e3:16.1f} {t_official / t_conv:5.1f}x {diff:10.2e}"
        )
    print(f"smallest speed-up: {worst:.1f}x (target >= 3x)")


if __name__ == "__main__":
    main()
