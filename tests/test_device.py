"""Device selection, banner and seeding."""

import numpy as np
import pytest
import torch

import bl_tutorial.device as device_module
from bl_tutorial.device import FORCE_CPU_ENV, device_banner, get_device, resolve_device, seed_everything


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


def test_resolve_device_parses_and_checks(monkeypatch):
    assert resolve_device() == get_device()
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(TypeError, match="device must be a torch.device, a string or None, got int"):
        resolve_device(0)
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"):
        resolve_device("gpu")
    count = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"'cuda:{count}' is not available.*available: cpu"):
        resolve_device(f"cuda:{count}")  # one past the last GPU (the first one on a machine without)


def test_unavailable_devices_are_refused_not_announced(monkeypatch):
    """On Linux there is no MPS; on a machine without CUDA there is no 'cuda': say so, with what there is."""
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ValueError, match=r"'mps' is not available on this machine \(available: cpu\)"):
        device_banner("mps")
    with pytest.raises(ValueError, match=r"'cuda' is not available on this machine \(available: cpu\)"):
        resolve_device("cuda")
