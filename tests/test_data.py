"""Readers, stand-ins, ensure_dataset, transforms and datasets."""

import json
import threading
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bl_tutorial.data import (
    AcdcDataset,
    AcdcFrame,
    AcdcPatient,
    DriveDataset,
    DrivePatches,
    LabelledImages,
    ensure_dataset,
    lesion_images,
    read_acdc,
    read_drive,
    real_fundus,
    sources,
    split_items,
    split_three,
    synthetic,
)
from bl_tutorial.data.acdc import read_info, read_nifti
from bl_tutorial.data.datasets import drive_map_spacing
from bl_tutorial.data.download import download, extract_zip
from bl_tutorial.data.transforms import (
    Isometry,
    apply_isometry,
    isometry_spacing,
    normalize_intensity,
    resize_image,
    resize_labels,
)
from bl_tutorial.distance import class_distance_maps

SMALL_DRIVE = synthetic.DriveStandinConfig(n_training=2, n_test=1, seed=0)
SMALL_ACDC = synthetic.AcdcStandinConfig(n_training=2, n_test=1, seed=0)


@pytest.fixture(scope="module")
def drive_tree(tmp_path_factory):
    return synthetic.write_drive_standin(tmp_path_factory.mktemp("drive"), SMALL_DRIVE)


@pytest.fixture(scope="module")
def acdc_tree(tmp_path_factory):
    return synthetic.write_acdc_standin(tmp_path_factory.mktemp("acdc"), SMALL_ACDC)


# ----------------------------------------------------------------- stand-ins and readers
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


# ----------------------------------------------------------------- bad input
def test_missing_folders_say_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"training/images/\*\.tif.*drive.grand-challenge"):
        read_drive(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"patientXXX/Info.cfg.*humanheart"):
        read_acdc(tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        read_drive(tmp_path, "validation")


def _copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_corrupt_and_invalid_drive_files(drive_tree, tmp_path):
    tree = _copy_tree(drive_tree, tmp_path / "d")
    image = tree / "training/images/21_training.tif"
    image.write_bytes(image.read_bytes()[:500])
    with pytest.raises(ValueError, match="21_training.tif"):
        read_drive(tree)
    tree = _copy_tree(drive_tree, tmp_path / "e")
    gif = tree / "training/1st_manual/22_manual1.gif"
    Image.fromarray(np.full((584, 565), 128, np.uint8), "L").save(gif)
    with pytest.raises(ValueError, match="22_manual1.gif.*binary"):
        read_drive(tree)
    tree = _copy_tree(drive_tree, tmp_path / "f")
    Image.fromarray(np.zeros((100, 100), np.uint8), "L").save(tree / "training/mask/21_training_mask.gif")
    with pytest.raises(ValueError, match="21_training.tif.*mask"):
        read_drive(tree)
    tree = _copy_tree(drive_tree, tmp_path / "g")
    (tree / "training/mask/22_training_mask.gif").unlink()
    with pytest.raises(FileNotFoundError, match="22_training_mask.gif"):
        read_drive(tree)


def test_invalid_acdc_files(acdc_tree, tmp_path):
    tree = _copy_tree(acdc_tree, tmp_path / "a")
    info = tree / "training/patient001/Info.cfg"
    info.write_text("ED: 1\nGroup: NOR\n")
    with pytest.raises(ValueError, match="Info.cfg.*'ES:'"):
        read_acdc(tree)
    tree = _copy_tree(acdc_tree, tmp_path / "b")
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


# ----------------------------------------------------------------- ensure_dataset
@pytest.fixture
def small_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(sources.DATA_ENV, raising=False)
    use_small_standins(monkeypatch, drive=SMALL_DRIVE, acdc=SMALL_ACDC)
    return tmp_path / "cache"


def use_small_standins(monkeypatch, **configs):
    """Make ensure_dataset generate small stand-ins (config per data-set name)."""
    for name, config in configs.items():
        monkeypatch.setitem(sources.DATASETS, name, replace(sources.DATASETS[name], standin=config))


def test_ensure_dataset_generates_once_and_reports_standin(small_cache):
    first = ensure_dataset("acdc")
    assert first.kind == "stand-in" and "stand-in" in first.describe() and "generator v" in str(first)
    marker = json.loads((first.root / sources.STANDIN_MARKER).read_text())
    assert marker["generator_version"] == synthetic.GENERATOR_VERSION
    stamp = (first.root / "training/patient001/Info.cfg").stat().st_mtime_ns
    second = ensure_dataset("acdc")
    assert second.root == first.root
    assert (second.root / "training/patient001/Info.cfg").stat().st_mtime_ns == stamp
    assert len(read_acdc(second)) == 2  # usable as a path


def test_ensure_dataset_regenerates_after_a_version_change(small_cache, monkeypatch):
    old = ensure_dataset("acdc").root
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    new = ensure_dataset("acdc").root
    assert new != old and (new / sources.STANDIN_MARKER).is_file()


def test_interrupted_generation_leaves_no_tree(small_cache, monkeypatch):
    def crash(root, config):
        (Path(root) / "training").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setitem(sources.DATASETS, "acdc", replace(sources.DATASETS["acdc"], write_standin=crash))
    with pytest.raises(KeyboardInterrupt):
        ensure_dataset("acdc")
    assert not any(p for p in small_cache.iterdir() if p.name.startswith("acdc"))
    assert not any(small_cache.glob(".tmp-*"))


def test_partial_final_folder_is_not_taken_as_complete(small_cache, monkeypatch):
    monkeypatch.setenv(sources.CACHE_ENV, str(small_cache))
    name = f"acdc-standin-v{synthetic.GENERATOR_VERSION}-seed0-2x1"
    (small_cache / name / "training").mkdir(parents=True)
    source = ensure_dataset("acdc")
    assert source.root.name == name and len(read_acdc(source)) == 2


def test_ensure_dataset_real_roots(small_cache, acdc_tree, drive_tree, tmp_path, monkeypatch):
    real = _copy_tree(acdc_tree, tmp_path / "data" / "ACDC" / "database")
    found = ensure_dataset("acdc", tmp_path / "data")
    assert found.kind == "real" and found.root == real
    monkeypatch.setenv(sources.DATA_ENV, str(tmp_path / "data"))
    assert ensure_dataset("acdc").is_real
    drive = ensure_dataset("drive")  # the variable holds no DRIVE: a stand-in, and it says why
    assert drive.kind == "stand-in" and "holds no DRIVE" in drive.note
    with pytest.raises(FileNotFoundError, match="official layout"):
        ensure_dataset("drive", tmp_path / "data")
    with pytest.raises(ValueError, match="name must be one of"):
        ensure_dataset("isles")
    nested = _copy_tree(drive_tree, tmp_path / "dl" / "DRIVE" / "DRIVE")
    assert ensure_dataset("drive", tmp_path / "dl").root in (nested, tmp_path / "dl" / "DRIVE")


# ----------------------------------------------------------------- download helpers
class _RangeHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_RangeHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_and_renames(server, tmp_path):
    """Resuming is tested in test_robustness.py; here a .part without a record of the remote file is not trusted."""
    import hashlib

    folder, url = server
    payload = np.random.default_rng(0).bytes(300_000)
    (folder / "f.bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir()
    (tmp_path / "out" / "f.bin.part").write_bytes(b"?" * 100_000)  # of unknown origin: the download starts again
    assert download(f"{url}/f.bin", dest, digest, progress=False) == dest
    assert dest.read_bytes() == payload and not (tmp_path / "out" / "f.bin.part").exists()
    other = tmp_path / "out" / "g.bin"
    with pytest.raises(ValueError, match="checksum mismatch"):
        download(f"{url}/f.bin", other, "0" * 64, progress=False)
    assert not other.exists() and not (tmp_path / "out" / "g.bin.part").exists()


def test_download_offline_says_what_to_do(tmp_path):
    with pytest.raises(ConnectionError, match="offline"):
        download("http://127.0.0.1:9/none.zip", tmp_path / "x.zip", progress=False, timeout=2)
    assert not (tmp_path / "x.zip").exists()


def test_extract_zip_is_atomic(tmp_path):
    import zipfile

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("training/images/21_training.tif", b"x")
    assert (extract_zip(archive, tmp_path / "x") / "training/images/21_training.tif").is_file()
    broken = tmp_path / "b.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a valid zip"):
        extract_zip(broken, tmp_path / "y")
    assert not (tmp_path / "y").exists() and not list(tmp_path.glob(".tmp-*"))


# ----------------------------------------------------------------- transforms
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


# ----------------------------------------------------------------- datasets
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
    images, labels = lesion_images(6, 32, percent=5.0, seed=1)
    again, _ = lesion_images(6, 32, percent=5.0, seed=1)
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


def test_real_fundus_is_labelled_as_pseudo():
    example = real_fundus(128)
    assert "not an expert annotation" in example.note and "CC0" in example.source
    assert 0.05 < example.vessels[example.fov].mean() < 0.2
