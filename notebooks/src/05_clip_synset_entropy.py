# %% [markdown]
# # 5 · Synset entropy: how many concepts do the augmentations cover?
#
# HydraMix's claim: its samples cover more concepts than the original images and MixUp.
# For each class we draw the same number of images from each augmentation pipeline,
# classify each into one of the 1,000 ImageNet synsets and take the entropy (nats) of the
# class's synset histogram; exp(entropy) is the effective number of synsets. The
# definition is ours until the paper's is known (see `hydramix_core.synset_entropy`).
#
# The scorer is CLIP (open_clip, zero-shot with the 80 ImageNet prompt templates) when its
# weights are available, or, only if the profile asks for it, an ImageNet EfficientNet-Lite0
# surrogate, labelled as such everywhere.

# %% [parameters]
profile = "smoke"
results_dir = "results/smoke"
dataset = "cifar10"
samples_per_class = [5, 10]
seeds = [0, 1]
device = "auto"
generator = {"ngf": 64, "ndf": 64, "batch_size": 64, "epochs": 200, "n_mix": [2, 3, 4], "mask_kind": "hydramix"}
scorer = "clip"  # "clip" or "surrogate"
clip_model = "ViT-B-32"
clip_pretrained = "openai"  # a tag, or set HYDRAMIX_CLIP_CHECKPOINT to a local weights file
images_per_class = 64
chimeramix = True  # also train a ChimeraMix (2-image segment masks) generator for this split

# %%
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from hydramix_core.augment import HydraMixAugment
from hydramix_core.data import load_dataset
from hydramix_core.figures import image_grid, savefig
from hydramix_core.splits import get_split
from hydramix_core.study import generator_folder
from hydramix_core.synset_entropy import ClipScorer, PipelineSamplers, SurrogateScorer, measure
from hydramix_core.train_generator import GeneratorConfig, load_generator, train_generator

results = Path(results_dir)
n, seed = min(samples_per_class), seeds[0]
train_set = load_dataset(dataset, train=True)
split = get_split(train_set, samples_per_class=n, seed=seed, folder=results / "splits")
few = train_set.subset(split.indices)
scoring = SurrogateScorer(device=device) if scorer == "surrogate" else ClipScorer(clip_model, pretrained=clip_pretrained, device=device)
print(f"scorer: {scoring.label}; {dataset}, {n} images per class, seed {seed}; {images_per_class} images per class per pipeline")

# %% [markdown]
# ## The pipelines
# The HydraMix generator of notebook 2 (N = 2, 3, 4 images per mix), and for comparison a
# ChimeraMix generator (2 images, segment-range masks) trained on the same split with the
# same settings.

# %%
hydramix_run = load_generator(generator_folder(results, dataset, n, seed, "hydramix"), split=split, device=device)
samplers = PipelineSamplers(few.images, few.labels, crop_pad=train_set.image_size // 8)
pipelines = {"original": samplers.original, "mixup": samplers.mixup}
if chimeramix:
    config = GeneratorConfig(dataset=dataset, samples_per_class=n, seed=seed, device=device,
                             **{**generator, "mask_kind": "chimeramix_seg", "n_mix": [2]})
    chimera_run = train_generator(config, train_set, split, generator_folder(results, dataset, n, seed, "chimeramix_seg"))
    pipelines["chimeramix"] = samplers.generated(
        HydraMixAugment(chimera_run.generator, few.images, few.labels, chimera_run.segments, p_gen=1.0, n_mix=2))
for n_mix in (2, 3, 4):
    pipelines[f"hydramix N={n_mix}"] = samplers.generated(
        HydraMixAugment(hydramix_run.generator, few.images, few.labels, hydramix_run.segments, p_gen=1.0, n_mix=n_mix))

# %%
measured = {name: measure(scoring, sample, num_classes=train_set.num_classes, images_per_class=images_per_class, seed=seed)
            for name, sample in pipelines.items()}
table = pd.DataFrame([{"pipeline": name, "mean entropy (nats)": r.mean_entropy, "sd over classes": r.sd_entropy,
                       "effective synsets": r.effective_synsets} for name, r in measured.items()]).set_index("pipeline")
table.to_csv(results / "synset_entropy.csv")

# %%
# NBVAL_CHECK_OUTPUT
print(f"{scoring.label}, {dataset}, {n} images/class, {images_per_class} samples/class per pipeline")
print(table.round(1).to_string())

# %% [markdown]
# Mean over classes of the per-class synset entropy, error bars one standard deviation over
# classes. Higher means the pipeline's images of one class spread over more concepts.

# %%
axis = plt.figure(figsize=(7, 3.2)).gca()
axis.bar(table.index, table["mean entropy (nats)"], yerr=table["sd over classes"], capsize=3,
         color=sns.color_palette("viridis", len(table)))
axis.set(ylabel="entropy (nats)", title=f"{scoring.label}\n{dataset}, {n} images per class")
axis.tick_params(axis="x", rotation=30)
savefig(axis.figure, results / "figures", "05_synset_entropy")
plt.show()

# %% [markdown]
# ## Examples with their synsets
# Two generated HydraMix (N = 3) images per class with the synset the scorer assigns.

# %%
rng = torch.Generator().manual_seed(seed)
examples = torch.cat([pipelines["hydramix N=3"](c, 2, rng) for c in range(min(5, train_set.num_classes))])
names = [scoring.vocabulary.names[i] for i in scoring.predict(examples)]
figure = image_grid(examples, rows=min(5, train_set.num_classes), titles=names, scale=1.4,
                    row_labels=train_set.classes[:5], title="HydraMix samples and their top synset")
savefig(figure, results / "figures", "05_synset_examples", svg=False)
plt.show()
print("Most frequent synsets per class (HydraMix N=3):")
for label, top in zip(train_set.classes, measured["hydramix N=3"].top_synsets):
    print(f"  {label}: " + ", ".join(f"{name} ({count})" for name, count in top[:3]))
