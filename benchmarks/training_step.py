"""Cost of the boundary loss in a training step, and training throughput of UNet and ENet.

Run: ``python benchmarks/training_step.py``. On the same model and batch, in one run:

1. one training step (forward, loss, backward, Adam) with the regional loss alone, and
   with regional + boundary loss (maps cached, as the datasets provide them); prints the
   ratio (target: the boundary term adds at most 5 %);
2. the boundary loss alone (forward + backward) relative to one UNet step;
3. images per second for UNet and ENet at 256 px and at the fast profile's sizes, and
   peak memory;
4. the projected wall time of each task's grid of a profile on this device (``--project
   full`` by default when a GPU is present): the task's own data are loaded to count the
   training and selection items, and the network's training rate is measured on them;
   evaluation is not included. ``tools/run_full_profiles.sh`` runs it before the grids.
"""

from __future__ import annotations

import argparse
import math
import resource
from functools import partial

import numpy as np
import torch
from _timing import median_seconds

from bl_tutorial.combined import CombinedLoss, ConstantAlpha
from bl_tutorial.device import device_banner, get_device
from bl_tutorial.distance import class_distance_maps
from bl_tutorial.losses import BoundaryLoss, GeneralizedDiceLoss, boundary_loss
from bl_tutorial.models import ENet, UNet
from bl_tutorial.tasks import TASKS


def make_batch(batch: int, channels: int, shape, classes: int, device):
    """Nested balls as labels, their maps, and random images; ``shape`` is a side (2D square) or a tuple (2D, 3D)."""
    shape = (shape, shape) if isinstance(shape, int) else tuple(shape)
    rng = np.random.default_rng(0)
    labels = np.zeros((batch, *shape), np.uint8)
    grid = np.indices(shape)
    for b in range(batch):
        for k in range(1, classes):
            centre = rng.uniform(0.3, 0.7, len(shape)) * np.array(shape)
            radius = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre)))
            labels[b][radius < min(shape) * (0.25 - 0.05 * k)] = k
    maps = np.stack([class_distance_maps(lab, classes) for lab in labels])
    target = np.moveaxis(np.eye(classes, dtype=np.float32)[labels], -1, 1)
    image = torch.randn(batch, channels, *shape)
    target = torch.from_numpy(np.ascontiguousarray(target))
    return image.to(device), target.to(device), torch.from_numpy(maps).to(device)


def step(model, optimizer, loss_fn, image, target, maps):
    optimizer.zero_grad(set_to_none=True)
    probs = torch.softmax(model(image).float(), 1)
    loss_fn(probs, target, maps).total.backward()
    optimizer.step()
    if image.is_cuda:
        torch.cuda.synchronize()


def images_per_second(model, image, target, maps, repeats):
    loss = CombinedLoss(GeneralizedDiceLoss(), BoundaryLoss(), ConstantAlpha(0.05))
    optimizer = torch.optim.Adam(model.parameters())
    seconds = median_seconds(partial(step, model, optimizer, loss, image, target, maps), repeats)
    return image.shape[0] / seconds


def peak_memory_mib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--project",
        choices=("smoke", "fast", "full"),
        default=None,
        help="project the grids of this profile (default: full on a GPU, none on a CPU)",
    )
    parser.add_argument(
        "--h200",
        choices=("smoke", "fast", "full"),
        default=None,
        help="estimate the grids' training time on one H200 from counted FLOPs (an estimate, not a measurement)",
    )
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else get_device()
    print(device_banner(device))
    if args.h200:
        for task in TASKS.values():
            flops, steps = grid_flops(task, args.h200)
            fast, slow = (flops / (share * H200_DENSE_BF16) for share in (0.25, 0.05))  # seconds of arithmetic
            low, high = (
                (arithmetic + steps * overhead) / 60 for arithmetic, overhead in zip((fast, slow), STEP_OVERHEAD_S)
            )
            print(
                f"{task.name} {args.h200} grid on one H200: about {low:.0f} to {high:.0f} min of training: "
                f"{steps} optimiser steps; arithmetic {fast / 60:.1f}-{slow / 60:.1f} min (counted FLOPs at 25 %-5 % "
                f"of the dense bf16 peak), overhead {STEP_OVERHEAD_S[0] * 1e3:.0f}-{STEP_OVERHEAD_S[1] * 1e3:.0f} ms "
                "a step (assumed); HD95 scoring and data loading not included"
            )
        return

    # 1-2: the boundary term inside a UNet (base 16) step, 8 images of 128 px, 2 classes
    torch.manual_seed(0)
    model = UNet(3, 2, base=16).to(device)
    optimizer = torch.optim.Adam(model.parameters())
    image, target, maps = make_batch(8, 3, 128, 2, device)
    regional = CombinedLoss(GeneralizedDiceLoss(), None)
    combined = CombinedLoss(GeneralizedDiceLoss(), BoundaryLoss(classes=[1]), ConstantAlpha(0.05))
    t_regional = median_seconds(partial(step, model, optimizer, regional, image, target, maps), args.repeats)
    t_combined = median_seconds(partial(step, model, optimizer, combined, image, target, maps), args.repeats)
    probs = torch.softmax(torch.randn_like(target), 1).requires_grad_(True)

    def loss_only():
        boundary_loss(probs, maps, classes=[1]).backward()

    t_loss = median_seconds(loss_only, args.repeats * 3)
    print(
        f"UNet(base 16) step, 8 x 128 px: regional {t_regional * 1e3:.1f} ms, regional + boundary "
        f"{t_combined * 1e3:.1f} ms -> boundary term adds {100 * (t_combined / t_regional - 1):+.1f} % (target <= 5 %)"
    )
    print(
        f"boundary loss alone (forward + backward): {t_loss * 1e3:.3f} ms = "
        f"{100 * t_loss / t_regional:.2f} % of one UNet step"
    )

    # 3: throughput
    fast_sizes = {TASKS["acdc"].profiles["fast"].data.image_size, TASKS["drive"].profiles["fast"].data.patch_size}
    sizes = sorted({256, *fast_sizes})
    for name, factory, channels, classes in [
        ("UNet base 8", partial(UNet, 3, 2, 8), 3, 2),
        ("UNet base 16", partial(UNet, 3, 2, 16), 3, 2),
        ("ENet", partial(ENet, 1, 4), 1, 4),
    ]:
        rates = []
        for size in sizes:
            torch.manual_seed(0)
            batch = make_batch(8, channels, size, classes, device)
            rates.append(
                f"{images_per_second(factory().to(device), *batch, max(3, args.repeats // 2)):6.1f} at {size} px"
            )
        print(f"{name:13s} images/s: " + ", ".join(rates))
    print(f"peak memory: {peak_memory_mib(device):.0f} MiB ({'GPU' if device.type == 'cuda' else 'process RSS'})")

    # 4: projected wall time of each task's grid
    profile_name = args.project or ("full" if device.type == "cuda" else None)
    if profile_name:
        total = 0.0
        for task in TASKS.values():
            seconds = projected_seconds(task, profile_name, device)
            total += seconds
            print(f"{task.name} {profile_name} grid: about {seconds / 60:.1f} min of training on this device")
        print(f"all {profile_name} grids: about {total / 60:.1f} min (evaluation and data loading not included)")


def grid_images(task, profile) -> tuple[int, int, tuple]:
    """Images a profile's grid trains on and selection images it evaluates (summed over runs, warm starts
    included, every condition), and the shape of a training item."""
    training = profile.training
    conditions = profile.conditions or (None,)
    data = task.load(profile, None, conditions[0])
    seeds = len(training.seeds)
    runs = sum(min(seeds, training.seeds_per_loss.get(loss, seeds)) for loss in training.losses)
    epochs = runs * training.epochs + (seeds * training.warm_epochs if training.warm_start else 0)
    n = len(conditions) * epochs
    return n * len(data.train_set), n * len(data.select_set), tuple(data.train_set[0]["image"].shape)


def projected_seconds(task, profile_name: str, device) -> float:
    """Training time of a task's grid: items per epoch from its own data, rate measured on this device."""
    profile = task.profiles[profile_name]
    train_images, select_images, shape = grid_images(task, profile)
    torch.manual_seed(0)
    batch = make_batch(profile.training.batch_size, task.in_channels, shape[1:], task.num_classes, device)
    rate = images_per_second(task.build_model(profile).to(device), *batch, 3)
    return (train_images + select_images / 3) / rate  # a forward pass ~ 1/3 of a step


H200_DENSE_BF16 = 989e12
"""An NVIDIA H200's dense bfloat16 peak (FLOP/s), from its data sheet; small networks reach a fraction of it."""


def grid_flops(task, profile_name: str) -> tuple[float, int]:
    """A grid's training FLOPs, counted on this machine (forward of one item x 3 for a step; selection
    forward only), and its number of optimiser steps."""
    from torch.utils.flop_counter import FlopCounterMode

    profile = task.profiles[profile_name]
    train_images, select_images, shape = grid_images(task, profile)
    model = task.build_model(profile).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    forward = counter.get_total_flops()
    return 3 * forward * train_images + forward * select_images, math.ceil(train_images / profile.training.batch_size)


STEP_OVERHEAD_S = (0.005, 0.02)
"""An assumed range of what one eager PyTorch step of a small network costs on a GPU beyond its
arithmetic (kernel launches, Adam, bookkeeping): small networks are bound by it, not by FLOPs."""


if __name__ == "__main__":
    main()
