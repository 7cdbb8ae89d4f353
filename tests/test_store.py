"""The folder of an experiment, run identity, and reading results back."""

import json
import shutil
from pathlib import Path

import pytest

from bl_tutorial import experiments, store
from bl_tutorial.experiments import load_results


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


def test_run_identity_covers_code_not_prose(tmp_path, monkeypatch):
    """A docstring or comment edit (or any edit to the figure modules) keeps an interrupted run resumable;
    a change of code a run executes does not."""
    package = tmp_path / "bl_tutorial"
    shutil.copytree(store.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "results"))
    monkeypatch.setattr(store, "PACKAGE", package)
    before = store.code_digest()
    training = package / "training.py"
    source = training.read_text()
    training.write_text(source.replace('"""The training loop', '"""The training loop, reworded,', 1) + "\n# a note\n")
    (package / "viz" / "results.py").write_text((package / "viz" / "results.py").read_text() + "\nX = 1\n")
    assert store.code_digest() == before
    training.write_text(source.replace("EVAL_PIXELS = {", "EVAL_PIXELS = {'tpu': 1, ", 1))
    assert store.code_digest() != before


def test_loss_names_become_safe_file_names():
    assert store.file_name("0.5*ce+0.5*gdl+bl@rebalance(over=none)") == "0.5_ce+0.5_gdl+bl@rebalance_over=none_"
    assert store.figure_path("out", "report", "focal(gamma=1)+bl", 2).name == "report_focal_gamma=1_+bl_seed2.png"


def test_a_measured_movement_is_read_per_metric(tmp_path):
    assert store.measured_movement("imbalance", "fast", tmp_path) == {}
    path = store.movement_path("imbalance", "fast", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"by_metric": {"dice": 0.012, "hd95": 1.5}}))
    assert store.measured_movement("imbalance", "fast", tmp_path) == {"dice": 0.012, "hd95": 1.5}
