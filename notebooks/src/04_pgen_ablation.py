# %% [markdown]
# # 4 · How often to use generated samples: the p_gen ablation
#
# At the smallest training-set size, HydraMix classifiers are trained with generated
# samples replacing real ones with probability `p_gen` from 0 (never) to 1 (only
# generated images). The paper's default is 0.5 (dashed line).

# %% [parameters]
profile = "smoke"
results_dir = "results/smoke"
dataset = "cifar10"
samples_per_class = [5, 10]
seeds = [0, 1]
device = "auto"
p_gen_values = [0.0, 0.25, 0.5, 0.75, 1.0]
classifier = {"model": "wrn16_8", "epochs": 200}

# %%
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from hydramix_core.figures import savefig
from hydramix_core.study import run_sweep, sweep_configs

results = Path(results_dir)
n = min(samples_per_class)
base = sweep_configs(dataset=dataset, samples_per_class=[n], seeds=seeds, methods=["hydramix"], device=device, **classifier)
configs = [replace(config, p_gen=p) for p in p_gen_values for config in base]
ablation = run_sweep(configs, results)
ablation.to_csv(results / "pgen_ablation.csv", index=False)

# %%
# NBVAL_CHECK_OUTPUT
summary = ablation.groupby("p_gen")["accuracy"].agg(["mean", "std", "count"]) * [100, 100, 1]
print(f"{dataset}, {n} images per class, accuracy (%) over {len(seeds)} seeds")
print(summary.round(1).rename(columns={"count": "seeds"}).to_string())

# %% [markdown]
# Mean ± sd over seeds per p_gen; the dashed line marks the default 0.5.

# %%
axis = sns.lineplot(data=ablation.assign(accuracy=ablation["accuracy"] * 100), x="p_gen", y="accuracy",
                    marker="o", errorbar="sd")
axis.axvline(0.5, linestyle="--", color="grey")
axis.set(xlabel="p_gen (probability a sample is generated)", ylabel="test accuracy (%)",
         title=f"{dataset}, {n} images per class: accuracy vs p_gen")
savefig(axis.figure, results / "figures", "04_pgen_ablation")
plt.show()
