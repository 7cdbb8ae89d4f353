"""Training datasets and transforms: maps computed once in one unit, exact isometries, splits."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bl_tutorial.data import (
    AcdcDataset,
    AcdcFrame,
    AcdcPatient,
    DriveDataset,
    DrivePatches,
    LabelledImages,
    lesion_images,
    read_acdc,
    read_drive,
    split_items,
    split_three,
)
from bl_tutorial.data.datasets import drive_map_spacing
from bl_tutorial.data.transforms import (
    Isometry,
    apply_isometry,
    isometry_spacing,
    normalize_intensity,
    resize_image,
    resize_labels,
)
from bl_tutorial.distance import class_distance_maps


@given(
    labels=st.integers(0, 2**32 - 1).map(lambda s: np.random.default_rng(s).integers(0, 3, (7, 9)).astype(np.uint8)),
    flip=st.booleans(),
    turns=st.integers(0, 3),
    spacing=st.tuples(st.floats(0.5, 3), st.floats(0.5, 3)),
)
def test_isometries_of_cached_maps_equal_recomputed_maps(labels, flip, turns, spacing):
    iso = Isometry(flip, turns)
    cached = class_distance_maps(labels, 3, spacing)
    moved = apply_isometry(cached, iso)
    recomputed = class_distance_maps(apply_isometry(labels, iso), 3, isometry_spacing(spacing, iso))
    np.testing.assert_allclose(moved, recomputed, atol=1e-4)


def test_resize_and_normalise():
    labels = np.zeros((10, 10), np.uint8)
    labels[2:8, 2:8] = 3
    small = resize_labels(labels, (5, 5))
    assert set(np.unique(small)) <= {0, 3} and small.dtype == np.uint8
    assert resize_image(np.ones((2, 10, 10)), (4, 6)).shape == (2, 4, 6)
    with pytest.raises(ValueError, match="shape must be two positive sizes"):
        resize_image(np.ones((4, 4)), (0, 2))
    with pytest.raises(ValueError, match="constant"):
        normalize_intensity(np.ones((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        normalize_intensity(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="mask must have the image's shape"):
        normalize_intensity(np.arange(12.0).reshape(3, 4), mask=np.ones((4, 3), bool))


def test_drive_dataset_items(drive_tree):
    samples = read_drive(drive_tree)
    dataset = DriveDataset(samples, size=64, augment="isometry", maps="resized")
    item = dataset[0]
    assert item["image"].shape == (3, 64, 64) and item["target"].shape == (2, 64, 64)
    assert item["dist_maps"].shape == (2, 64, 64) and item["roi"].dtype.is_floating_point is False
    labels = item["target"].argmax(0).numpy()
    spacing = drive_map_spacing((64, 64))  # pixels of the report's 256-px images: 4 per pixel here
    np.testing.assert_allclose(item["dist_maps"].numpy(), class_distance_maps(labels, 2, spacing), atol=1e-4)
    assert item["spacing"].tolist() == [4.0, 4.0]
    with pytest.raises(ValueError, match="no vessel annotation"):
        DriveDataset(read_drive(drive_tree, "test"), size=64)
    with pytest.raises(ValueError, match="augment must be one of"):
        DriveDataset(samples, augment="elastic")


def test_drive_maps_have_one_unit_at_every_size(drive_tree):
    """The vessel map's mean over the field of view does not depend on the size the network sees.

    The maps are computed on the native annotation and resampled, in pixels of the
    report's 256-px images (maps of the shrunken annotation would be larger at 128 px,
    where thin vessels vanish).
    """
    samples = read_drive(drive_tree)
    native = DriveDataset(samples, size=None)
    reference = np.mean([m[1][roi].mean() for m, roi in zip(native.maps, native.rois)])
    for size in (128, 256):
        resized = DriveDataset(samples, size=size)
        mean = np.mean([m[1][roi].mean() for m, roi in zip(resized.maps, resized.rois)])
        assert mean == pytest.approx(reference, rel=0.10), size
    # patches are crops of the native maps (next test), so they share the native maps' values and unit
    assert DrivePatches(samples, patch_size=64).whole.spacings.tolist() == native.spacings.tolist()


def test_drive_patches_are_cut_from_maps_of_whole_images(drive_tree):
    samples = read_drive(drive_tree)
    patches = DrivePatches(samples[:1], patch_size=48, patches_per_image=5, augment="none")
    whole = class_distance_maps(samples[0].vessels.astype(np.uint8), 2, drive_map_spacing((584, 565)))
    torch.manual_seed(3)
    for index in range(len(patches)):
        item = patches[index]
        maps = item["dist_maps"].numpy()
        rows, cols = np.argwhere((whole[1] == maps[1][0, 0]) & (whole[0] == maps[0][0, 0])).T
        found = [(r, c) for r, c in zip(rows, cols) if np.array_equal(whole[:, r : r + 48, c : c + 48], maps)]
        assert found, "a patch's map is a crop of the whole image's map"
        r, c = found[0]
        assert samples[0].fov[r + 24, c + 24], "the patch is centred in the field of view"
    assert patches[0]["image"].shape == (3, 48, 48)
    with pytest.raises(ValueError, match="patch_size must fit"):
        DrivePatches(samples, patch_size=600)


def test_acdc_dataset_uses_3d_maps_of_the_resized_volume(acdc_tree):
    patients = read_acdc(acdc_tree)
    dataset = AcdcDataset(patients[:1], size=48, crop_mm=150, phases=("ED",))
    indices = dataset.volumes[("patient001", "ED")]
    info = dataset.slices[indices[0]]
    labels = dataset.labels[indices]
    expected = class_distance_maps(labels, 4, info.spacing)  # the heart lies inside the crop: the same maps
    np.testing.assert_allclose(dataset.maps[indices].transpose(1, 0, 2, 3), expected, atol=1e-4)
    assert info.spacing[1] == pytest.approx(150 / 48, rel=0.02)
    with pytest.raises(ValueError, match="phases"):
        AcdcDataset(patients[:1], size=48, phases=("diastole",))
    with pytest.raises(ValueError, match="size must be an integer >= 1"):
        AcdcDataset(patients[:1], size=0)
    flat = AcdcDataset(patients[:1], size=48, phases=("ED",), maps="2d")
    z = flat.volumes[("patient001", "ED")][2]
    np.testing.assert_allclose(flat.maps[z], class_distance_maps(flat.labels[z], 4, flat.slices[z].spacing[1:]))


def test_acdc_maps_are_computed_before_the_crop():
    """A structure outside the crop still has its true distance inside the crop."""
    labels = np.zeros((2, 100, 100), np.uint8)
    labels[:, 40:60, 40:60] = 3  # LV in the centre
    labels[:, 2:8, 2:8] = 1  # RV only in a corner, outside a 50 mm crop
    image = np.random.default_rng(0).normal(size=labels.shape).astype(np.float32)
    patient = AcdcPatient("patient999", {"ED": 1, "ES": 1}, {"ED": AcdcFrame(image, labels, (10.0, 1.0, 1.0))})
    dataset = AcdcDataset([patient], size=50, crop_mm=50, phases=("ED",))
    rv_map = dataset.maps[:, 1]
    assert not (dataset.labels == 1).any() and rv_map.min() > 20  # cropping first would give all zeros
    full = class_distance_maps(labels, 4, (10.0, 1.0, 1.0))[1]
    np.testing.assert_allclose(rv_map, full[:, 25:75, 25:75], atol=1e-4)


def test_labelled_images_and_lesions():
    images, labels = lesion_images(6, 64, percent=5.0, seed=1)
    again, _ = lesion_images(6, 64, percent=5.0, seed=1)
    assert np.array_equal(images, again) and 2 < 100 * labels.mean() < 8
    dataset = LabelledImages(images, labels, 2, spacing=(1.0, 1.0))
    np.testing.assert_array_equal(dataset.maps[3], class_distance_maps(labels[3], 2))
    with pytest.raises(ValueError, match="labels must have shape"):
        LabelledImages(images, labels[:, :10], 2)
    with pytest.raises(ValueError, match="percent must be at most 30"):
        lesion_images(2, 32, percent=50)


def test_split_three_is_disjoint_and_repeatable():
    ids = [f"p{i:02d}" for i in range(20)]
    train, select, report = split_three(ids, 4, 5, seed=2)
    assert (len(train), len(select), len(report)) == (11, 4, 5)
    assert set(train) | set(select) | set(report) == set(ids) and not (set(select) & set(report))
    assert split_three(ids[::-1], 4, 5, seed=2) == (train, select, report)


def test_split_items_by_patient():
    train, val = split_items([f"p{i}" for i in range(10)], 3, seed=1)
    assert len(val) == 3 and not set(train) & set(val) and split_items(train + val, 3, seed=1)[1] == val
    with pytest.raises(ValueError, match="n_val"):
        split_items(["a", "b"], 2, seed=0)
