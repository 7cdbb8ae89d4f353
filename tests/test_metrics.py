"""Metrics: Dice as a harmonic mean, ROI masks, surface distances with known answers."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bl_tutorial.metrics import (
    assd,
    batch_dice,
    class_labels,
    confusion,
    dice_from_precision_recall,
    dice_score,
    hd95,
    iou_score,
    per_class,
    precision,
    recall,
)
from conftest import masks, spacings

pairs = st.integers(1, 60).flatmap(lambda n: st.tuples(arrays(bool, n), arrays(bool, n)))


@given(pair=pairs)
def test_dice_is_the_harmonic_mean_of_precision_and_recall(pair):
    pred, target = pair
    dice = dice_score(pred, target)
    assert dice == pytest.approx(dice_from_precision_recall(precision(pred, target), recall(pred, target)))
    c = confusion(pred, target)
    if c.tp + c.fp + c.fn:
        assert dice == pytest.approx(2 * c.tp / (2 * c.tp + c.fp + c.fn))
        assert iou_score(pred, target) == pytest.approx(dice / (2 - dice))


@given(pair=pairs, data=st.data())
def test_roi_mask_restricts_the_count(pair, data):
    pred, target = pair
    roi = data.draw(arrays(bool, pred.shape))
    assume(roi.any())
    assert dice_score(pred, target, roi) == dice_score(pred[roi], target[roi])


def test_empty_conventions():
    empty = np.zeros((4, 4), bool)
    full = np.ones((4, 4), bool)
    assert dice_score(empty, empty) == 1.0 and iou_score(empty, empty) == 1.0
    assert dice_score(full, empty) == 0.0
    assert precision(empty, full) == 0.0 and recall(empty, full) == 0.0
    assert precision(empty, empty) == 1.0 and recall(empty, empty) == 1.0
    assert hd95(empty, empty) == 0.0 and assd(empty, empty) == 0.0
    diagonal = np.hypot(4 * 2.0, 4 * 0.5)
    assert hd95(full, empty, spacing=(2.0, 0.5)) == pytest.approx(diagonal)
    assert assd(empty, full, spacing=(2.0, 0.5)) == pytest.approx(diagonal)


@given(spacing=spacings(2), gap=st.integers(1, 10))
def test_parallel_lines_have_known_distances(spacing, gap):
    a = np.zeros((16, 12), bool)
    b = np.zeros((16, 12), bool)
    a[2, 3:9] = True
    b[2 + gap, 3:9] = True
    assert hd95(a, b, spacing) == pytest.approx(gap * spacing[0])
    assert assd(a, b, spacing) == pytest.approx(gap * spacing[0])


def brute_force_surface_distances(pred, target, spacing):
    def surface(mask):
        padded = np.pad(mask, 1, constant_values=False)  # the image edge counts as background
        core = tuple(slice(1, -1) for _ in mask.shape)
        touches = np.zeros(mask.shape, bool)
        for axis in range(mask.ndim):
            for step in (-1, 1):
                shifted = list(core)
                shifted[axis] = slice(1 + step, mask.shape[axis] + 1 + step)
                touches |= ~padded[tuple(shifted)]
        return np.argwhere(mask & touches) * np.asarray(spacing)

    sp, st_ = surface(pred), surface(target)
    pairwise = np.sqrt(((sp[:, None] - st_[None]) ** 2).sum(-1))
    return pairwise.min(1), pairwise.min(0)


@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_hd95_and_assd_match_brute_force(data, ndim):
    pred = data.draw(masks(ndim))
    target = data.draw(arrays(bool, pred.shape))
    assume(pred.any() and target.any())
    spacing = data.draw(spacings(ndim))
    forward, backward = brute_force_surface_distances(pred, target, spacing)
    expected_hd95 = max(np.percentile(forward, 95), np.percentile(backward, 95))
    assert hd95(pred, target, spacing) == pytest.approx(expected_hd95, rel=1e-6, abs=1e-6)
    assert assd(pred, target, spacing) == pytest.approx((forward.mean() + backward.mean()) / 2, rel=1e-6, abs=1e-6)


def test_per_class():
    pred = np.array([[0, 1, 2, 2], [0, 0, 3, 3]])
    target = np.array([[0, 1, 1, 2], [0, 0, 3, 3]])
    np.testing.assert_allclose(per_class(dice_score, pred, target, 4), [1, 2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(per_class(dice_score, pred, target, 4, classes=[3]), [1])
    assert per_class(hd95, pred, target, 4, classes=[1, 2], spacing=(1.0, 2.0)).shape == (2,)


def test_bad_input():
    with pytest.raises(ValueError, match="pred and target must have the same shape"):
        dice_score(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="target must be binary"):
        dice_score(np.zeros(3), np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="pred and mask must have the same shape"):
        dice_score(np.zeros(3), np.zeros(3), mask=np.ones(2))
    with pytest.raises(ValueError, match="spacing"):
        hd95(np.eye(3), np.eye(3), spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"pred must lie in \[0, 3\)"):
        per_class(dice_score, np.array([[0, 5]]), np.array([[0, 1]]), 3)
    with pytest.raises(ValueError, match="precision_value"):
        dice_from_precision_recall(1.5, 0.5)


def test_an_empty_region_of_interest_has_nothing_to_score():
    """A mask that selects no voxel leaves nothing to compare: an error, not a perfect 1.0."""
    for metric in (dice_score, iou_score, confusion, precision, recall):
        with pytest.raises(ValueError, match="mask selects no voxel"):
            metric([1, 0, 1], [1, 0, 0], mask=[0, 0, 0])


def test_batch_dice_takes_tensors():
    import torch

    labels = np.zeros((1, 3), np.int64)
    with pytest.raises(TypeError, match="pred_labels must be a torch tensor.*ndarray"):
        batch_dice(labels, torch.zeros(1, 3, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="target_labels must be a torch tensor"):
        batch_dice(torch.zeros(1, 3, dtype=torch.long), labels, 2)
    with pytest.raises(TypeError, match="roi must be a torch tensor"):
        batch_dice(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long), 2, roi=labels > 0)


@given(
    scores=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 4), st.integers(1, 4)).flatmap(
        lambda shape: arrays(np.float32, shape, elements=st.sampled_from([0.0, 0.25, 0.5, 1.0, -2.0]))
    ),
    channels_last=st.booleans(),
)
def test_class_labels_equal_argmax_ties_included(scores, channels_last):
    import torch

    tensor = torch.from_numpy(scores)  # few distinct values: many ties, which the first class wins
    if channels_last:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    assert torch.equal(class_labels(tensor), tensor.argmax(1))


def test_class_labels_refuses_bad_input():
    import torch

    with pytest.raises(TypeError, match="scores must be a torch tensor"):
        class_labels(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match=r"\(B, K, \*spatial\)"):
        class_labels(torch.zeros(3))
