"""The training loop: what it records, exact resume, checkpoints, NaN, prediction."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from bl_tutorial import training
from bl_tutorial.checkpoints import snapshot
from bl_tutorial.combined import LossParts
from bl_tutorial.data import LabelledImages
from bl_tutorial.data.warp import BATCH_WARPS
from bl_tutorial.device import seed_everything
from bl_tutorial.losses import boundary_loss, generalized_dice_loss
from bl_tutorial.models import UNet
from bl_tutorial.recipes import LossSpec
from bl_tutorial.training import TrainConfig, _validation_hd95, predict, train

CONFIG = TrainConfig(epochs=3, batch_size=2, lr=3e-3, quiet=True)


def test_training_loop_records_everything(tiny_drive):
    train_set, val_set = tiny_drive
    seed_everything(0)
    result = train(UNet(3, 2, base=4, depth=2), train_set, val_set, LossSpec.parse("gdl+bl"), CONFIG, "cpu")
    history = result.history
    assert len(history) == 3 and result.finished
    for key in (
        "train_loss",
        "train_regional",
        "train_boundary",
        "train_weighted_boundary",
        "train_dice",
        "val_dice",
        "val_loss",
        "val_monitor_boundary",
        "val_monitor_dice_loss",
        "regional_weight",
        "boundary_weight",
        "time_s",
        "lr",
    ):
        assert key in history[0], key
    assert history[0]["boundary_weight"] == 0.05
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    scores = [h["val_foreground_dice"] for h in history]
    assert result.best_epoch == int(np.argmax(scores)) and result.best_score == max(scores)


def _comparable(history):
    return [{k: v for k, v in h.items() if k != "time_s"} for h in history]


def test_resume_equals_uninterrupted(tiny_drive, tmp_path):
    train_set, val_set = tiny_drive
    spec = LossSpec.parse("ce+bl@rebalance(update=step)")  # weights that move at every step
    seed_everything(0)
    straight = train(UNet(3, 2, base=4, depth=2), train_set, val_set, spec, CONFIG, "cpu")
    checkpoint = tmp_path / "run.pt"
    seed_everything(0)
    first = train(UNet(3, 2, base=4, depth=2), train_set, val_set, spec, CONFIG, "cpu", checkpoint, stop_after=2)
    assert not first.finished and len(first.history) == 2
    seed_everything(123)  # whatever happened in between
    resumed = train(UNet(3, 2, base=4, depth=2), train_set, val_set, spec, CONFIG, "cpu", checkpoint, resume=True)
    assert resumed.finished
    assert _comparable(resumed.history) == _comparable(straight.history)
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)
    saved = torch.load(checkpoint, weights_only=True)
    assert {"model", "optimizer", "scheduler", "history", "rng", "best_model"} <= set(saved)


class _Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.conv(x) * float("nan")


def test_nan_stops_the_run_with_a_clear_message(tiny_drive):
    train_set, val_set = tiny_drive
    with pytest.raises(FloatingPointError, match=r"epoch 0, step 0: the network output is NaN"):
        train(_Exploding(), train_set, val_set, LossSpec.parse("ce"), CONFIG, "cpu")


def test_resume_refuses_a_checkpoint_made_with_other_settings(tiny_drive, tmp_path):
    train_set, val_set = tiny_drive
    checkpoint = tmp_path / "run.pt"
    train(
        UNet(3, 2, base=4, depth=2), train_set, val_set, LossSpec.parse("ce"), CONFIG, "cpu", checkpoint, stop_after=1
    )
    with pytest.raises(ValueError, match=r"other settings \(lr: checkpoint 0.003, now 0.01; name: checkpoint 'ce'"):
        other = replace(CONFIG, lr=1e-2)
        train(UNet(3, 2, base=4, depth=2), train_set, val_set, LossSpec.parse("gdl"), other, "cpu", checkpoint, True)
    quiet_differs = replace(CONFIG, quiet=False)  # settings that do not change the run may differ
    result = train(UNet(3, 2, base=4, depth=2), train_set, val_set, LossSpec.parse("ce"), quiet_differs, "cpu",
                   checkpoint, resume=True)  # fmt: skip
    assert len(result.history) == CONFIG.epochs


def test_empty_splits_are_refused(tiny_drive):
    train_set, _ = tiny_drive
    with pytest.raises(ValueError, match="val_set is empty"):
        train(UNet(3, 2, base=4, depth=2), train_set, torch.utils.data.Subset(train_set, []), LossSpec.parse("ce"))


def test_validation_hd95_keeps_every_label_inside_the_roi():
    labels = torch.tensor([[[0, 1, 1, 0, 2, 2, 0, 3, 3, 0]]])  # one image, one row, three classes
    roi = torch.ones_like(labels, dtype=torch.bool)
    perfect = _validation_hd95(labels, labels, roi, torch.tensor([[1.0, 1.0]]), 4)
    assert perfect == [[0.0, 0.0, 0.0]]  # a bitwise AND with the ROI turned label 2 into 0 and 3 into 1
    no_lv = torch.tensor([[[0, 1, 1, 0, 2, 2, 0, 0, 0, 0]]])  # a batch without class 3 still scores 3 classes
    assert len(_validation_hd95(no_lv, no_lv, roi, torch.tensor([[1.0, 1.0]]), 4)[0]) == 3


def test_predict_takes_tensors():
    with pytest.raises(TypeError, match="torch.Tensor"):
        predict(UNet(3, 2, base=2, depth=1), np.zeros((1, 3, 8, 8), np.float32))


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tiny_drive, tmp_path, monkeypatch):
    train_set, val_set = tiny_drive
    checkpoint = tmp_path / "run.pt"
    spec = LossSpec.parse("ce")
    train(UNet(3, 2, base=4, depth=2), train_set, val_set, spec, CONFIG, "cpu", checkpoint, stop_after=1)
    saved = checkpoint.read_bytes()
    real_save = torch.save

    def full_disk(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        raise OSError(28, "No space left on device")  # as if the disk filled during the write

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="previous checkpoint is intact"):
        train(UNet(3, 2, base=4, depth=2), train_set, val_set, spec, CONFIG, "cpu", checkpoint, resume=True)
    assert checkpoint.read_bytes() == saved and not list(tmp_path.glob(".run.pt.*"))


def test_checkpoints_are_written_after_the_last_epoch_and_at_most_once_per_interval(tiny_drive, tmp_path, monkeypatch):
    train_set, val_set = tiny_drive
    spec = LossSpec.parse("gdl+bl")
    written = []
    real_save = training.save_checkpoint
    monkeypatch.setattr(
        training, "save_checkpoint", lambda run, epoch, *a: written.append(epoch) or real_save(run, epoch, *a)
    )
    seed_everything(0)
    straight = train(UNet(3, 2, base=4, depth=2), train_set, val_set, spec, CONFIG, "cpu", tmp_path / "a.pt")
    assert written == [2]  # three epochs well within a minute: only the last one is written
    written.clear()
    every = replace(CONFIG, checkpoint_seconds=0)
    seed_everything(0)
    train(UNet(3, 2, base=4, depth=2), train_set, val_set, spec, every, "cpu", tmp_path / "b.pt", stop_after=2)
    assert written == [0, 1]
    resumed = train(
        UNet(3, 2, base=4, depth=2), train_set, val_set, spec, CONFIG, "cpu", tmp_path / "b.pt", resume=True
    )
    assert written == [0, 1, 2]  # another interval is no other run: resumed, to the same history
    assert _comparable(resumed.history) == _comparable(straight.history)


def test_evaluation_in_chunks_equals_one_pass():
    torch.manual_seed(0)
    model = UNet(1, 2, base=4, depth=2).eval()
    images = torch.randn(5, 1, 24, 24)
    with torch.inference_mode():
        whole = model(images)
        assert torch.allclose(training._forward(model, images, 24 * 24 * 2), whole, atol=1e-6)
        assert training._forward(model, images, None).shape == whole.shape
    assert torch.allclose(predict(model, images, batch_size=2), torch.softmax(whole, 1), atol=1e-6)
    assert torch.allclose(predict(model, images), torch.softmax(whole, 1), atol=1e-6)


def test_a_run_with_batch_warps_resumes_exactly_and_records_the_warp(tiny_drive, tmp_path):
    train_set, val_set = tiny_drive
    config = replace(CONFIG, batch_warp=BATCH_WARPS["elastic"])
    seed_everything(0)
    straight = train(UNet(3, 2, base=4, depth=2), train_set, val_set, "gdl+bl", config, "cpu")
    seed_everything(0)
    plain = train(UNet(3, 2, base=4, depth=2), train_set, val_set, "gdl+bl", CONFIG, "cpu")
    assert straight.history[0]["train_loss"] != plain.history[0]["train_loss"]  # the warp changed the batches
    checkpoint = tmp_path / "warped.pt"
    seed_everything(0)
    train(UNet(3, 2, base=4, depth=2), train_set, val_set, "gdl+bl", config, "cpu", checkpoint, stop_after=1)
    resumed = train(UNet(3, 2, base=4, depth=2), train_set, val_set, "gdl+bl", config, "cpu", checkpoint, resume=True)
    assert _comparable(resumed.history) == _comparable(straight.history)
    assert torch.load(checkpoint, weights_only=True)["settings"]["config"]["batch_warp"]["elastic"] == 4.0
    with pytest.raises(ValueError, match="batch_warp: checkpoint"):
        train(UNet(3, 2, base=4, depth=2), train_set, val_set, "gdl+bl", CONFIG, "cpu", checkpoint, resume=True)


class _Volumes(nn.Module):
    """A tiny 3D network: what a reader's task on volumes would bring."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 2, 3, padding=1))

    def forward(self, x):
        return self.layers(x)


def test_nothing_below_the_runner_assumes_two_dimensions():
    rng = np.random.default_rng(0)
    labels = (rng.random((6, 4, 12, 12)) > 0.7).astype(np.uint8)
    images = labels[:, None] + rng.normal(0, 0.3, (6, 1, 4, 12, 12)).astype(np.float32)
    volumes = LabelledImages(images, labels, 2, spacing=(5.0, 1.0, 1.0), augment="isometry")
    assert volumes[0]["spacing"].tolist() == [5.0, 1.0, 1.0]
    config = replace(CONFIG, val_hd95=True)
    result = train(_Volumes(), volumes, volumes, "gdl+bl", config, "cpu")
    assert len(result.history) == 3 and len(result.history[0]["val_hd95"]) == 1
    weight = result.model.layers[2].weight
    assert weight.is_contiguous(memory_format=torch.channels_last_3d) and not weight.is_contiguous()  # by rank
    assert predict(result.model, torch.from_numpy(images[:2])).shape == (2, 2, 4, 12, 12)


def test_train_takes_any_loss_module_with_named_parts(tiny_drive):
    train_set, val_set = tiny_drive

    class ByHand(nn.Module):
        """The DRIVE chapter's hand-written step: regional + 0.05 x boundary."""

        def forward(self, probs, target, dist_maps, progress):
            regional = generalized_dice_loss(probs, target)
            boundary = boundary_loss(probs, dist_maps, classes=[1])
            return LossParts(regional + 0.05 * boundary, {"regional": regional, "boundary": boundary})

    seed_everything(0)
    by_hand = train(UNet(3, 2, base=4, depth=2), train_set, val_set, ByHand(), CONFIG, "cpu")
    seed_everything(0)
    built = LossSpec.parse("gdl+bl").build(boundary_classes=[1])
    recipe = train(UNet(3, 2, base=4, depth=2), train_set, val_set, built, CONFIG, "cpu")
    for mine, theirs in zip(by_hand.history, recipe.history):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], abs=1e-6)
        assert mine["train_boundary"] == pytest.approx(theirs["train_boundary"], abs=1e-6)
    with pytest.raises(TypeError, match="loss must be a recipe"):
        train(UNet(3, 2, base=4, depth=2), train_set, val_set, 3, CONFIG, "cpu")


def test_a_warm_start_reaches_every_run_as_it_was_left(tiny_drive):
    """Two runs from one warm start get the same start: the first one's steps do not leak into the second's."""
    train_set, val_set = tiny_drive
    seed_everything(0)
    warm = train(UNet(3, 2, base=4, depth=2), train_set, val_set, "gdl", CONFIG, "cpu")
    initial = {"model": warm.last_state, "optimizer": warm.optimizer_state}
    first, second = (
        train(UNet(3, 2, base=4, depth=2), train_set, val_set, "gdl+bl", CONFIG, "cpu", initial=initial)
        for _ in range(2)
    )
    assert _comparable(first.history) == _comparable(second.history)
    with pytest.raises(TypeError, match="initial must be a dict"):
        train(UNet(3, 2, base=4, depth=2), train_set, val_set, "gdl", CONFIG, "cpu", initial=[1])


def _selection_set(count: int = 6) -> LabelledImages:
    """``count`` fixed 16 x 16 three-channel images with labels (not augmented): one shape, several batches."""
    generator = np.random.default_rng(3)
    images = generator.normal(size=(count, 3, 16, 16)).astype(np.float32)
    labels = (generator.random((count, 16, 16)) > 0.7).astype(np.int64)
    return LabelledImages(images, labels, 2)


def test_the_selection_pass_scores_what_the_model_itself_scores(tiny_drive):
    """The selection pass (items collated once into one large batch, inputs checked on the first)
    gives the values of a plain pass in batches of two over the last state."""
    train_set, _ = tiny_drive
    val_set = _selection_set()
    seed_everything(0)
    result = train(UNet(3, 2, base=4, depth=2), train_set, val_set, "gdl+bl", CONFIG, "cpu")
    model = UNet(3, 2, base=4, depth=2)
    model.load_state_dict(result.last_state)
    loader = training._loader(val_set, CONFIG, False, 0, torch.device("cpu"))
    assert len(loader) == 3 and len(training._evaluation_batches(val_set, 2, torch.device("cpu"))) == 1
    means = training.run_epoch(model, loader, LossSpec.parse("gdl+bl").build(), 2, torch.device("cpu"))
    last = result.history[-1]
    assert last["epoch"] == 2
    assert means["loss"] == pytest.approx(last["val_loss"], rel=1e-5)
    assert means["monitor_boundary"] == pytest.approx(last["val_monitor_boundary"], rel=1e-5)
    assert means["dice"] == pytest.approx(last["val_dice"], abs=1e-3)


class _Spy(nn.Module):
    """Generalised Dice that records the ``validate`` it is called with, and whether it was a training pass."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, probs, target, dist_maps, progress, validate=True):
        self.calls.append((torch.is_grad_enabled(), validate))
        return generalized_dice_loss(probs, target, validate=validate)


def test_a_loss_checks_its_inputs_on_the_first_batch_of_each_pass(tiny_drive):
    train_set, _ = tiny_drive  # 3 items in batches of 2: two training steps an epoch
    spy = _Spy()
    loader = training._loader(_selection_set(), CONFIG, False, 0, torch.device("cpu"))  # three batches
    model, cpu = UNet(3, 2, base=4, depth=2), torch.device("cpu")
    optimizer = torch.optim.Adam(model.parameters())
    training.run_epoch(model, training._loader(train_set, CONFIG, True, 0, cpu), spy, 0, cpu, optimizer=optimizer)
    training.run_epoch(model, loader, spy, 0, cpu)
    assert spy.calls == [(True, True), (True, False), (False, True), (False, False), (False, False)]
    assert training._takes_validate(spy) and not training._takes_validate(print)  # a builtin: no signature


def test_a_selection_split_larger_than_the_budget_is_read_again_every_pass(monkeypatch):
    val_set, cpu = _selection_set(), torch.device("cpu")
    monkeypatch.setattr(training, "SELECTION_CACHE_BYTES", 1000)
    batches = training._evaluation_batches(val_set, 2, cpu)
    assert isinstance(batches, torch.utils.data.DataLoader) and len(batches) == 3
    assert [len(batch["image"]) for batch in batches] == [2, 2, 2]  # in the training batch size


def test_a_snapshot_is_a_deep_copy_of_a_state():
    model = UNet(1, 2, base=2, depth=1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 1, 8, 8)).mean().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "note": ["a", (1, 2.0)]}
    copied = snapshot(state)
    assert type(copied["model"]) is type(state["model"]) and copied["model"]._metadata == state["model"]._metadata
    assert copied["note"] == state["note"] and copied["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    for name, value in state["model"].items():
        assert torch.equal(copied["model"][name], value) and copied["model"][name].data_ptr() != value.data_ptr()
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # the original moves on, the snapshot does not
    first = next(iter(state["model"]))
    assert not torch.equal(copied["model"][first], model.state_dict()[first])


def test_selection_items_are_collated_once_in_batches_the_evaluation_budget_allows():
    def items(*shapes):
        return [{"image": torch.full((1, *shape), float(i)), "roi": torch.ones(shape)}
                for i, shape in enumerate(shapes)]  # fmt: skip

    cpu = torch.device("cpu")
    small = training._evaluation_batches(items(*[(8, 8)] * 70), 4, cpu)  # 2**18 pixels: 4096 items of 8 x 8
    assert [len(batch["image"]) for batch in small] == [70]
    assert torch.equal(small[0]["image"][:, 0, 0, 0], torch.arange(70.0))  # in order
    big = training._evaluation_batches(items(*[(600, 600)] * 3), 2, cpu)  # over the budget: the given size
    assert [len(batch["image"]) for batch in big] == [2, 1]
    mixed = training._evaluation_batches(items((8, 8), (8, 8), (9, 8), (9, 8)), 2, cpu)  # shapes differ
    assert [tuple(batch["image"].shape) for batch in mixed] == [(2, 1, 8, 8), (2, 1, 9, 8)]
