"""Models, the training loop, the experiment runner and its command line."""

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bl_tutorial import experiments, tasks, training
from bl_tutorial.combined import LossSpec
from bl_tutorial.data import DriveDataset, read_drive, sources, synthetic
from bl_tutorial.device import seed_everything
from bl_tutorial.experiments import load_results, run_experiment
from bl_tutorial.models import ENet, UNet
from bl_tutorial.tasks import Profile
from bl_tutorial.training import TrainConfig, _validation_hd95, predict, train


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (97, 130)])
def test_model_shapes(in_channels, shape):
    x = torch.zeros(2, in_channels, *shape)
    assert UNet(in_channels, 2, base=4, depth=3)(x).shape == (2, 2, *shape)
    assert ENet(in_channels, 4).eval()(x).shape == (2, 4, *shape)


def test_unet_native_drive_size():
    assert UNet(3, 2, base=2)(torch.zeros(1, 3, 584, 565)).shape == (1, 2, 584, 565)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="num_classes >= 2"):
        UNet(3, 1)
    with pytest.raises(ValueError, match="in_channels >= 1"):
        ENet(0, 4)


def test_loss_spec_names():
    assert LossSpec.parse("gdl+bl") == LossSpec("gdl", True, alpha=0.05)
    assert LossSpec.parse("bl").alpha == 1.0 and LossSpec.parse("bl").regional is None
    assert LossSpec.parse("CE").name == "ce" and LossSpec.parse("ce").alpha is None
    for bad in ("xx", "gdl+ce", "bl+bl", ""):
        with pytest.raises(ValueError, match="loss"):
            LossSpec.parse(bad)
    with pytest.raises(ValueError, match="schedule must be one of"):
        LossSpec("ce", True, schedule="cosine")
    with pytest.raises(ValueError, match="constant schedule only"):  # it would be ignored, yet recorded
        LossSpec.parse("gdl+bl", schedule="linear", alpha=0.5)
    with pytest.raises(TypeError, match="string"):
        LossSpec.parse(3)


@pytest.fixture(scope="module")
def tiny_drive(tmp_path_factory):
    root = synthetic.write_drive_standin(
        tmp_path_factory.mktemp("drive"), synthetic.DriveStandinConfig(n_training=4, n_test=1)
    )
    samples = read_drive(root)
    return DriveDataset(samples[:3], 32, augment="flip"), DriveDataset(samples[3:], 32)


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
    spec = LossSpec.parse("ce+bl", schedule="rebalance")
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
    with pytest.raises(ValueError, match=r"other settings \(lr: checkpoint 0.003, now 0.01; regional: checkpoint"):
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


# ----------------------------------------------------------------- experiments
TINY = {
    "drive": Profile(
        model="unet", width=4, epochs=2, batch_size=2, lr=3e-3, seeds=(0,), losses=("gdl+bl", "gdl"),
        n_select=1, n_report=1, patch_size=32, patches_per_image=2,
    ),
    "acdc": Profile(
        model="enet", epochs=1, batch_size=4, lr=5e-3, seeds=(0,), losses=("bl", "gdl"), n_select=1, n_report=1,
        image_size=32, augment="none", crop_mm=128, val_hd95=True,
    ),
    "imbalance": Profile(
        model="unet", width=4, depth=2, epochs=2, batch_size=4, lr=3e-3, seeds=(0, 1),
        losses=("gdl", "gdl+bl", "gdl+bl@rebalance"), n_train=4, n_select=2, n_report=2, image_size=32,
        conditions=(10.0, 1.0),
    ),
}  # fmt: skip
QUIET = {"quiet": True, "log": lambda *a: None}


@pytest.fixture
def tiny_experiments(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(sources.DATA_ENV, raising=False)
    small = {"drive": synthetic.DriveStandinConfig(3, 1), "acdc": synthetic.AcdcStandinConfig(3, 1)}
    for name, config in small.items():
        monkeypatch.setitem(sources.DATASETS, name, replace(sources.DATASETS[name], standin=config))
    for name, profile in TINY.items():
        profiles = {"smoke": profile, "fast": profile, "full": profile}
        monkeypatch.setitem(tasks.TASKS, name, replace(tasks.TASKS[name], profiles=profiles))
    return tmp_path


def test_drive_results_round_trip(tiny_experiments):
    out = tiny_experiments / "drive"
    results = run_experiment("drive", "fast", out, **QUIET)
    loaded = load_results(out)
    assert loaded == json.loads(json.dumps(results))
    assert loaded["data"]["kind"] == "stand-in" and loaded["profile_name"] == "fast"
    assert {r["loss"] for r in loaded["runs"]} == {"gdl+bl", "gdl"}
    run = loaded["runs"][0]
    assert 0 <= run["metrics"]["dice"] <= 1 and len(run["metrics"]["dice_per_image"]) == 1
    assert 0 <= run["metrics_last"]["dice"] <= 1 and len(run["history"]) == 2
    assert loaded["comparisons"][0]["baseline"] == "gdl"
    assert {c["epoch"] for c in loaded["comparisons"]} == {"selected", "last"}
    splits = loaded["splits"]
    assert not set(splits["select"]) & set(splits["report"]) and not set(splits["train"]) & set(splits["report"])
    assert (out / "figures" / "report_gdl+bl_seed0.png").is_file()
    assert experiments.saved_arrays(out, "gdl", 0)["report_probability"].shape == (584, 565)
    assert experiments.provenance(loaded) == "stand-in data, profile fast, CPU, 1 seed"
    with pytest.raises(FileExistsError, match="holds another experiment"):
        run_experiment("drive", "fast", out, losses=["ce"], **QUIET)


def test_rerunning_the_same_command_keeps_finished_runs(tiny_experiments, monkeypatch):
    out = tiny_experiments / "again"
    first = run_experiment("drive", "fast", out, **QUIET)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(experiments, "train", no_training)
    second = run_experiment("drive", "fast", out, **QUIET)
    assert [r["metrics"] for r in second["runs"]] == [r["metrics"] for r in first["runs"]]


def test_an_interrupted_grid_resumes_where_it_stopped(tiny_experiments, monkeypatch):
    straight = run_experiment("drive", "fast", None, **QUIET)
    out = tiny_experiments / "interrupted"
    task = tasks.TASKS["drive"]
    calls = []

    def evaluate_then_interrupt(model, data):
        calls.append(1)
        if len(calls) == 3:  # each run is scored twice (selected and last epoch)
            raise KeyboardInterrupt  # Ctrl-C during the second run, after its training
        return task.evaluate(model, data)

    monkeypatch.setitem(tasks.TASKS, "drive", replace(task, evaluate=evaluate_then_interrupt))
    with pytest.raises(KeyboardInterrupt):
        run_experiment("drive", "fast", out, **QUIET)
    assert len(list((out / "runs").glob("*.json"))) == 1 and any((out / "checkpoints").glob("*.pt"))
    resumed = run_experiment("drive", "fast", out, **QUIET)
    assert [r["metrics"] for r in resumed["runs"]] == [r["metrics"] for r in straight["runs"]]
    assert not any((out / "checkpoints").glob("*.pt"))


def test_a_diverging_run_is_recorded_and_the_others_go_on(tiny_experiments, monkeypatch):
    real_train = experiments.train

    def diverge_on_the_combined_loss(model, train_set, val_set, spec, *args, **kwargs):
        if spec.boundary:
            raise FloatingPointError("epoch 0, step 0: the loss is nan")
        return real_train(model, train_set, val_set, spec, *args, **kwargs)

    monkeypatch.setattr(experiments, "train", diverge_on_the_combined_loss)
    out = tiny_experiments / "nan"
    code = experiments.main(["drive", "--profile", "fast", "--out", str(out), "--quiet"])
    runs = {r["loss"]: r for r in load_results(out)["runs"]}
    assert code == 1 and runs["gdl+bl"]["status"] == "failed" and "the loss is nan" in runs["gdl+bl"]["reason"]
    assert runs["gdl"]["status"] == "finished" and "gdl" in load_results(out)["summary"]


def test_the_data_source_is_part_of_the_experiment(tiny_experiments):
    out = tiny_experiments / "sources"
    run_experiment("drive", "fast", out, losses=["gdl"], **QUIET)
    standin = sources.ensure_dataset("drive").root
    run_experiment("drive", "fast", out, losses=["gdl"], data_root=standin, **QUIET)  # the same tree: resumes
    other = shutil.copytree(standin, tiny_experiments / "another-tree")
    with pytest.raises(FileExistsError, match="differs in data"):
        run_experiment("drive", "fast", out, losses=["gdl"], data_root=other, **QUIET)


def test_a_folder_that_is_not_an_experiment_is_refused_before_any_data_is_read(tiny_experiments):
    folder = tiny_experiments / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="holds no experiment"):
            run_experiment("drive", "fast", folder, overwrite=overwrite, **QUIET)
    assert (folder / "notes.txt").read_text() == "mine" and not (tiny_experiments / "cache").exists()


def test_baselines_keep_full_weight_and_grids_do_not_repeat(tiny_experiments):
    plan = experiments.plan_experiment("drive", "fast", schedule="rebalance")
    assert plan.specs["gdl"].schedule == "constant" and plan.specs["gdl+bl"].schedule == "rebalance"
    with pytest.raises(ValueError, match="schedule sets the weight of the boundary term"):
        LossSpec.parse("gdl@rebalance")
    for options in ({"losses": []}, {"seeds": [0, 0]}, {"losses": ["gdl", "GDL"]}):
        with pytest.raises(ValueError, match="must not"):
            experiments.plan_experiment("drive", "fast", **options)


def test_overwrite_removes_stale_figures(tiny_experiments):
    out = tiny_experiments / "stale"
    run_experiment("drive", "fast", out, losses=["gdl"], **QUIET)
    (out / "figures" / "report_old-loss_seed0.png").write_bytes(b"stale")
    run_experiment("drive", "fast", out, losses=["gdl"], overwrite=True, **QUIET)
    assert not (out / "figures" / "report_old-loss_seed0.png").exists()
    assert (out / "figures" / "report_gdl_seed0.png").is_file()


def test_a_study_runs_every_condition_and_pairs_the_schedules(tiny_experiments):
    out = tiny_experiments / "study"
    studies = experiments.run_study("imbalance", "fast", out, **QUIET)
    assert sorted(studies) == [1.0, 10.0] and (out / "condition-10" / "results.json").is_file()
    results = studies[1.0]
    assert results["condition"] == 1.0 and results["data"]["kind"] == "synthetic"
    pairs = {(c["loss"], c["baseline"], c["metric"]) for c in results["comparisons"] if c["epoch"] == "selected"}
    assert ("gdl+bl@rebalance", "gdl", "hd95") in pairs and ("gdl+bl", "gdl", "dice") in pairs
    comparison = results["comparisons"][0]
    assert comparison["n"] == 2 and len(comparison["interval"]) == 2
    with pytest.raises(ValueError, match="condition must be one of"):
        run_experiment("imbalance", "fast", None, **QUIET)


def test_acdc_metrics(tiny_experiments):
    results = run_experiment("acdc", "fast", None, losses=["gdl"], **QUIET)
    metrics = results["runs"][0]["metrics"]
    assert metrics["classes"] == ["RV", "MYO", "LV"]
    assert len(metrics["dice_3d"]) == 3 and len(metrics["hd95_2d"]) == 3
    assert metrics["dice_RV"] == metrics["dice_3d"][0] and metrics["hd95"] == pytest.approx(np.mean(metrics["hd95_3d"]))
    assert all(h >= 0 for h in metrics["hd95_3d"])
    assert "val_hd95" in results["runs"][0]["history"][0]


def test_bad_choices_fail_before_any_data_is_read(tiny_experiments, tmp_path):
    with pytest.raises(ValueError, match="valid names"):
        run_experiment("drive", "fast", None, losses=["dice+xx"], log=lambda *a: None)
    with pytest.raises(ValueError, match="task must be one of"):
        run_experiment("isles", "fast", None)
    with pytest.raises(ValueError, match="profile must be one of"):
        run_experiment("drive", "huge", None)
    with pytest.raises(ValueError, match="constant schedule only"):
        run_experiment("drive", "fast", None, schedule="linear", alpha=0.5)
    with pytest.raises(ValueError, match="out must name a folder"):
        run_experiment("drive", "fast", "", **QUIET)
    with pytest.raises(FileNotFoundError, match="official layout"):
        run_experiment("drive", "fast", None, data_root=tmp_path / "empty", log=lambda *a: None)


def test_load_results_rejects_foreign_files(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"dataset": "drive"}))
    with pytest.raises(ValueError, match="missing fields"):
        load_results(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "nowhere")


def test_full_results_are_found_where_the_package_is_installed(tmp_path, monkeypatch):
    assert experiments.results_folder() == Path(experiments.__file__).parent / "results"
    monkeypatch.setenv(experiments.RESULTS_ENV, str(tmp_path))
    assert experiments.results_folder() == tmp_path and experiments.full_results("drive") is None


def test_cli_help_and_tiny_run(tiny_experiments, capsys):
    help_text = subprocess.run(
        [sys.executable, "-m", "bl_tutorial.experiments", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--profile" in help_text and "drive" in help_text and "acdc" in help_text
    out = tiny_experiments / "cli"
    assert experiments.main(["drive", "--profile", "fast", "--out", str(out), "--losses", "ce", "--quiet"]) == 0
    assert load_results(out)["runs"][0]["loss"] == "ce"
    assert experiments.main(["drive", "--profile", "fast", "--out", str(out), "--losses", "ce", "--quiet"]) == 0
    for argv, message in (
        (["drive", "--out", str(out), "--losses", "gdl", "--quiet", "--profile", "fast"], "holds another experiment"),
        (["drive", "--schedule", "linear", "--alpha", "0.5"], "constant schedule only"),
        (["drive", "--seeds", "0,x"], "comma-separated integers"),
        (["drive", "--out", ""], "out must name a folder"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            experiments.main([*argv, "--profile", "fast"] if "--profile" not in argv else argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_an_absent_device_is_refused_before_any_data_is_read(tiny_experiments, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        experiments.main(["drive", "--profile", "fast", "--device", "cuda", "--out", str(tiny_experiments / "x")])
    assert exit_info.value.code == 2 and "not available" in capsys.readouterr().err
    assert not (tiny_experiments / "cache").exists(), "no stand-in was generated before the refusal"


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
    real_save = training._save_checkpoint
    monkeypatch.setattr(
        training, "_save_checkpoint", lambda run, epoch, *a: written.append(epoch) or real_save(run, epoch, *a)
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


def test_a_run_records_where_its_time_went(tiny_experiments):
    results = run_experiment("drive", "fast", tiny_experiments / "timed", losses=["gdl"], **QUIET)
    seconds = results["runs"][0]["seconds"]
    assert {"train", "train_steps", "train_batches", "train_bookkeeping", "select", "evaluate", "figures"} <= set(
        seconds
    )
    assert all(value >= 0 for value in seconds.values()) and results["load_seconds"] > 0
    inside_training = sum(seconds[k] for k in ("train_steps", "train_batches", "train_bookkeeping", "select"))
    assert inside_training <= seconds["train"] <= results["runs"][0]["time_s"]


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


def test_the_acdc_task_reads_only_the_patients_its_splits_use(tiny_experiments, monkeypatch):
    read = []
    real_read = tasks.read_acdc
    monkeypatch.setattr(
        tasks, "read_acdc", lambda root, split, patients=None: read.append(patients) or real_read(root, split, patients)
    )
    standin = replace(sources.DATASETS["acdc"], standin=synthetic.AcdcStandinConfig(5, 1))
    monkeypatch.setitem(sources.DATASETS, "acdc", standin)
    profile = replace(TINY["acdc"], n_train=1)  # 1 + 1 + 1 of the stand-in's 5 training patients
    data = tasks.TASKS["acdc"].load(profile, None, None)
    assert len(read) == 1 and sorted(read[0]) == sorted(sum(data.splits.values(), []))
    assert len(read[0]) == 3 and len(data.train_set) > 0


def test_run_time_benchmark_accounts_for_the_whole_command():
    """``benchmarks/run_time.py`` on the smoke profile: every phase printed, phases that add up
    to the command's wall time, and both ratios to the floor of the training steps."""
    import re

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "run_time.py"
    result = subprocess.run(
        [sys.executable, str(script), "--profile", "smoke", "--tasks", "drive"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    command = float(re.search(r"command ([\d.]+) s, run", out).group(1))
    phases = [float(value) for value in re.findall(r"^  \S.*? (-?[\d.]+) s +-?[\d.]+ %$", out, re.M)]
    assert len(phases) == 10 and sum(phases) == pytest.approx(command, abs=0.05)
    assert re.search(r"run / floor [\d.]+x .* command / floor [\d.]+x", out)
    assert re.search(r"^  drive +run [\d.]+-[\d.]+x, command [\d.]+-[\d.]+x, run / both floors", out, re.M)
    assert re.search(r"selection floor [\d.]+ s; run / \(steps \+ selection floors\) [\d.]+x", out)
