"""batch_distance_maps against class_distance_maps and brute force, on every device; bad input; the benchmark."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from bl_tutorial import distance_torch
from bl_tutorial.distance import class_distance_maps, signed_distance_reference
from bl_tutorial.distance_torch import batch_distance_maps, euclidean_distance_transform
from conftest import spacings

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
CONVENTIONS = ["exact", "official"]


@st.composite
def label_batches(draw, ndim: int, max_side: int = 8):
    """(labels (B, *spatial) uint8, num_classes): random, constant (empty and full classes) and single-voxel items."""
    num_classes = draw(st.integers(2, 4))
    batch = draw(st.integers(1, 3))
    side = st.integers(1, max_side)
    shape = draw(st.tuples(*[st.integers(1, 4) if (ndim == 3 and i == 0) else side for i in range(ndim)]))
    label = st.integers(0, num_classes - 1)
    items = []
    for _ in range(batch):
        kind = draw(st.sampled_from(["random", "constant", "single"]))
        if kind == "random":  # touches the borders, leaves some classes empty
            items.append(draw(arrays(np.uint8, shape, elements=label)))
        else:
            item = np.full(shape, draw(label), np.uint8)  # a full class, the others empty
            if kind == "single":
                item[tuple(draw(st.integers(0, n - 1)) for n in shape)] = draw(label)
            items.append(item)
    return np.stack(items), num_classes


@st.composite
def batch_spacings(draw, batch: int, ndim: int):
    """One spacing for the batch, or one row per item."""
    if draw(st.booleans()):
        return draw(spacings(ndim))
    return np.array([draw(spacings(ndim)) for _ in range(batch)])


def expected_maps(labels: np.ndarray, num_classes: int, spacing, convention: str) -> np.ndarray:
    rows = np.broadcast_to(np.asarray(spacing, float), (len(labels), labels.ndim - 1))
    return np.stack([class_distance_maps(item, num_classes, tuple(row), convention) for item, row in zip(labels, rows)])


# ----------------------------------------------------------------- agreement
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("backend", ["torch", "auto"])
@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_maps_equal_class_distance_maps(device, convention, backend, data, ndim):
    labels, num_classes = data.draw(label_batches(ndim))
    spacing = data.draw(batch_spacings(len(labels), ndim))
    maps = batch_distance_maps(torch.from_numpy(labels).to(device), num_classes, spacing, convention, backend=backend)
    assert maps.device.type == device and maps.dtype == torch.float32
    assert maps.shape == (len(labels), num_classes, *labels.shape[1:])
    expected = expected_maps(labels, num_classes, spacing, convention)
    np.testing.assert_allclose(maps.cpu().numpy(), expected, rtol=1e-5, atol=1e-4)
    assert not (torch.signbit(maps) & (maps == 0)).any()  # +0, never -0


@pytest.mark.parametrize("device", DEVICES)
@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_exact_maps_equal_brute_force(device, data, ndim):
    labels, num_classes = data.draw(label_batches(ndim))
    spacing = data.draw(spacings(ndim))
    maps = batch_distance_maps(torch.from_numpy(labels).to(device), num_classes, spacing, backend="torch").cpu()
    for b, item in enumerate(labels):
        for k in range(num_classes):
            reference = signed_distance_reference(item == k, spacing)
            np.testing.assert_allclose(maps[b, k].numpy(), reference, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_transform_equals_scipy(device, data, ndim):
    """The torch EDT on larger images than the maps tests: several blocks per pass, inf where nothing to reach."""
    side = st.integers(1, 40 if ndim == 2 else 12)
    mask = data.draw(
        st.tuples(*[side] * ndim).flatmap(lambda s: arrays(bool, s, elements=st.sampled_from([False] * 30 + [True])))
    )
    spacing = data.draw(spacings(ndim))
    zeros = torch.from_numpy(mask)[None, None].to(device)
    distance = euclidean_distance_transform(zeros, torch.tensor([spacing]))
    assert distance.device.type == device and distance.dtype == torch.float32
    if not mask.any():
        assert torch.isinf(distance).all()
        return
    expected = ndimage.distance_transform_edt(~mask, sampling=spacing)
    np.testing.assert_allclose(distance[0, 0].cpu().numpy(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_small_memory_budget_gives_the_same_maps(device, convention, monkeypatch):
    """A budget too small for wide blocks: many chunks of lines and blocks of width 1, same maps."""
    rng = np.random.default_rng(0)
    labels = np.stack([ndimage.gaussian_filter(rng.standard_normal((6, 30, 34)), 3)[0] > 0.3 for _ in range(3)])
    labels = labels.astype(np.uint8) + (rng.random(labels.shape) < 0.01)
    expected = expected_maps(labels, 3, (0.7, 1.9), convention)
    monkeypatch.setitem(distance_torch.BLOCK_BUDGET, device, 64)
    maps = batch_distance_maps(torch.from_numpy(labels).to(device), 3, (0.7, 1.9), convention, backend="torch")
    np.testing.assert_allclose(maps.cpu().numpy(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_anisotropic_3d_axis_order_and_label_dtypes(device):
    labels = torch.zeros((1, 5, 9, 9), dtype=torch.long)
    labels[0, 2, 4, 4] = 1
    for dtype in (torch.uint8, torch.int32, torch.int64, torch.bool):
        for backend in ("torch", "numpy"):
            phi = batch_distance_maps(labels.to(device, dtype), 2, (10.0, 1.5, 0.5), backend=backend)[0, 1]
            assert phi.device.type == device
            assert phi[2, 4, 4] == 0
            assert phi[3, 4, 4] == pytest.approx(10.0)
            assert phi[2, 5, 4] == pytest.approx(1.5)
            assert phi[2, 4, 6] == pytest.approx(1.0)


def test_documented_line_by_hand():
    labels = torch.tensor([[[0, 0, 1, 1, 1, 0]]])
    for backend in ("torch", "numpy"):
        maps = batch_distance_maps(labels, 2, backend=backend)
        assert maps[0, 1].tolist() == [[2.0, 1.0, 0.0, -1.0, 0.0, 1.0]]
        official = batch_distance_maps(labels, 2, (1.0, 0.5), "official", backend=backend)
        assert official[0, 1].tolist() == [[1.0, 0.5, 0.5, 0.0, 0.5, 0.5]]


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "labels, error, message",
    [
        (np.zeros((1, 4, 4), np.int64), TypeError, "labels must be a torch.Tensor"),
        ([[[0, 1]]], TypeError, "labels must be a torch.Tensor"),
        (torch.zeros((1, 4, 4)), TypeError, "labels must hold integer labels, got dtype torch.float32"),
        (torch.tensor([[[0, 2]]]), ValueError, r"labels must lie in \[0, 2\).*from 0 to 2"),
        (torch.tensor([[[-1, 1]]]), ValueError, "labels must lie in.*from -1 to 1"),
        (torch.zeros((4, 4), dtype=torch.long), ValueError, r"labels must have shape \(B, \*spatial\).*\(4, 4\)"),
        (torch.zeros((1, 2, 2, 2, 2), dtype=torch.long), ValueError, "2 or 3 spatial axes"),
        (torch.zeros((0, 4, 4), dtype=torch.long), ValueError, "labels must not be empty"),
    ],
)
def test_bad_labels(labels, error, message):
    with pytest.raises(error, match=message):
        batch_distance_maps(labels, 2)


@pytest.mark.parametrize(
    "spacing, error, message",
    [
        ((1.0,), ValueError, "spacing must have one value per array axis"),
        ((1.0, 2.0, 3.0), ValueError, "spacing must have one value per array axis"),
        ((1.0, 0.0), ValueError, "spacing must be finite and positive"),
        ((1.0, -2.0), ValueError, "spacing must be finite and positive"),
        ((1.0, float("nan")), ValueError, "spacing must be finite and positive"),
        (np.ones((3, 2)), ValueError, r"spacing must have .* shape \(B, 2\) = \(2, 2\), got shape \(3, 2\)"),
        (torch.tensor([[1.0, 1.0], [1.0, -1.0]]), ValueError, "spacing must be finite and positive"),
        ("a", TypeError, "spacing must be a number"),
    ],
)
def test_bad_spacing(spacing, error, message):
    with pytest.raises(error, match=message):
        batch_distance_maps(torch.zeros((2, 4, 4), dtype=torch.long), 2, spacing)


def test_bad_options():
    labels = torch.zeros((1, 3, 3), dtype=torch.long)
    with pytest.raises(ValueError, match="convention must be one of.*got 'paper'"):
        batch_distance_maps(labels, 2, convention="paper")
    with pytest.raises(ValueError, match="backend must be one of.*got 'gpu'"):
        batch_distance_maps(labels, 2, backend="gpu")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        batch_distance_maps(labels, 1)
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        batch_distance_maps(labels, 2.0)


# ----------------------------------------------------------------- benchmark
def test_benchmark_quick_run_prints_every_workload():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "distance_maps_torch.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--repeats", "1"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for workload in ("ridges 2D", "blobs 2D", "cardiac 3D"):
        row = [line for line in lines if line.startswith(workload)]
        assert row, f"no line for {workload}:\n{result.stdout}"
        assert float(row[0].split()[-1]) < 1e-4  # the torch and numpy paths agree
    assert any(line.startswith("CPU path:") for line in lines)
    assert any(line.startswith("CUDA") for line in lines)
