# %% [markdown]
# # 6 · Report
#
# The study's results in the paper's form: test accuracy (%) as mean ± sd over seeds,
# best in bold, next to published numbers where they exist for this dataset and size.
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

from hydramix_core.figures import savefig
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
# and size; ChimeraMix rows use ChimeraMix's own rule. A flag marks a difference of more
# than 1.5 points. CIFAR-10 runs are set beside ciFAIR-10 numbers: the same training images,
# ciFAIR's test set without CIFAR's near-duplicates.

# %%
# NBVAL_CHECK_OUTPUT
compared = beside_published(runs, dataset)
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
# ## Where each method gains over the baseline
# Mean accuracy difference to cross-entropy (percentage points) per size, over seeds.

# %%
means = main.pivot_table(index="method", columns="samples_per_class", values="accuracy", aggfunc="mean") * 100
if "baseline" in means.index:
    gain = (means - means.loc["baseline"]).round(1)
    display(Markdown(to_markdown(gain)))
