"""Few-shot training splits, saved as JSON and verified against the data they index.

    split = get_split(train_set, samples_per_class=5, seed=0, folder="results/smoke/splits")
    few = train_set.subset(split.indices)

Indices are chosen exactly as ChimeraMix's ``MaximumLabelDataset``: one
``np.random.default_rng(seed)``; for each class in label order, shuffle that class's
indices and keep the first n; finally shuffle the concatenated list with the same rng.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .data import DatasetError, ImageSet
from .outputs import write_atomic


class SplitMismatchError(DatasetError):
    """A saved split does not belong to the data it is loaded with."""


@dataclass(frozen=True)
class FewShotSplit:
    dataset: str
    samples_per_class: int
    seed: int
    indices: list[int]
    fingerprint: str  # ImageSet.fingerprint() of the training set the indices point into
    num_classes: int

    @property
    def filename(self) -> str:
        return split_filename(self.dataset, self.samples_per_class, self.seed)


def split_filename(dataset: str, samples_per_class: int, seed: int) -> str:
    return f"{dataset}_n{samples_per_class}_seed{seed}.json"


def select_indices(labels, samples_per_class: int, seed: int) -> list[int]:
    """ChimeraMix's per-class selection (see module docstring)."""
    labels = np.asarray(labels)
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(int(labels.max()) + 1):
        class_indices = np.where(labels == label)[0]
        if len(class_indices) < samples_per_class:
            raise DatasetError(f"Class {label} has {len(class_indices)} images, fewer than "
                               f"samples_per_class={samples_per_class}.")
        rng.shuffle(class_indices)
        chosen.extend(class_indices[:samples_per_class].tolist())
    rng.shuffle(chosen)
    return [int(i) for i in chosen]


def epoch_length(num_images: int, samples_per_class: int, samples_per_class_per_epoch: int) -> int:
    """Samples per epoch when the split is repeated to ~``samples_per_class_per_epoch`` per class (ChimeraMix)."""
    return num_images * max(1, round(samples_per_class_per_epoch / samples_per_class))


def create_split(data: ImageSet, samples_per_class: int, seed: int) -> FewShotSplit:
    if data.split != "train":
        raise DatasetError(f"Few-shot splits are drawn from a training set, got the {data.split} set of {data.name}.")
    try:
        indices = select_indices(data.labels.numpy(), samples_per_class, seed)
    except DatasetError as error:
        raise DatasetError(f"{data.name}: {error}") from None
    return FewShotSplit(data.name, samples_per_class, seed, indices, data.fingerprint(), data.num_classes)


def save_split(split: FewShotSplit, folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / split.filename
    write_atomic(path, json.dumps(asdict(split), indent=1) + "\n")
    return path


def load_split(path: str | os.PathLike, data: ImageSet | None = None) -> FewShotSplit:
    """Read a saved split; with ``data``, refuse it unless it was made from exactly that data."""
    path = Path(path)
    try:
        split = FewShotSplit(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise DatasetError(f"No saved split at {path}: create it with get_split(...) first.") from None
    except (json.JSONDecodeError, TypeError) as error:
        raise DatasetError(f"{path} is not a valid split file ({error}); delete it to recreate it.") from None
    if data is not None and split.fingerprint != data.fingerprint():
        raise SplitMismatchError(
            f"{path} was made from data with fingerprint {split.fingerprint}, but {data.name} "
            f"({data.source}) has fingerprint {data.fingerprint()}. The data changed: delete the "
            f"split to redraw it, or point HYDRAMIX_DATA at the original data.")
    return split


def get_split(data: ImageSet, samples_per_class: int, seed: int, folder: str | os.PathLike) -> FewShotSplit:
    """Load the saved split for (dataset, n, seed) from ``folder``, creating it on first use."""
    path = Path(folder) / split_filename(data.name, samples_per_class, seed)
    if path.exists():
        return load_split(path, data)
    split = create_split(data, samples_per_class, seed)
    save_split(split, folder)
    return split
