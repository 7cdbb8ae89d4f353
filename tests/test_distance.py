"""Distance maps against brute force, the official convention, and bad input."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from bl_tutorial import distance
from bl_tutorial.distance import (
    boundary_set,
    class_distance_maps,
    official_one_hot2dist,
    signed_distance,
    signed_distance_reference,
)
from conftest import label_images, masks, spacings

BACKENDS = ["edt", "scipy"] if distance._edt_module is not None else ["scipy"]


def official_formula(mask, spacing):
    """The official convention written directly with scipy, in float64."""
    mask = mask.astype(bool)
    if mask.all() or not mask.any():
        return np.zeros(mask.shape)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    return np.where(mask, -(inside - 1), outside)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_exact_matches_brute_force(backend, data, ndim):
    mask = data.draw(masks(ndim))
    spacing = data.draw(spacings(ndim))
    fast = signed_distance(mask, spacing, backend=backend)
    reference = signed_distance_reference(mask, spacing)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-4)


@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_exact_is_zero_on_the_boundary_set(data, ndim):
    mask = data.draw(masks(ndim))
    spacing = data.draw(spacings(ndim))
    phi = signed_distance(mask, spacing)
    if mask.any() and not mask.all():
        boundary = boundary_set(mask)
        assert np.all(phi[boundary] == 0)
        assert np.all(phi[mask & ~boundary] < 0)
        assert np.all(phi[~mask] > 0)
        assert not np.signbit(phi[boundary]).any()  # +0, not -0


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_official_matches_direct_float_formula(backend, data, ndim):
    mask = data.draw(masks(ndim, max_side=14))
    spacing = data.draw(spacings(ndim))
    ours = signed_distance(mask, spacing, convention="official", backend=backend)
    np.testing.assert_allclose(ours, official_formula(mask, spacing), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("convention", ["exact", "official"])
@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data(), num_classes=st.integers(2, 5), ndim=st.sampled_from([2, 3]))
def test_class_maps_equal_per_class_signed_distance(convention, backend, data, num_classes, ndim):
    labels = data.draw(label_images(num_classes, ndim, max_side=8))
    spacing = data.draw(spacings(ndim))
    maps = class_distance_maps(labels, num_classes, spacing, convention, backend=backend)
    assert maps.shape == (num_classes, *labels.shape) and maps.dtype == np.float32
    for k in range(num_classes):
        expected = signed_distance(labels == k, spacing, convention, backend="scipy")
        np.testing.assert_allclose(maps[k], expected, rtol=1e-5, atol=1e-4)


def test_official_convention_matches_official_code_where_the_code_is_right():
    rng = np.random.default_rng(1)
    labels = ndimage.median_filter(rng.integers(0, 4, (40, 50)), 5)
    onehot = np.stack([labels == k for k in range(4)]).astype(np.uint8)
    official = official_one_hot2dist(onehot, resolution=(1.5, 0.7), dtype=np.float32)
    ours = class_distance_maps(labels, 4, (1.5, 0.7), "official")
    np.testing.assert_allclose(ours, official, atol=1e-4)


def test_official_code_pitfalls_are_reproduced_and_avoided():
    disc = np.hypot(*np.mgrid[-10:11, -10:11]) <= 6
    onehot = np.stack([~disc, disc]).astype(np.int32)
    truncated = official_one_hot2dist(onehot)  # integer dtype, as in the official 2D code
    assert truncated.dtype == np.int32
    exact = class_distance_maps(disc.astype(int), 2, convention="official")
    assert 0.3 < np.abs(exact - truncated).max() < 1  # sqrt(2) became 1
    # "- 1" in pixels: with a spacing below one, the inner boundary turns positive
    phi = signed_distance(disc, spacing=(0.5, 0.5), convention="official")
    assert (phi[boundary_set(disc)] > 0).all()
    assert (signed_distance(disc, spacing=(0.5, 0.5))[boundary_set(disc)] == 0).all()
    # a full class: the official code returns a ramp, ours returns zeros
    full = np.ones((1, 6, 6), np.uint8)
    assert np.abs(official_one_hot2dist(full, dtype=np.float32)).max() > 0
    assert not class_distance_maps(np.zeros((6, 6), int), 2).any()


def test_documented_examples_by_hand():
    line = np.array([[0, 0, 1, 1, 1, 0]], bool)
    assert signed_distance(line).tolist() == [[2, 1, 0, -1, 0, 1]]
    assert signed_distance(line, spacing=(1, 0.5), convention="official").tolist() == [[1.0, 0.5, 0.5, 0.0, 0.5, 0.5]]


def test_anisotropic_3d_axis_order():
    mask = np.zeros((5, 9, 9), bool)
    mask[2, 4, 4] = True
    phi = signed_distance(mask, spacing=(10.0, 1.5, 0.5))
    assert phi[2, 4, 4] == 0
    assert phi[3, 4, 4] == pytest.approx(10.0)
    assert phi[2, 5, 4] == pytest.approx(1.5)
    assert phi[2, 4, 6] == pytest.approx(1.0)


@pytest.mark.parametrize("fill", [0, 1])
@pytest.mark.parametrize("convention", ["exact", "official"])
def test_empty_and_full_masks_give_zeros(fill, convention):
    mask = np.full((4, 5), fill, bool)
    assert not signed_distance(mask, convention=convention).any()
    assert not signed_distance_reference(mask).any()


def test_boundary_set_definition_and_connectivity():
    square = np.zeros((5, 5), bool)
    square[1:4, 1:4] = True
    assert boundary_set(square).sum() == 8
    plus = np.zeros((5, 5), bool)
    plus[2, 1:4] = plus[1:4, 2] = True
    assert boundary_set(plus, connectivity=1)[2, 2] == False  # noqa: E712 - all 4 face neighbours are foreground
    assert boundary_set(plus, connectivity=2)[2, 2] == True  # noqa: E712 - diagonal neighbours are background
    full = np.ones((3, 3), bool)
    assert not boundary_set(full).any()
    assert boundary_set(full, image_edge=True).sum() == 8


@given(mask=masks(2))
def test_boundary_set_matches_erosion(mask):
    eroded = ndimage.binary_erosion(mask, border_value=1)
    np.testing.assert_array_equal(boundary_set(mask), mask & ~eroded)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "mask, error, message",
    [
        (np.array([[0, 2], [1, 0]]), ValueError, "binary"),
        (np.array([[0.0, np.nan], [1, 0]]), ValueError, "NaN"),
        (np.zeros(5, bool), ValueError, "2D or 3D"),
        (np.zeros((2, 2, 2, 2), bool), ValueError, "2D or 3D"),
        (np.zeros((0, 3), bool), ValueError, "empty"),
        (np.array([["a", "b"]]), TypeError, "dtype"),
    ],
)
def test_bad_masks(mask, error, message):
    with pytest.raises(error, match=message):
        signed_distance(mask)
    with pytest.raises(error, match="mask"):
        boundary_set(mask)


@pytest.mark.parametrize(
    "spacing, message",
    [
        ((1.0,), "one value per array axis"),
        ((1.0, 0.0), "positive"),
        ((1.0, -2), "positive"),
        ((1.0, np.nan), "finite"),
        ((1.0, 2.0, 3.0), "one value per array axis"),
    ],
)
def test_bad_spacing(spacing, message):
    with pytest.raises(ValueError, match=message):
        signed_distance(np.eye(4, dtype=bool), spacing)


def test_bad_labels_and_options():
    with pytest.raises(ValueError, match=r"\[0, 3\).*from 0 to 3"):
        class_distance_maps(np.array([[0, 3]]), 3)
    with pytest.raises(ValueError, match="from -1"):
        class_distance_maps(np.array([[0, -1]]), 3)
    with pytest.raises(ValueError, match="integer labels"):
        class_distance_maps(np.array([[0.5, 1]]), 3)
    with pytest.raises(ValueError, match="num_classes"):
        class_distance_maps(np.array([[0, 1]]), 1)
    with pytest.raises(ValueError, match="convention must be one of"):
        signed_distance(np.eye(3, dtype=bool), convention="paper")
    with pytest.raises(ValueError, match="backend must be one of"):
        signed_distance(np.eye(3, dtype=bool), backend="gpu")
    with pytest.raises(ValueError, match="connectivity"):
        boundary_set(np.eye(3, dtype=bool), connectivity=3)


@pytest.mark.parametrize("convention", ["exact", "official"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_class_maps_on_compact_nested_classes(convention, ndim):
    """Cardiac-like labels (a big background around small nested classes) take the cropped path."""
    from bl_tutorial.data.synthetic import acdc_like_volume

    volume = acdc_like_volume(3)[1][:, 60:180, 50:170]
    labels = volume if ndim == 3 else volume[len(volume) // 2]
    labels = labels.copy()
    labels[..., :3] = 0
    spacing = (6.0, 1.4, 0.9)[-ndim:]
    maps = class_distance_maps(labels, 5, spacing, convention)
    for k in range(5):
        expected = signed_distance(labels == k, spacing, convention, backend="scipy")
        np.testing.assert_allclose(maps[k], expected, rtol=1e-5, atol=1e-4)


# ----------------------------------------------------------------- input types and fast paths
def _smooth_labels(shape, num_classes, seed):
    """Label images with smooth regions (bands of smoothed noise), like real segmentations."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), 2)
    return np.digitize(field, np.quantile(field, np.linspace(0, 1, num_classes + 1)[1:-1]))


@pytest.mark.parametrize("convention", ["exact", "official"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_class_maps_are_the_same_for_every_label_dtype(convention, ndim):
    shape, spacing = ((30, 26), (1.5, 0.7)) if ndim == 2 else ((6, 14, 12), (4.0, 1.2, 0.8))
    binary = _smooth_labels(shape, 2, seed=ndim).astype(bool)
    expected = class_distance_maps(binary.astype(np.uint8), 2, spacing, convention)
    for labels in (binary, binary.astype(np.int64), binary.astype(np.int32), binary.astype(np.float32)):
        np.testing.assert_array_equal(class_distance_maps(labels, 2, spacing, convention), expected)
    labels = _smooth_labels(shape, 4, seed=ndim)
    expected = class_distance_maps(labels.astype(np.uint8), 4, spacing, convention)
    np.testing.assert_array_equal(class_distance_maps(labels.astype(np.int64), 4, spacing, convention), expected)
    for k in range(4):
        reference = signed_distance(labels == k, spacing, convention, backend="scipy")
        np.testing.assert_allclose(expected[k], reference, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("convention", ["exact", "official"])
@pytest.mark.parametrize("num_classes", [20, 300])
@pytest.mark.parametrize("present", [(0, 19), (0, 7, 19), (3, 7, 12, 19)])
def test_class_maps_with_many_classes(convention, num_classes, present):
    """Many classes (counted with bincount), labels beyond uint8 (num_classes > 255), absent classes."""
    labels = np.asarray(present)[_smooth_labels((17, 23), len(present), seed=len(present))]
    if num_classes > 255:
        labels = np.where(labels == 19, num_classes - 1, labels)
    maps = class_distance_maps(labels, num_classes, (1.3, 0.6), convention)
    assert maps.shape == (num_classes, 17, 23) and maps.dtype == np.float32
    for k in range(num_classes):
        if k in labels:
            expected = signed_distance(labels == k, (1.3, 0.6), convention, backend="scipy")
            np.testing.assert_allclose(maps[k], expected, rtol=1e-5, atol=1e-4)
        else:
            assert not maps[k].any()


@pytest.mark.parametrize("convention", ["exact", "official"])
@given(data=st.data(), num_classes=st.integers(2, 4), ndim=st.sampled_from([2, 3]))
def test_class_maps_have_no_negative_zero(convention, data, num_classes, ndim):
    labels = data.draw(label_images(num_classes, ndim, max_side=8))
    spacing = data.draw(spacings(ndim))
    maps = class_distance_maps(labels, num_classes, spacing, convention)
    assert not (np.signbit(maps) & (maps == 0)).any()
    assert np.isfinite(maps).all()


def test_speed_benchmark_runs_every_workload_and_its_maps_agree():
    """``benchmarks/distance_maps.py --quick``: every workload timed, every summary printed,
    and the official convention's maps equal to the official code's on all of them."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "distance_maps.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for workload in (
        "smooth ridges",
        "fine ridges",
        "large blobs",
        "nested rings",
        "nested rings 3D",
        "fine ridges 3D",
        "nested blobs 3D",
    ):
        assert re.search(rf"^{workload} +(bool|uint8|int64) ", out, re.M), workload
    summaries = ("speed-up over the official", "ratio to the floor", r"ceiling \(official / floor", "peak memory")
    for summary in summaries:
        assert re.search(rf"^{summary}", out, re.M), summary
    difference = float(re.search(r"largest \|difference\|\): ([0-9.e+-]+)", out).group(1))
    assert difference < 1e-4
