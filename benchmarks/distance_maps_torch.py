"""Speed of batch_distance_maps (maps recomputed every batch) against the edt floor, and its share of a step.

Run: ``python benchmarks/distance_maps_torch.py`` (a minute or two on two CPU cores), or
``--quick`` for a smoke run on small sizes. For every workload, in one run, the script times
(median of ``--repeats`` calls, taking turns so that a drifting machine load hits all alike)
the maps of the exact convention of one whole batch:

- ``floor``: one whole-image ``edt`` pass per item and class with a contour, on inputs made
  before the clock starts (as ``benchmarks/distance_maps.py`` defines it): no exact method
  does less on a CPU;
- ``class_maps``: :func:`~bl_tutorial.distance.class_distance_maps` item by item (NumPy);
- ``numpy``: :func:`~bl_tutorial.distance_torch.batch_distance_maps` on a CPU tensor, which
  delegates to the former (``backend="auto"`` on a CPU);
- ``torch``: the same with ``backend="torch"``, the transform a GPU runs, here on the CPU.

It prints each median, the ratios to the floor, the torch path's cost over the NumPy path,
and the largest difference between the two paths' maps. Workloads: (a) 16 two-class
256 x 256 label images, vessel-like ridges and large blobs; (b) one four-class anisotropic
cardiac-like volume of 10 x 224 x 256 voxels with spacing (10, 1.5, 1.5).

Where CUDA is available it also times, on the GPU, the maps of one batch of (a) and one
training step of ``UNet(3, 2, base=16)`` at 256 px, batch 16 (forward, cross-entropy,
backward, Adam), and prints the maps' share of the step (goal: under 5 %).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from _timing import interleaved_medians, median_seconds
from distance_maps import blob_masks, cardiac_volume, floor, floor_inputs, ridge_masks

from bl_tutorial.distance import class_distance_maps
from bl_tutorial.distance_torch import batch_distance_maps
from bl_tutorial.models import UNet

GOAL_SHARE = 0.05  # the maps of one batch: at most this share of one training step


@dataclass
class Workload:
    name: str
    labels: np.ndarray  # (B, *spatial)
    num_classes: int
    spacing: tuple[float, ...] | None = None

    @property
    def shape(self) -> str:
        return " x ".join(map(str, self.labels.shape))


def workloads(quick: bool) -> list[Workload]:
    batch, side, volume = (4, 64, (4, 56, 64)) if quick else (16, 256, (10, 224, 256))
    return [
        Workload("ridges 2D", np.stack(ridge_masks(batch, (side, side), side / 40, 0.32, 0)).astype(np.uint8), 2),
        Workload("blobs 2D", np.stack(blob_masks(batch, (side, side), side / 16, 2)).astype(np.uint8), 2),
        Workload("cardiac 3D", cardiac_volume(volume[0], volume[1:])[None], 4, (10.0, 1.5, 1.5)),
    ]


def measure(work: Workload, repeats: int) -> dict:
    labels, k, spacing = work.labels, work.num_classes, work.spacing
    tensor = torch.from_numpy(labels)
    masks = floor_inputs(list(labels), k, spacing)
    funcs = {
        "floor": partial(floor, masks, spacing),
        "class_maps": lambda: [class_distance_maps(item, k, spacing) for item in labels],
        "numpy": partial(batch_distance_maps, tensor, k, spacing, backend="numpy"),
        "torch": partial(batch_distance_maps, tensor, k, spacing, backend="torch"),
    }
    row = interleaved_medians(funcs, repeats=repeats, warmup=1)
    difference = funcs["torch"]() - funcs["numpy"]()
    row["diff"] = float(difference.abs().max())
    return row


def print_row(work: Workload, row: dict) -> None:
    ms = {name: row[name] * 1e3 for name in ("floor", "class_maps", "numpy", "torch")}
    print(
        f"{work.name:11s} {work.num_classes:2d} {work.shape:>17s} {ms['floor']:9.1f} {ms['class_maps']:10.1f} "
        f"{ms['numpy']:9.1f} {ms['torch']:9.1f} {ms['numpy'] / ms['floor']:7.2f}x {ms['torch'] / ms['floor']:7.1f}x "
        f"{ms['torch'] / ms['numpy']:8.1f}x {row['diff']:9.1e}",
        flush=True,
    )


def cuda_share(work: Workload, repeats: int) -> None:
    """On the GPU: the maps of ``work`` against one UNet(3, 2, base=16) step on a batch of that size."""
    device = torch.device("cuda")
    labels = torch.from_numpy(work.labels).to(device)
    batch, size = labels.shape[0], labels.shape[-1]

    def maps():
        batch_distance_maps(labels, work.num_classes, work.spacing)
        torch.cuda.synchronize()

    torch.manual_seed(0)
    model = UNet(3, 2, base=16).to(device)
    optimizer = torch.optim.Adam(model.parameters())
    image = torch.randn(batch, 3, size, size, device=device)
    target = labels.long()

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(image), target).backward()
        optimizer.step()
        torch.cuda.synchronize()

    t_maps, t_step = median_seconds(maps, repeats), median_seconds(step, repeats)
    share = t_maps / t_step
    print(
        f"CUDA {work.name} ({work.shape}): maps {t_maps * 1e3:.2f} ms, UNet(base 16) step {t_step * 1e3:.2f} ms "
        f"-> maps are {100 * share:.1f} % of a step (goal < {100 * GOAL_SHARE:g} %: "
        f"{'met' if share < GOAL_SHARE else 'missed'})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="calls per median")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run in seconds")
    args = parser.parse_args()

    print(f"CPU, {torch.get_num_threads()} torch threads; exact convention; times in ms (median of {args.repeats})")
    print(
        f"{'workload':11s} {'K':>2s} {'shape':>17s} {'floor':>9s} {'class_maps':>10s} {'numpy':>9s} {'torch':>9s} "
        f"{'numpy/fl':>8s} {'torch/fl':>8s} {'torch/np':>9s} {'max diff':>9s}"
    )
    rows = []
    for work in workloads(args.quick):
        row = measure(work, args.repeats)
        print_row(work, row)
        rows.append((work, row))
    ratios = [row["torch"] / row["numpy"] for _, row in rows]
    print(
        f"CPU path: torch / numpy from {min(ratios):.1f}x to {max(ratios):.1f}x; batch_distance_maps uses "
        f"{'numpy' if min(ratios) > 1 else 'numpy (slower here on some workloads: see above)'} on the CPU"
    )
    if torch.cuda.is_available():
        for work in workloads(args.quick):
            if work.labels.ndim == 3:  # the 2D batches: a training step's input
                cuda_share(work, args.repeats)
    else:
        print("CUDA: not available; the share of a training step was not measured")


if __name__ == "__main__":
    sys.exit(main())
