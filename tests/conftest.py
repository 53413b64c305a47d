import os
from pathlib import Path

import pytest
import torch

from hydramix_core.data import data_root, install_image_folder_archive, load_dataset

REPO = Path(__file__).resolve().parents[1]
OFFLINE_ARCHIVES = [REPO.parent / "shared/data/cifar10-jpeg.tar.gz", Path("/work/shared/data/cifar10-jpeg.tar.gz")]

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    """A data root holding the offline CIFAR-10 image-folder copy (extracted once)."""
    if (data_root() / "cifar10-jpeg" / "train").is_dir():
        return data_root()
    for archive in OFFLINE_ARCHIVES:
        if archive.is_file():
            cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hydramix/offline-data"
            install_image_folder_archive(archive, cache)
            return cache
    message = "the offline CIFAR-10 copy (cifar10-jpeg.tar.gz) is not available; set HYDRAMIX_DATA"
    if os.environ.get("HYDRAMIX_REQUIRE_DATA"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def cifar10_train(cifar10_root):
    return load_dataset("cifar10", train=True, root=cifar10_root, download=False)


@pytest.fixture(scope="session")
def cifar10_test(cifar10_root):
    return load_dataset("cifar10", train=False, root=cifar10_root, download=False)


@pytest.fixture
def interrupt_generator_at(monkeypatch):
    """``interrupt_generator_at(step)`` makes generator training raise KeyboardInterrupt on reaching
    ``step`` (as Ctrl-C would); the returned function lets training run normally again."""
    import hydramix_core.train_generator as tg

    original = tg._step_generator

    def arm(step: int):
        def interrupted(seed, current):
            if current == step:
                raise KeyboardInterrupt
            return original(seed, current)

        monkeypatch.setattr(tg, "_step_generator", interrupted)
        return lambda: monkeypatch.setattr(tg, "_step_generator", original)

    return arm
