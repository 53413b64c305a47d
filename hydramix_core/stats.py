"""Saying "better" honestly: per-method intervals and paired differences over seeds.

    summary = summarize(runs)                           # mean, sd, 95 % t-interval of the mean per cell
    paired = paired_differences(runs, "baseline")       # each method minus baseline, paired by seed
    overall = aggregate(runs)                           # IQM across cells and seeds, stratified bootstrap
    profile = performance_profile(runs)                 # share of runs above each accuracy, per method

``runs`` is study.load_runs' table (a row per run: dataset, samples_per_class, seed, method,
accuracy). The same seed draws the same images for every method, so methods are compared
paired by seed: the mean of the per-seed differences, a 95 % paired bootstrap interval of it
(``scipy.stats.bootstrap``, percentile, fixed random state), and the seeds won, lost and tied.
A signed-rank test is reported only where it can reach p < 0.05: an exact two-sided Wilcoxon
test on n pairs cannot go below 2 / 2^n, so with fewer than 6 seeds it says "n seeds: too few".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CELL = ["dataset", "samples_per_class"]
MIN_SEEDS_FOR_WILCOXON = 6  # 2 / 2**6 = 0.031 < 0.05; with 5 seeds the smallest p is 0.0625


def summarize(runs: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per (dataset, n, method): seeds, mean and sd of the accuracy, and the t-interval of the mean."""
    rows = []
    for (dataset, n, method), group in _unique(runs).groupby([*CELL, "method"]):
        values = group["accuracy"].to_numpy(float)
        mean, sd = values.mean(), values.std(ddof=1) if len(values) > 1 else float("nan")
        if len(values) < 2:
            low = high = float("nan")
        elif sd == 0:  # scipy's t.interval gives NaN at scale 0; the interval is the point
            low = high = mean
        else:
            low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sd / np.sqrt(len(values)))
        rows.append({"dataset": dataset, "samples_per_class": n, "method": method, "seeds": len(values), "mean": mean,
                     "sd": sd, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def paired_differences(runs: pd.DataFrame, reference: str, *, confidence: float = 0.95, n_resamples: int = 9999,
                       seed: int = 0) -> pd.DataFrame:
    """Each method minus ``reference`` per (dataset, n), over the seeds both have (see the module docstring)."""
    runs = _unique(runs)
    rows = []
    for (dataset, n), cell in runs.groupby(CELL):
        base = cell[cell["method"] == reference].set_index("seed")["accuracy"]
        for method, group in cell[cell["method"] != reference].groupby("method"):
            mine = group.set_index("seed")["accuracy"]
            seeds = sorted(set(mine.index) & set(base.index))
            a, b = mine.loc[seeds].to_numpy(float), base.loc[seeds].to_numpy(float)
            row = {"dataset": dataset, "samples_per_class": n, "method": method, "reference": reference,
                   "seeds": len(seeds), "difference": float(np.mean(a - b)) if seeds else float("nan"),
                   "ci_low": float("nan"), "ci_high": float("nan"), "won": int((a > b).sum()),
                   "lost": int((a < b).sum()), "tied": int((a == b).sum())}
            if len(seeds) > 1:
                interval = stats.bootstrap((a, b), lambda x, y: np.mean(x - y), paired=True, vectorized=False,
                                           confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                                           random_state=np.random.default_rng(seed)).confidence_interval
                row["ci_low"], row["ci_high"] = float(interval.low), float(interval.high)
            row["wilcoxon"] = _wilcoxon(a, b)
            rows.append(row)
    return pd.DataFrame(rows)


def curve_summary(curves: pd.DataFrame, reference: str | None = None, **kwargs) -> pd.DataFrame:
    """Learning curves (study.load_curves' rows) per point of the schedule: each method's mean with
    its t-interval (``summarize``), and with ``reference`` each method minus it, paired by seed
    (``paired_differences``), as rows with their ``fraction`` of the schedule and ``step``."""
    frames = []
    for (fraction, step), group in curves.groupby(["fraction", "step"]):
        table = summarize(group) if reference is None else paired_differences(group, reference, **kwargs)
        frames.append(table.assign(fraction=fraction, step=step))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def best_without_generator(runs: pd.DataFrame, exclude=("baseline",)) -> str | None:
    """The method with the highest mean accuracy over all cells among those that use no generator
    and no generator-style masks (classic augmentations, MixUp, zeta-mixup, ...); None if none ran."""
    classic = runs[~runs["method"].str.contains("hydramix|chimeramix") & ~runs["method"].isin(exclude)]
    return None if classic.empty else str(classic.groupby("method")["accuracy"].mean().idxmax())


def aggregate(runs: pd.DataFrame, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per method, the interquartile mean (IQM) of its accuracies over every cell and seed, with a
    stratified bootstrap interval: each resample draws each cell's seeds with replacement, as
    rliable's StratifiedBootstrap does (Agarwal et al., NeurIPS 2021).

    Written here rather than with rliable: rliable 1.2 needs arch < 8, and arch 7 does not import
    with pandas 3. The IQM is scipy's trim_mean with a quarter cut at each end; a method is
    aggregated over the cells it has.
    """
    rows = []
    rng = np.random.default_rng(seed)
    for method, group in _unique(runs).groupby("method"):
        cells = [cell["accuracy"].to_numpy(float) for _, cell in group.groupby(CELL)]
        point = stats.trim_mean(np.concatenate(cells), 0.25)
        resampled = np.concatenate([cell[rng.integers(0, len(cell), (n_resamples, len(cell)))] for cell in cells], axis=1)
        estimates = stats.trim_mean(resampled, 0.25, axis=1)
        low, high = np.quantile(estimates, [(1 - confidence) / 2, (1 + confidence) / 2])
        rows.append({"method": method, "cells": len(cells), "runs": sum(len(c) for c in cells), "iqm": point,
                     "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def performance_profile(runs: pd.DataFrame, thresholds=None) -> pd.DataFrame:
    """Per method and threshold tau, the fraction of its runs (all cells and seeds) with accuracy > tau
    (a run-score distribution, Agarwal et al. 2021); long form: method, threshold, fraction."""
    runs = _unique(runs)
    if thresholds is None:
        thresholds = np.linspace(runs["accuracy"].min(), runs["accuracy"].max(), 101)
    rows = [{"method": method, "threshold": tau, "fraction": float((group["accuracy"].to_numpy() > tau).mean())}
            for method, group in runs.groupby("method") for tau in thresholds]
    return pd.DataFrame(rows)


def interval_of(summary: pd.DataFrame, dataset: str, samples_per_class: int, method: str) -> tuple[float, float] | None:
    """The 95 % interval of ``method``'s mean in ``summary`` (summarize's table), None without 2 seeds."""
    row = summary[(summary["dataset"] == dataset) & (summary["samples_per_class"] == samples_per_class)
                  & (summary["method"] == method)]
    if row.empty or row["seeds"].iloc[0] < 2:
        return None
    return row["ci_low"].iloc[0], row["ci_high"].iloc[0]


def inside_interval(summary: pd.DataFrame, dataset: str, samples_per_class: int, method: str, value: float) -> str:
    """Whether ``value`` (a fraction) lies inside the 95 % interval of ``method``'s mean in ``summary``."""
    interval = interval_of(summary, dataset, samples_per_class, method)
    if interval is None:
        return "no interval"
    low, high = interval
    return "inside" if low <= value <= high else "below ours" if value < low else "above ours"


def interval_text(low: float, high: float, *, signed: bool = False) -> str:
    """An interval of fractions in points: '[18.0, 23.2]', or '[-0.7, +2.5]' with ``signed``."""
    form = "+.1f" if signed else ".1f"
    return f"[{low * 100:{form}}, {high * 100:{form}}]"


def interval_texts(table: pd.DataFrame, *, signed: bool = False) -> list[str]:
    """interval_text of each row's ci_low and ci_high."""
    return [interval_text(low, high, signed=signed) for low, high in zip(table["ci_low"], table["ci_high"])]


def _wilcoxon(a: np.ndarray, b: np.ndarray) -> str:
    if len(a) < MIN_SEEDS_FOR_WILCOXON:
        return f"{len(a)} seeds: too few"
    if np.all(a == b):
        return "p = 1 (no difference)"
    return f"p = {stats.wilcoxon(a, b, method='exact' if np.all(a != b) else 'auto').pvalue:.3g}"


def _unique(runs: pd.DataFrame) -> pd.DataFrame:
    """One accuracy per (dataset, n, method, seed); a table holding several (e.g. p_gen variants) is refused."""
    keys = [*CELL, "method", "seed"]
    repeated = runs[runs.duplicated(keys, keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise ValueError(f"{len(repeated)} rows share (dataset, n, method, seed), e.g. {first['method']} n="
                         f"{first['samples_per_class']} seed {first['seed']}: select one run per seed first "
                         f"(e.g. one p_gen).")
    return runs


def comparison_table(runs: pd.DataFrame, references=("baseline", "mixup")) -> pd.DataFrame:
    """Per (dataset, n) and method: seeds, accuracy (%) mean ± sd, the 95 % t-interval, and the
    paired difference to each reference present, as '+1.2 [-0.5, +2.9] (won 4/6)' (points)."""
    summary = summarize(runs)
    table = pd.DataFrame({"dataset": summary["dataset"], "n": summary["samples_per_class"], "method": summary["method"],
                          "seeds": summary["seeds"],
                          "accuracy %": [f"{m * 100:.1f} ± {s * 100:.1f}" for m, s in zip(summary["mean"], summary["sd"])],
                          "95 % interval": interval_texts(summary)})
    for reference in references:
        if reference not in set(runs["method"]):
            continue
        paired = paired_differences(runs, reference)
        cells = {(r.dataset, r.samples_per_class, r.method):
                 f"{r.difference * 100:+.1f} {interval_text(r.ci_low, r.ci_high, signed=True)} (won {r.won}/{r.seeds})"
                 for r in paired.itertuples()}
        table[f"minus {reference} (points)"] = [cells.get(key, "") for key in zip(table["dataset"], table["n"],
                                                                               table["method"])]
    return table


def curve_table(curves: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Learning curves as a table, one row per (dataset, n, method) and a column per evaluated
    step: the mean accuracy (%) with its 95 % t-interval, or with ``reference`` each method minus
    it (points), paired by seed, as '+1.2 [-0.5, +2.9] (won 4/6)'. Steps are those every run
    was evaluated at."""
    points = curve_summary(curves, reference)
    if points.empty:
        return pd.DataFrame()
    if reference is None:
        cells = [f"{m * 100:.1f} {interval_text(lo, hi)}" for m, lo, hi in
                 zip(points["mean"], points["ci_low"], points["ci_high"])]
    else:
        cells = [f"{d * 100:+.1f} {interval_text(lo, hi, signed=True)} (won {w}/{k})" for d, lo, hi, w, k in
                 zip(points["difference"], points["ci_low"], points["ci_high"], points["won"], points["seeds"])]
    table = points.assign(cell=cells).pivot(index=[*CELL, "method"], columns="step", values="cell")
    table.columns = [f"step {step}" for step in table.columns]
    return table.reset_index()
