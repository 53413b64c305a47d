"""HydraMix on your own image folders: fit a generator, write new images, train a classifier.

A folder is ``DIR/<class>/*.{png,jpg,...}`` or ``DIR/train/<class>/...`` (with an optional
``DIR/test/<class>/...``). Images of any size are resized to one square size (shorter
side, centre crop); grayscale becomes RGB.

    >>> from hydramix_core.api import fit_generator, augment_folder, train_classifier_on_folder
    >>> run = fit_generator("my_images", "runs/gen", steps=2000)               # doctest: +SKIP
    >>> augment_folder("runs/gen", "my_images", "my_images_hydramix", per_class=50)  # doctest: +SKIP
    >>> train_classifier_on_folder("my_images", method="hydramix", generator="runs/gen")["accuracy"]  # doctest: +SKIP

The same three steps are the ``hydramix`` command's subcommands (``hydramix --help``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from .data import DatasetError, ImageSet, load_image_folder
from .splits import FewShotSplit

RUN_INFO = "run.json"


class OutputExistsError(RuntimeError):
    pass


def train_folder(data_dir: str | os.PathLike) -> Path:
    data_dir = Path(data_dir)
    return data_dir / "train" if (data_dir / "train").is_dir() else data_dir


def load_folder(data_dir, image_size: int | None, *, split: str = "train") -> ImageSet:
    """Load a class-folder tree at ``image_size`` (None: the images' own common size)."""
    folder = train_folder(data_dir) if split == "train" else Path(data_dir)
    return load_image_folder(folder, name=Path(data_dir).name, split=split, image_size=image_size, skip_unreadable=True)


HOLDOUT = 0.2  # fraction of each class held out when a folder has no test/ part


def training_images(data_dir, image_size: int, *, test_dir=None, holdout: float = HOLDOUT):
    """(train, test, held-out files): ``test_dir`` or ``DIR/test/`` if present, else ``holdout`` of
    each class (a class with one image keeps it for training). The hold-out draw is fixed
    (seed 0), so fit-generator, augment and train-classifier agree on it and the generator
    never sees a test image."""
    data = load_folder(data_dir, image_size)
    test_root = Path(test_dir) if test_dir else Path(data_dir) / "test"
    if test_root.is_dir():
        test = load_folder(test_root, data.image_size, split="test")
        if test.classes != data.classes:
            raise DatasetError(f"test classes {test.classes} differ from training classes {data.classes}")
        return data, test, None
    rng = torch.Generator().manual_seed(0)
    test_idx, train_idx = [], []
    for label in range(data.num_classes):
        members = torch.where(data.labels == label)[0]
        members = members[torch.randperm(len(members), generator=rng)]
        n_test = max(1, int(len(members) * holdout)) if len(members) > 1 else 0
        test_idx += members[:n_test].tolist()
        train_idx += members[n_test:].tolist()
    train, test = data.subset(train_idx), data.subset(test_idx)
    train.files, test.files, test.split = [data.files[i] for i in train_idx], [data.files[i] for i in test_idx], "test"
    train.resized, train.skipped = data.resized, data.skipped
    return train, test, sorted(test.files)


def _whole_set_split(data: ImageSet, seed: int) -> FewShotSplit:
    """Every image of the folder is training data: a 'split' over all indices."""
    per_class = max(1, round(len(data) / data.num_classes))
    return FewShotSplit(data.name, per_class, seed, list(range(len(data))), data.fingerprint(), data.num_classes)


def _prepare_output(out: Path, *, overwrite: bool, keep_if: str | None = None) -> None:
    if out.exists() and any(out.iterdir()):
        if keep_if and (out / keep_if).exists():
            return
        if not overwrite:
            raise OutputExistsError(f"{out} already holds results; pass overwrite=True (--overwrite) to replace them.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def fit_generator(data_dir, out, *, image_size: int | None = None, steps: int = 2000, n_mix=(2, 3, 4), ngf: int = 64,
                  batch_size: int = 16, seed: int = 0, device: str = "auto", resume: bool = False,
                  overwrite: bool = False, progress: bool = True, log=print):
    """Train a HydraMix generator on the training images of ``data_dir`` into the folder ``out``.

    ``image_size`` None keeps the images' size if they share one, else uses 32. The
    generator works at 64 px for images up to 32 px, else at the image size rounded down
    to a multiple of 4. ``resume=True`` continues an interrupted run in ``out``.
    """
    from .train_generator import GeneratorConfig, train_generator

    out = Path(out)
    if resume:
        if not (out / RUN_INFO).exists():
            raise FileNotFoundError(f"Nothing to resume in {out}: no {RUN_INFO}.")
        image_size = json.loads((out / RUN_INFO).read_text())["image_size"]
    else:
        _prepare_output(out, overwrite=overwrite)
    data, _, held_out = training_images(data_dir, _choose_size(data_dir, image_size))
    image_size = data.image_size
    _report(data, image_size, log)
    if held_out:
        log(f"no test folder: {len(held_out)} images ({HOLDOUT:.0%} per class) are held out for testing, "
            f"not used to train the generator")
    split = _whole_set_split(data, seed)
    config = GeneratorConfig(dataset=data.name, samples_per_class=split.samples_per_class, seed=seed, ngf=ngf, ndf=ngf,
                             batch_size=batch_size, steps=steps, n_mix=tuple(n_mix), device=device,
                             checkpoint_every=max(1, min(100, steps // 10)))
    info = {"data": str(Path(data_dir).resolve()), "image_size": image_size, "classes": data.classes,
            "fingerprint": data.fingerprint(), "images": len(data), "resized": data.resized, "skipped": data.skipped,
            "held_out_files": held_out, "seed": seed}
    (out / RUN_INFO).write_text(json.dumps(info, indent=1) + "\n")
    run = train_generator(config, data, split, out, resume=resume, progress=progress)
    log(f"generator trained for {run.step} steps (working size {run.config.working_size} px); "
        f"final reconstruction loss {run.history[-1]['rec']:.4f}; saved to {out}")
    return run


def _choose_size(data_dir, image_size: int | None) -> int:
    """The requested size, else the images' own square size if they share one, else 32; a multiple of 4."""
    if image_size is None:
        try:
            data = load_folder(data_dir, None)
            image_size = data.image_size if data.images.shape[-2] == data.image_size else 32
        except DatasetError:  # sizes differ
            image_size = 32
    return max(16, image_size - image_size % 4)


def _report(data: ImageSet, image_size: int, log) -> None:
    counts = torch.bincount(data.labels, minlength=data.num_classes).tolist()
    log(f"{len(data)} images in {data.num_classes} classes ({', '.join(f'{c}: {n}' for c, n in zip(data.classes, counts))}), "
        f"used at {image_size}x{image_size} px")
    if data.resized:
        log(f"resized {len(data.resized)} images of another size to {image_size}x{image_size} (shorter side, centre crop)")
    for file in data.skipped:
        log(f"skipped unreadable image {file}")
    for label, count in zip(data.classes, counts):
        if count == 1:
            log(f"class {label!r} has a single image: it is mixed with itself")


def augment_folder(generator_dir, data_dir, out, *, per_class: int, n_mix: int = 3, seed: int = 0, device: str = "auto",
                   overwrite: bool = False, log=print) -> dict:
    """Write ``per_class`` generated PNGs per class to ``out/<class>/``, a contact sheet and a manifest."""
    from torchvision.io import write_png

    from .augment import HydraMixAugment
    from .figures import image_grid, mask_colors
    from .train_generator import load_generator, resolve_device

    generator_dir, out = Path(generator_dir), Path(out)
    if not (generator_dir / RUN_INFO).exists():
        raise FileNotFoundError(f"{generator_dir} is not a generator run folder (no {RUN_INFO}); "
                                f"create one with `hydramix fit-generator`.")
    info = json.loads((generator_dir / RUN_INFO).read_text())
    data, _, _ = training_images(data_dir, info["image_size"])
    if data.fingerprint() != info["fingerprint"]:
        raise DatasetError(f"{data_dir} is not the image set the generator in {generator_dir} was trained on "
                           f"(fingerprint {data.fingerprint()} vs {info['fingerprint']}).")
    _prepare_output(out, overwrite=overwrite)
    run = load_generator(generator_dir, device=str(resolve_device(device)))
    augment = HydraMixAugment(run.generator, data.images, data.labels, run.segments, p_gen=1.0, n_mix=n_mix)
    rng = torch.Generator().manual_seed(seed)
    manifest = {"generator": str(generator_dir.resolve()), "data": str(Path(data_dir).resolve()), "seed": seed,
                "n_mix": n_mix, "image_size": info["image_size"], "files": []}
    sheet = []
    for label, name in enumerate(data.classes):
        images, masks, members = augment.generate(torch.full((per_class,), label), generator=rng, return_details=True)
        (out / name).mkdir(parents=True, exist_ok=True)
        (out / "masks" / name).mkdir(parents=True, exist_ok=True)
        mask_images = mask_colors(masks.cpu())
        for index in range(per_class):
            file = f"{name}/hydramix_{index:04d}.png"
            write_png((images[index].cpu() * 255).round().to(torch.uint8), str(out / file))
            write_png((mask_images[index] * 255).round().to(torch.uint8), str(out / "masks" / file))
            manifest["files"].append({"file": file, "class": name, "mask": f"masks/{file}",
                                      "sources": [os.path.relpath(data.files[i], Path(data_dir)) for i in members[index].tolist()]})
        sheet.append(images[: min(per_class, 8)].cpu())
    figure = image_grid(torch.cat(sheet), rows=len(sheet), row_labels=data.classes, scale=1.0,
                        title=f"HydraMix samples, N = {n_mix}")
    figure.savefig(out / "contact_sheet.png", dpi=120, bbox_inches="tight")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log(f"wrote {per_class * data.num_classes} images ({per_class} per class) to {out}, "
        f"contact sheet {out / 'contact_sheet.png'}, manifest {out / 'manifest.json'}")
    return manifest


def train_classifier_on_folder(data_dir, *, test_dir=None, method: str = "baseline", generator=None, image_size=None,
                               model: str | None = None, steps: int | None = None, epochs: int = 200, p_gen: float = 0.5,
                               holdout: float = HOLDOUT, seed: int = 0, device: str = "auto", out=None, log=print) -> dict:
    """Train the study's classifier on a folder and report accuracy on ``test_dir``, ``data_dir/test``,
    or (recorded in the result) a held-out ``holdout`` fraction of each class."""
    from .classifier import GENERATOR_METHODS, ClassifierConfig, parse_method, train_classifier
    from .train_generator import load_generator, resolve_device

    base, _ = parse_method(method)
    info = json.loads((Path(generator) / RUN_INFO).read_text()) if generator is not None else None
    train, test, held_out = training_images(data_dir, info["image_size"] if info else _choose_size(data_dir, image_size),
                                            test_dir=test_dir, holdout=holdout)
    if held_out:
        log(f"no test folder: holding out {len(held_out)} images ({holdout:.0%} per class) for testing")
    if info is not None and train.fingerprint() != info["fingerprint"]:
        raise DatasetError(f"the training images of {data_dir} are not those the generator in {generator} was trained on.")
    split = _whole_set_split(train, seed)
    generator_run = None
    if base in GENERATOR_METHODS:
        if generator is None:
            raise ValueError(f"method {method!r} needs --generator (a folder made by `hydramix fit-generator`)")
        generator_run = load_generator(generator, device=str(resolve_device(device)))
        # Same images (fingerprint checked above); the classifier's seed may differ from the generator's.
        generator_run.split = {**generator_run.split, "seed": seed}
    config = ClassifierConfig(dataset=train.name, samples_per_class=split.samples_per_class, seed=seed, method=method,
                              p_gen=p_gen, model=model, steps=steps, epochs=epochs, device=device)
    record = train_classifier(config, train, test, split, generator_run=generator_run)
    record["held_out_files"] = held_out
    log(f"{method}: test accuracy {record['accuracy'] * 100:.1f}% on {record['test_images']} images "
        f"({record['steps']} steps, {record['train_time_s']:.0f} s on {record['device']})")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(record, indent=1) + "\n")
    return record

