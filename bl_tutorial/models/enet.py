"""ENet (Paszke et al. 2016), the network of the report's ACDC experiment."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bl_tutorial.models.unet import pad_to_multiple

__all__ = ["ENet"]


class _InitialBlock(nn.Module):
    """3x3 stride-2 convolution concatenated with a 2x2 max-pool of the input, to 16 channels."""

    def __init__(self, in_channels: int, out_channels: int = 16):
        super().__init__()
        conv_channels = max(out_channels - in_channels, 8)
        self.conv = nn.Conv2d(in_channels, conv_channels, 3, stride=2, padding=1, bias=False)
        merged = conv_channels + in_channels
        # with the paper's 3 input channels this is 13 + 3 = 16 and no projection is needed
        self.project = nn.Identity() if merged == out_channels else nn.Conv2d(merged, out_channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.project(torch.cat([self.conv(x), F.max_pool2d(x, 2)], dim=1))))


def _conv_bn_act(in_channels: int, out_channels: int, kernel, padding=0, dilation=1, stride=1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.PReLU(out_channels),
    ]


class _Bottleneck(nn.Module):
    """Residual bottleneck: 1x1 reduce, a regular / dilated / asymmetric conv, 1x1 expand, dropout."""

    def __init__(self, channels: int, kind: str = "regular", dilation: int = 1, dropout: float = 0.1):
        super().__init__()
        inner = channels // 4
        if kind == "asymmetric":
            middle = [
                nn.Conv2d(inner, inner, (5, 1), padding=(2, 0), bias=False),
                *_conv_bn_act(inner, inner, (1, 5), padding=(0, 2)),
            ]
        else:
            middle = _conv_bn_act(inner, inner, 3, padding=dilation, dilation=dilation)
        self.branch = nn.Sequential(
            *_conv_bn_act(channels, inner, 1),
            *middle,
            nn.Conv2d(inner, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.branch(x))


class _Downsample(nn.Module):
    """Bottleneck that halves the resolution; the main path max-pools (keeping indices) and zero-pads channels."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float):
        super().__init__()
        inner = in_channels // 4
        self.branch = nn.Sequential(
            *_conv_bn_act(in_channels, inner, 2, stride=2),
            *_conv_bn_act(inner, inner, 3, padding=1),
            nn.Conv2d(inner, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )
        self.extra = out_channels - in_channels
        self.act = nn.PReLU(out_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        main, indices = F.max_pool2d(x, 2, return_indices=True)
        main = F.pad(main, (0, 0, 0, 0, 0, self.extra))
        return self.act(main + self.branch(x)), indices


class _Upsample(nn.Module):
    """Bottleneck that doubles the resolution; the main path max-unpools with the encoder's indices."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float):
        super().__init__()
        inner = in_channels // 4
        self.main = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.branch = nn.Sequential(
            *_conv_bn_act(in_channels, inner, 1),
            nn.ConvTranspose2d(inner, inner, 2, stride=2, bias=False),
            nn.BatchNorm2d(inner),
            nn.PReLU(inner),
            nn.Conv2d(inner, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: Tensor, indices: Tensor, size: torch.Size) -> Tensor:
        main = F.max_unpool2d(self.main(x), indices, 2, output_size=size)
        return self.act(main + self.branch(x))


def _stage(channels: int, dropout: float) -> nn.Sequential:
    """The repeated body of stages 2 and 3: regular, dilated 2, asymmetric, dilated 4, ... dilated 16."""
    plan = [("regular", 1), ("dilated", 2), ("asymmetric", 1), ("dilated", 4)] * 2
    plan = plan[:4] + [("regular", 1), ("dilated", 8), ("asymmetric", 1), ("dilated", 16)]
    return nn.Sequential(*[_Bottleneck(channels, kind, dilation, dropout) for kind, dilation in plan])


class ENet(nn.Module):
    """ENet: an efficient encoder-decoder for real-time segmentation (Paszke et al. 2016).

    Initial block; stage 1 (downsample to 64 channels + 4 bottlenecks); stages 2 and 3
    (downsample to 128 channels, then regular, dilated (2, 4, 8, 16) and asymmetric 5x5
    bottlenecks); a decoder of max-unpooling bottlenecks (64, then 16 channels); a final
    transposed convolution. Any number of input channels; inputs whose sides are not
    multiples of 8 are zero-padded at the bottom and right, and the output is cropped back.

    Input ``(B, in_channels, H, W)``; output logits ``(B, num_classes, H, W)``.
    Parameters: 0.35 M (1 input channel, 4 classes), as in the paper.

    Examples
    --------
    >>> model = ENet(in_channels=1, num_classes=4)
    >>> model(torch.zeros(2, 1, 97, 130)).shape
    torch.Size([2, 4, 97, 130])
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 4, dropout: float = 0.1):
        super().__init__()
        if in_channels < 1 or num_classes < 2:
            raise ValueError(f"ENet needs in_channels >= 1 and num_classes >= 2, got {in_channels}, {num_classes}")
        self.initial = _InitialBlock(in_channels, 16)
        self.down1 = _Downsample(16, 64, dropout / 10)
        self.stage1 = nn.Sequential(*[_Bottleneck(64, "regular", 1, dropout / 10) for _ in range(4)])
        self.down2 = _Downsample(64, 128, dropout)
        self.stage2 = _stage(128, dropout)
        self.stage3 = _stage(128, dropout)
        self.up4 = _Upsample(128, 64, dropout)
        self.stage4 = nn.Sequential(_Bottleneck(64, "regular", 1, dropout), _Bottleneck(64, "regular", 1, dropout))
        self.up5 = _Upsample(64, 16, dropout)
        self.stage5 = _Bottleneck(16, "regular", 1, dropout)
        self.head = nn.ConvTranspose2d(16, num_classes, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        x, (rows, cols) = pad_to_multiple(x, 8)
        x = self.initial(x)
        size1 = x.shape
        x, indices1 = self.down1(x)
        x = self.stage1(x)
        size2 = x.shape
        x, indices2 = self.down2(x)
        x = self.stage3(self.stage2(x))
        x = self.stage4(self.up4(x, indices2, size2))
        x = self.stage5(self.up5(x, indices1, size1))
        return self.head(x)[..., :rows, :cols]
