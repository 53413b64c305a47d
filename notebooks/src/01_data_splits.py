# %% [markdown]
# # 1 · Data and few-shot splits
#
# Loads the dataset of this profile, draws the few-shot training splits (ChimeraMix's
# rule: per class, shuffle with `np.random.default_rng(seed)`, keep the first *n*) and
# saves each as JSON under `results/<profile>/splits/`. Every later notebook reads
# these files, and refuses them if the data's fingerprint changed.

# %% [parameters]
profile = "smoke"
results_dir = "results/smoke"
dataset = "cifar10"
samples_per_class = [5, 10]
seeds = [0, 1]

# %%
from pathlib import Path

import pandas as pd
import torch

from hydramix_core.data import DATASETS, data_root, load_dataset
from hydramix_core.figures import image_grid, savefig
from hydramix_core.splits import get_split

results = Path(results_dir)
train_set = load_dataset(dataset, train=True)
test_set = load_dataset(dataset, train=False)
print(DATASETS[dataset].description if dataset in DATASETS else f"image folder {dataset}")
print(f"data root: {data_root()}")

# %% [markdown]
# ## The data
# Image counts and shapes; the fingerprint identifies the exact pixels the splits index.

# %%
# NBVAL_CHECK_OUTPUT
print(f"train: {len(train_set)} images, test: {len(test_set)} images, image shape {tuple(train_set.images.shape[1:])}")
print(f"classes ({train_set.num_classes}): {', '.join(train_set.classes)}")
print(f"train fingerprint: {train_set.fingerprint()}")
print("train images per class:", torch.bincount(train_set.labels).tolist())

# %% [markdown]
# ## Few-shot splits
# One file per (samples per class, seed). The table lists the first indices of each.

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for n in samples_per_class:
    for seed in seeds:
        split = get_split(train_set, samples_per_class=n, seed=seed, folder=results / "splits")
        per_class = torch.bincount(train_set.labels[split.indices], minlength=train_set.num_classes)
        rows.append({"samples_per_class": n, "seed": seed, "images": len(split.indices),
                     "min per class": int(per_class.min()), "max per class": int(per_class.max()),
                     "first indices": " ".join(map(str, split.indices[:6])), "file": split.filename})
splits_table = pd.DataFrame(rows)
print(splits_table.to_string(index=False))

# %% [markdown]
# ## What a split looks like
# The smallest split of seed 0, one row per class: this is all the classifier and the
# generator ever see of the training set.

# %%
split = get_split(train_set, samples_per_class=min(samples_per_class), seed=seeds[0], folder=results / "splits")
few = train_set.subset(split.indices)
order = torch.argsort(few.labels, stable=True)
figure = image_grid(few.images[order], rows=train_set.num_classes, row_labels=train_set.classes, scale=0.9,
                    title=f"{dataset}: {min(samples_per_class)} images per class, seed {seeds[0]}")
savefig(figure, results / "figures", "01_split_examples", svg=False)
