"""Paired statistics on hand-made data with known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from hydramix_core.stats import paired_differences, summarize

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
