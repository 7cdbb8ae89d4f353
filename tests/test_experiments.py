"""The experiment runner and its command line: results kept, resumed, refused, compared."""

import dataclasses
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bl_tutorial import experiments, grid, tasks
from bl_tutorial.combined import LossParts
from bl_tutorial.data import sources
from bl_tutorial.evaluation import Comparison
from bl_tutorial.experiments import load_results, run_experiment
from bl_tutorial.losses import cross_entropy
from bl_tutorial.recipes import LossSpec
from conftest import QUIET


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

    monkeypatch.setattr(grid, "train", no_training)
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
    real_train = grid.train

    def diverge_on_the_combined_loss(model, train_set, val_set, spec, *args, **kwargs):
        if spec.boundary:
            raise FloatingPointError("epoch 0, step 0: the loss is nan")
        return real_train(model, train_set, val_set, spec, *args, **kwargs)

    monkeypatch.setattr(grid, "train", diverge_on_the_combined_loss)
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
    assert list(plan.losses) == ["gdl+bl@rebalance", "gdl"] and plan.losses["gdl"].schedule == "constant"
    assert plan.comparisons == (Comparison("gdl+bl@rebalance", "gdl"),)  # the declared pair is gone: the default
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
    assert sorted(studies) == [6.0, 10.0] and (out / "condition-10" / "results.json").is_file()
    results = studies[6.0]
    assert results["condition"] == 6.0 and results["data"]["kind"] == "synthetic"
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
    with pytest.raises(ValueError, match="unknown loss 'xx'"):
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


def test_a_run_records_where_its_time_went(tiny_experiments):
    results = run_experiment("drive", "fast", tiny_experiments / "timed", losses=["gdl"], **QUIET)
    seconds = results["runs"][0]["seconds"]
    assert {"train", "train_steps", "train_batches", "train_bookkeeping", "select", "evaluate", "figures"} <= set(
        seconds
    )
    assert all(value >= 0 for value in seconds.values()) and results["load_seconds"] > 0
    inside_training = sum(seconds[k] for k in ("train_steps", "train_batches", "train_bookkeeping", "select"))
    assert inside_training <= seconds["train"] <= results["runs"][0]["time_s"]


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
    # the command is printed to 0.1 s and each phase to 0.01 s: their rounding, and no more
    assert len(phases) == 10 and sum(phases) == pytest.approx(command, abs=0.05 + 10 * 0.005 + 1e-9)
    assert re.search(r"run / floor [\d.]+x .* command / floor [\d.]+x", out)
    assert re.search(r"^  drive +run [\d.]+-[\d.]+x, command [\d.]+-[\d.]+x, run / both floors", out, re.M)
    assert re.search(r"selection floor [\d.]+ s; run / \(steps \+ selection floors\) [\d.]+x", out)


def test_spelling_cannot_lose_a_comparison(tiny_experiments):
    """``--losses GDL,GDL+BL`` is ``gdl,gdl+bl``: the same runs, names and comparisons."""
    plain = experiments.plan_experiment("drive", "fast", losses=["gdl", "gdl+bl"])
    shouted = experiments.plan_experiment("drive", "fast", losses=["GDL", "GDL + BL"])
    assert list(shouted.losses) == list(plain.losses) == ["gdl", "gdl+bl"]
    assert shouted.comparisons == plain.comparisons == (Comparison("gdl+bl", "gdl"),)
    out = tiny_experiments / "shouted"
    assert experiments.main(["drive", "--profile", "fast", "--out", str(out), "--losses", "GDL,GDL+BL", "--quiet"]) == 0
    results = load_results(out)
    assert {(c["loss"], c["baseline"]) for c in results["comparisons"]} == {("gdl+bl", "gdl")}
    assert (out / "runs" / "gdl+bl-seed0.json").is_file()


def test_recipes_with_options_and_loss_modules_run_in_a_grid(tiny_experiments, capsys):
    out = tiny_experiments / "options"
    code = experiments.main(
        ["drive", "--profile", "fast", "--out", str(out), "--losses", "focal(gamma=1),focal(gamma=1)+bl", "--quiet"]
    )
    assert code == 0 and "focal(gamma=1)+bl minus focal(gamma=1):" in capsys.readouterr().out
    results = load_results(out)
    assert results["losses"] == ["focal(gamma=1)", "focal(gamma=1)+bl"]
    assert results["runs"][1]["spec"]["alpha"] == 0.05 and results["runs"][1]["spec"]["boundary_classes"] == [1]

    class HalfCrossEntropy(torch.nn.Module):
        name = "half-ce"

        def forward(self, probs, target, dist_maps, progress):
            loss = cross_entropy(probs, target)
            return LossParts(0.5 * loss, {"ce": loss}, {"ce": 0.5})

    results = run_experiment("drive", "fast", None, losses=[HalfCrossEntropy(), "ce"], **QUIET)
    history = results["runs"][0]["history"][0]
    assert results["runs"][0]["loss"] == "half-ce" and history["train_weighted_ce"] == pytest.approx(
        0.5 * history["train_ce"]
    )
    assert history["train_loss"] == pytest.approx(history["train_weighted_ce"])


def test_the_arms_of_a_seed_continue_one_warm_start(tiny_experiments, monkeypatch):
    out = tiny_experiments / "warm"
    starts, real_train = [], grid.train

    def remember(*args, **kwargs):
        starts.append(kwargs.get("initial"))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(grid, "train", remember)
    results = experiments.run_study("imbalance", "fast", out, **QUIET)[10.0]
    assert [w["seed"] for w in results["warm_starts"]] == [0, 1] and results["warm_starts"][0]["settled"] >= 0
    kept = torch.load(out / "condition-10" / "warm" / "seed0.pt", weights_only=True)
    arms = starts[1:4]  # condition 10, seed 0: the warm start (no initial), then three arms from it
    assert starts[0] is None and all(arm is not None for arm in arms)
    for arm in arms:
        assert all(torch.equal(arm["model"][k], kept["model"][k]) for k in kept["model"])
    starts.clear()
    again = experiments.run_study("imbalance", "fast", out, **QUIET)[10.0]  # everything kept: nothing trained
    assert starts == [] and [r["metrics"] for r in again["runs"]] == [r["metrics"] for r in results["runs"]]


def test_fewer_seeds_for_some_losses(tiny_experiments, monkeypatch):
    task = tasks.TASKS["drive"]
    profile = task.profiles["fast"].with_training(seeds=(0, 1), seeds_per_loss={"GDL+BL": 1})
    monkeypatch.setitem(tasks.TASKS, "drive", task.with_profile("fast", profile))
    results = run_experiment("drive", "fast", None, **QUIET)
    assert sorted((r["loss"], r["seed"]) for r in results["runs"]) == [("gdl", 0), ("gdl", 1), ("gdl+bl", 0)]
    assert results["comparisons"][0]["seeds"] == [0] and experiments.provenance(results).endswith("(1 for gdl+bl)")


def test_runs_at_once_give_the_results_of_runs_one_after_the_other(tiny_experiments):
    """Two worker processes with one thread each: the same numbers as one process with one thread,
    whatever order the runs finish in; warm starts included."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = experiments.run_study("imbalance", "fast", tiny_experiments / "alone", workers=1, **QUIET)
    finally:
        torch.set_num_threads(threads)
    together = experiments.run_study("imbalance", "fast", tiny_experiments / "together", workers=2, **QUIET)
    for condition in alone:
        a, b = alone[condition], together[condition]
        assert [(r["loss"], r["seed"]) for r in a["runs"]] == [(r["loss"], r["seed"]) for r in b["runs"]]
        for x, y in zip(a["runs"], b["runs"]):  # every number but the times
            assert [{k: v for k, v in h.items() if k != "time_s"} for h in x["history"]] == [
                {k: v for k, v in h.items() if k != "time_s"} for h in y["history"]
            ]
        assert {k: v for k, v in b["execution"].items() if k != "wall_s"} == {
            "runs_at_once": 2,
            "threads_per_run": max(1, threads // 2),
        }
        assert b["execution"]["wall_s"] > 0
    assert together[10.0]["warm_starts"][1]["seed"] == 1


def test_a_task_defined_where_workers_cannot_import_it_runs_here(tiny_experiments, monkeypatch):
    task = tasks.TASKS["drive"]
    local = dataclasses.replace(task, evaluate=lambda model, data: task.evaluate(model, data))
    plan = experiments.plan_experiment(local, "fast")
    assert not grid.picklable(plan)
    assert experiments.resolve_workers(2, torch.device("cpu"), plan)[0] == 1
    with pytest.raises(ValueError, match="workers must be a number"):
        experiments.resolve_workers("many", torch.device("cpu"), plan)
