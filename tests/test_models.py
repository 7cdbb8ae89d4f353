"""The networks and the settings objects that build them."""

import pytest
import torch

from bl_tutorial.models import ENet, UNet


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (97, 130)])
def test_model_shapes(in_channels, shape):
    x = torch.zeros(2, in_channels, *shape)
    assert UNet(in_channels, 2, base=4, depth=3)(x).shape == (2, 2, *shape)
    assert ENet(in_channels, 4).eval()(x).shape == (2, 4, *shape)


def test_unet_native_drive_size():
    assert UNet(3, 2, base=2)(torch.zeros(1, 3, 584, 565)).shape == (1, 2, 584, 565)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="num_classes >= 2"):
        UNet(3, 1)
    with pytest.raises(ValueError, match="in_channels >= 1"):
        ENet(0, 4)
