"""Composing losses: schedules that follow training progress, the combination, recipes and their names."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from bl_tutorial.combined import (
    CombinedLoss,
    ConstantAlpha,
    LinearAlpha,
    LossParts,
    Progress,
    RebalanceAlpha,
    WeightedSum,
    alpha_schedule,
    as_loss_parts,
)
from bl_tutorial.losses import (
    BoundaryLoss,
    CrossEntropyLoss,
    FocalLoss,
    GeneralizedDiceLoss,
    boundary_loss,
    cross_entropy,
    focal_loss,
    generalized_dice_loss,
)
from bl_tutorial.recipes import LOSSES, LossEntry, LossSpec, loss_identity
from conftest import random_case


# ----------------------------------------------------------------- schedules
def test_schedules_at_given_epochs():
    assert ConstantAlpha(0.05).weights(100) == (1.0, 0.05)
    literal = LinearAlpha(0.01, 0.01, 0.5, over=None)
    assert literal.weights(3) == (1.0, pytest.approx(0.04)) and literal.weights(1000) == (1.0, 0.5)
    assert RebalanceAlpha(over=None).weights(0) == (1.0, 0.01)
    w_r, w_b = RebalanceAlpha(over=None).weights(150)
    assert w_r == 0.1 and w_b == pytest.approx(1.51)
    assert isinstance(alpha_schedule("linear", step=0.1), LinearAlpha)
    with pytest.raises(ValueError, match="schedule must be one of"):
        alpha_schedule("cosine")
    with pytest.raises(ValueError, match="alpha"):
        ConstantAlpha(-1)
    with pytest.raises(ValueError, match="update must be one of"):
        RebalanceAlpha(update="batch")


@given(epoch=st.integers(0, 15), step=st.floats(0, 1, exclude_max=True), start=st.floats(0, 0.5))
def test_a_schedule_means_the_same_at_the_same_fraction_of_a_short_and_a_long_run(epoch, step, start):
    """A run of 16 and one of 160 epochs get the same weights at every fraction both reach
    (epoch e of 16 is epoch 10 e of 160), per epoch and per step."""
    for schedule in (RebalanceAlpha(start=start), LinearAlpha(start=start), ConstantAlpha(start)):
        short = schedule.weights(Progress(epoch, 16))
        long = schedule.weights(Progress(10 * epoch, 160))
        assert short == pytest.approx(long, abs=1e-12), (schedule, epoch)
    per_step = RebalanceAlpha(start=start, update="step")
    k = round(99 * step)  # step k of 100 in epoch e of 16 is step 10 k mod 100 of epoch 10 e + 10 k // 100 of 160
    short = per_step.weights(Progress(epoch, 16, k, 100))
    long = per_step.weights(Progress(10 * epoch + (10 * k) // 100, 160, (10 * k) % 100, 100))
    assert short == pytest.approx(long, abs=1e-9)


def test_the_official_rebalancing_covers_its_trajectory_whatever_the_length():
    for epochs in (16, 60, 200):
        official = RebalanceAlpha()
        assert official.weights(Progress(0, epochs)) == (1.0, 0.01)
        assert official.floor_fraction(epochs) == pytest.approx(0.45, abs=1 / epochs)  # epoch 90 of 200
        w_r, w_b = official.weights(Progress(epochs - 1, epochs))
        assert w_r == 0.1 and w_b == pytest.approx(0.01 + 2 * (epochs - 1) / epochs)
    assert RebalanceAlpha().weights(Progress(90, 200)) == pytest.approx(RebalanceAlpha(over=None).weights(90))
    literal = RebalanceAlpha(over=None)  # a short run never leaves the start of the trajectory
    assert literal.floor_fraction(18) is None and literal.weights(Progress(17, 18))[0] == pytest.approx(0.83)


def test_per_step_schedules_move_within_an_epoch_and_need_the_run_length():
    per_step = RebalanceAlpha(update="step")
    first, middle = per_step.weights(Progress(0, 10, 0, 4)), per_step.weights(Progress(0, 10, 2, 4))
    assert first == (1.0, 0.01) and middle[1] == pytest.approx(0.01 + 2.0 * 0.05)
    assert RebalanceAlpha().weights(Progress(0, 10, 2, 4)) == (1.0, 0.01)  # per epoch: fixed within it
    with pytest.raises(ValueError, match="needs the run length"):
        RebalanceAlpha().weights(5)


# ----------------------------------------------------------------- the combination
def test_combined_loss_parts():
    probs, target, maps, _ = random_case(7, classes=2)
    loss = CombinedLoss(GeneralizedDiceLoss(), BoundaryLoss(classes=[1]), RebalanceAlpha(over=None))
    parts = loss(probs, target, maps, 10)
    expected = 0.9 * generalized_dice_loss(probs, target) + 0.11 * boundary_loss(probs, maps, [1])
    torch.testing.assert_close(parts.total, expected)
    assert parts.weights == {"regional": pytest.approx(0.9), "boundary": pytest.approx(0.11)}
    torch.testing.assert_close(parts.parts["boundary"], boundary_loss(probs, maps, [1]))
    regional_only = CombinedLoss(CrossEntropyLoss())(probs, target)
    torch.testing.assert_close(regional_only.total, cross_entropy(probs, target))
    with pytest.raises(ValueError, match="dist_maps must be given"):
        loss(probs, target)


def test_combined_loss_checks_once_and_unchecked_parts_agree():
    probs, target, maps, _ = random_case(6, classes=2)
    loss = CombinedLoss(FocalLoss(), BoundaryLoss(classes=[1]), ConstantAlpha(0.1))
    checked = loss(probs, target, maps)
    unchecked = loss(probs, target, maps, validate=False)
    torch.testing.assert_close(checked.total, unchecked.total)
    with pytest.raises(ValueError, match="probs must sum to 1"):
        loss(probs * 0.5, target, maps)


def test_regional_only_combinations_keep_full_weight_under_any_schedule():
    probs, target, maps, _ = random_case(9, classes=2)
    parts = CombinedLoss(GeneralizedDiceLoss(), None, RebalanceAlpha())(probs, target, maps, Progress(80, 100))
    assert parts.weights["regional"] == 1.0 and parts.weights["boundary"] == 0.0
    torch.testing.assert_close(parts.total, generalized_dice_loss(probs, target))


def test_weighted_sums_name_their_terms():
    probs, target, maps, _ = random_case(3, classes=2)
    regional = WeightedSum({"ce": (0.5, CrossEntropyLoss()), "gdl": (0.5, GeneralizedDiceLoss())})
    parts = CombinedLoss(regional, BoundaryLoss([1]), ConstantAlpha(0.01))(probs, target, maps)
    expected_regional = 0.5 * cross_entropy(probs, target) + 0.5 * generalized_dice_loss(probs, target)
    torch.testing.assert_close(parts.parts["regional"], expected_regional)
    torch.testing.assert_close(parts.parts["ce"], cross_entropy(probs, target))
    torch.testing.assert_close(parts.total, expected_regional + 0.01 * boundary_loss(probs, maps, [1]))


def test_a_training_loss_returns_parts_or_a_bare_total():
    total = torch.tensor(1.5)
    assert as_loss_parts(total).total is total and as_loss_parts(total).parts == {}
    parts = LossParts(total, {"a": total})
    assert as_loss_parts(parts) is parts
    with pytest.raises(TypeError, match="scalar tensor or LossParts"):
        as_loss_parts(torch.ones(3))
    with pytest.raises(TypeError, match="scalar tensor or LossParts"):
        as_loss_parts({"total": total})


# ----------------------------------------------------------------- recipes
@pytest.mark.parametrize(
    ("spellings", "name"),
    [
        (["gdl+bl", "GDL+BL", "gdl + bl", "bl+gdl", "1*gdl+bl"], "gdl+bl"),
        (["focal+bl", "focal(gamma=2)+bl", "BL+Focal(Gamma=2.0)"], "focal+bl"),
        (["focal(gamma=1)+bl", "focal(gamma=1.0) + bl"], "focal(gamma=1)+bl"),
        (["gdl+0.01*bl", "gdl+bl@constant(alpha=0.01)", "0.01*bl+gdl"], "gdl+0.01*bl"),
        (["0.5*ce+0.5*gdl+bl", "0.5*gdl+0.5*ce+bl"], "0.5*ce+0.5*gdl+bl"),
        (["gdl+bl@rebalance", "gdl+bl@rebalance(step=0.01, floor=0.1)", "GDL+BL@Rebalance"], "gdl+bl@rebalance"),
        (["gdl+bl@rebalance(over=none)", "gdl+bl@rebalance(over=None)"], "gdl+bl@rebalance(over=none)"),
    ],
)
def test_one_loss_has_one_name_however_it_is_spelled(spellings, name):
    specs = [LossSpec.parse(text) for text in spellings]
    assert {spec.name for spec in specs} == {name} and len(set(specs)) == 1
    assert LossSpec.parse(name) == specs[0]


def test_recipes_build_what_they_say():
    probs, target, maps, _ = random_case(4, classes=2)
    focal = LossSpec.parse("focal(gamma=1)+bl").build(boundary_classes=[1])(probs, target, maps)
    torch.testing.assert_close(focal.total, focal_loss(probs, target, 1.0) + 0.05 * boundary_loss(probs, maps, [1]))
    light = LossSpec.parse("gdl+0.01*bl").build(alpha=0.5, boundary_classes=[1])(probs, target, maps)  # a written
    torch.testing.assert_close(
        light.total, generalized_dice_loss(probs, target) + 0.01 * boundary_loss(probs, maps, [1])
    )
    experiment = LossSpec.parse("gdl+bl").build(alpha=0.5)(probs, target, maps)  # ... else the experiment's alpha
    torch.testing.assert_close(
        experiment.total, generalized_dice_loss(probs, target) + 0.5 * boundary_loss(probs, maps)
    )
    alone = LossSpec.parse("bl").build(alpha=0.5)(probs, target, maps)  # the boundary loss alone: weight 1
    torch.testing.assert_close(alone.total, boundary_loss(probs, maps))
    assert LossSpec.parse("gdl+bl").baseline == "gdl" and LossSpec.parse("bl").baseline is None
    assert LossSpec.parse("0.5*ce+0.5*gdl+bl@rebalance").baseline == "0.5*ce+0.5*gdl"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("xx", "unknown loss 'xx'"),
        ("gdl+gdl", "names a loss twice"),
        ("gdl@rebalance", "schedule sets the weight of the boundary term"),
        ("gdl+bl@cosine", "after '@' comes a schedule"),
        ("focal(gama=1)", "has no option 'gama'; its options: \\['gamma', 'reduction'\\]"),
        ("focal(gamma)", "name=value"),
        ("gdl+0.1*bl@constant(alpha=0.2)", "given twice"),
        ("gdl(", "cannot read 'gdl\\('"),
        ("", "cannot read ''"),
    ],
)
def test_bad_recipes_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        LossSpec.parse(text)


def test_recipes_are_strings():
    with pytest.raises(TypeError, match="string"):
        LossSpec.parse(3)


def _tversky(probs, target, classes=None, beta=0.7):
    p, g = probs[:, 1:], target[:, 1:]
    tp, fp, fn = (p * g).sum(), (p * (1 - g)).sum(), ((1 - p) * g).sum()
    return 1 - tp / (tp + (1 - beta) * fp + beta * fn)


def test_a_registry_entry_is_a_new_loss_with_options():
    registry = {**LOSSES, "tversky": LossEntry(_tversky)}
    spec = LossSpec.parse("tversky(beta=0.9)+bl", registry)
    assert spec.name == "tversky(beta=0.9)+bl" and LossSpec.parse("tversky(beta=0.7)", registry).name == "tversky"
    probs, target, maps, _ = random_case(5, classes=2)
    parts = spec.build(boundary_classes=[1], registry=registry)(probs, target, maps)
    torch.testing.assert_close(parts.total, _tversky(probs, target, beta=0.9) + 0.05 * boundary_loss(probs, maps, [1]))
    with pytest.raises(ValueError, match="unknown loss 'tversky'"):
        LossSpec.parse("tversky")
    with pytest.raises(TypeError, match="module class or a function"):
        LossEntry(3)


def test_identities_name_recipes_and_modules():
    module = LossSpec.parse("GDL+BL").build()
    assert loss_identity(module)["name"] == "gdl+bl" and loss_identity(module)["alpha"] == 0.05
    assert loss_identity(LossSpec.parse("ce"))["name"] == "ce"

    class Mine(nn.Module):
        def forward(self, probs, target, dist_maps, progress):
            return cross_entropy(probs, target)

    assert loss_identity(Mine())["module"].endswith("Mine")
    assert np.isclose(float(Mine()(*random_case(1)[:3], None)), float(cross_entropy(*random_case(1)[:2])))
