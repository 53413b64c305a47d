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
cpu_workers = 1
p_gen_values = [0.0, 0.25, 0.5, 0.75, 1.0]
classifier = {"model": "wrn16_8", "epochs": 200}

# %%
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from hydramix_core.figures import savefig
from hydramix_core.stats import interval_texts, paired_differences, summarize
from hydramix_core.study import run_sweep, sweep_configs

results = Path(results_dir)
n = min(samples_per_class)
base = sweep_configs(dataset=dataset, samples_per_class=[n], seeds=seeds, methods=["hydramix"], device=device, **classifier)
configs = [replace(config, p_gen=p) for p in p_gen_values for config in base]
ablation = run_sweep(configs, results, cpu_workers=cpu_workers)
ablation.to_csv(results / "pgen_ablation.csv", index=False)

# %%
# NBVAL_CHECK_OUTPUT
by_p = ablation.assign(method=[f"p_gen {p:g}" for p in ablation["p_gen"]])
summary = summarize(by_p)
print(f"{dataset}, {n} images per class, accuracy (%) over {len(seeds)} seeds, 95 % t-interval of the mean")
print(summary.assign(mean=(summary["mean"] * 100).round(1), sd=(summary["sd"] * 100).round(1),
                     interval=interval_texts(summary))
      [["method", "seeds", "mean", "sd", "interval"]].to_string(index=False))
reference = f"p_gen {min(p_gen_values):g}"
paired = paired_differences(by_p, reference)
if not paired.empty:
    print(f"\neach p_gen minus {reference}, paired by seed (points, 95 % paired bootstrap interval):")
    print(paired.assign(difference=(paired["difference"] * 100).round(1),
                        interval=interval_texts(paired),
                        won=[f"{w}/{k}" for w, k in zip(paired["won"], paired["seeds"])])
          [["method", "difference", "interval", "won", "wilcoxon"]].to_string(index=False))

# %% [markdown]
# Mean ± sd over seeds per p_gen (bars: one sd); the dashed line marks the default 0.5.
# Whether one p_gen beats another is read from the paired table above (the same images train
# every p_gen), not from overlapping bars.

# %%
axis = sns.lineplot(data=ablation.assign(accuracy=ablation["accuracy"] * 100), x="p_gen", y="accuracy",
                    marker="o", errorbar="sd")
axis.axvline(0.5, linestyle="--", color="grey")
axis.set(xlabel="p_gen (probability a sample is generated)", ylabel="test accuracy (%)",
         title=f"{dataset}, {n} images per class: accuracy vs p_gen")
savefig(axis.figure, results / "figures", "04_pgen_ablation")
plt.show()
