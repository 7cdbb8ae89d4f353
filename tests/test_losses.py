"""Losses against explicit formulas, gradients, the minimum at the ground truth, bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bl_tutorial.combined import CombinedLoss
from bl_tutorial.distance import signed_distance
from bl_tutorial.losses import (
    BoundaryLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    GeneralizedDiceLoss,
    boundary_loss,
    cross_entropy,
    dice_loss,
    focal_loss,
    generalized_dice_loss,
)
from conftest import masks, random_case

shapes = st.sampled_from([(5, 6), (3, 4, 5), (1, 9)])


@given(seed=st.integers(0, 10_000), spatial=shapes, k=st.integers(2, 4), batch=st.integers(1, 3))
def test_boundary_loss_is_the_inner_product(seed, spatial, k, batch):
    probs, _, maps, _ = random_case(seed, batch, k, spatial)
    explicit_sum = sum(float((probs[b] * maps[b]).sum()) for b in range(batch)) / batch
    voxels = int(np.prod(spatial))
    assert float(boundary_loss(probs, maps, reduction="sum")) == pytest.approx(explicit_sum, rel=1e-5, abs=1e-4)
    assert float(boundary_loss(probs, maps, reduction="mean")) == pytest.approx(
        explicit_sum / (k * voxels), rel=1e-5, abs=1e-6
    )
    only = [k - 1]
    explicit_one = float((probs[:, only] * maps[:, only]).sum()) / batch
    selected = float(boundary_loss(probs, maps, classes=only, reduction="sum"))
    assert selected == pytest.approx(explicit_one, rel=1e-5, abs=1e-4)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_boundary_loss_gradient_is_phi_over_normaliser(reduction):
    probs, _, maps, _ = random_case(3, batch=2, classes=3, spatial=(5, 4))
    probs = probs.detach().requires_grad_(True)
    boundary_loss(probs, maps, classes=[1, 2], reduction=reduction).backward()
    normaliser = 2 if reduction == "sum" else 2 * 2 * 20
    expected = maps.clone() / normaliser
    expected[:, 0] = 0
    torch.testing.assert_close(probs.grad, expected)


@given(ground_truth=masks(2, max_side=8), data=st.data())
def test_ground_truth_minimises_the_boundary_loss(ground_truth, data):
    """<s, phi> >= <g, phi> for every binary s, and the gap is |phi| over the symmetric difference."""
    phi = signed_distance(ground_truth).astype(np.float64)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    segmentation = rng.random(ground_truth.shape) < data.draw(st.floats(0, 1))
    loss_s = float((segmentation * phi).sum())
    loss_g = float((ground_truth * phi).sum())
    assert loss_s >= loss_g - 1e-6
    difference = segmentation ^ ground_truth
    assert loss_s - loss_g == pytest.approx(np.abs(phi[difference]).sum(), abs=1e-6)
    # the same through the torch function, with the one-hot segmentation as probabilities
    as_probs = torch.from_numpy(np.stack([~segmentation, segmentation])[None].astype(np.float32))
    maps = torch.from_numpy(np.stack([np.zeros_like(phi), phi])[None].astype(np.float32))
    assert float(boundary_loss(as_probs, maps, classes=[1], reduction="sum")) == pytest.approx(loss_s, abs=1e-3)


def test_cross_entropy_is_equation_5_for_two_classes():
    probs, target, _, _ = random_case(5, batch=1, classes=2)
    c, g = probs[0, 1].double(), target[0, 1].double()
    eq5 = -(g * torch.log(c) + (1 - g) * torch.log(1 - c)).mean()
    assert float(cross_entropy(probs, target)) == pytest.approx(float(eq5), rel=1e-5)
    assert float(cross_entropy(probs, target, reduction="sum")) == pytest.approx(float(eq5) * 42, rel=1e-5)


@given(seed=st.integers(0, 10_000), k=st.integers(2, 4), spatial=shapes)
def test_focal_with_gamma_zero_is_cross_entropy(seed, k, spatial):
    probs, target, _, _ = random_case(seed, 2, k, spatial)
    torch.testing.assert_close(focal_loss(probs, target, gamma=0), cross_entropy(probs, target))
    assert float(focal_loss(probs, target, gamma=2)) < float(cross_entropy(probs, target))


def test_focal_is_equation_7_for_two_classes():
    probs, target, _, _ = random_case(8, batch=1, classes=2)
    c, g, gamma = probs[0, 1].double(), target[0, 1].double(), 1.5
    eq7 = -(g * (1 - c) ** gamma * torch.log(c) + (1 - g) * c**gamma * torch.log(1 - c)).mean()
    assert float(focal_loss(probs, target, gamma=gamma)) == pytest.approx(float(eq7), rel=1e-5)


@pytest.mark.parametrize("weighting, power", [("sudre", 2), ("report", 1)])
def test_generalized_dice_is_equation_6(weighting, power):
    probs, target, _, _ = random_case(11, batch=2, classes=2, spatial=(8, 8))
    per_image = []
    for b in range(2):
        c, g = probs[b, 1].double(), target[b, 1].double()
        w1, w0 = 1 / g.sum() ** power, 1 / (1 - g).sum() ** power
        numerator = w1 * (g * c).sum() + w0 * ((1 - g) * (1 - c)).sum()
        denominator = w1 * (c + g).sum() + w0 * (2 - c - g).sum()
        per_image.append(1 - 2 * numerator / denominator)
    expected = float(torch.stack(per_image).mean())
    assert float(generalized_dice_loss(probs, target, weighting=weighting)) == pytest.approx(expected, rel=1e-5)


def test_dice_losses_vanish_at_the_truth_and_grow_with_errors():
    _, target, _, _ = random_case(2, batch=2, classes=3)
    assert float(dice_loss(target, target)) == pytest.approx(0, abs=1e-6)
    assert float(generalized_dice_loss(target, target)) == pytest.approx(0, abs=1e-6)
    flipped = target.flip(1)
    assert float(dice_loss(flipped, target)) > 0.5


def test_three_dimensional_inputs():
    probs, target, maps, _ = random_case(4, batch=1, classes=4, spatial=(3, 5, 6))
    for value in (
        boundary_loss(probs, maps),
        cross_entropy(probs, target),
        focal_loss(probs, target),
        generalized_dice_loss(probs, target),
        dice_loss(probs, target),
    ):
        assert torch.isfinite(value) and value.ndim == 0


def test_modules_match_functions():
    probs, target, maps, _ = random_case(6)
    torch.testing.assert_close(BoundaryLoss([1, 2], "sum")(probs, maps), boundary_loss(probs, maps, [1, 2], "sum"))
    torch.testing.assert_close(CrossEntropyLoss()(probs, target), cross_entropy(probs, target))
    torch.testing.assert_close(FocalLoss(1.0)(probs, target), focal_loss(probs, target, 1.0))
    torch.testing.assert_close(GeneralizedDiceLoss()(probs, target), generalized_dice_loss(probs, target))
    torch.testing.assert_close(DiceLoss()(probs, target), dice_loss(probs, target))


def test_bad_probabilities():
    probs, target, maps, _ = random_case(1)
    bad_nan = probs.clone()
    bad_nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="probs must be finite"):
        boundary_loss(bad_nan, maps)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        cross_entropy(probs * 2 - 0.5, target)
    with pytest.raises(ValueError, match="sum to 1"):
        generalized_dice_loss(probs * 0.5, target)
    with pytest.raises(ValueError, match="K >= 2"):
        dice_loss(probs[:, :1], target[:, :1])
    with pytest.raises(ValueError, match="shape"):
        boundary_loss(probs[0, 0], maps[0, 0])
    with pytest.raises(TypeError, match="torch.Tensor"):
        boundary_loss(probs.numpy(), maps)
    with pytest.raises(TypeError, match="floating-point"):
        boundary_loss(probs, maps.long())
    with pytest.raises(ValueError, match="at least one image"):
        cross_entropy(probs[:0], target[:0])  # an empty batch would give NaN


def test_bad_targets_maps_and_options():
    probs, target, maps, _ = random_case(1)
    with pytest.raises(ValueError, match="same shape as probs"):
        cross_entropy(probs, target[:, :2])
    with pytest.raises(ValueError, match="one-hot"):
        cross_entropy(probs, target * 2)
    with pytest.raises(ValueError, match="exactly one class"):
        focal_loss(probs, torch.zeros_like(target))
    with pytest.raises(ValueError, match="dist_maps must have the same shape"):
        boundary_loss(probs, maps[:, :2])
    nan_maps = maps.clone()
    nan_maps[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="dist_maps must be finite"):
        boundary_loss(probs, nan_maps)
    with pytest.raises(ValueError, match=r"classes must lie in \[0, 3\)"):
        boundary_loss(probs, maps, classes=[3])
    with pytest.raises(TypeError, match="sequence of class indices"):
        boundary_loss(probs, maps, classes=1)
    with pytest.raises(TypeError, match="integer class indices"):
        BoundaryLoss(classes=[1.0])
    with pytest.raises(ValueError, match=r"BoundaryLoss.classes must lie in \[0, 3\)"):
        CombinedLoss(None, BoundaryLoss(classes=[5]))(probs, target, maps)
    with pytest.raises(ValueError, match="repeat"):
        boundary_loss(probs, maps, classes=[1, 1])
    with pytest.raises(ValueError, match="at least one class"):
        boundary_loss(probs, maps, classes=[])
    with pytest.raises(ValueError, match="reduction must be one of"):
        boundary_loss(probs, maps, reduction="none")
    with pytest.raises(ValueError, match="gamma"):
        focal_loss(probs, target, gamma=-1)
    with pytest.raises(TypeError, match="gamma must be a number"):
        focal_loss(probs, target, gamma="2")
    with pytest.raises(ValueError, match="smooth must be > 0"):
        dice_loss(probs, target, smooth=0)
    with pytest.raises(ValueError, match="weighting"):
        generalized_dice_loss(probs, target, weighting="squared")


def test_focal_gradient_is_finite_where_a_voxel_is_certain():
    logits = torch.tensor([[[[40.0, 0.0]], [[-40.0, 0.0]]]], requires_grad=True)  # p = 1 exactly in float32
    probs = torch.softmax(logits, 1)
    target = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]])
    assert probs[0, 0, 0, 0].item() == 1.0
    for gamma in (0.25, 0.5, 2.0):
        (grad,) = torch.autograd.grad(focal_loss(probs, target, gamma=gamma), logits, retain_graph=True)
        assert torch.isfinite(grad).all(), gamma


def test_cross_entropy_mean_over_a_class_subset_uses_the_official_normaliser():
    probs, target, _, _ = random_case(4, classes=3)
    labelled = target[:, [1, 2]].sum()
    official = -(target[:, [1, 2]] * torch.log(probs[:, [1, 2]] + 1e-10)).sum() / labelled
    torch.testing.assert_close(cross_entropy(probs, target, classes=[1, 2]), official)
    everything = -(target * torch.log(probs + 1e-10)).sum(1).mean()
    torch.testing.assert_close(cross_entropy(probs, target), everything)  # all classes: every voxel


def test_float64_inputs_stay_float64_and_pass_gradcheck():
    probs, target, maps, _ = random_case(5, classes=2)
    logits = torch.log(probs.double()).detach().requires_grad_(True)
    for loss in (
        lambda p: cross_entropy(p, target.double()),
        lambda p: focal_loss(p, target.double(), gamma=2.0),
        lambda p: generalized_dice_loss(p, target.double()),
        lambda p: dice_loss(p, target.double()),
        lambda p: boundary_loss(p, maps.double()),
    ):
        assert loss(torch.softmax(logits, 1)).dtype == torch.float64
        assert torch.autograd.gradcheck(lambda x, f=loss: f(torch.softmax(x, 1)), (logits,))


def test_zero_classes_and_bfloat16_probabilities():
    with pytest.raises(ValueError, match="at least one image"):
        boundary_loss(torch.zeros(1, 0, 3, 3), torch.zeros(1, 0, 3, 3))
    probs, _, maps, _ = random_case(10, classes=3)
    assert torch.isfinite(boundary_loss(probs.bfloat16(), maps.bfloat16()))  # bfloat16 sums are coarser
