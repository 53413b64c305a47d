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

import contextlib
import json
import os
import shutil
from pathlib import Path

import torch

from torchvision.io import decode_png, encode_png, read_file

from .augment import HydraMixAugment
from .data import DatasetError, ImageSet, load_image_folder
from .engine import ClassifierConfig, train_classifier
from .figures import image_grid, mask_colors
from .generator_files import CHECKPOINT_NAME, FINISHED_NAME, SEGMENTS_NAME, CheckpointError, GeneratorConfig, load_generator
from .methods import GENERATOR_METHODS, parse_method
from .outputs import (MARKER, OutputExistsError, check_output, claim_folder, hold, install_folder, positive, read_marker,
                      sibling, write_atomic, write_bytes, write_marker)
from .runtime import resolve_device
from .splits import FewShotSplit
from .train_generator import train_generator

RUN_INFO = "run.json"


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


FIT_TOOL, AUGMENT_TOOL = "hydramix fit-generator", "hydramix augment"
# Every file fit-generator writes in its folder (outputs.foreign_files also counts their
# temporary siblings as the tool's own).
GENERATOR_FILES = (RUN_INFO, CHECKPOINT_NAME, SEGMENTS_NAME, FINISHED_NAME)


def read_run_info(folder: Path) -> dict:
    """The ``run.json`` of a generator folder, with an error that says what to do if it is unusable."""
    path = folder / RUN_INFO
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a generator run folder (no {RUN_INFO}); "
                                f"create one with `hydramix fit-generator`.")
    try:
        info = json.loads(path.read_text())
        info["image_size"], info["fingerprint"]
        return info
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path} is damaged ({type(error).__name__}: {error}); it records which images the "
                              f"generator was trained on. Restore it, or train again with --overwrite.") from None


def fit_generator(data_dir, out, *, image_size: int | None = None, steps: int = 2000, n_mix=(2, 3, 4), ngf: int = 64,
                  batch_size: int = 16, seed: int = 0, device: str = "auto", resume: bool = False,
                  overwrite: bool = False, progress: bool = True, log=print):
    """Train a HydraMix generator on the training images of ``data_dir`` into the folder ``out``.

    ``image_size`` None keeps the images' size if they share one, else uses 32. The
    generator works at 64 px for images up to 32 px, else at the image size rounded down
    to a multiple of 4. The run is built in the hidden sibling ``.<out>.partial`` and moved
    to ``out`` only when finished, so a failed or interrupted run leaves ``out`` as it was;
    ``resume=True`` continues an interrupted run; ``overwrite=True`` replaces a folder this
    function made (never one holding other files or files changed since).
    """
    positive("image_size", image_size, allow_none=True)
    for name, value in (("steps", steps), ("ngf", ngf), ("batch_size", batch_size), *(("n_mix", n) for n in n_mix)):
        positive(name, value)
    resolve_device(device)
    out = check_output(out, inputs=[data_dir])
    partial = sibling(out, ".partial")
    with hold(out, what="output folder"):
        if resume:
            folder = partial if partial.exists() else out  # out: an interrupted run of an earlier version
            info = read_run_info(folder)
            data, _, held_out = training_images(data_dir, info["image_size"])
            if data.fingerprint() != info["fingerprint"]:
                raise DatasetError(f"{out} was trained on {info['data']}, whose images differ from those in {data_dir}; "
                                   f"resume with the same --data, or train into another folder.")
        else:
            _claim_partial(partial, out, tool=FIT_TOOL, overwrite=overwrite)
            claim_folder(out, tool=FIT_TOOL, overwrite=overwrite)
            folder = partial
            data, _, held_out = training_images(data_dir, _choose_size(data_dir, image_size))
        image_size = data.image_size
        split = _whole_set_split(data, seed)
        config = GeneratorConfig(dataset=data.name, samples_per_class=split.samples_per_class, seed=seed, ngf=ngf,
                                 ndf=ngf, batch_size=batch_size, steps=steps, n_mix=tuple(n_mix), device=device,
                                 checkpoint_every=max(1, min(100, steps // 10)))
        _report(data, image_size, log)
        if held_out:
            log(f"no test folder: {len(held_out)} images ({HOLDOUT:.0%} per class) are held out for testing, "
                f"not used to train the generator")
        if not resume:  # everything is checked: only now is anything removed or written
            if partial.exists():
                shutil.rmtree(partial)
            partial.mkdir(parents=True)
            write_marker(partial, tool=FIT_TOOL, files=GENERATOR_FILES)
            info = {"data": str(Path(data_dir).resolve()), "image_size": image_size, "classes": data.classes,
                    "fingerprint": data.fingerprint(), "images": len(data), "resized": data.resized,
                    "skipped": data.skipped, "held_out_files": held_out, "seed": seed}
            write_atomic(partial / RUN_INFO, json.dumps(info, indent=1) + "\n")
        run = train_generator(config, data, split, folder, resume=resume, progress=progress)
        write_marker(folder, tool=FIT_TOOL, files=GENERATOR_FILES)  # now with each file's content digest
        if folder == partial:
            if out.exists() and any(out.iterdir()):
                log(f"replacing the earlier generator in {out}")
            install_folder(partial, out)
    log(f"generator trained for {run.step} steps (working size {run.config.working_size} px); "
        f"final reconstruction loss {run.history[-1]['rec']:.4f}; saved to {out}")
    return run


def _claim_partial(partial: Path, out: Path, *, tool: str, overwrite: bool) -> None:
    """An interrupted run's hidden folder may be discarded only with ``overwrite``, and only if the tool made it."""
    if not partial.exists():
        return
    if not overwrite:
        raise OutputExistsError(f"an interrupted {tool} into {out} left {partial}; pass --resume to finish it "
                                f"or --overwrite to start again.")
    marker = read_marker(partial)
    if marker is None or marker.get("tool") != tool:
        raise OutputExistsError(f"{partial} was not written by {tool}; move it away and rerun.")


def open_generator(generator_dir, data: ImageSet, *, device: str):
    """The finished generator of a fit-generator folder, every file checked against the others:
    ``run.json`` names the images (fingerprint), which must be ``data`` and the checkpoint's, and
    the segments cache must be the checkpoint's (a file copied in from another run is refused)."""
    generator_dir = Path(generator_dir)
    info = read_run_info(generator_dir)
    if data.fingerprint() != info["fingerprint"]:
        raise DatasetError(f"these images are not the image set the generator in {generator_dir} was trained on "
                           f"(fingerprint {data.fingerprint()} vs {info['fingerprint']} in its {RUN_INFO}).")
    return load_generator(generator_dir, device=str(resolve_device(device)), fingerprint=info["fingerprint"])


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
    for file, reason in data.skipped.items():
        log(f"skipped unreadable image {file} ({reason})")
    for label, count in zip(data.classes, counts):
        if count == 1:
            log(f"class {label!r} has a single image: it is mixed with itself")


def augment_folder(generator_dir, data_dir, out, *, per_class: int, n_mix: int = 3, seed: int = 0, device: str = "auto",
                   overwrite: bool = False, resume: bool = False, log=print) -> dict:
    """Write ``per_class`` generated PNGs per class to ``out/<class>/``, a contact sheet and a manifest.

    The folder is built in the hidden sibling ``.<out>.partial`` and renamed to ``out`` when
    complete: an interrupted run leaves ``out`` untouched, and ``resume=True`` finishes it
    (classes already written are kept; each class has its own random stream, so the result
    equals an uninterrupted run's).
    """
    positive("per_class", per_class)
    positive("n_mix", n_mix)
    resolve_device(device)
    generator_dir = Path(generator_dir)
    out = check_output(out, inputs=[generator_dir, data_dir])
    info = read_run_info(generator_dir)
    arguments = {"generator": str(generator_dir.resolve()), "data": str(Path(data_dir).resolve()), "seed": seed,
                 "n_mix": n_mix, "per_class": per_class, "image_size": info["image_size"]}
    partial = sibling(out, ".partial")
    with hold(out, what="output folder"):
        claim = claim_folder(out, tool=AUGMENT_TOOL, overwrite=overwrite)
        started = read_marker(partial) if partial.exists() else None
        if not resume:
            _claim_partial(partial, out, tool=AUGMENT_TOOL, overwrite=overwrite)
        elif partial.exists() and started is None:
            raise OutputExistsError(f"{partial} was not written by {AUGMENT_TOOL}; move it away and rerun.")
        if resume and started is not None and started.get("arguments") != arguments:
            raise OutputExistsError(f"{partial} was started with other arguments ({started.get('arguments')}); "
                                    f"rerun with those, or pass --overwrite instead of --resume to start again.")
        data, _, _ = training_images(data_dir, info["image_size"])
        run = open_generator(generator_dir, data, device=device)
        if partial.exists() and not resume:  # checked by _claim_partial: an interrupted augment's own
            shutil.rmtree(partial)
        partial.mkdir(exist_ok=True)
        write_marker(partial, tool=AUGMENT_TOOL, files=[], arguments=arguments)
        augment = HydraMixAugment(run.generator, data.images, data.labels, run.segments, p_gen=1.0, n_mix=n_mix)
        manifest = {**arguments, "files": []}
        for label, name in enumerate(data.classes):
            manifest["files"] += _augment_class(augment, data, data_dir, partial, label, name, per_class, seed)
        _contact_sheet(partial, data.classes, manifest["files"], n_mix)
        write_atomic(partial / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(partial / PROGRESS)
        written = [p.relative_to(partial).as_posix() for p in partial.rglob("*") if p.is_file() and p.name != MARKER]
        write_marker(partial, tool=AUGMENT_TOOL, files=written, arguments=arguments)
        if claim == "replace":
            log(f"replacing the earlier results in {out}")
        install_folder(partial, out)
    log(f"wrote {per_class * data.num_classes} images ({per_class} per class) to {out}, "
        f"contact sheet {out / 'contact_sheet.png'}, manifest {out / 'manifest.json'}")
    return manifest


PROGRESS = ".progress"  # in a partial augment folder: one JSON per finished class


def _augment_class(augment, data: ImageSet, data_dir, folder: Path, label: int, name: str, per_class: int,
                   seed: int) -> list[dict]:
    """Generate and write one class (or read back its entries if an earlier run finished it)."""
    done = folder / PROGRESS / f"{label}.json"
    if done.exists():
        return json.loads(done.read_text())
    rng = torch.Generator().manual_seed(seed * 1_000_003 + label)  # per class, so a resumed run draws the same
    images, masks, members = augment.generate(torch.full((per_class,), label), generator=rng, return_details=True)
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / "masks" / name).mkdir(parents=True, exist_ok=True)
    mask_images = mask_colors(masks.cpu())
    entries = []
    for index in range(per_class):
        file = f"{name}/hydramix_{index:04d}.png"
        # Written by Python, which reports a full disk (torchvision's write_png does not).
        write_bytes(folder / file, encode_png((images[index].cpu() * 255).round().to(torch.uint8)).numpy().tobytes())
        write_bytes(folder / "masks" / file, encode_png((mask_images[index] * 255).round().to(torch.uint8)).numpy().tobytes())
        entries.append({"file": file, "class": name, "mask": f"masks/{file}",
                        "sources": [os.path.relpath(data.files[i], Path(data_dir)) for i in members[index].tolist()]})
    write_atomic(done, json.dumps(entries))
    return entries


def _contact_sheet(folder: Path, classes: list[str], entries: list[dict], n_mix: int) -> None:
    """Up to 8 written images per class, read back from the PNGs (the same whether or not the run was resumed)."""
    import matplotlib.pyplot as plt  # plotting stays optional for the rest of the package

    rows = [[e["file"] for e in entries if e["class"] == name][:8] for name in classes]
    images = torch.stack([decode_png(read_file(str(folder / file))) for row in rows for file in row])
    figure = image_grid(images, rows=len(classes), row_labels=classes, scale=1.0, title=f"HydraMix samples, N = {n_mix}")
    figure.savefig(folder / "contact_sheet.png", dpi=120, bbox_inches="tight")
    plt.close(figure)


def train_classifier_on_folder(data_dir, *, test_dir=None, method: str = "baseline", generator=None, image_size=None,
                               model: str | None = None, steps: int | None = None, epochs: int = 200, p_gen: float = 0.5,
                               holdout: float = HOLDOUT, seed: int = 0, device: str = "auto", out=None,
                               overwrite: bool = False, log=print) -> dict:
    """Train the study's classifier on a folder and report accuracy on ``test_dir``, ``data_dir/test``,
    or (recorded in the result) a held-out ``holdout`` fraction of each class.

    ``out``: a JSON file for the result record, checked before training and written atomically;
    an existing one is replaced only with ``overwrite`` and only if it is such a record.
    """
    base, _ = parse_method(method)
    resolve_device(device)
    if test_dir is not None:
        test_root = Path(test_dir).expanduser().resolve()
        if not test_root.is_dir():
            raise DatasetError(f"the test folder {test_dir} does not exist (or is not a folder); give a class folder "
                               f"DIR/<class>/, or leave out --test to test on {data_dir}/test/ or a held-out "
                               f"{holdout:.0%} per class.")
        if test_root in (Path(data_dir).expanduser().resolve(), train_folder(data_dir).expanduser().resolve()):
            raise DatasetError(f"--test {test_dir} is the training folder: a classifier tested on its own training "
                               f"images says nothing. Give a separate test folder, or leave out --test.")
    positive("image_size", image_size, allow_none=True)
    positive("steps", steps, allow_none=True)
    positive("epochs", epochs)
    if not 0.0 <= p_gen <= 1.0:
        raise ValueError(f"p_gen must be in [0, 1], got {p_gen}")
    if base in GENERATOR_METHODS and generator is None:
        raise ValueError(f"method {method!r} needs --generator (a folder made by `hydramix fit-generator`)")
    if out is not None:
        out = check_output(out, inputs=[data_dir, test_dir, generator], kind="file")
        _claim_result_file(out, overwrite=overwrite)
    with hold(out, what="result file") if out is not None else contextlib.nullcontext():
        info = read_run_info(Path(generator)) if generator is not None else None
        train, test, held_out = training_images(data_dir, info["image_size"] if info else _choose_size(data_dir, image_size),
                                                test_dir=test_dir, holdout=holdout)
        if held_out:
            log(f"no test folder: holding out {len(held_out)} images ({holdout:.0%} per class) for testing")
        if info is not None and train.fingerprint() != info["fingerprint"]:
            raise DatasetError(f"the training images of {data_dir} are not the image set the generator in {generator} "
                               f"was trained on (fingerprint {train.fingerprint()} vs {info['fingerprint']} in its "
                               f"{RUN_INFO}).")
        split = _whole_set_split(train, seed)
        generator_run = None
        if base in GENERATOR_METHODS:
            generator_run = open_generator(generator, train, device=device)
            # Same images (fingerprint checked above); the classifier's seed may differ from the generator's.
            generator_run.split = {**generator_run.split, "seed": seed}
        config = ClassifierConfig(dataset=train.name, samples_per_class=split.samples_per_class, seed=seed, method=method,
                                  p_gen=p_gen, model=model, steps=steps, epochs=epochs, device=device)
        record = train_classifier(config, train, test, split, generator_run=generator_run)
        record["held_out_files"] = held_out
        log(f"{method}: test accuracy {record['accuracy'] * 100:.1f}% on {record['test_images']} images "
            f"({record['steps']} steps, {record['train_time_s']:.0f} s on {record['device']})")
        if out is not None:
            _claim_result_file(out, overwrite=overwrite)  # again: another program may have written it meanwhile
            write_atomic(out, json.dumps(record, indent=1) + "\n")
    return record


RESULT_KEYS = {"dataset", "method", "accuracy", "config"}  # a classifier result record has at least these


def _claim_result_file(out: Path, *, overwrite: bool) -> None:
    if not out.exists():
        return
    try:
        ours = RESULT_KEYS <= json.loads(out.read_text()).keys()
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise OutputExistsError(f"{out} exists and is not a hydramix result record; choose another --out.")
    if not overwrite:
        raise OutputExistsError(f"{out} already holds a result; pass --overwrite (overwrite=True) to replace it.")
