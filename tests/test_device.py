"""Device selection, banner and seeding."""

import numpy as np
import pytest
import torch

from bl_tutorial.device import FORCE_CPU_ENV, device_banner, get_device, seed_everything


def test_force_cpu(monkeypatch):
    monkeypatch.setenv(FORCE_CPU_ENV, "1")
    assert get_device() == torch.device("cpu")
    assert "forced" in device_banner()


def test_banner_names_device_and_torch_version():
    banner = device_banner("cpu")
    assert banner.startswith("Device: CPU") and torch.__version__ in banner


def test_seed_everything_repeats_all_generators():
    seed_everything(123)
    first = (np.random.rand(), torch.rand(2))
    seed_everything(123)
    second = (np.random.rand(), torch.rand(2))
    assert first[0] == second[0] and torch.equal(first[1], second[1])
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        seed_everything(-1)
