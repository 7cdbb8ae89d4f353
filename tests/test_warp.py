"""BatchWarp: determinism, identity, one-hot labels, recomputed maps, outside the image; warp_error; bad input."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from bl_tutorial.data.warp import BatchWarp, WarpError, warp_error, warp_tensor
from bl_tutorial.distance_torch import batch_distance_maps

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
IDENTITY = BatchWarp(rotation=0.0, scale=0.0, shear=0.0, translation=0.0, elastic=0.0)
STRONG = BatchWarp(rotation=30.0, scale=0.2, shear=10.0, translation=0.1, elastic=3.0, smoothness=12.0)


def make_batch(shape=(3, 40, 44), num_classes=3, spacing=None, seed=0, device="cpu") -> dict:
    """A collated batch like the training datasets give: smooth labels, an image, a roi, per-item spacing."""
    rng = np.random.default_rng(seed)
    field = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape[1:]), 3) for _ in range(shape[0])])
    labels = torch.from_numpy(np.digitize(field, np.quantile(field, [0.6, 0.85])[: num_classes - 1]))
    spacing = torch.tensor(spacing if spacing is not None else [[1.0, 1.0], [0.5, 0.8], [2.0, 2.0]][: shape[0]])
    spacing = spacing.float()
    batch = {
        "image": torch.from_numpy(field[:, None].astype(np.float32)),
        "target": F.one_hot(labels, num_classes).movedim(-1, 1).float(),
        "dist_maps": batch_distance_maps(labels, num_classes, spacing),
        "roi": torch.from_numpy(rng.random(shape) < 0.9),
        "spacing": spacing,
        "index": torch.arange(shape[0]),
        "name": ["a", "b", "c"][: shape[0]],
    }
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_same_generator_same_warp_other_seed_other_warp():
    batch = make_batch()
    first, second, other = STRONG(batch, seeded(1)), STRONG(batch, seeded(1)), STRONG(batch, seeded(2))
    for key in ("image", "target", "dist_maps", "roi"):
        assert torch.equal(first[key], second[key])
    assert not torch.equal(first["image"], other["image"])


def test_zero_strength_is_the_identity():
    batch = make_batch()
    assert IDENTITY.is_identity and IDENTITY.describe() == "no warp"
    out = IDENTITY(batch, seeded())
    torch.testing.assert_close(out["image"], batch["image"], atol=1e-5, rtol=0)
    for key in ("target", "roi", "dist_maps"):
        assert torch.equal(out[key], batch[key]), key
    for key in ("spacing", "index", "name"):
        assert out[key] is batch[key]


def test_labels_stay_one_hot_and_maps_are_recomputed_from_them():
    batch = make_batch()
    out = STRONG(batch, seeded(3))
    target = out["target"]
    assert target.dtype == torch.float32 and target.shape == batch["target"].shape
    assert set(target.unique().tolist()) <= {0.0, 1.0} and torch.equal(target.sum(1), torch.ones_like(target[:, 0]))
    labels = target.argmax(1)
    assert not torch.equal(labels, batch["target"].argmax(1))  # it did move
    expected = batch_distance_maps(labels, 3, batch["spacing"])  # each item with its own spacing
    assert torch.equal(out["dist_maps"], expected)
    assert out["roi"].dtype == torch.bool and out["image"].dtype == torch.float32
    official = BatchWarp(rotation=30.0, convention="official")(batch, seeded(3))
    labels = official["target"].argmax(1)
    assert torch.equal(official["dist_maps"], batch_distance_maps(labels, 3, batch["spacing"], "official"))


def test_outside_the_image_is_zero_background_and_out_of_roi():
    batch = make_batch()
    batch["image"] = batch["image"] + 5.0  # no zero inside the image
    batch["roi"] = torch.ones_like(batch["roi"])
    warp = BatchWarp(rotation=40.0, scale=0.5, translation=0.3)
    out = warp(batch, seeded(4))
    grid = warp.sampling_grid(batch["spacing"], (40, 44), seeded(4))  # the same draw
    size = torch.tensor([44, 40])
    source = ((grid + 1) * size - 1) / 2  # (x, y) source pixel index
    outside = ((source < -1) | (source > size)).any(-1)  # farther than a pixel from the image
    assert outside.sum() > 100 and (~outside).sum() > 100
    assert (out["image"][:, 0][outside] == 0).all()
    assert (out["target"][:, 0][outside] == 1).all()  # background
    assert not out["roi"][outside].any()
    assert (out["image"][:, 0][~outside] != 0).any() and out["roi"][~outside].any()


def test_volumes_are_warped_in_plane_alike_on_every_slice():
    plane = make_batch((2, 24, 28), 2)
    depth = 3
    batch = {
        "image": plane["image"][:, :, None].repeat(1, 1, depth, 1, 1),
        "target": plane["target"][:, :, None].repeat(1, 1, depth, 1, 1),
        "roi": plane["roi"][:, None].repeat(1, depth, 1, 1),
        "spacing": torch.tensor([[5.0, 1.0, 1.0], [3.0, 0.5, 0.7]]),
    }
    out = STRONG(batch, seeded(5))
    flat = STRONG({**plane, "spacing": batch["spacing"][:, 1:]}, seeded(5))
    for z in range(depth):
        assert torch.equal(out["image"][:, :, z], flat["image"])
        assert torch.equal(out["target"][:, :, z], flat["target"])
        assert torch.equal(out["roi"][:, z], flat["roi"])
    assert torch.equal(out["dist_maps"], batch_distance_maps(out["target"].argmax(1), 2, batch["spacing"]))


def test_warp_tensor_keeps_shape_and_dtype():
    grid = IDENTITY.sampling_grid(torch.ones(2, 2), (5, 6))
    labels = torch.randint(0, 4, (2, 5, 6), dtype=torch.uint8)
    assert torch.equal(warp_tensor(labels, grid, "nearest"), labels)
    with pytest.raises(ValueError, match="mode must be 'nearest'"):
        warp_tensor(labels, grid, "bilinear")


def test_settings_are_named_and_json_serialisable():
    record = json.loads(json.dumps(dataclasses.asdict(STRONG)))
    assert record == {
        "rotation": 30.0,
        "scale": 0.2,
        "shear": 10.0,
        "translation": 0.1,
        "elastic": 3.0,
        "smoothness": 12.0,
        "convention": "exact",
        "maps": "recompute",
    }
    assert BatchWarp(**record) == STRONG
    assert STRONG.name.startswith("warp(rotation=30, scale=0.2,") and "elastic=3" in STRONG.name
    assert "rotations up to 30 deg" in STRONG.describe() and "elastic" in STRONG.describe()
    assert isinstance(BatchWarp(rotation=5).rotation, float)


# ----------------------------------------------------------------- warp_error
def test_warp_error_is_zero_without_warp_and_grows_with_strength():
    batch = make_batch()
    labels, maps, spacing = batch["target"].argmax(1), batch["dist_maps"], batch["spacing"]
    none = warp_error(labels, maps, spacing, IDENTITY, seeded())
    assert isinstance(none, WarpError)
    assert none.largest < 1e-4 and none.mean < 1e-5 and none.relative_loss < 1e-5
    errors = [
        warp_error(labels, maps, spacing, BatchWarp(rotation=0.0, scale=s, translation=0.0), seeded(6))
        for s in (0.05, 0.2, 0.5)
    ]
    assert 0 < errors[0].mean < errors[1].mean < errors[2].mean
    assert errors[0].relative_loss < errors[2].relative_loss
    elastic = [
        warp_error(labels, maps, spacing, BatchWarp(rotation=0, scale=0, translation=0, elastic=e), seeded(7))
        for e in (1.0, 6.0)
    ]
    assert 0 < elastic[0].mean < elastic[1].mean


def test_warp_error_with_probabilities():
    batch = make_batch()
    labels, maps, spacing = batch["target"].argmax(1), batch["dist_maps"], batch["spacing"]
    probs = torch.softmax(torch.randn(maps.shape, generator=seeded(8)), 1)
    result = warp_error(labels, maps, spacing, STRONG, seeded(9), probs=probs)
    assert result.relative_loss == pytest.approx(
        abs(result.loss_warped - result.loss_recomputed) / abs(result.loss_recomputed)
    )


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "settings, error, message",
    [
        ({"rotation": -1.0}, ValueError, "rotation must be >= 0, got -1"),
        ({"rotation": 200.0}, ValueError, "rotation must be at most 180, got 200"),
        ({"scale": float("nan")}, ValueError, "scale must be finite"),
        ({"shear": "5"}, TypeError, "shear must be a number"),
        ({"translation": 2.0}, ValueError, "translation must be at most 1"),
        ({"elastic": -2.0}, ValueError, "elastic must be >= 0"),
        ({"smoothness": 0.5}, ValueError, "smoothness must be >= 1"),
        ({"convention": "paper"}, ValueError, "convention must be one of"),
    ],
)
def test_bad_settings(settings, error, message):
    with pytest.raises(error, match=message):
        BatchWarp(**settings)


def test_bad_batches():
    batch = make_batch()
    with pytest.raises(TypeError, match="batch must be a dict"):
        STRONG([batch["image"]])
    with pytest.raises(ValueError, match=r"batch must have the keys.*missing \['spacing'\]"):
        STRONG({k: v for k, v in batch.items() if k != "spacing"})
    with pytest.raises(ValueError, match=r"batch\['image'\] must be a float tensor"):
        STRONG({**batch, "image": batch["image"][:, 0]})
    with pytest.raises(ValueError, match=r"batch\['image'\] and batch\['target'\] must share"):
        STRONG({**batch, "target": batch["target"][:, :, :-1]})
    with pytest.raises(ValueError, match=r"batch\['roi'\] must be a tensor of shape"):
        STRONG({**batch, "roi": batch["roi"][:2]})
    with pytest.raises(ValueError, match=r"batch\['spacing'\] must have shape \(B, 2\)"):
        STRONG({**batch, "spacing": torch.ones(3, 3)})
    with pytest.raises(ValueError, match=r"batch\['spacing'\] must be finite and positive"):
        STRONG({**batch, "spacing": -torch.ones(3, 2)})
    with pytest.raises(ValueError, match=r"batch\['spacing'\] must have one row per item \(3\)"):
        STRONG({**batch, "spacing": torch.ones(2, 2)})
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        STRONG(batch, generator=0)


def test_bad_warp_error_input():
    batch = make_batch()
    labels, maps, spacing = batch["target"].argmax(1), batch["dist_maps"], batch["spacing"]
    with pytest.raises(TypeError, match="warp must be a BatchWarp"):
        warp_error(labels, maps, spacing, {"rotation": 5})
    with pytest.raises(TypeError, match="labels must be a torch.Tensor"):
        warp_error(labels.numpy(), maps, spacing, STRONG)
    with pytest.raises(ValueError, match="maps must have shape"):
        warp_error(labels, maps[:, :, :-1], spacing, STRONG)
    with pytest.raises(TypeError, match=r"spacing must be a tensor of shape \(B, 2\)"):
        warp_error(labels, maps, [1.0, 1.0], STRONG)


# ----------------------------------------------------------------- GPU
@CUDA
def test_warp_on_cuda_stays_there_and_matches_the_cpu_draw():
    cpu = make_batch()
    gpu = make_batch(device="cuda")
    out_gpu, out_cpu = STRONG(gpu, seeded(10)), STRONG(cpu, seeded(10))
    for key in ("image", "target", "dist_maps", "roi"):
        assert out_gpu[key].device.type == "cuda"
    assert torch.equal(out_gpu["dist_maps"], batch_distance_maps(out_gpu["target"].argmax(1), 3, gpu["spacing"]))
    agree = (out_gpu["target"].cpu() == out_cpu["target"]).all(1).float().mean()
    assert agree > 0.999  # the same draw; rounding may move a label at a tie
    torch.testing.assert_close(out_gpu["image"].cpu(), out_cpu["image"], atol=1e-4, rtol=0)


def test_warps_a_collated_batch_of_a_training_dataset():
    from torch.utils.data import DataLoader

    from bl_tutorial.data import LabelledImages

    rng = np.random.default_rng(11)
    labels = np.stack([ndimage.gaussian_filter(rng.standard_normal((32, 32)), 3) for _ in range(4)]) > 0.4
    images = rng.standard_normal((4, 1, 32, 32)).astype(np.float32)
    dataset = LabelledImages(images, labels.astype(np.uint8), 2, spacing=(1.5, 0.75), augment="isometry")
    torch.manual_seed(0)  # the dataset's draws
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert len(set(map(tuple, batch["spacing"].tolist()))) == 2  # quarter turns swapped some items' spacing
    out = STRONG(batch, seeded(12))
    assert set(out) == set(batch) and out["index"] is batch["index"]
    for key in ("image", "target", "dist_maps", "roi"):
        assert out[key].shape == batch[key].shape and out[key].dtype == batch[key].dtype
    assert torch.equal(out["dist_maps"], batch_distance_maps(out["target"].argmax(1), 2, batch["spacing"]))
