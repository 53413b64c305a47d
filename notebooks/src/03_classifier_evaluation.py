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
methods = ["baseline", "mixup", "hydramix"]
p_gen = 0.5
classifier = {"model": "wrn16_8", "epochs": 200}

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns
import torch
from IPython.display import Markdown, display

from hydramix_core.figures import savefig
from hydramix_core.study import best_in_bold, mean_sd_table, run_sweep, sweep_configs, to_markdown

results = Path(results_dir)
configs = sweep_configs(dataset=dataset, samples_per_class=samples_per_class, seeds=seeds, methods=methods,
                        p_gen=p_gen, device=device, **classifier)
print(f"{len(configs)} runs: {len(methods)} methods x {len(samples_per_class)} sizes x {len(seeds)} seeds; "
      f"classifier settings {classifier}; torch {torch.__version__}")
runs = run_sweep(configs, results)
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
print(f"device {runs['device'].iloc[0]}; training time per run: {runs['train_time_s'].median():.0f} s (median)")

# %% [markdown]
# ## Accuracy against training-set size
# Lines are means over seeds, bars one standard deviation. HydraMix should help most at
# the smallest sizes, where there is least to learn from.

# %%
frame = runs.assign(accuracy=runs["accuracy"] * 100)
axis = sns.lineplot(data=frame, x="samples_per_class", y="accuracy", hue="method", marker="o", errorbar="sd")
axis.set(xscale="log", xticks=samples_per_class, xticklabels=samples_per_class, xlabel="samples per class",
         ylabel="test accuracy (%)", title=f"{dataset}: accuracy vs samples per class ({len(seeds)} seeds)")
savefig(axis.figure, results / "figures", "03_accuracy_vs_samples")
plt.show()
