import os
from pathlib import Path

import pytest
import torch

from hydramix_core.data import data_root, install_image_folder_archive, load_dataset
from hydramix_core.splits import create_split, save_split
from hydramix_core.study import generator_folder
from hydramix_core.generator_files import GeneratorConfig
from hydramix_core.train_generator import train_generator

REPO = Path(__file__).resolve().parents[1]
# the offline CIFAR-10 copy: $HYDRAMIX_OFFLINE_ARCHIVE, else beside the repo
OFFLINE_ARCHIVES = [Path(p) for p in [os.environ.get("HYDRAMIX_OFFLINE_ARCHIVE")] if p] + [
    REPO.parent / "shared/data/cifar10-jpeg.tar.gz"]

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip on a machine without a CUDA GPU."""
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if item.get_closest_marker("cuda"):
                item.add_marker(skip)


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

    original = tg.GeneratorTrainer.advance

    def arm(step: int):
        def interrupted(trainer):
            if trainer.step == step:
                raise KeyboardInterrupt
            return original(trainer)

        monkeypatch.setattr(tg.GeneratorTrainer, "advance", interrupted)
        return lambda: monkeypatch.setattr(tg.GeneratorTrainer, "advance", original)

    return arm


@pytest.fixture(scope="session")
def split(cifar10_train):
    return create_split(cifar10_train, samples_per_class=2, seed=0)


@pytest.fixture(scope="session")
def generators(cifar10_train, split, tmp_path_factory):
    """Tiny generators (2 steps) for each mask kind the generator methods need, in a results layout."""
    results = tmp_path_factory.mktemp("results")
    save_split(split, results / "splits")
    runs = {}
    for kind, n_mix in [("hydramix", (2, 3)), ("chimeramix_grid", (2,)), ("chimeramix_seg", (2,))]:
        config = GeneratorConfig(dataset="cifar10", samples_per_class=2, seed=0, ngf=4, ndf=4, batch_size=4, steps=2,
                                 mask_kind=kind, n_mix=n_mix)
        runs[kind] = train_generator(config, cifar10_train, split, generator_folder(results, "cifar10", 2, 0, kind),
                                     progress=False)
    return results, runs
