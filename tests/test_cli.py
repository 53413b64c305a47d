"""The ``hydramix`` command driven as a user would, on a small folder written from the CIFAR-10 copy."""

import json
import subprocess
import sys

import pytest
import torch
from torchvision.io import write_png

from hydramix_core.api import fit_generator

pytestmark = pytest.mark.slow


def hydramix(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "hydramix_core.cli", *map(str, args)], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def folder(cifar10_train, tmp_path_factory):
    """3 classes: cat (3 images, one 40x32, one grayscale), dog (2), frog (1), plus a text file and a broken image."""
    root = tmp_path_factory.mktemp("own") / "pets"
    pick = {"cat": 3, "dog": 5, "frog": 6}
    for name, label in pick.items():
        (root / name).mkdir(parents=True)
    images = {name: cifar10_train.images[cifar10_train.labels == label] for name, label in pick.items()}
    for i in range(3):
        write_png(images["cat"][i], str(root / "cat" / f"{i}.png"))
    wide = torch.nn.functional.interpolate(images["cat"][3:4].float(), size=(32, 40)).to(torch.uint8)[0]
    write_png(wide, str(root / "cat" / "wide.png"))
    write_png(images["cat"][4].float().mean(0, keepdim=True).to(torch.uint8), str(root / "cat" / "gray.png"))
    for i in range(2):
        write_png(images["dog"][i], str(root / "dog" / f"{i}.png"))
    write_png(images["frog"][0], str(root / "frog" / "only.png"))
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG garbage")
    return root


def test_help_reads_well():
    text = hydramix("--help").stdout
    assert all(name in text for name in ("fit-generator", "augment", "train-classifier", "example"))
    for command in ("fit-generator", "augment", "train-classifier"):
        help_text = hydramix(command, "--help").stdout
        assert "example" in help_text and "--device" in help_text and "--seed" in help_text


def test_fit_augment_train_end_to_end(folder, tmp_path):
    run, out = tmp_path / "run", tmp_path / "new"
    fitted = hydramix("fit-generator", "--data", folder, "--steps", 4, "--ngf", 8, "--batch-size", 4, "--out", run,
                      "--device", "cpu").stdout
    assert "used at 32x32 px" in fitted and "resized 1 images" in fitted and "skipped unreadable image" in fitted
    assert "'frog' has a single image" in fitted
    info = json.loads((run / "run.json").read_text())
    assert (run / "generator.pt").exists() and info["images"] == 6  # 8 readable, 2 held out (no test/ folder)
    assert "held out for testing" in fitted and len(info["held_out_files"]) == 2

    refused = hydramix("fit-generator", "--data", folder, "--steps", 4, "--out", run, check=False)
    assert refused.returncode == 2 and "already holds results" in refused.stderr and "--overwrite" in refused.stderr

    hydramix("augment", "--generator", run, "--data", folder, "--per-class", 2, "--out", out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["files"]) == 6 and (out / "contact_sheet.png").exists()
    entry = manifest["files"][0]
    assert (out / entry["file"]).exists() and (out / entry["mask"]).exists() and len(entry["sources"]) == 3
    assert all(source.startswith(entry["class"] + "/") for source in entry["sources"])
    sources = {str(folder / source) for item in manifest["files"] for source in item["sources"]}
    assert not sources & set(info["held_out_files"])  # test images are never mixed
    assert sorted(p.name for p in out.iterdir()) == [".hydramix-output.json", "cat", "contact_sheet.png", "dog", "frog",
                                                     "manifest.json", "masks"]

    trained = hydramix("train-classifier", "--data", folder, "--method", "hydramix", "--generator", run, "--steps", 3,
                       "--model", "wrn16_2", "--out", tmp_path / "result.json").stdout
    assert "hydramix: test accuracy" in trained and "holding out" in trained
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["held_out_files"] == info["held_out_files"] and 0 <= record["accuracy"] <= 1


def test_interrupted_fit_resumes(folder, tmp_path, interrupt_generator_at):
    interrupt_generator_at(3)
    with pytest.raises(KeyboardInterrupt):
        fit_generator(folder, tmp_path / "run", steps=6, ngf=8, batch_size=4, device="cpu", progress=False, log=lambda *_: None)
    assert not (tmp_path / "run").exists()  # built in a hidden sibling until finished
    assert torch.load(tmp_path / ".run.partial/generator.pt", weights_only=True)["step"] == 3
    resumed = hydramix("fit-generator", "--data", folder, "--out", tmp_path / "run", "--steps", 6, "--ngf", 8,
                       "--batch-size", 4, "--device", "cpu", "--resume").stdout
    assert "trained for 6 steps" in resumed
    assert (tmp_path / "run/finished.json").exists() and not (tmp_path / ".run.partial").exists()
