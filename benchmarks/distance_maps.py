"""Speed of class_distance_maps against the official approach and against the speed limit.

Run: ``python benchmarks/distance_maps.py`` (a few minutes), or ``--quick`` for a smoke run
on small sizes (seconds). For every workload, in one run, the script times (median of
``--repeats`` calls, taking turns so that a drifting machine load hits all alike):

- ``official``: the official approach, a one-hot and two scipy EDTs per class
  (``official_one_hot2dist``, float output);
- ``floor``: the speed limit, one whole-image pass of the ``edt`` library per class with a
  contour: the transform of an image whose only zeros are that class's boundary set, so
  that every voxel gets a distance (made before the clock starts, in whichever of edt's
  input types is faster for it), with the project's anisotropy and threads. A signed map
  needs a distance at every voxel, so no exact method does less. (A pass over the class's
  mask alone is cheaper, but it measures distances inside the class only and cannot make
  a map: it is no floor.)
- ``exact`` and ``official-conv``: ``class_distance_maps`` with each convention.

It prints each median, the speed-up over the official approach (target: >= 3x), the ratio
to the floor (target: <= 1.25x), the share of the project's time spent outside edt calls
(boundary sets, masks, signs, copies) and the floor's own speed-up over the official
approach ("ceiling"): the speed-up of a method that does the floor's work (one
whole-image pass per class, as the exact convention does here) at a floor ratio of 1.
Where the ceiling is near 3x, that method meets the 3x target only in runs where it
is at or below the floor. The large volume is timed with fewer repeats (the official
approach only once, in a fresh process), and its peak memory is measured in fresh
processes: the highest resident memory during one call minus the resident memory just
before it (input loaded), compared with the size of the output.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from _timing import interleaved_medians, median_seconds
from scipy import ndimage

from bl_tutorial import distance
from bl_tutorial.distance import class_distance_maps, official_one_hot2dist

TARGET_OFFICIAL = 3.0  # at least this many times faster than the official approach
TARGET_FLOOR = 1.25  # at most this many times the floor


# ----------------------------------------------------------------------------- textures
def ridge_masks(count: int, shape: tuple[int, ...], sigma: float, width: float, seed: int) -> list[np.ndarray]:
    """Vessel-like ridges: the voxels where smoothed noise is near zero (``|field| < width * std``).

    A large ``sigma`` gives smooth, long ridges; a small one fine, fragmented ridges.
    """
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(count):
        field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
        masks.append(np.abs(field) < width * field.std())
    return masks


def blob_masks(count: int, shape: tuple[int, ...], sigma: float, seed: int) -> list[np.ndarray]:
    """Large blobs covering about half of the image: smoothed noise above zero."""
    rng = np.random.default_rng(seed)
    return [ndimage.gaussian_filter(rng.standard_normal(shape), sigma) > 0 for _ in range(count)]


def cardiac_labels(count: int, shape: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    """Four-class nested rings: LV disc (3), myocardial ring (2), RV crescent (1), background."""
    rng = np.random.default_rng(seed)
    images = []
    scale = min(shape[-2:]) / 256
    for _ in range(count):
        grid = np.indices(shape[-2:]).astype(float)
        cy, cx = np.array(shape[-2:]) / 2 + rng.normal(0, 8 * scale, 2)
        r = np.hypot(grid[0] - cy, grid[1] - cx)
        r_rv = np.hypot(grid[0] - cy + 5 * scale, grid[1] - cx - 30 * scale)
        labels = np.zeros(shape[-2:], np.uint8)
        radius = rng.uniform(14, 22) * scale
        labels[(r_rv < radius * 1.7) & (r > radius + 8 * scale)] = 1
        labels[r < radius + 7 * scale] = 2
        labels[r < radius] = 3
        images.append(labels)
    return images


def cardiac_volume(depth: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    slices = cardiac_labels(depth, shape, seed)
    for z in range(depth - 2, depth):  # apical slices: no RV
        slices[z][slices[z] == 1] = 0
    return np.stack(slices)


def nested_blobs_volume(shape: tuple[int, int, int], num_classes: int, seed: int = 0) -> np.ndarray:
    """Nested blobs: the level sets of smooth 3D noise cut into ``num_classes`` bands (about 55/20/15/10 %)."""
    rng = np.random.default_rng(seed)
    coarse = ndimage.gaussian_filter(rng.standard_normal([max(2, n // 4) for n in shape]).astype(np.float32), 2)
    field = ndimage.zoom(coarse, [n / c for n, c in zip(shape, coarse.shape)], order=1)
    levels = np.quantile(field, np.cumsum([0.55, 0.20, 0.15, 0.10])[: num_classes - 1])
    return np.digitize(field, levels).astype(np.uint8)


@dataclass
class Workload:
    name: str
    images: list[np.ndarray]
    num_classes: int
    spacing: tuple[float, ...] | None = None
    large: bool = False

    @property
    def shape(self) -> str:
        return f"{len(self.images)} x {'x'.join(map(str, self.images[0].shape))}"


def workloads(quick: bool) -> list[Workload]:
    """Textures x label dtypes x 2D / anisotropic 3D, and one large volume."""
    n2d, side, drive, vol, vessels3d, large = (
        (2, 64, (96, 90), (4, 56, 64), (8, 48, 48), (16, 64, 64))
        if quick
        else (8, 256, (584, 565), (10, 224, 256), (32, 192, 192), (128, 512, 512))
    )
    return [
        Workload("smooth ridges", [m.astype(np.uint8) for m in ridge_masks(n2d, (side, side), 6, 0.32, 0)], 2),
        Workload("fine ridges", [m.astype(np.int64) for m in ridge_masks(n2d // 2, drive, 1.5, 0.2, 1)], 2),
        Workload("large blobs", blob_masks(n2d, (side, side), side / 16, 2), 2),
        Workload("nested rings", cardiac_labels(n2d, (side, side)), 4),
        Workload("nested rings 3D", [cardiac_volume(vol[0], vol[1:])], 4, (10.0, 1.5, 1.5)),
        Workload(
            "fine ridges 3D",
            [m.astype(np.int64) for m in ridge_masks(1, vessels3d, 1.5, 0.2, 3)],
            2,
            (2.5, 0.8, 0.8),
        ),
        Workload("nested blobs 3D", [nested_blobs_volume(large, 4)], 4, (2.0, 0.7, 0.7), large=True),
    ]


# ----------------------------------------------------------------------------- contenders
def official(label_images, num_classes, spacing):
    out = []
    for labels in label_images:
        onehot = np.stack([labels == k for k in range(num_classes)]).astype(np.uint8)
        out.append(official_one_hot2dist(onehot, resolution=spacing, dtype=np.float32))
    return out


def ours(label_images, num_classes, spacing, convention):
    return [class_distance_maps(labels, num_classes, spacing, convention) for labels in label_images]


OURS = ("exact", "official-conv")  # class_distance_maps with convention="exact" / "official"


def contender(name, label_images, num_classes, spacing):
    """The call timed as ``name``: "official" (the official approach), "exact" or "official-conv" (ours)."""
    if name == "official":
        return partial(official, label_images, num_classes, spacing)
    return partial(ours, label_images, num_classes, spacing, "exact" if name == "exact" else "official")


def floor_inputs(label_images, num_classes, spacing) -> list[np.ndarray]:
    """One whole-image input per image and per class with a contour (present, not filling the image):
    every voxel non-zero except the class's boundary set (computed here, before the clock starts).

    Each in the faster of edt's two input types for it: uint8 (one envelope per run of non-zero
    voxels) or, in 2D, bool (one per line), whichever is faster here; in 3D bool is several
    times slower.
    """
    masks = []
    for labels in label_images:
        for k in range(num_classes):
            inside = labels == k
            if not 0 < np.count_nonzero(inside) < inside.size:
                continue
            mask = np.ascontiguousarray(~distance.boundary_set(inside))
            if mask.ndim == 2:
                masks.append(min(mask, mask.view(np.uint8), key=lambda m: median_seconds(partial(floor, [m], spacing))))
            else:
                masks.append(mask.view(np.uint8))
    return masks


def floor(masks, spacing):
    """One edt pass per mask, with the project's anisotropy and threads."""
    anisotropy = spacing or (1.0,) * masks[0].ndim
    threads = distance._threads()
    return [distance._edt_module.edt(m, anisotropy=anisotropy, black_border=False, parallel=threads) for m in masks]


def outside_edt_share(func, repeats: int) -> float:
    """Median share of ``func``'s wall time spent outside calls of ``edt.edt`` (which is wrapped with a timer)."""
    real = distance._edt_module
    inside = 0.0

    class TimedEdt:
        @staticmethod
        def edt(*args, **kwargs):
            nonlocal inside
            start = time.perf_counter()
            result = real.edt(*args, **kwargs)
            inside += time.perf_counter() - start
            return result

    shares = []
    distance._edt_module = TimedEdt
    try:
        for _ in range(repeats):
            inside = 0.0
            start = time.perf_counter()
            func()
            shares.append(1 - inside / (time.perf_counter() - start))
    finally:
        distance._edt_module = real
    return statistics.median(shares)


# ----------------------------------------------------------------------------- peak memory
def _resident_bytes(field: str) -> int | None:
    """``VmRSS`` (now) or ``VmHWM`` (highest so far) of this process, from /proc (Linux only)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _one_call_in_this_process(name, path, num_classes, spacing):
    """Run in a fresh process: one call on the saved labels -> (seconds, peak bytes beyond the input)."""
    func = contender(name, [np.load(path)], num_classes, spacing)
    before = _resident_bytes("VmRSS")
    start = time.perf_counter()
    func()
    seconds = time.perf_counter() - start
    peak = _resident_bytes("VmHWM")
    return seconds, (None if before is None or peak is None else peak - before)


def one_call_in_fresh_process(name, labels, num_classes, spacing):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.npy"
        np.save(path, labels)
        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            return pool.apply(_one_call_in_this_process, (name, str(path), num_classes, spacing))


# ----------------------------------------------------------------------------- running
def measure(work: Workload, repeats: int) -> dict:
    images, k, spacing = work.images, work.num_classes, work.spacing
    masks = floor_inputs(images, k, spacing)
    funcs = {"floor": partial(floor, masks, spacing)}
    funcs.update({name: contender(name, images, k, spacing) for name in OURS})
    row: dict = {"peak": {}}
    if work.large:  # seconds per call: fewer repeats, and the official approach once, in a fresh process
        row.update(interleaved_medians(funcs, repeats=min(repeats, 3), warmup=0))
        row["official"], row["peak"]["official"] = one_call_in_fresh_process("official", images[0], k, spacing)
        for name in OURS:
            row["peak"][name] = one_call_in_fresh_process(name, images[0], k, spacing)[1]
        row["diff"] = None
        share_repeats = 1
    else:
        funcs["official"] = contender("official", images, k, spacing)
        row.update(interleaved_medians(funcs, repeats=repeats, warmup=1))
        theirs, mine = official(images, k, spacing), ours(images, k, spacing, "official")
        row["diff"] = max(float(np.abs(a - b).max()) for a, b in zip(theirs, mine))
        share_repeats = 3
    for name in OURS:
        row["share " + name] = outside_edt_share(funcs[name], share_repeats)
    return row


def print_row(work: Workload, row: dict) -> None:
    ms = {name: row[name] * 1e3 for name in ("official", "floor", "exact", "official-conv")}
    print(
        f"{work.name:16s} {str(work.images[0].dtype):5s} {work.num_classes:2d} {work.shape:>17s} "
        f"{ms['official']:10.1f} {ms['floor']:9.1f} {ms['exact']:9.1f} {ms['official-conv']:9.1f} "
        f"{ms['official'] / ms['exact']:6.1f}x {ms['official'] / ms['official-conv']:6.1f}x "
        f"{ms['exact'] / ms['floor']:6.2f}x {ms['official-conv'] / ms['floor']:6.2f}x "
        f"{100 * row['share exact']:5.1f}% {100 * row['share official-conv']:5.1f}% "
        f"{ms['official'] / ms['floor']:7.1f}x",
        flush=True,
    )


def print_target(rows, label, ratio, target, at_most=False) -> None:
    """One summary line: the worst ``ratio`` of each convention, and where it misses ``target``."""
    worst = max if at_most else min
    values = [(work.name, name, ratio(row, name)) for work, row in rows for name in OURS]
    missed = [f"{w} {name} {v:.2f}x" for w, name, v in values if (v > target if at_most else v < target)]
    print(
        f"{label} (target {'<=' if at_most else '>='} {target:g}x): worst "
        + ", ".join(f"{name} {worst(v for _, n, v in values if n == name):.2f}x" for name in OURS)
        + f"; missed on: {', '.join(missed) or 'none'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="calls per median (the large volume: at most 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run in seconds")
    args = parser.parse_args()

    print("times in ms (median); speed-up = official / ours; floor ratio = ours / floor; non-edt = time outside edt")
    print(
        f"{'workload':16s} {'dtype':5s} {'K':>2s} {'shape':>17s} {'official':>10s} {'floor':>9s} {'exact':>9s} "
        f"{'off-conv':>9s} {'speed-up':>15s} {'floor ratio':>15s} {'non-edt':>13s} {'ceiling':>8s}"
    )
    print(
        f"{'':74s} {'exact':>7s} {'off-conv':>8s} {'exact':>7s} {'off-conv':>8s} {'exact':>6s} {'off-c':>6s}"
        f" {'off/floor':>9s}"
    )
    rows = []
    for work in workloads(args.quick):
        row = measure(work, args.repeats)
        print_row(work, row)
        rows.append((work, row))

    print_target(rows, "speed-up over the official approach", lambda r, name: r["official"] / r[name], TARGET_OFFICIAL)
    print_target(rows, "ratio to the floor", lambda r, name: r[name] / r["floor"], TARGET_FLOOR, at_most=True)
    ceilings = [(work.name, row["official"] / row["floor"]) for work, row in rows]
    name, lowest = min(ceilings, key=lambda c: c[1])
    below = [f"{n} {c:.2f}x" for n, c in ceilings if c < TARGET_OFFICIAL]
    print(
        f"ceiling (official / floor: the speed-up of one pass per class at the floor): lowest {lowest:.2f}x "
        f"on {name}; below {TARGET_OFFICIAL:g}x on: {', '.join(below) or 'none'}"
    )
    diffs = [r["diff"] for _, r in rows if r["diff"] is not None]
    print(f"official code vs convention='official' (largest |difference|): {max(diffs):.1e}")
    for work, row in rows:
        if not work.large:
            continue
        output = work.num_classes * work.images[0].size * 4
        parts = [
            f"{name} {peak / 2**20:.0f} MiB = {peak / output:.2f}x" if peak is not None else f"{name} n/a"
            for name, peak in row["peak"].items()
        ]
        print(f"peak memory, {work.name} (output {output / 2**20:.0f} MiB): {', '.join(parts)}")


if __name__ == "__main__":
    sys.exit(main())
