import hashlib
import shutil
import urllib.error

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from torchvision.io import write_png

import hydramix_core.data as data_module
from hydramix_core.data import (CorruptArchiveError, DatasetError, DatasetNotFoundError, load_dataset,
                                load_image_folder)
from hydramix_core.splits import SplitMismatchError, create_split, get_split, load_split, select_indices

from .formats import tar_folder, write_cifar10, write_stl10


# --- the real CIFAR-10 copy -------------------------------------------------------------

def test_cifar10_copy_counts_and_shapes(cifar10_train, cifar10_test):
    assert cifar10_train.images.shape == (50_000, 3, 32, 32)
    assert cifar10_train.images.dtype == torch.uint8 and cifar10_train.labels.dtype == torch.int64
    assert cifar10_train.classes[:3] == ["airplane", "automobile", "bird"] and cifar10_train.num_classes == 10
    assert torch.bincount(cifar10_train.labels).tolist() == [5000] * 10
    assert torch.bincount(cifar10_test.labels).tolist() == [1000] * 10
    assert cifar10_test.split == "test" and len(cifar10_test) == 10_000


def test_split_is_deterministic_balanced_and_disjoint_from_test(cifar10_train, cifar10_test):
    split = create_split(cifar10_train, samples_per_class=5, seed=0)
    assert split.indices == create_split(cifar10_train, samples_per_class=5, seed=0).indices
    assert split.indices != create_split(cifar10_train, samples_per_class=5, seed=1).indices
    assert len(set(split.indices)) == 50
    assert torch.bincount(cifar10_train.labels[split.indices]).tolist() == [5] * 10

    def digest(image):
        return hashlib.sha1(image.numpy().tobytes()).hexdigest()

    test_digests = {digest(image) for image in cifar10_test.images}
    assert not {digest(cifar10_train.images[i]) for i in split.indices} & test_digests


def test_split_roundtrip_and_fingerprint_check(cifar10_train, tmp_path):
    split = get_split(cifar10_train, samples_per_class=3, seed=2, folder=tmp_path)
    path = tmp_path / "cifar10_n3_seed2.json"
    assert path.is_file()
    assert load_split(path, cifar10_train) == split
    assert get_split(cifar10_train, samples_per_class=3, seed=2, folder=tmp_path) == split

    changed = cifar10_train.subset(range(1000))  # other data, same name
    with pytest.raises(SplitMismatchError, match="fingerprint"):
        load_split(path, changed)
    with pytest.raises(SplitMismatchError):
        get_split(changed, samples_per_class=3, seed=2, folder=tmp_path)


def test_selection_matches_chimeramix_rule():
    labels = np.repeat(np.arange(3), 6)
    rng = np.random.default_rng(7)
    expected = []
    for label in range(3):
        idx = np.where(labels == label)[0]
        rng.shuffle(idx)
        expected.extend(idx[:2])
    rng.shuffle(expected)
    assert select_indices(labels, 2, seed=7) == [int(i) for i in expected]


def test_split_larger_than_class_is_an_error(cifar10_train):
    small = cifar10_train.subset(range(0, 50_000, 1000))  # 5 per class
    with pytest.raises(DatasetError, match="fewer than samples_per_class=6"):
        create_split(small, samples_per_class=6, seed=0)


def test_broken_split_file(tmp_path, cifar10_train):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not a valid split"):
        load_split(tmp_path / "bad.json")
    with pytest.raises(DatasetError, match="No saved split"):
        load_split(tmp_path / "missing.json")


# --- official formats on fixtures -------------------------------------------------------

def _patch_cifar10(monkeypatch, info, archive_md5="0" * 32):
    md5 = info["md5"]
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]})
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", archive_md5)


def test_cifar_pickle_archive_is_extracted_and_read(tmp_path, monkeypatch):
    info = write_cifar10(tmp_path / "src")
    archive_md5 = tar_folder(info["folder"], tmp_path / "cifar-10-python.tar.gz")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(tmp_path / "cifar-10-python.tar.gz", root)
    _patch_cifar10(monkeypatch, info, archive_md5)

    train = load_dataset("cifar10", train=True, root=root, download=False)
    test = load_dataset("cifar10", train=False, root=root, download=False)
    data, labels = info["arrays"]["data_batch_1"]
    assert train.images.shape == (20, 3, 32, 32) and len(test) == 4
    assert torch.equal(train.images[0], torch.from_numpy(data[0].reshape(3, 32, 32)))
    assert train.labels[:4].tolist() == labels
    assert train.classes == info["classes"]
    assert not list(root.glob(".extract-*"))


def test_truncated_archive_is_refused_and_quarantined(tmp_path, monkeypatch):
    info = write_cifar10(tmp_path / "src")
    archive_md5 = tar_folder(info["folder"], tmp_path / "full.tar.gz")
    root = tmp_path / "root"
    root.mkdir()
    blob = (tmp_path / "full.tar.gz").read_bytes()
    (root / "cifar-10-python.tar.gz").write_bytes(blob[: len(blob) // 2])
    _patch_cifar10(monkeypatch, info, archive_md5)

    with pytest.raises(CorruptArchiveError, match="does not match its md5") as error:
        load_dataset("cifar10", root=root, download=False)
    assert "cifar-10-python.tar.gz" in str(error.value)
    assert not (root / "cifar-10-python.tar.gz").exists()
    assert (root / "cifar-10-python.tar.gz.corrupt").exists()
    assert not (root / "cifar-10-batches-py").exists()


def test_wrong_checksum_for_official_archive(tmp_path):
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(CorruptArchiveError, match=tvd.CIFAR100.tgz_md5):
        load_dataset("cifar100", root=tmp_path, download=False)


def test_stl10_binary_is_read(tmp_path, monkeypatch):
    info = write_stl10(tmp_path)
    md5 = info["md5"]
    monkeypatch.setattr(tvd.STL10, "train_list", [[n, md5[n]] for n in ("train_X.bin", "train_y.bin", "unlabeled_X.bin")])
    monkeypatch.setattr(tvd.STL10, "test_list", [[n, md5[n]] for n in ("test_X.bin", "test_y.bin")])
    for train, split in ((True, "train"), (False, "test")):
        loaded = load_dataset("stl10", train=train, root=tmp_path, download=False)
        images, labels = info["arrays"][split]
        assert loaded.images.shape == (3, 3, 96, 96)
        assert torch.equal(loaded.images, torch.from_numpy(images))
        assert loaded.labels.tolist() == labels.tolist()
        assert loaded.classes == info["classes"]


# --- missing data and bad folders -------------------------------------------------------

@pytest.mark.parametrize("name", ["cifar100", "cifair10", "stl10"])
def test_missing_dataset_offline_names_url_md5_and_folder(tmp_path, name):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset(name, root=tmp_path, download=False)
    message = str(error.value)
    archive = data_module.DATASETS[name].archives[0]
    assert name in message and archive.url in message and archive.md5 in message and str(tmp_path) in message


def test_failed_download_says_what_to_fetch(tmp_path, monkeypatch):
    def offline(url, root, filename, md5):
        (tmp_path / filename).write_bytes(b"partial")
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(data_module, "download_url", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed.*network unreachable"):
        load_dataset("stl10", root=tmp_path, download=True)
    assert not (tmp_path / "stl10_binary.tar.gz").exists()


def test_unknown_dataset_name():
    with pytest.raises(DatasetError, match="Unknown dataset 'cifar11'"):
        load_dataset("cifar11")


def _write_folder(root, sizes_by_class, gray=()):
    for name, sizes in sizes_by_class.items():
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            channels = 1 if name in gray else 3
            write_png(torch.randint(0, 256, (channels, h, w), dtype=torch.uint8), str(root / name / f"{i}.png"))


def test_image_folder_with_grayscale(tmp_path):
    _write_folder(tmp_path / "train", {"a": [(8, 8)] * 2, "b": [(8, 8)]}, gray={"b"})
    (tmp_path / "train" / "a" / "notes.txt").write_text("not an image")
    data = load_dataset(tmp_path, train=True)
    assert data.images.shape == (3, 3, 8, 8) and data.classes == ["a", "b"] and data.labels.tolist() == [0, 0, 1]
    assert torch.equal(data.images[2, 0], data.images[2, 1])  # gray replicated to RGB


def test_image_folder_errors(tmp_path):
    _write_folder(tmp_path / "mixed", {"a": [(8, 8), (9, 8)]})
    with pytest.raises(DatasetError, match="differ in size"):
        load_image_folder(tmp_path / "mixed")
    _write_folder(tmp_path / "empty", {"a": [(8, 8)]})
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(DatasetError, match="holds no readable images"):
        load_image_folder(tmp_path / "empty")
    _write_folder(tmp_path / "broken", {"a": [(8, 8)]})
    (tmp_path / "broken" / "a" / "x.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(DatasetError, match="Cannot read image .*x.jpg"):
        load_image_folder(tmp_path / "broken")
    with pytest.raises(DatasetNotFoundError):
        load_image_folder(tmp_path / "nowhere")
