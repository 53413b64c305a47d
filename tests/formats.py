"""Writers for small fixtures in the official dataset formats (CIFAR pickles, STL-10 binaries)."""

import hashlib
import pickle
import tarfile
from pathlib import Path

import numpy as np


def md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_cifar10(root: Path, images_per_batch: int = 4, seed: int = 0) -> dict:
    """CIFAR-10 python format: 5 train batches + test batch + batches.meta. Returns md5s and data."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    arrays = {}
    for name in names:
        data = rng.integers(0, 256, (images_per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, images_per_batch)]
        arrays[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": []}, f)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": images_per_batch, "label_names": classes, "num_vis": 3072}, f)
    return {"folder": folder, "md5": {name: md5(folder / name) for name in names + ["batches.meta"]},
            "arrays": arrays, "classes": classes}


def write_stl10(root: Path, images_per_split: int = 3, seed: int = 0) -> dict:
    """STL-10 binary format (column-major 96x96 images, labels 1..10)."""
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    arrays = {}
    for split in ("train", "test"):
        images = rng.integers(0, 256, (images_per_split, 3, 96, 96), dtype=np.uint8)  # [N,C,H,W]
        labels = rng.integers(0, 10, images_per_split).astype(np.uint8)
        images.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")  # stored column-major
        (labels + 1).tofile(folder / f"{split}_y.bin")
        arrays[split] = (images, labels)
    rng.integers(0, 256, (1, 3, 96, 96), dtype=np.uint8).tofile(folder / "unlabeled_X.bin")
    classes = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (folder / "class_names.txt").write_text("\n".join(classes) + "\n")
    files = ["train_X.bin", "train_y.bin", "unlabeled_X.bin", "test_X.bin", "test_y.bin"]
    return {"folder": folder, "md5": {name: md5(folder / name) for name in files}, "arrays": arrays, "classes": classes}


def tar_folder(folder: Path, archive: Path) -> str:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return md5(archive)
