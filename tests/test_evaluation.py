"""Statistics over seeds: paired differences, declared comparisons, and verdicts that never say
more than their interval."""

import numpy as np
import pytest

from bl_tutorial.evaluation import (
    Comparison,
    Metric,
    comparison_sentence,
    default_comparisons,
    find_comparison,
    paired_difference,
    summarize,
    verdict,
)

DICE = Metric("dice", "Dice", resolution=0.04, upper=1.0)
HD95 = Metric("hd95", "HD95", "px", higher_is_better=False, resolution=2.0)


def _runs(scores: dict[str, list[float]], key="dice") -> list[dict]:
    runs = []
    for loss, values in scores.items():
        for seed, value in enumerate(values):
            runs.append({"loss": loss, "seed": seed, "status": "finished", "best_epoch": 3,
                         "metrics": {key: value}, "metrics_last": {key: value - 0.01}})  # fmt: skip
    return runs


def _comparison(low, high, n=6):
    return {"loss": "gdl+bl", "baseline": "gdl", "n": n, "mean": (low + high) / 2, "se": 0.01, "interval": [low, high]}


def test_paired_differences_refuse_what_they_cannot_compare():
    with pytest.raises(ValueError, match="one length"):
        paired_difference([0.8, 0.9, 0.7], [0.5])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([0.8, 0.9], [0.7, 0.6], confidence=95)
    unknown = {"loss": "a+bl", "baseline": "a", "n": 2, "mean": 0.1, "se": float("nan"), "interval": [np.nan, np.nan]}
    assert "cannot tell" in comparison_sentence(unknown)


def test_paired_intervals_match_the_t_formula():
    from scipy import stats

    a, b = np.array([0.71, 0.74, 0.69, 0.72]), np.array([0.70, 0.70, 0.69, 0.71])
    result = paired_difference(a, b)
    half = stats.t.ppf(0.975, 3) * np.std(a - b, ddof=1) / 2
    assert result["interval"] == pytest.approx([np.mean(a - b) - half, np.mean(a - b) + half])
    assert paired_difference([0.5], [0.4])["interval"] is None


@pytest.mark.parametrize(
    ("interval", "metric", "movement", "kind"),
    [
        ((0.01, 0.05), DICE, 0.0, "better"),
        ((-0.05, -0.01), DICE, 0.0, "worse"),
        ((-1.5, -0.2), HD95, 0.0, "better"),  # a smaller distance is better
        ((0.01, 0.05), Metric("fraction", "fraction", higher_is_better=None), 0.0, "higher"),
        ((-0.01, 0.02), DICE, 0.0, "no difference larger than"),
        ((-0.09, 0.06), DICE, 0.0, "cannot tell"),
        ((0.005, 0.05), DICE, 0.01, "within noise"),  # clears zero, but by less than a rebuild moves it
        ((0.02, 0.05), DICE, 0.01, "better"),
    ],
)
def test_one_function_gives_every_verdict(interval, metric, movement, kind):
    found = verdict(_comparison(*interval), metric, movement)
    assert found.kind == kind
    assert found.detectable == pytest.approx((interval[1] - interval[0]) / 2 + movement)
    assert found.sentence.startswith("gdl+bl minus gdl:")


def test_verdict_sentences_never_say_more_than_the_interval():
    narrow = verdict(_comparison(-0.01, 0.02), DICE)
    assert narrow.bound == pytest.approx(0.02) and "no difference larger than 0.020" in narrow.sentence
    assert narrow.label == "no difference larger than 0.020"
    wide = verdict(_comparison(-0.09, 0.06), DICE)
    assert "cannot tell" in wide.sentence and "0.075" in wide.sentence and "better" not in wide.sentence
    single = verdict({"loss": "a+bl", "baseline": "a", "n": 1, "mean": 0.1, "se": None, "interval": None}, DICE)
    assert single.kind == "single seed" and single.detectable is None


def test_summaries_pair_the_declared_comparisons_by_seed():
    runs = _runs({"gdl": [0.70, 0.72, 0.71], "gdl+bl": [0.72, 0.73, 0.74], "ce": [0.6, 0.6, 0.6]})
    summary = summarize(runs, [DICE], [Comparison("gdl+bl", "gdl"), Comparison("ce+bl", "ce")])
    assert summary["summary"]["gdl"]["selected"]["dice"]["mean"] == pytest.approx(0.71)
    assert summary["summary"]["gdl"]["last"]["dice"]["mean"] == pytest.approx(0.70)
    assert [(c["loss"], c["epoch"]) for c in summary["comparisons"]] == [("gdl+bl", "selected"), ("gdl+bl", "last")]
    first = summary["comparisons"][0]
    assert first["seeds"] == [0, 1, 2] and first["mean"] == pytest.approx(0.02)
    assert first["verdict"] == verdict(first, DICE).kind and first["sentence"] == verdict(first, DICE).sentence


def test_undeclared_boundary_recipes_are_compared_with_their_regional_part():
    pairs = default_comparisons(["gdl", "gdl+bl", "focal(gamma=1)", "focal(gamma=1)+bl@rebalance", "ce+bl"])
    assert [(c.loss, c.baseline) for c in pairs] == [("gdl+bl", "gdl"), ("focal(gamma=1)+bl@rebalance",
                                                                          "focal(gamma=1)")]  # fmt: skip
    runs = _runs({"gdl": [0.7, 0.7], "gdl+bl": [0.8, 0.7]})
    assert len(summarize(runs, ["dice"])["comparisons"]) == 2


def test_comparisons_are_found_however_the_loss_is_spelled():
    runs = _runs({"gdl": [0.7, 0.71], "gdl+bl": [0.72, 0.70]})
    comparisons = summarize(runs, [DICE])["comparisons"]
    assert find_comparison(comparisons, "GDL + BL")["baseline"] == "gdl"
    assert Comparison("GDL+BL", "Gdl").canonical() == Comparison("gdl+bl", "gdl")
    with pytest.raises(KeyError, match="no comparison of 'ce\\+bl'"):
        find_comparison(comparisons, "ce+bl")


def test_metrics_are_read_back_from_results_files():
    assert Metric.coerce({"key": "dice", "label": "Dice", "resolution": 0.04}).resolution == 0.04
    assert Metric.coerce("hd95").label == "hd95"
    with pytest.raises(TypeError, match="a metric must be"):
        Metric.coerce(3)


def test_a_measured_movement_between_builds_withholds_fragile_verdicts():
    runs = _runs({"gdl": [0.70, 0.71, 0.70], "gdl+bl": [0.725, 0.73, 0.73]})  # +0.025, +0.02, +0.03
    plain = summarize(runs, [DICE], [Comparison("gdl+bl", "gdl")])["comparisons"][0]
    moved = summarize(runs, [DICE], [Comparison("gdl+bl", "gdl")], movement={"dice": 0.02})["comparisons"][0]
    assert plain["verdict"] == "better" and moved["verdict"] == "within noise"
    assert moved["detectable"] == pytest.approx(plain["detectable"] + 0.02)
