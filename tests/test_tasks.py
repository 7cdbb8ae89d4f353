"""The task descriptions: their profiles, their data, and refusals in the profile's terms."""

from dataclasses import replace

import pytest

from bl_tutorial import tasks
from bl_tutorial.combined import Progress
from bl_tutorial.data import sources, synthetic
from bl_tutorial.losses import CrossEntropyLoss
from bl_tutorial.recipes import LossEntry, LossSpec
from conftest import TINY


def test_the_acdc_task_reads_only_the_patients_its_splits_use(tiny_experiments, monkeypatch):
    read = []
    real_read = tasks.read_acdc
    monkeypatch.setattr(
        tasks, "read_acdc", lambda root, split, patients=None: read.append(patients) or real_read(root, split, patients)
    )
    standin = replace(sources.DATASETS["acdc"], standin=synthetic.AcdcStandinConfig(5, 1))
    monkeypatch.setitem(sources.DATASETS, "acdc", standin)
    profile = replace(TINY["acdc"], data=replace(TINY["acdc"].data, n_train=1))  # 1 + 1 + 1 of 5 patients
    data = tasks.TASKS["acdc"].load(profile, None, None)
    assert len(read) == 1 and sorted(read[0]) == sorted(sum(data.splits.values(), []))
    assert len(read[0]) == 3 and len(data.train_set) > 0


def test_a_data_folder_too_small_for_a_profile_is_refused_in_its_terms(small_cache, drive_tree):
    fast = tasks.DRIVE.profiles["fast"]  # 4 to select, 4 to report, at least 1 to train
    with pytest.raises(ValueError) as refused:
        tasks.DRIVE.load(fast, drive_tree, None)
    message = str(refused.value)
    assert (
        "the fast profile needs 9 labelled items (4 to select the epoch, 4 to report, at least 1 to train)" in message
    )
    assert "found 2" in message and str(drive_tree / "training") in message and "n_val" not in message


@pytest.mark.parametrize("task", list(tasks.TASKS.values()), ids=lambda t: t.name)
def test_every_profile_is_complete_and_builds_its_network(task):
    assert set(task.profiles) == {"smoke", "fast", "full"}
    for name, profile in task.profiles.items():
        assert profile.name == name and profile.training.losses and profile.training.seeds
        model = task.build_model(profile)
        assert sum(p.numel() for p in model.parameters()) > 0
        for comparison in task.comparisons:  # every declared pair names losses of the registry
            comparison.canonical(task.losses)


def test_a_task_takes_new_losses_and_profiles_by_declaration():
    task = tasks.DRIVE.with_losses(half=LossEntry(CrossEntropyLoss))
    assert "half" in task.losses and "half" not in tasks.DRIVE.losses
    smaller = task.with_profile("tiny", TINY["drive"])
    assert smaller.profiles["tiny"].name == "tiny" and "tiny" not in task.profiles
    with pytest.raises(TypeError, match="must be a LossEntry"):
        tasks.DRIVE.with_losses(half=CrossEntropyLoss)


@pytest.mark.parametrize("task", list(tasks.TASKS.values()), ids=lambda t: t.name)
def test_every_rebalancing_schedule_reaches_the_regional_floor_before_the_end(task):
    """The official trajectory within the run: the regional weight at its floor before the last epoch."""
    for name, profile in task.profiles.items():
        for loss in profile.training.losses:
            spec = LossSpec.parse(loss, task.losses)
            if spec.schedule != "rebalance":
                continue
            schedule = spec.build_schedule(profile.training.alpha)
            epochs = profile.training.epochs
            assert schedule.floor_fraction(epochs) is not None, (name, loss)
            assert schedule.weights(Progress(epochs - 1, epochs))[0] == schedule.floor, (name, loss)


def test_the_lesion_task_scores_a_threshold_baseline_and_warm_starts(small_cache):
    smoke = tasks.IMBALANCE.profiles["smoke"]
    data = tasks.IMBALANCE.load(smoke, None, smoke.conditions[0])
    assert 0 <= data.baselines["dice"] <= 1 and "threshold" in data.baselines
    assert data.train_set.spacings[0].tolist() == [256 / 32, 256 / 32]  # maps in pixels of 256-px slices
    assert smoke.training.warm_start == "gdl" and smoke.training.warm_config().lr_schedule == "constant"
