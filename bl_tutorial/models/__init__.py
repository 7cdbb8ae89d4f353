"""The networks of the experiments: :class:`UNet` (DRIVE) and :class:`ENet` (ACDC)."""

from bl_tutorial.models.enet import ENet
from bl_tutorial.models.unet import UNet, pad_to_multiple

__all__ = ["UNet", "ENet", "pad_to_multiple", "count_parameters"]


def count_parameters(model) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
