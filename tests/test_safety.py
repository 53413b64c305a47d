"""A user's data is never lost: bad arguments and paths are refused before any work, outputs
cannot destroy inputs, interrupted and concurrent runs leave nothing half-written.

Driven through the ``hydramix`` command and ``run_all.sh`` as a user would, on a folder
``B`` of 3 classes x 6 images written from the CIFAR-10 copy.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import write_png

from hydramix_core.outputs import hold
from tests.processes import LIMIT, Started, wait_until

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
SMALL = ("--ngf", 8, "--batch-size", 4, "--device", "cpu")


def hydramix(*args, check=True, **kwargs):
    result = subprocess.run([sys.executable, "-m", "hydramix_core.cli", *map(str, args)], capture_output=True, text=True,
                            **kwargs)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def start(*args) -> Started:
    return Started([sys.executable, "-m", "hydramix_core.cli", *args])


def refused(result, *phrases):
    """Exit status 2, a one-line error naming what to do, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr[-2000:])


def snapshot(folder: Path) -> dict:
    """Relative path -> sha256 of every file under ``folder`` (the state a refused command must keep)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def images(cifar10_train, tmp_path_factory):
    """B: 3 classes x 6 images."""
    root = tmp_path_factory.mktemp("data") / "B"
    for label, name in enumerate(["airplane", "cat", "ship"]):
        (root / name).mkdir(parents=True)
        for i, image in enumerate(cifar10_train.images[cifar10_train.labels == label][:6]):
            write_png(image, str(root / name / f"{i}.png"))
    return root


@pytest.fixture(scope="module")
def generator(images, tmp_path_factory):
    run = tmp_path_factory.mktemp("gen") / "run"
    hydramix("fit-generator", "--data", images, "--out", run, "--steps", 3, *SMALL)
    return run


@pytest.fixture
def victim(images, tmp_path):
    copy = tmp_path / "victim"
    shutil.copytree(images, copy)
    return copy


# 1. --overwrite never deletes what the tool did not write ---------------------------------

@pytest.mark.parametrize("where", ["same", "inside", "above"])
def test_output_overlapping_an_input_is_refused_and_nothing_changes(victim, where):
    out = {"same": victim, "inside": victim / "cat" / "run", "above": victim.parent}[where]
    before = snapshot(victim.parent)
    result = hydramix("fit-generator", "--data", victim, "--out", out, "--steps", 3, *SMALL, "--overwrite", check=False)
    refused(result, "the input", "outside your inputs")
    assert snapshot(victim.parent) == before


def test_overwrite_keeps_files_the_tool_did_not_write(images, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused(hydramix("fit-generator", "--data", images, "--out", out, "--steps", 3, *SMALL, "--overwrite", check=False),
            "notes.txt", "Choose a new or empty folder")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]

    (out / "notes.txt").unlink()  # an empty folder is fine; then the tool's own folder is replaced with --overwrite
    hydramix("fit-generator", "--data", images, "--out", out, "--steps", 3, *SMALL)
    refused(hydramix("fit-generator", "--data", images, "--out", out, "--steps", 3, *SMALL, check=False), "--overwrite")
    first = (out / "generator.pt").stat().st_mtime_ns
    hydramix("fit-generator", "--data", images, "--out", out, "--steps", 3, *SMALL, "--overwrite")
    assert (out / "generator.pt").stat().st_mtime_ns != first

    (out / "notes.txt").write_text("added later")
    before = snapshot(out)
    refused(hydramix("fit-generator", "--data", images, "--out", out, "--steps", 3, *SMALL, "--overwrite", check=False),
            "notes.txt")
    assert snapshot(out) == before


def test_augment_overwrite_keeps_foreign_files(images, generator, tmp_path):
    out = tmp_path / "new"
    hydramix("augment", "--generator", generator, "--data", images, "--per-class", 2, "--out", out, "--device", "cpu")
    (out / "cat" / "my_edit.png").write_bytes((out / "cat" / "hydramix_0000.png").read_bytes())
    before = snapshot(out)
    refused(hydramix("augment", "--generator", generator, "--data", images, "--per-class", 3, "--out", out,
                     "--overwrite", check=False), "cat/my_edit.png")
    assert snapshot(out) == before


# 2. sizes must be positive ----------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["fit-generator", "--steps", "0"], ["fit-generator", "--steps", "-5"], ["fit-generator", "--batch-size", "0"],
    ["fit-generator", "--ngf", "0"], ["fit-generator", "--ngf", "-1"], ["fit-generator", "--n-mix", "0"],
    ["fit-generator", "--image-size", "0"], ["fit-generator", "--steps", "two"],
    ["train-classifier", "--steps", "0"], ["train-classifier", "--steps", "-5"],
    ["augment", "--per-class", "0"], ["augment", "--per-class", "-3"], ["augment", "--n-mix", "0"],
])
def test_non_positive_sizes_are_refused_before_any_work(images, generator, tmp_path, command):
    name, *option = command
    required = {"fit-generator": ["--data", images, "--out", tmp_path / "out"],
                "train-classifier": ["--data", images, "--out", tmp_path / "out" / "r.json"],
                "augment": ["--generator", generator, "--data", images, "--out", tmp_path / "out", "--per-class", 2]}[name]
    result = hydramix(name, *required, *option, check=False)
    refused(result, option[0], "positive integer")
    assert not (tmp_path / "out").exists()


def test_api_refuses_non_positive_sizes():
    from hydramix_core.engine import ClassifierConfig
    from hydramix_core.generator_files import GeneratorConfig

    for bad in ({"steps": 0}, {"steps": -5}, {"batch_size": 0}, {"ngf": 0}, {"log_every": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            GeneratorConfig(**{"dataset": "d", "samples_per_class": 5, "seed": 0, **bad})
    for bad in ({"steps": 0}, {"epochs": 0}, {"batch_size": -1}, {"samples_per_class": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ClassifierConfig(**{"dataset": "d", "samples_per_class": 5, "seed": 0, **bad})


# 3. a refused --resume changes nothing ----------------------------------------------------

def test_refused_resume_changes_nothing(images, tmp_path):
    run, other = tmp_path / "run", tmp_path / "other"
    shutil.copytree(images, other)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(other / "cat" / "extra.png")
    hydramix("fit-generator", "--data", images, "--out", run, "--steps", 3, *SMALL)
    before = snapshot(run)
    refused(hydramix("fit-generator", "--data", other, "--out", run, "--steps", 3, *SMALL, "--resume", check=False),
            "same --data")
    refused(hydramix("fit-generator", "--data", images, "--out", run, "--steps", 5, *SMALL, "--resume", check=False),
            "another config")
    assert snapshot(run) == before
    refused(hydramix("augment", "--generator", run, "--data", other, "--per-class", 1, "--out", tmp_path / "a",
                     check=False), "not the image set")
    hydramix("augment", "--generator", run, "--data", images, "--per-class", 1, "--out", tmp_path / "a")


# 4. one writer per output folder; interrupted augment finishes with --resume ---------------

def test_second_writer_is_refused_naming_the_holder(images, generator, tmp_path):
    out = tmp_path / "shared"
    with hold(out):
        result = hydramix("augment", "--generator", generator, "--data", images, "--per-class", 1, "--out", out,
                          check=False)
    refused(result, "being written by another run", f"pid {os.getpid()}")
    assert not out.exists()


def test_concurrent_augments_leave_one_consistent_result(images, generator, tmp_path):
    out = tmp_path / "shared"
    runs = [start("augment", "--generator", generator, "--data", images, "--per-class", 20, "--out", out,
                  "--seed", seed, "--device", "cpu") for seed in (0, 1)]
    results = [(run.wait(), run.stderr) for run in runs]
    assert sum(code == 0 for code, _ in results) >= 1, results
    for code, stderr in results:
        assert code == 0 or ("being written by another run" in stderr or "already holds results" in stderr), stderr
    manifest = json.loads((out / "manifest.json").read_text())
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.png")} - {"contact_sheet.png"}
    assert written == {f for e in manifest["files"] for f in (e["file"], e["mask"])}
    assert len(manifest["files"]) == 60


def test_killed_augment_resumes_to_the_uninterrupted_result(images, generator, tmp_path):
    args = ("augment", "--generator", generator, "--data", images, "--per-class", 150, "--device", "cpu")
    hydramix(*args, "--out", tmp_path / "reference")
    out = tmp_path / "new"
    partial = tmp_path / ".new.partial"
    run = start(*args, "--out", out)
    wait_until((partial / ".progress" / "0.json").exists, what="the first class's progress file", process=run,
               poll=0.01)
    run.kill()
    assert not out.exists() and partial.exists()
    refused(hydramix(*args, "--out", out, check=False), "--resume")
    refused(hydramix(*args[:-4], "--per-class", 3, "--device", "cpu", "--out", out, "--resume", check=False),
            "other arguments")
    hydramix(*args, "--out", out, "--resume")
    assert not partial.exists()
    reference = {k: v for k, v in snapshot(tmp_path / "reference").items() if k.endswith(".png") and "contact" not in k}
    resumed = snapshot(out)
    assert all(resumed[k] == v for k, v in reference.items()) and len(reference) == 900
    assert json.loads((out / "manifest.json").read_text())["files"] == \
        json.loads((tmp_path / "reference" / "manifest.json").read_text())["files"]


# 5. outputs checked before the work -------------------------------------------------------

def _train(images, out, *extra):
    return hydramix("train-classifier", "--data", images, "--steps", 2, "--model", "wrn16_2", "--device", "cpu",
                    "--out", out, *extra, check=False)


def test_classifier_output_checked_before_training(images, tmp_path):
    (tmp_path / "folder").mkdir()
    refused(_train(images, tmp_path / "folder"), "is a folder")
    (tmp_path / "file").write_text("x")
    refused(_train(images, tmp_path / "file" / "result.json"), "is a file, not a folder")
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    refused(_train(images, tmp_path / "notes.json", "--overwrite"), "not a hydramix result")
    assert (tmp_path / "notes.json").read_text() == '{"mine": 1}'
    refused(_train(images, images / "result.json"), "the input")

    out = tmp_path / "result.json"
    assert _train(images, out).returncode == 0
    first = out.read_text()
    refused(_train(images, out), "--overwrite")
    assert out.read_text() == first
    assert _train(images, out, "--overwrite").returncode == 0
    assert json.loads(out.read_text())["method"] == "baseline"


def _read_only_run(command: list[str], read_only: Path) -> subprocess.CompletedProcess:
    """Run ``command`` with ``read_only`` bind-mounted read-only (a real EROFS, which root cannot
    write either), in a private user and mount namespace."""
    script = f'mount --bind "{read_only}" "{read_only}" && mount -o remount,bind,ro "{read_only}" && exec "$@"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *command], capture_output=True, text=True)


def test_read_only_location_is_refused_before_training(images, tmp_path):
    probe = _read_only_run(["true"], tmp_path)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {probe.stderr.strip()}")
    result = _read_only_run([sys.executable, "-m", "hydramix_core.cli", "train-classifier", "--data", str(images),
                             "--steps", "100000", "--out", str(tmp_path / "results" / "r.json")], tmp_path)
    refused(result, "not writable", "Read-only file system")
    result = _read_only_run([sys.executable, "-m", "hydramix_core.cli", "fit-generator", "--data", str(images),
                             "--out", str(tmp_path / "gen")], tmp_path)
    refused(result, "not writable")
    assert not (tmp_path / "results").exists() and not (tmp_path / "gen").exists()


# 6. resumed loss history is exact ---------------------------------------------------------

def test_resumed_history_equals_uninterrupted(cifar10_train, tmp_path, interrupt_generator_at):
    from hydramix_core.splits import create_split
    from hydramix_core import GeneratorConfig
    from hydramix_core.train_generator import train_generator

    split = create_split(cifar10_train, samples_per_class=1, seed=0)
    config = GeneratorConfig(dataset="cifar10", samples_per_class=1, seed=0, ngf=8, ndf=8, batch_size=4, steps=12,
                             checkpoint_every=4, log_every=5)
    full = train_generator(config, cifar10_train, split, tmp_path / "full", progress=False)
    disarm = interrupt_generator_at(6)  # checkpoint at step 4, inside the log interval 1..5
    with pytest.raises(KeyboardInterrupt, match="step 4.*resume"):
        train_generator(config, cifar10_train, split, tmp_path / "resumed", progress=False)
    disarm()
    resumed = train_generator(config, cifar10_train, split, tmp_path / "resumed", progress=False)
    assert resumed.history == full.history and [h["step"] for h in full.history] == [5, 10, 12]


# 7. run_all.sh refuses what it cannot do --------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--from", "99"], "matches no notebook"), (["--only", "nonsense"], "matches no notebook"),
    (["--profile"], "--profile needs a value"), (["--results"], "--results needs a value"),
    (["--profile", "--from", "01"], "--profile needs a value"), (["--profile", "nope"], "no profile"),
    (["--from", "03", "--only", "01"], "selects no notebook"), (["--frm", "01"], "unknown argument"),
    (["--executor", "pbs"], "must be local or slurm"), (["--", "--partition", "gpu"], "none given"),
])
def test_run_all_rejects_bad_options(args, message):
    result = subprocess.run([str(REPO / "run_all.sh"), *args], capture_output=True, text=True, timeout=LIMIT)
    assert result.returncode == 2 and message in result.stderr, (result.returncode, result.stderr)
    assert "unbound variable" not in result.stderr and "Done" not in result.stdout


def test_run_all_refuses_a_second_run_on_one_results_folder(tmp_path):
    results = tmp_path / "results"
    with hold(results):
        result = subprocess.run([str(REPO / "run_all.sh"), "--profile", "nbcheck", "--only", "01", "--results", results],
                                capture_output=True, text=True, timeout=LIMIT)
    assert result.returncode == 2 and "being written by another run" in result.stderr, result.stderr[-2000:]
    assert str(os.getpid()) in result.stderr and not list(results.glob("*.ipynb"))


def test_run_all_takes_one_lock_for_a_folder_and_a_symlink_to_it(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (tmp_path / "link").symlink_to(results)
    with hold(results):
        result = subprocess.run([str(REPO / "run_all.sh"), "--profile", "nbcheck", "--only", "01", "--results",
                                 tmp_path / "link"], capture_output=True, text=True, timeout=LIMIT)
    assert result.returncode == 2 and "being written by another run" in result.stderr, result.stderr[-2000:]
    assert not list(results.glob("*.ipynb"))


def test_run_all_takes_a_profile_file_and_a_failing_notebook_keeps_the_good_one(tmp_path):
    """--profile accepts a YAML file by its path. A notebook that fails leaves the previous executed
    notebook as it was and keeps the failed one beside it under a name that says so."""
    profile = tmp_path / "mine.yaml"
    profile.write_text((REPO / "profiles" / "nbcheck.yaml").read_text())
    results = tmp_path / "results"
    run = [str(REPO / "run_all.sh"), "--profile", "mine.yaml", "--only", "01", "--results", str(results)]
    first = subprocess.run(run, capture_output=True, text=True, timeout=LIMIT, cwd=tmp_path)  # relative to the caller
    assert first.returncode == 0 and "Done" in first.stdout, first.stderr[-2000:]
    good = (results / "01_data_splits.ipynb").read_bytes()
    assert b'"profile": "mine"' in good or b"profile = \"mine\"" in good
    for split in (results / "splits").glob("*.json"):  # a damaged split makes notebook 01 fail
        split.write_text("{")
    second = subprocess.run(run, capture_output=True, text=True, timeout=LIMIT, cwd=tmp_path)
    assert second.returncode == 1 and "is kept" in second.stderr, second.stderr[-2000:]
    assert (results / "01_data_splits.ipynb").read_bytes() == good
    assert (results / "01_data_splits.failed.ipynb").exists() and not list(results.glob(".*.running.ipynb"))


def test_ctrl_c_on_run_all_says_what_was_kept_and_exits_130(tmp_path):
    results = tmp_path / "results"
    run = Started([REPO / "run_all.sh", "--profile", "nbcheck", "--from", "02", "--results", results],
                  start_new_session=True)
    wait_until(lambda: (results / "checkpoints").exists(), what="the first generator's folder", process=run)
    os.killpg(run.process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole foreground group
    run.wait()
    assert run.returncode == 130 and "interrupted" in run.stderr and "rerun the same command" in run.stderr, \
        (run.returncode, run.stderr[-2000:])
    assert not (results / "02_train_generator.ipynb").exists()


# 8. interruptions, damaged side files, unusual pixel formats -------------------------------

def test_ctrl_c_during_training_says_how_to_resume(images, tmp_path):
    out = tmp_path / "run"
    run = start("fit-generator", "--data", images, "--out", out, "--steps", 5000, *SMALL)
    wait_until((tmp_path / ".run.partial" / "generator.pt").exists, what="a first checkpoint", process=run)
    run.send_signal(signal.SIGINT)
    run.wait()
    stderr = run.stderr
    assert run.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    assert "interrupted at step" in stderr and "--resume" in stderr
    saved = int(re.search(r"generator.pt is at step (\d+)", stderr).group(1))
    assert saved > 0 and saved % 100 == 0  # fit-generator checkpoints every 100 steps


@pytest.mark.parametrize("damaged", ["segments.pt", "run.json"])
def test_damaged_side_file_is_named_with_what_to_do(images, generator, tmp_path, damaged):
    run = tmp_path / "run"
    shutil.copytree(generator, run)
    (run / damaged).write_bytes((run / damaged).read_bytes()[:40])
    result = hydramix("augment", "--generator", run, "--data", images, "--per-class", 1, "--out", tmp_path / "a",
                      check=False)
    refused(result, damaged, {"segments.pt": "--resume", "run.json": "--overwrite"}[damaged])
    if damaged == "segments.pt":  # the segments are a cache: resuming rebuilds them
        hydramix("fit-generator", "--data", images, "--out", run, "--steps", 3, *SMALL, "--resume")
        hydramix("augment", "--generator", run, "--data", images, "--per-class", 1, "--out", tmp_path / "a")


def test_every_pixel_format_is_read(images, tmp_path):
    folder = tmp_path / "formats"
    shutil.copytree(images, folder)
    rgb = np.asarray(Image.open(images / "cat" / "0.png").convert("RGB"))
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(folder / "cat" / "sixteen_bit.png")
    Image.fromarray(rgb).convert("RGBA").save(folder / "cat" / "alpha.png")
    Image.fromarray(rgb).convert("LA").save(folder / "cat" / "gray_alpha.png")
    Image.fromarray(rgb).convert("P").save(folder / "cat" / "palette.png")
    Image.fromarray(rgb).convert("1").save(folder / "cat" / "one_bit.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "ship" / "cmyk.jpg")
    Image.fromarray(rgb).save(folder / "ship" / "bitmap.bmp")
    Image.fromarray(rgb).save(folder / "ship" / "scan.tiff")
    Image.fromarray((rgb[..., 0] / 255).astype(np.float32)).save(folder / "ship" / "float.tif")
    Image.fromarray((rgb[..., 0].astype(np.int32) * 4000)).save(folder / "ship" / "raw_counts.tif")
    result = hydramix("fit-generator", "--data", folder, "--out", tmp_path / "run", "--steps", 2, *SMALL)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["images"] + len(info["held_out_files"]) == 18 + 9
    assert [Path(f).name for f in info["skipped"]] == ["raw_counts.tif"] and "save it as 8-bit" in result.stdout

    from hydramix_core.data import load_image_folder

    data = load_image_folder(folder, image_size=32, skip_unreadable=True)
    by_name = {Path(f).relative_to(folder).as_posix(): image for f, image in zip(data.files, data.images)}
    assert torch.equal(by_name["cat/sixteen_bit.png"][0], torch.from_numpy(rgb[..., 0].copy()))
    for same in ("ship/bitmap.bmp", "ship/scan.tiff", "cat/alpha.png"):
        assert torch.equal(by_name[same], by_name["cat/0.png"]), same


# 9. a failing command keeps the previous result; every file read is checked ------------------

def _other_generator(images, tmp_path) -> Path:
    """A finished generator on other images (the first 5 of each class) than ``images``."""
    other = tmp_path / "other_data"
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        (other / folder.name).mkdir(parents=True)
        for file in sorted(folder.iterdir())[:5]:
            shutil.copy(file, other / folder.name / file.name)
    run = tmp_path / "other_gen"
    hydramix("fit-generator", "--data", other, "--out", run, "--steps", 3, *SMALL)
    return run


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("command", ["fit-generator", "augment", "train-classifier"])
def test_a_missing_device_is_refused_before_any_work(command, images, generator, tmp_path):
    kept = tmp_path / "kept"
    shutil.copytree(generator, kept)
    before = snapshot(kept)
    args = {"fit-generator": ("--data", images, "--out", kept, "--overwrite", "--steps", 3),
            "augment": ("--generator", kept, "--data", images, "--per-class", 1, "--out", tmp_path / "aug"),
            "train-classifier": ("--data", images, "--method", "hydramix", "--generator", kept, "--steps", 2,
                                 "--out", tmp_path / "r.json")}[command]
    refused(hydramix(command, *args, "--device", "cuda", check=False), "no CUDA GPU", "--device cpu")
    assert snapshot(kept) == before and sorted(p.name for p in tmp_path.iterdir()) == ["kept"]


def test_an_interrupted_overwrite_keeps_the_finished_generator(images, generator, tmp_path):
    out = tmp_path / "gen"
    shutil.copytree(generator, out)
    before = snapshot(out)
    run = start("fit-generator", "--data", images, "--out", out, "--overwrite", "--steps", 5000, *SMALL)
    wait_until((tmp_path / ".gen.partial" / "generator.pt").exists, what="the new run's first checkpoint", process=run)
    run.send_signal(signal.SIGINT)
    assert run.wait() == 130 and "--resume" in run.stderr, run.stderr[-2000:]
    assert snapshot(out) == before  # the finished generator is untouched
    refused(hydramix("fit-generator", "--data", images, "--out", out, "--steps", 5000, *SMALL, check=False),
            "--resume", "--overwrite")
    hydramix("fit-generator", "--data", images, "--out", out, "--steps", 4, *SMALL, "--overwrite")  # start again
    assert not (tmp_path / ".gen.partial").exists() and snapshot(out) != before
    assert json.loads((out / "generator.pt").with_name("finished.json").read_text())


def test_files_copied_in_from_another_generator_are_refused(images, generator, tmp_path):
    other = _other_generator(images, tmp_path)
    for name, phrase in (("generator.pt", "other images"), ("segments.pt", "another generator run"),
                         ("run.json", "not the image set")):
        mixed = tmp_path / f"mixed_{name}"
        shutil.copytree(generator, mixed)
        shutil.copy(other / name, mixed / name)
        refused(hydramix("augment", "--generator", mixed, "--data", images, "--per-class", 1, "--device", "cpu",
                         "--out", tmp_path / f"aug_{name}", check=False), phrase)
        refused(hydramix("train-classifier", "--data", images, "--method", "hydramix", "--generator", mixed,
                         "--steps", 2, "--device", "cpu", check=False), phrase)
        assert not (tmp_path / f"aug_{name}").exists()


@pytest.mark.parametrize("edit", ["changed image", "replaced generator"])
def test_overwrite_refuses_a_file_changed_since_the_tool_wrote_it(edit, images, generator, tmp_path):
    if edit == "changed image":
        out = tmp_path / "aug"
        hydramix("augment", "--generator", generator, "--data", images, "--per-class", 2, "--out", out, "--device", "cpu")
        edited = out / "cat" / "hydramix_0000.png"
        edited.write_bytes((out / "cat" / "hydramix_0001.png").read_bytes())  # the user's own pick
        again = ("augment", "--generator", generator, "--data", images, "--per-class", 2, "--device", "cpu")
    else:
        out = tmp_path / "gen"
        shutil.copytree(generator, out)
        edited = out / "generator.pt"
        edited.write_bytes(edited.read_bytes() + b"\0")
        again = ("fit-generator", "--data", images, "--steps", 3, *SMALL)
    before = snapshot(out)
    refused(hydramix(*again, "--out", out, "--overwrite", check=False), edited.relative_to(out).as_posix(),
            "changed since")
    assert snapshot(out) == before


def test_test_folder_must_exist_and_differ_from_the_training_folder(images, tmp_path):
    for test, phrase in ((tmp_path / "tset_typo", "does not exist"), (images, "is the training folder")):
        refused(hydramix("train-classifier", "--data", images, "--test", test, "--steps", 2, "--device", "cpu",
                         "--out", tmp_path / "r.json", check=False), phrase)
        assert not (tmp_path / "r.json").exists()


# 10. hangs, full disks, odd images, bad profiles: a clear error, never a raw traceback -------

def test_a_silent_network_fails_with_a_message_not_a_hang(tmp_path):
    import socket as sockets

    server = sockets.socket()  # a proxy that accepts connections and never answers
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    proxy = f"http://127.0.0.1:{server.getsockname()[1]}"
    env = {**os.environ, "HYDRAMIX_DATA": str(tmp_path / "data"), "HYDRAMIX_DOWNLOAD_TIMEOUT": "2",
           "https_proxy": proxy, "http_proxy": proxy, "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "no_proxy": ""}
    code = "from hydramix_core.data import load_dataset; load_dataset('cifar10', download=True)"
    try:
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=LIMIT)
    finally:
        server.close()
    assert result.returncode != 0
    assert "downloading cifar10 from https://" in result.stderr  # says what is fetched, and where to
    assert "timed out" in result.stderr and "place it at" in result.stderr, result.stderr[-2000:]
    assert not list((tmp_path / "data").glob("*.tar.gz"))  # nothing half-downloaded left as if complete


def _full_disk_run(command, folder: Path, size_kb: int):
    """Run ``command`` with a ``size_kb`` tmpfs mounted at ``folder`` (a real ENOSPC) in a private
    user and mount namespace."""
    script = f'mount -t tmpfs -o size={size_kb}k tmpfs "{folder}" && exec "$@"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *map(str, command)], capture_output=True,
                          text=True)


@pytest.mark.parametrize("command", ["augment", "fit-generator"])
def test_a_full_disk_is_named_and_leaves_no_result(command, images, generator, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if _full_disk_run(["true"], disk, 64).returncode != 0:
        pytest.skip("cannot mount a tmpfs in a user namespace here")
    cli = [sys.executable, "-m", "hydramix_core.cli"]
    # the disk holds what fits: a copy of the generator for augment; for fit-generator, run.json and a little more
    script = {"augment": [*cli, "augment", "--generator", generator, "--data", images, "--per-class", 200,
                          "--device", "cpu", "--out", disk / "out"],
              "fit-generator": [*cli, "fit-generator", "--data", images, "--out", disk / "out", "--steps", 3, *SMALL]}
    result = _full_disk_run(["sh", "-c", '"$@"; code=$?; ls -a "$0"; exit $code', disk, *script[command]], disk,
                            600 if command == "augment" else 96)
    refused(result, "The disk is full", str(disk))
    assert "\nout\n" not in result.stdout  # no finished-looking result folder; only the hidden partial


def test_a_full_disk_under_run_all_keeps_the_previous_notebook_and_says_what_to_do(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if _full_disk_run(["true"], disk, 64).returncode != 0:
        pytest.skip("cannot mount a tmpfs in a user namespace here")
    run = f'"{REPO}/run_all.sh" --profile nbcheck --only 01 --results "{disk}/r"'
    script = (f'{run} >/dev/null 2>&1 || exit 9; sha256sum "{disk}/r/01_data_splits.ipynb"; '
              f'dd if=/dev/zero of="{disk}/fill" bs=64k 2>/dev/null; {run}; echo "rc=$?"; '
              f'sha256sum "{disk}/r/01_data_splits.ipynb"; ls -a "{disk}/r"')
    result = _full_disk_run(["sh", "-c", script], disk, 8192)
    lines = result.stdout.splitlines()
    assert lines and lines[0].endswith("01_data_splits.ipynb"), (result.stdout, result.stderr[-2000:])
    assert "rc=1" in lines and lines[0] in lines[1:], result.stdout  # failed, and the good notebook is unchanged
    assert "Traceback" not in result.stderr and "full" in result.stderr and "rerun the same command" in result.stderr, \
        result.stderr[-2000:]
    assert not any(line.endswith(".running.ipynb") for line in lines)


def test_an_animated_image_is_read_as_its_first_frame(images, tmp_path):
    from PIL import Image as PILImage

    data = tmp_path / "data"
    shutil.copytree(images, data)
    frames = [PILImage.new("RGB", (32, 32), color) for color in ((10, 20, 30), (200, 100, 0))]
    frames[0].save(data / "cat" / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = hydramix("train-classifier", "--data", data, "--steps", 2, "--model", "wrn16_2", "--device", "cpu")
    assert "Traceback" not in result.stderr
    from hydramix_core.data import load_image_folder

    loaded = load_image_folder(data, image_size=32)
    index = next(i for i, f in enumerate(loaded.files) if str(f).endswith("animated.gif"))
    assert loaded.images[index][:, 0, 0].tolist() == [10, 20, 30]


@pytest.mark.parametrize("key, value, phrase", [
    ("p_gen", float("nan"), "p_gen: must be a number in [0, 1]"), ("methods", ["hydramix", "nosuch"], "Unknown method"),
    ("seeds", [], "seeds: must be a non-empty list"), ("samples_per_class", [0], "samples_per_class: values must be"),
    ("generator", {"ngf": -1}, "ngf must be a positive integer"), ("classifier", {"stepz": 3}, "classifier.stepz"),
    ("device", "tpu", "device: must be auto"), ("p_gen_values", [1.5], "p_gen_values"), ("colour", 1, "unknown key"),
    ("cpu_workers", 0, "cpu_workers: values must be integers >= 1"),
    ("classifier", {"eval_at": [0.5, 1.5]}, "eval_at must hold fractions"), ("classifier", {"amp": "fp8"}, "amp must be")])
def test_every_bad_profile_value_is_named_with_its_file_and_key(key, value, phrase, tmp_path):
    import yaml

    profile = yaml.safe_load((REPO / "profiles" / "nbcheck.yaml").read_text())
    profile[key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(profile))
    refused(hydramix("sweep", "status", "--profile", path, check=False), str(path), phrase)
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "run_notebook.py"),
                             str(REPO / "notebooks" / "01_data_splits.ipynb"), str(tmp_path / "results"), "--profile",
                             str(path)], capture_output=True, text=True)
    refused(result, str(path), phrase)
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder: an unreadable one exists only for other users")
def test_an_unreadable_class_folder_is_named(images, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(images, data)
    (data / "cat").chmod(0)
    try:
        result = hydramix("train-classifier", "--data", data, "--steps", 2, "--device", "cpu", check=False)
    finally:
        (data / "cat").chmod(0o755)
    refused(result, str(data / "cat"), "ermission")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    """Files written atomically get the permissions open() would give them (0644 under umask 022),
    so colleagues sharing a results folder can read its records."""
    from hydramix_core.outputs import save_atomic, write_atomic

    previous = os.umask(umask)
    try:
        write_atomic(tmp_path / "record.json", "{}\n")
        save_atomic({"x": 1}, tmp_path / "state.pt")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(previous)
    for name in ("record.json", "state.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask == (tmp_path / "plain.txt").stat().st_mode & 0o777
