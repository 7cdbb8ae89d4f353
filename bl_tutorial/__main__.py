"""``python -m bl_tutorial``: a one-minute tour of the package (device, distance map, losses)."""

from __future__ import annotations

import numpy as np
import torch

from bl_tutorial.device import device_banner
from bl_tutorial.distance import boundary_set, signed_distance
from bl_tutorial.losses import boundary_loss


def main() -> None:
    print(device_banner())
    yy, xx = np.mgrid[:64, :64]
    truth = np.hypot(yy - 32, xx - 32) <= 12
    phi = signed_distance(truth, spacing=(1.0, 1.0))
    print(f"disc of radius 12: {truth.sum()} voxels, {boundary_set(truth).sum()} on the boundary set")
    print(f"phi ranges from {phi.min():.2f} (centre) to {phi.max():.2f} (corner)")
    maps = torch.from_numpy(np.stack([-phi, phi]))[None]
    for name, shift in [("ground truth", 0), ("shifted by 3 px", 3), ("shifted by 8 px", 8)]:
        seg = np.roll(truth, shift, axis=1)
        probs = torch.from_numpy(np.stack([~seg, seg]).astype(np.float32))[None]
        value = boundary_loss(probs, maps, classes=[1], reduction="sum")
        print(f"<c, phi> for the {name:16s}: {value.item():9.1f}")


if __name__ == "__main__":
    main()
