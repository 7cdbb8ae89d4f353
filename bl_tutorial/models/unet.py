"""UNet (Ronneberger et al. 2015) in the shape of the official boundary-loss code."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNet", "pad_to_multiple"]


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad the last two axes of ``x`` at the bottom and right up to a multiple of ``multiple``.

    Returns the padded tensor and the original (rows, cols), to crop the output back.
    A 584 x 565 DRIVE image becomes 592 x 576 for a network that halves 4 times.
    """
    rows, cols = x.shape[-2:]
    pad_rows, pad_cols = (-rows) % multiple, (-cols) % multiple
    if pad_rows or pad_cols:
        x = F.pad(x, (0, pad_cols, 0, pad_rows))
    return x, (rows, cols)


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """2D UNet: ``depth`` poolings, widths ``base * 2**level``, 3x3 conv + BN + ReLU blocks.

    Input ``(B, in_channels, H, W)`` of any size; output logits ``(B, num_classes, H, W)``
    (apply softmax over axis 1 for the losses). Inputs whose sides are not multiples of
    ``2**depth`` are zero-padded at the bottom and right, and the output is cropped back.

    Parameter counts (``in_channels=3, num_classes=2, depth=4``): base 8: 0.49 M;
    base 16: 1.9 M; base 32: 7.8 M; base 64: 31.0 M (the classic UNet).

    Examples
    --------
    >>> model = UNet(in_channels=3, num_classes=2, base=8)
    >>> model(torch.zeros(1, 3, 584, 565)).shape
    torch.Size([1, 2, 584, 565])
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 16, depth: int = 4):
        super().__init__()
        if in_channels < 1 or num_classes < 2 or base < 1 or depth < 1:
            raise ValueError(
                f"UNet needs in_channels >= 1, num_classes >= 2, base >= 1, depth >= 1; "
                f"got {in_channels}, {num_classes}, {base}, {depth}"
            )
        widths = [base * 2**level for level in range(depth + 1)]
        self.depth = depth
        self.encoders = nn.ModuleList(
            [_double_conv(in_channels, widths[0])] + [_double_conv(widths[i], widths[i + 1]) for i in range(depth)]
        )
        self.upsamples = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))]
        )
        self.decoders = nn.ModuleList([_double_conv(widths[i] * 2, widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        x, (rows, cols) = pad_to_multiple(x, 2**self.depth)
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for upsample, decoder in zip(self.upsamples, self.decoders):
            x = decoder(torch.cat([upsample(x), skips.pop()], dim=1))
        return self.head(x)[..., :rows, :cols]
