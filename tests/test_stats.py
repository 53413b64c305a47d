"""Paired statistics on hand-made data with known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from hydramix_core.stats import (aggregate, best_without_generator, inside_interval, paired_differences,
                                 performance_profile, summarize)

BASE = [0.10, 0.50, 0.30, 0.70, 0.20]  # widely spread over seeds


def _runs(methods: dict, n=5, dataset="cifar10") -> pd.DataFrame:
    return pd.DataFrame([{"dataset": dataset, "samples_per_class": n, "seed": seed, "method": method, "accuracy": value}
                         for method, values in methods.items() for seed, value in enumerate(values)])


def test_the_t_interval_of_a_mean():
    summary = summarize(_runs({"baseline": [0.1, 0.2, 0.3, 0.4, 0.5]})).iloc[0]
    half = scipy_stats.t.ppf(0.975, 4) * np.std([0.1, 0.2, 0.3, 0.4, 0.5], ddof=1) / np.sqrt(5)  # 2.776 sd / sqrt 5
    assert summary["seeds"] == 5 and summary["mean"] == pytest.approx(0.3)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((0.3 - half, 0.3 + half))
    assert half == pytest.approx(1.24 * summary["sd"], rel=0.01)  # the brief's +-1.24 sd at 5 seeds


def test_a_constant_paired_difference_has_a_zero_width_interval_however_spread_the_seeds():
    runs = _runs({"baseline": BASE, "hydramix": [v + 0.02 for v in BASE]})
    row = paired_differences(runs, "baseline").iloc[0]
    assert row["difference"] == pytest.approx(0.02)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.02, 0.02))
    assert (row["won"], row["lost"], row["tied"], row["seeds"]) == (5, 0, 0, 5)
    assert row["wilcoxon"] == "5 seeds: too few"  # an exact test on 5 pairs cannot reach p < 0.05


def test_pairing_is_by_seed_not_by_row_order():
    runs = _runs({"baseline": BASE, "hydramix": [v + 0.02 for v in BASE]})
    shuffled = runs.sample(frac=1, random_state=0).reset_index(drop=True)
    assert paired_differences(shuffled, "baseline").iloc[0]["ci_high"] == pytest.approx(0.02)
    mispaired = runs.copy()  # the same values under other seeds: no longer a constant difference
    rows = mispaired["method"] == "hydramix"
    mispaired.loc[rows, "seed"] = mispaired.loc[rows, "seed"].to_numpy()[::-1]
    row = paired_differences(mispaired, "baseline").iloc[0]
    assert row["difference"] == pytest.approx(0.02) and row["ci_high"] - row["ci_low"] > 0.1


def test_wilcoxon_only_where_it_can_be_significant_and_one_run_per_seed():
    base = BASE + [0.4]
    row = paired_differences(_runs({"baseline": base, "mixup": [v + 0.01 * (i + 1) for i, v in enumerate(base)]}),
                             "baseline").iloc[0]
    assert row["wilcoxon"] == "p = 0.0312"  # 2 / 2**6, exact, every seed won
    twice = pd.concat([_runs({"baseline": BASE}), _runs({"baseline": BASE})])
    with pytest.raises(ValueError, match="one run per seed"):
        summarize(twice)


def test_the_iqm_drops_the_outer_quarters_and_its_interval_resamples_within_cells():
    cell_a = [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80]
    runs = pd.concat([_runs({"m": cell_a}, n=5), _runs({"m": [0.9] * 4}, n=10)])
    row = aggregate(runs).iloc[0]
    values = sorted(cell_a + [0.9] * 4)  # 12 runs: the middle 6
    assert row["cells"] == 2 and row["runs"] == 12 and row["iqm"] == pytest.approx(np.mean(values[3:9]))
    assert row["ci_low"] <= row["iqm"] <= row["ci_high"] and row["ci_high"] - row["ci_low"] > 0.05
    constant = aggregate(pd.concat([_runs({"m": [0.3] * 5}, n=5), _runs({"m": [0.6] * 5}, n=10)])).iloc[0]
    # stratified: every resample keeps five runs of each cell, so a constant cell stays constant
    assert constant["ci_low"] == pytest.approx(constant["ci_high"]) == pytest.approx(constant["iqm"])
    assert aggregate(runs, seed=1)["ci_low"].iloc[0] == pytest.approx(aggregate(runs, seed=1)["ci_low"].iloc[0])


def test_the_performance_profile_counts_runs_above_each_threshold():
    runs = _runs({"a": [0.1, 0.2, 0.3, 0.4], "b": [0.3, 0.3, 0.3, 0.3]})
    profile = performance_profile(runs, thresholds=[0.0, 0.25, 0.35])
    fraction = profile.set_index(["method", "threshold"])["fraction"]
    assert fraction[("a", 0.0)] == 1 and fraction[("a", 0.25)] == 0.5 and fraction[("a", 0.35)] == 0.25
    assert fraction[("b", 0.25)] == 1 and fraction[("b", 0.35)] == 0


def test_the_best_method_without_a_generator_and_the_published_number_inside_our_interval():
    runs = _runs({"baseline": [0.5] * 3, "mixup": [0.4] * 3, "zetamixup": [0.45] * 3, "hydramix": [0.9] * 3,
                  "chimeramix_grid_direct": [0.8] * 3})
    assert best_without_generator(runs) == "zetamixup"
    assert best_without_generator(runs[runs["method"].isin(["baseline", "hydramix"])]) is None
    summary = summarize(_runs({"m": [0.40, 0.42, 0.44]}))  # mean 0.42, t-interval +-0.0497
    assert [inside_interval(summary, "cifar10", 5, "m", v) for v in (0.42, 0.465, 0.475, 0.37)] == \
        ["inside", "inside", "above ours", "below ours"]
    assert inside_interval(summary, "cifar10", 10, "m", 0.42) == "no interval"


def test_seeds_that_agree_give_a_point_interval_and_one_seed_none():
    summary = summarize(pd.concat([_runs({"same": [0.3] * 4}), _runs({"one": [0.5]})])).set_index("method")
    assert summary.loc["same", "ci_low"] == summary.loc["same", "ci_high"] == pytest.approx(0.3)
    assert np.isnan(summary.loc["one", "ci_low"]) and np.isnan(summary.loc["one", "sd"])


def test_the_comparison_table_pairs_each_method_with_each_reference():
    from hydramix_core.stats import comparison_table

    runs = _runs({"baseline": BASE, "mixup": [v + 0.01 for v in BASE], "hydramix": [v + 0.03 for v in BASE]})
    table = comparison_table(runs, ("baseline", "mixup", "absent")).set_index("method")
    assert table.loc["hydramix", "minus baseline (points)"] == "+3.0 [+3.0, +3.0] (won 5/5)"
    assert table.loc["hydramix", "minus mixup (points)"] == "+2.0 [+2.0, +2.0] (won 5/5)"
    assert table.loc["baseline", "minus baseline (points)"] == "" and "minus absent (points)" not in table
    assert table.loc["baseline", "accuracy %"] == f"36.0 ± {np.std(BASE, ddof=1) * 100:.1f}"
