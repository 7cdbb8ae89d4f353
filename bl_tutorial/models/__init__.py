"""The networks of the experiments: :class:`UNet` (DRIVE, lesions) and :class:`ENet` (ACDC).

A task's profile names its network with a small settings object, :class:`UNetConfig` or
:class:`ENetConfig`, whose ``build(in_channels, num_classes)`` makes it; any object with
such a method (a reader's own 3D network, say) can take their place.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from bl_tutorial._validation import check_int
from bl_tutorial.models.enet import ENet
from bl_tutorial.models.unet import UNet, pad_to_multiple

__all__ = ["UNet", "ENet", "UNetConfig", "ENetConfig", "pad_to_multiple", "count_parameters"]


def count_parameters(model) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class UNetConfig:
    """A :class:`UNet` of base width ``width`` and ``depth`` poolings.

    >>> count_parameters(UNetConfig(width=4, depth=2).build(1, 2))
    7482
    """

    width: int = 16
    depth: int = 4

    def __post_init__(self):
        check_int(self.width, "width", minimum=1)
        check_int(self.depth, "depth", minimum=1)

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        return UNet(in_channels, num_classes, base=self.width, depth=self.depth)


@dataclass(frozen=True)
class ENetConfig:
    """An :class:`ENet` (fixed width, as in the official code)."""

    dropout: float = 0.1

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        return ENet(in_channels, num_classes, dropout=self.dropout)
