# %% [markdown]
# # 6 · Report
#
# The study's results in the paper's form: test accuracy (%) as mean ± sd over seeds,
# best in bold, next to published numbers where they exist for this dataset and size;
# then across all sizes: each method's interquartile mean with a stratified bootstrap
# interval, its run-score distribution, and its paired differences to the baseline.
# Published numbers are other papers' (sources listed), never outputs of this code.

# %% [parameters]
profile = "smoke"
results_dir = "results/smoke"
dataset = "cifar10"

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns
from IPython.display import Markdown, display

from hydramix_core.figures import performance_profile_plot, savefig
from hydramix_core.stats import aggregate, interval_texts, paired_differences, performance_profile
from hydramix_core.study import beside_published, best_in_bold, load_runs, mean_sd_table, to_markdown

results = Path(results_dir)
runs = load_runs(sorted((results / "runs").glob("*.json")))
runs = runs[runs["dataset"] == dataset]
main = runs[runs["p_gen"].isna() | (runs["p_gen"] == 0.5)]
records = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]
setting = (f"{dataset}, {runs['seed'].nunique()} seeds, {records[0]['config']['model']}, {records[0]['steps']} steps; "
           f"{runs['device'].iloc[0]}, torch {records[0]['versions']['torch']}")
print(f"profile {profile}: {len(runs)} runs; {setting}")

# %% [markdown]
# ## Main table

# %%
table = best_in_bold(main, mean_sd_table(main))
table.columns = [f"{n} / class" for n in table.columns]
table.insert(0, "generated samples", main.groupby("method")["rule"].first())
display(Markdown(to_markdown(table)))
(results / "report_table.md").write_text(to_markdown(table) + "\n")

# %% [markdown]
# ## Beside the published numbers
# Published numbers (other papers', with their dataset) beside our runs of the same method
# and size; ChimeraMix rows use ChimeraMix's own rule. "theirs is" says whether the published
# number lies inside the 95 % t-interval of our mean (with few seeds that interval is wide:
# "inside" then means "not contradicted", not "reproduced"). CIFAR-10 runs are set beside ciFAIR-10 numbers: the same training images,
# ciFAIR's test set without CIFAR's near-duplicates.

# %%
# NBVAL_CHECK_OUTPUT
compared = beside_published(main, dataset)
if compared.empty:
    print(f"No published numbers for {dataset} (they exist for ciFAIR-10/100 and CIFAR-10/100).")
else:
    print(to_markdown(compared.set_index("published")))

# %% [markdown]
# ## The generator's part (the paper's Figure 4)
# Accuracy at the smallest size of HydraMix and ChimeraMix+Grid, each with its generator and
# with the same masks applied to pixels directly (no generator). The gap between a method
# and its "direct" ablation is what the learned generator adds.

# %%
figure4 = ["hydramix", "hydramix_direct", "chimeramix_grid", "chimeramix_grid_direct"]
smallest = runs[(runs["samples_per_class"] == runs["samples_per_class"].min()) & runs["method"].isin(figure4)
                & (runs["p_gen"].isna() | (runs["p_gen"] == 0.5))]
if smallest.empty:
    print("No Figure-4 methods in this profile.")
else:
    order = [m for m in figure4 if m in set(smallest["method"])]
    axis = sns.barplot(data=smallest.assign(accuracy=smallest["accuracy"] * 100), x="method", y="accuracy", order=order,
                       errorbar="sd", capsize=0.2, color="tab:blue")
    sns.stripplot(data=smallest.assign(accuracy=smallest["accuracy"] * 100), x="method", y="accuracy", order=order,
                  color="black", size=3, ax=axis)
    axis.set(xlabel="", ylabel="test accuracy (%)",
             title=f"{smallest['samples_per_class'].iloc[0]} images per class: with and without the generator\n{setting}")
    axis.tick_params(axis="x", rotation=20)
    savefig(axis.figure, results / "figures", "06_figure4_generator_ablation")
    plt.show()

# %% [markdown]
# ## Across sizes: interquartile mean and run-score distribution
# Each method's accuracies over every size and seed: the interquartile mean (the mean of the
# middle half, robust to one failed seed) with a 95 % stratified bootstrap interval (seeds
# resampled within each size; fixed random state), and the fraction of its runs above each
# accuracy (a performance profile: a curve further right is better everywhere).

# %%
# NBVAL_CHECK_OUTPUT
overall = aggregate(main).sort_values("iqm", ascending=False)
print(overall.assign(**{"IQM %": (overall["iqm"] * 100).round(1),
                        "95 % interval": interval_texts(overall)})
      [["method", "cells", "runs", "IQM %", "95 % interval"]].to_string(index=False))

# %%
figure = performance_profile_plot(performance_profile(main), title=f"{dataset}: run-score distributions\n{setting}")
savefig(figure, results / "figures", "06_performance_profile")
plt.show()

# %% [markdown]
# ## Where each method gains over the baseline
# Mean of the per-seed differences to cross-entropy (percentage points) per size, its 95 %
# paired bootstrap interval and the seeds won.

# %%
if "baseline" in set(main["method"]):
    paired = paired_differences(main, "baseline")
    cells = [f"{d * 100:+.1f} {interval} ({w}/{k})" for d, interval, w, k
             in zip(paired["difference"], interval_texts(paired, signed=True), paired["won"], paired["seeds"])]
    gain = paired.assign(cell=cells).pivot_table(index="method", columns="samples_per_class", values="cell",
                                                 aggfunc="first")
    gain.columns = [f"{n} / class" for n in gain.columns]
    display(Markdown(to_markdown(gain)))
