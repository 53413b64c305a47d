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
cpu_workers = 1  # CPU: generators trained by this many one-thread processes at once
generator = {"ngf": 64, "ndf": 64, "batch_size": 64, "epochs": 200, "n_mix": [2, 3, 4], "mask_kind": "hydramix"}
methods = ["baseline", "mixup", "hydramix"]  # generators are trained for every mask kind these draw from
chimeramix = True  # and the ChimeraMix+Seg generator notebook 05 compares

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from hydramix_core.data import load_dataset
from hydramix_core.figures import mix_grid, sample_sheet, savefig
from hydramix_core.splits import get_split
from hydramix_core.study import generator_configs, generator_folder, train_generators_in_workers
from hydramix_core.train_generator import resolve_device, train_generator

results = Path(results_dir)
train_set = load_dataset(dataset, train=True)
print(f"device: {resolve_device(device)}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
print("generator settings:", generator)

# %%
runs, rows = {}, []
configs = generator_configs(dataset=dataset, samples_per_class=samples_per_class, seeds=seeds, methods=methods,
                            generator=generator, device=device, chimeramix=chimeramix)
if cpu_workers > 1 and resolve_device(device).type == "cpu":
    train_generators_in_workers(configs, results, workers=cpu_workers)
for config in configs:
    n, seed, kind = config.samples_per_class, config.seed, config.mask_kind
    split = get_split(train_set, samples_per_class=n, seed=seed, folder=results / "splits")
    run = train_generator(config, train_set, split, generator_folder(results, dataset, n, seed, kind))
    runs[(kind, n, seed)] = run
    rows += [{"mask_kind": kind, "samples_per_class": n, "seed": seed, **entry} for entry in run.history]
history = pd.DataFrame(rows)
history.to_csv(results / "generator_history.csv", index=False)
final = history.groupby(["mask_kind", "samples_per_class", "seed"]).last()[["step", "rec", "lap", "adv", "disc"]]

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
long = history[history["mask_kind"] == "hydramix"].melt(
    id_vars=["samples_per_class", "seed", "step"], value_vars=["rec", "lap", "adv", "disc"], var_name="loss",
    value_name="value")
grid = sns.relplot(data=long, x="step", y="value", hue="samples_per_class", style="seed", col="loss", kind="line",
                   facet_kws={"sharey": False}, height=2.6, aspect=1.1, palette="viridis")
grid.set_titles("{col_name}")
grid.figure.suptitle(f"HydraMix generator losses on {dataset}, per split", y=1.04)
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
    figure = mix_grid(runs[("hydramix", n, seed)], few.images, few.labels, n_mix=n_mix, examples=6, classes=train_set.classes)
    savefig(figure, results / "figures", f"02_mixes_n{n_mix}", svg=False)
    plt.show()

# %% [markdown]
# ## Samples in the style of the paper's Figure 2
# For three classes: four training images, their Felzenszwalb segments (one colour per
# segment) and ten new images composed from those four only. Look for segments of
# different originals recombined, not for copies of one original.

# %%
sheet = sample_sheet(runs[("hydramix", n, seed)], few.images, few.labels, classes=train_set.classes,
                     class_ids=list(range(min(3, train_set.num_classes))), originals=min(4, n), seed=seed)
savefig(sheet, results / "figures", "02_sample_sheet", svg=False)
plt.show()
