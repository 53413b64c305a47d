# %% [markdown]
# # 3 · Classifier evaluation
#
# Every method trains the same classifier from scratch on each few-shot split under one
# protocol (SGD Nesterov, cosine schedule, crop + flip, see `hydramix_core.classifier`);
# HydraMix methods replace samples by generated ones with probability `p_gen`. Each run
# writes `runs/<run>.json`; rerunning skips finished runs.

# %% [parameters]
profile = "smoke"
results_dir = "results/smoke"
dataset = "cifar10"
samples_per_class = [5, 10]
seeds = [0, 1]
device = "auto"
cpu_workers = 1
methods = ["baseline", "mixup", "hydramix"]
p_gen = 0.5
classifier = {"model": "wrn16_8", "epochs": 200}

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Markdown, display

from hydramix_core.figures import learning_curve_plot, method_palette, paired_difference_plot, plain_log_ticks, savefig
from hydramix_core.stats import (best_without_generator, curve_summary, curve_table, interval_texts, paired_differences,
                                 summarize)
from hydramix_core.study import (best_in_bold, load_curves, mean_sd_table, run_path, run_sweep, sweep_configs,
                                 to_markdown)

results = Path(results_dir)
configs = sweep_configs(dataset=dataset, samples_per_class=samples_per_class, seeds=seeds, methods=methods,
                        p_gen=p_gen, device=device, **classifier)
print(f"{len(configs)} runs: {len(methods)} methods x {len(samples_per_class)} sizes x {len(seeds)} seeds; "
      f"classifier settings {classifier}; torch {torch.__version__}")
runs = run_sweep(configs, results, cpu_workers=cpu_workers)
runs.to_csv(results / "classifier_runs.csv", index=False)

# %% [markdown]
# ## Test accuracy (%), mean ± sd over seeds
# Best mean per column in bold.

# %%
# NBVAL_CHECK_OUTPUT
table = best_in_bold(runs, mean_sd_table(runs))
table.columns = [f"{n} / class" for n in table.columns]
print(f"{dataset}, {runs['test_images'].iloc[0]} test images, {len(seeds)} seeds")
print(to_markdown(table))

# %%
display(Markdown(to_markdown(table)))
evaluation = (f", evaluation {runs['eval_time_s'].median():.0f} s (the learning curve's points and the end)"
              if runs["eval_time_s"].notna().all() else "")
print(f"device {runs['device'].iloc[0]}; per run (median): training {runs['train_time_s'].median():.0f} s{evaluation}")

# %% [markdown]
# ## Accuracy against training-set size
# Lines are means over seeds, bars one standard deviation. HydraMix should help most at
# the smallest sizes, where there is least to learn from.

# %%
frame = runs.assign(accuracy=runs["accuracy"] * 100)
axis = sns.lineplot(data=frame, x="samples_per_class", y="accuracy", hue="method", marker="o", errorbar="sd",
                    palette=method_palette(frame["method"].unique()))
plain_log_ticks(axis, samples_per_class)
axis.set(xlabel="samples per class", ylabel="test accuracy (%)",
         title=f"{dataset}: accuracy vs samples per class ({len(seeds)} seeds)")
savefig(axis.figure, results / "figures", "03_accuracy_vs_samples")
plt.show()

# %% [markdown]
# ## How sure: intervals, and differences paired by seed
# The same seed draws the same training images for every method, so methods are compared
# seed by seed. Per size and method: the 95 % t-interval of the mean accuracy; then each
# method minus the baseline and minus the best method without a generator (classic
# augmentations, MixUp, ζ-mixup), as the mean of the per-seed differences with a 95 % paired
# bootstrap interval (scipy, fixed random state) and the seeds won. An interval that contains 0
# does not say which method is better at this number of seeds. A signed-rank test appears only
# from 6 seeds, where it can reach p < 0.05.

# %%
# NBVAL_CHECK_OUTPUT
summary = summarize(runs)
interval = summary.assign(**{"mean %": (summary["mean"] * 100).round(1), "sd": (summary["sd"] * 100).round(1),
                             "95 % interval": interval_texts(summary)})
print(interval[["samples_per_class", "method", "seeds", "mean %", "sd", "95 % interval"]].to_string(index=False))
references = [m for m in dict.fromkeys(["baseline", best_without_generator(runs)]) if m in set(runs["method"])]
paired = pd.concat([paired_differences(runs, reference) for reference in references] or [pd.DataFrame()])
if paired.empty:
    paired = pd.DataFrame(columns=["reference", "samples_per_class", "method", "difference", "ci_low", "ci_high",
                                   "won", "seeds", "wilcoxon"])
shown = paired.assign(**{"difference (points)": (paired["difference"] * 100).round(1),
                         "95 % interval": interval_texts(paired),
                         "seeds won": [f"{w}/{n}" for w, n in zip(paired["won"], paired["seeds"])]})
paired.to_csv(results / "paired_differences.csv", index=False)
print()
print(shown[["reference", "samples_per_class", "method", "difference (points)", "95 % interval", "seeds won",
             "wilcoxon"]].to_string(index=False))

# %%
for reference, group in paired.groupby("reference", sort=False):
    figure = paired_difference_plot(group, title=f"{dataset}: each method minus {reference}, paired by seed")
    savefig(figure, results / "figures", f"03_paired_vs_{reference}")
    plt.show()

# %% [markdown]
# ## Accuracy during training
# Every run also evaluates the test set at fixed fractions of its own schedule (`eval_at`; the
# cosine schedule is the run's own, so a point at 1/2 is not the end of a run half as long).
# Per method: the mean over seeds with its 95 % t-interval; then each method minus the baseline
# at each point, paired by seed. Where a method peaks before the end it overfits later.

# %%
# NBVAL_CHECK_OUTPUT
curves = load_curves([run_path(results, c) for c in configs])
if curves.empty:
    print("These runs were recorded before runs kept a learning curve: no curve to show.")
else:
    print("accuracy % (95 % t-interval) at each evaluated step")
    print(curve_table(curves).to_string(index=False))
if "baseline" in set(curves["method"]) and curves["method"].nunique() > 1:
    print("\nminus baseline (points), 95 % paired bootstrap interval (seeds won)")
    print(curve_table(curves, "baseline").to_string(index=False))

# %%
for n, group in curves.groupby("samples_per_class"):
    if group["step"].nunique() < 2:
        print(f"n = {n}: the runs were evaluated only at their end; no curve to draw")
        continue
    figure = learning_curve_plot(curve_summary(group), chance=1 / group["classes"].iloc[0],
                                 title=f"{dataset}, {n} / class: test accuracy during training ({len(seeds)} seeds)")
    savefig(figure, results / "figures", f"03_learning_curve_n{n}")
    plt.show()
