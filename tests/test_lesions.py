"""The synthetic lesions of the imbalance study: distractors as bright as lesions, lesions with an
inside at every share of every profile, lesion-free images, and refusals."""

import numpy as np
import pytest
from scipy import ndimage

from bl_tutorial.data.lesions import MIN_LESION_PIXELS, lesion_images, lesion_layers, smallest_share
from bl_tutorial.distance import signed_distance
from bl_tutorial.tasks import IMBALANCE


def test_distractors_are_as_bright_as_the_lesions():
    lesions, distractors = [], []
    for seed in range(12):
        layers = lesion_layers(np.random.default_rng(seed), 96, 1.0)
        inside = ndimage.binary_erosion(layers["mask"])  # the lesions' core, off their blurred edge
        lesions.append(layers["lesion"][inside])
        core = layers["distractors"] > 0.5 * layers["distractors"].max()
        distractors.append(layers["distractors"][core & (layers["distractors"] < 4.5)])  # crossings excluded
    lesion, distractor = np.median(np.concatenate(lesions)), np.median(np.concatenate(distractors))
    assert distractor == pytest.approx(lesion, rel=0.1), (lesion, distractor)


@pytest.mark.parametrize("profile", list(IMBALANCE.profiles))
def test_every_lesion_has_an_inside_at_every_share_of_every_profile(profile):
    data = IMBALANCE.profiles[profile].data
    size = min(data.image_size, 96)  # the full profile's 256-px images hold the same lesions, larger
    for percent in data.conditions:
        if percent < smallest_share(size):
            size = data.image_size
        _, labels = lesion_images(16, size, percent, seed=3, empty_share=data.empty_share)
        for mask in labels:
            components, count = ndimage.label(mask)
            phi = signed_distance(mask) if count else None
            for k in range(1, count + 1):
                lesion = components == k
                assert lesion.sum() >= MIN_LESION_PIXELS * 0.8, (profile, percent, lesion.sum())
                assert np.mean(phi[lesion] < 0) >= 0.5, (profile, percent, np.mean(phi[lesion] < 0))


def test_shares_and_lesion_free_images_are_as_asked():
    images, labels = lesion_images(40, 96, 3.0, seed=1, empty_share=0.25)
    has_lesions = labels.reshape(40, -1).any(1)
    assert has_lesions.sum() == 30 and images.shape == (40, 1, 96, 96)
    assert 100 * labels[has_lesions].mean() == pytest.approx(3.0, rel=0.15)
    again, _ = lesion_images(40, 96, 3.0, seed=1, empty_share=0.25)
    assert np.array_equal(images, again)
    assert abs(float(images.mean())) < 0.05 and float(images.std()) == pytest.approx(1.0, abs=0.05)


def test_shares_too_small_for_an_inside_are_refused_in_the_terms_of_the_image():
    with pytest.raises(ValueError, match="at least 1.46 for 64 x 64 images.*use larger images"):
        lesion_images(2, 64, 0.3)
    with pytest.raises(ValueError, match="empty_share must lie in"):
        lesion_images(2, 64, 3.0, empty_share=1.5)
    with pytest.raises(ValueError, match="at most 30"):
        lesion_images(2, 64, 40.0)
