"""The readers of the official DRIVE and ACDC layouts, the stand-ins written in them, and bad files."""

import codecs

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from bl_tutorial.data import (
    read_acdc,
    read_drive,
    real_fundus,
    synthetic,
)
from bl_tutorial.data.acdc import read_info, read_nifti
from conftest import SMALL_DRIVE, copy_tree


def test_drive_standin_round_trip(drive_tree):
    training = read_drive(drive_tree, "training")
    assert [s.id for s in training] == ["21", "22"]
    for sample in training:
        assert sample.image.shape == (584, 565, 3) and sample.image.dtype == np.uint8
        fraction = sample.vessels[sample.fov].mean()
        assert 0.10 <= fraction <= 0.14, fraction
        diameter = sample.fov.any(0).sum()
        assert 530 <= diameter <= 550
        assert not sample.vessels[~sample.fov].any()
        # vessels darker mostly in green
        inside, outside = sample.vessels, sample.fov & ~sample.vessels
        drop = [sample.image[..., c][outside].mean() - sample.image[..., c][inside].mean() for c in range(3)]
        assert drop[1] > drop[0] and drop[1] > drop[2] > 0
    expected = synthetic.drive_like_sample(SMALL_DRIVE.seed * 1000 + 21)
    np.testing.assert_array_equal(training[0].image, expected[0])
    np.testing.assert_array_equal(training[0].vessels, expected[1])
    test = read_drive(drive_tree, "test")
    assert [s.id for s in test] == ["01"] and test[0].vessels is None


def test_drive_is_not_a_threshold(drive_tree):
    """The best single green-channel threshold stays far from a perfect segmentation."""
    from bl_tutorial.metrics import dice_score

    sample = read_drive(drive_tree)[0]
    green = sample.image[..., 1].astype(float)
    best = max(dice_score((green < t) & sample.fov, sample.vessels, sample.fov) for t in range(20, 200, 5))
    assert best < 0.75


def test_acdc_standin_round_trip(acdc_tree):
    patients = read_acdc(acdc_tree, "training")
    assert [p.id for p in patients] == ["patient001", "patient002"]
    for patient in patients:
        assert set(patient.info) >= {"ED", "ES", "Group", "Height", "Weight", "NbFrame"}
        ed, es = patient.frames["ED"], patient.frames["ES"]
        assert ed.image.dtype == np.float32 and ed.labels.dtype == np.uint8
        assert 6 <= ed.image.shape[0] <= 10 and ed.image.shape == ed.labels.shape
        assert 5 <= ed.spacing[0] <= 10 and 1.3 <= ed.spacing[1] == ed.spacing[2] <= 1.7
        fractions = np.bincount(ed.labels.ravel(), minlength=4) / ed.labels.size
        assert fractions[0] > 0.9 and all(0.001 < f < 0.05 for f in fractions[1:])
        assert not (ed.labels[-1] == 1).any()  # apical slice without RV
        assert (es.labels == 3).sum() < (ed.labels == 3).sum()  # smaller LV at ES
    expected_image, expected_labels, spacing = synthetic.acdc_like_volume(1, "ED")
    np.testing.assert_array_equal(patients[0].frames["ED"].labels, expected_labels)
    np.testing.assert_allclose(patients[0].frames["ED"].spacing, spacing, rtol=1e-6)
    assert [p.id for p in read_acdc(acdc_tree, "testing")] == ["patient101"]


def test_nifti_axes_and_anisotropic_spacing(tmp_path):
    """NIfTI (x, y, z) with zooms (1.2, 0.8, 7.0) reads as (z, y, x) with spacing (7.0, 0.8, 1.2)."""
    data = np.arange(5 * 4 * 3, dtype=np.int16).reshape(5, 4, 3)  # x, y, z
    image = nib.Nifti1Image(data, np.diag([1.2, 0.8, 7.0, 1.0]))
    nib.save(image, str(tmp_path / "v.nii.gz"))
    volume, spacing = read_nifti(tmp_path / "v.nii.gz")
    assert volume.shape == (3, 4, 5) and spacing == pytest.approx((7.0, 0.8, 1.2))
    assert volume[2, 1, 4] == data[4, 1, 2]


def test_missing_folders_say_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"training/images/\*\.tif.*drive.grand-challenge"):
        read_drive(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"patientXXX/Info.cfg.*humanheart"):
        read_acdc(tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        read_drive(tmp_path, "validation")


def test_corrupt_and_invalid_drive_files(drive_tree, tmp_path):
    tree = copy_tree(drive_tree, tmp_path / "d")
    image = tree / "training/images/21_training.tif"
    image.write_bytes(image.read_bytes()[:500])
    with pytest.raises(ValueError, match="21_training.tif"):
        read_drive(tree)
    tree = copy_tree(drive_tree, tmp_path / "e")
    gif = tree / "training/1st_manual/22_manual1.gif"
    Image.fromarray(np.full((584, 565), 128, np.uint8), "L").save(gif)
    with pytest.raises(ValueError, match="22_manual1.gif.*binary"):
        read_drive(tree)
    tree = copy_tree(drive_tree, tmp_path / "f")
    Image.fromarray(np.zeros((100, 100), np.uint8), "L").save(tree / "training/mask/21_training_mask.gif")
    with pytest.raises(ValueError, match="21_training.tif.*mask"):
        read_drive(tree)
    tree = copy_tree(drive_tree, tmp_path / "g")
    (tree / "training/mask/22_training_mask.gif").unlink()
    with pytest.raises(FileNotFoundError, match="22_training_mask.gif"):
        read_drive(tree)


def test_invalid_acdc_files(acdc_tree, tmp_path):
    tree = copy_tree(acdc_tree, tmp_path / "a")
    info = tree / "training/patient001/Info.cfg"
    info.write_text("ED: 1\nGroup: NOR\n")
    with pytest.raises(ValueError, match="Info.cfg.*'ES:'"):
        read_acdc(tree)
    tree = copy_tree(acdc_tree, tmp_path / "b")
    gt = tree / "training/patient002/patient002_frame01_gt.nii.gz"
    image = nib.load(str(gt))
    bad = np.asarray(image.dataobj).copy()
    bad[0, 0, 0] = 5
    nib.save(nib.Nifti1Image(bad, image.affine, image.header), str(gt))
    with pytest.raises(ValueError, match=r"patient002_frame01_gt.*\{0, 1, 2, 3\}"):
        read_acdc(tree)
    nib.save(nib.Nifti1Image(bad[:-1], image.affine, image.header), str(gt))
    with pytest.raises(ValueError, match="shape"):
        read_acdc(tree)
    gt.write_bytes(gt.read_bytes()[:200])
    with pytest.raises(ValueError, match="patient002_frame01_gt.nii.gz.*corrupt"):
        read_acdc(tree)
    with pytest.raises(FileNotFoundError):
        read_info(tmp_path / "nothing.cfg")


def test_real_fundus_is_labelled_as_pseudo():
    example = real_fundus(128)
    assert "not an expert annotation" in example.note and "CC0" in example.source
    assert 0.05 < example.vessels[example.fov].mean() < 0.2


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_tiffs_with_more_than_8_bits_are_refused(drive_tree, tmp_path, dtype):
    tree = copy_tree(drive_tree, tmp_path / "d")
    ramp = np.linspace(0, 4000 if dtype == np.uint16 else 1, 584 * 565).reshape(584, 565).astype(dtype)
    Image.fromarray(ramp).save(tree / "training/images/21_training.tif")
    with pytest.raises(ValueError, match="21_training.tif.*8-bit"):
        read_drive(tree)


def test_a_zero_voxel_size_is_refused(tmp_path):
    image = nib.Nifti1Image(np.zeros((4, 4, 3), np.int16), np.diag([1.5, 1.5, 10.0, 1.0]))
    image.header["pixdim"][1:4] = [1.5, 0.0, 10.0]  # nibabel reads a 0 as 1 mm
    nib.save(image, str(tmp_path / "v.nii.gz"))
    with pytest.raises(ValueError, match=r"v.nii.gz.*pixdim.*0"):
        read_nifti(tmp_path / "v.nii.gz")


def test_an_inverted_field_of_view_is_refused(drive_tree, tmp_path):
    tree = copy_tree(drive_tree, tmp_path / "d")
    mask = tree / "training/mask/21_training_mask.gif"
    inverted = 255 - np.asarray(Image.open(mask).convert("L"))
    Image.fromarray(inverted).save(mask)
    with pytest.raises(ValueError, match="21_training_mask.gif.*inverted"):
        read_drive(tree)


def test_info_cfg_with_a_byte_order_mark_or_in_utf16_or_not_utf8(tmp_path):
    path = tmp_path / "Info.cfg"
    path.write_bytes(codecs.BOM_UTF8 + b"ED: 1\nES: 12\nGroup: NOR\n")
    assert read_info(path)["ED"] == 1
    path.write_bytes("ED: 1\nES: 12\n".encode("utf-16"))  # Windows "Unicode" text
    assert read_info(path)["ES"] == 12
    path.write_bytes(b"ED: 1\nES: 12\nGroup: caf\xe9\n")
    with pytest.raises(ValueError, match="Info.cfg.*UTF-8"):
        read_info(path)


def test_macos_appledouble_files_are_skipped(drive_tree, tmp_path):
    tree = copy_tree(drive_tree, tmp_path / "d")
    (tree / "training/images/._21_training.tif").write_bytes(b"\x00\x05\x16\x07" + bytes(300))
    assert [s.id for s in read_drive(tree)] == [s.id for s in read_drive(drive_tree)]
