# %% [markdown]
# # 2 · Training the HydraMix generator
#
# One generator per few-shot split (dataset, samples per class, seed), trained only on
# that split's images: no pretraining, no extra data. Finished generators are loaded,
# interrupted ones resume from their last checkpoint. Checkpoints live in
# `results/<profile>/checkpoints/generators/<mask kind>/`; loss histories in `generator_history.csv`.

# %% [parameters]
profile = "smoke"
results_dir = "results/smoke"
dataset = "cifar10"
samples_per_class = [5, 10]
seeds = [0, 1]
device = "auto"
generator = {"ngf": 64, "ndf": 64, "batch_size": 64, "epochs": 200, "n_mix": [2, 3, 4], "mask_kind": "hydramix"}

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from hydramix_core.data import load_dataset
from hydramix_core.figures import mix_grid, savefig
from hydramix_core.splits import get_split
from hydramix_core.study import generator_folder
from hydramix_core.train_generator import GeneratorConfig, resolve_device, train_generator

results = Path(results_dir)
train_set = load_dataset(dataset, train=True)
print(f"device: {resolve_device(device)}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
print("generator settings:", generator)

# %%
runs, rows = {}, []
for n in samples_per_class:
    for seed in seeds:
        split = get_split(train_set, samples_per_class=n, seed=seed, folder=results / "splits")
        config = GeneratorConfig(dataset=dataset, samples_per_class=n, seed=seed, device=device, **generator)
        folder = generator_folder(results, dataset, n, seed, config.mask_kind)
        run = train_generator(config, train_set, split, folder)
        runs[(n, seed)] = run
        rows += [{"samples_per_class": n, "seed": seed, **entry} for entry in run.history]
history = pd.DataFrame(rows)
history.to_csv(results / "generator_history.csv", index=False)
final = history.groupby(["samples_per_class", "seed"]).last()[["step", "rec", "lap", "adv", "disc"]]

# %% [markdown]
# Losses over the last logging interval of each split.

# %%
# NBVAL_CHECK_OUTPUT
print(final.round(2).to_string())

# %% [markdown]
# ## Loss curves
# Reconstruction (MSE of each input decoded through its own one-hot mask, summed over the
# tuple) should fall steadily; the adversarial terms of generator and discriminator
# trade off. Steps where the learning rate drops (×0.2) show as kinks.

# %%
long = history.melt(id_vars=["samples_per_class", "seed", "step"], value_vars=["rec", "lap", "adv", "disc"],
                    var_name="loss", value_name="value")
grid = sns.relplot(data=long, x="step", y="value", hue="samples_per_class", style="seed", col="loss", kind="line",
                   facet_kws={"sharey": False}, height=2.6, aspect=1.1, palette="viridis")
grid.set_titles("{col_name}")
grid.figure.suptitle(f"Generator losses on {dataset}, per split", y=1.04)
savefig(grid.figure, results / "figures", "02_generator_losses")

# %% [markdown]
# ## What the generator makes
# Each row: the N same-class inputs, the mask (colour = which input shows where, from the
# inputs' own Felzenszwalb segments) and the generated mix. Look for parts of several
# inputs combined into one image of the class.

# %%
n, seed = min(samples_per_class), seeds[0]
few = train_set.subset(get_split(train_set, samples_per_class=n, seed=seed, folder=results / "splits").indices)
for n_mix in sorted(set(generator["n_mix"])):
    figure = mix_grid(runs[(n, seed)], few.images, few.labels, n_mix=n_mix, examples=6, classes=train_set.classes)
    savefig(figure, results / "figures", f"02_mixes_n{n_mix}", svg=False)
    plt.show()
