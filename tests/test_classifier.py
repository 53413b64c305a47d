import json

import pytest
import torch

import hydramix_core.study as study
from hydramix_core.augment import HydraMixAugment
from hydramix_core.classifier import build_classifier
from hydramix_core.engine import ClassifierConfig, Run, train_classifier, train_pack
from hydramix_core.methods import BASE_METHODS, parse_method
from hydramix_core.splits import create_split
from hydramix_core.study import run_sweep, sweep_configs
from hydramix_core.generator_files import CheckpointError

TINY = dict(model="wrn16_2", steps=2, test_subset=2, device="cpu")


@pytest.mark.parametrize("method", list(BASE_METHODS) + ["hydramix+autoaugment", "mixup+autoaugment", "mixup_a0.2",
                                                          "zetamixup_g2.4"])
def test_every_method_trains_two_steps(method, cifar10_train, cifar10_test, split, generators, tmp_path):
    _, runs = generators
    kind = {"chimeramix_grid": "chimeramix_grid", "chimeramix_seg": "chimeramix_seg"}.get(method, "hydramix")
    config = ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method=method, **TINY)
    record = train_classifier(config, cifar10_train, cifar10_test, split, generator_run=runs[kind],
                              segments_cache=tmp_path / "segs.pt", progress=False)
    assert 0 <= record["accuracy"] <= 1 and record["test_images"] == 20 and record["steps"] == 2
    assert len(record["per_class_accuracy"]) == 10


def test_training_is_deterministic_and_bf16_runs(cifar10_train, cifar10_test, split):
    config = ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method="cutout", **{**TINY, "steps": 4})
    first = train_classifier(config, cifar10_train, cifar10_test, split, progress=False)
    second = train_classifier(config, cifar10_train, cifar10_test, split, progress=False)
    assert first["history"] == second["history"]
    bf16 = ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, amp="bf16", channels_last=True, **TINY)
    assert torch.isfinite(torch.tensor(train_classifier(bf16, cifar10_train, cifar10_test, split, progress=False)["history"][-1]["loss"]))


def _two_class_pool():
    """Class 0 all black, class 1 all white: any same-class mix keeps the colour."""
    images = torch.cat([torch.zeros(3, 3, 32, 32, dtype=torch.uint8), torch.full((3, 3, 32, 32), 255, dtype=torch.uint8)])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    return images, labels


@pytest.mark.parametrize("kind", ["grid", "chimeramix_grid"])
def test_generated_samples_keep_their_class_and_label(kind):
    images, labels = _two_class_pool()
    augment = HydraMixAugment(None, images, labels, None, p_gen=1.0, n_mix=2, mask_kind=kind)
    batch = torch.full((8, 3, 32, 32), 0.5)
    batch_labels = torch.tensor([0, 1] * 4)
    out, out_labels = augment(batch, batch_labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out_labels, batch_labels) and out_labels.dtype == torch.int64
    assert (out[batch_labels == 0] == 0).all() and (out[batch_labels == 1] == 1).all()


def test_p_gen_controls_the_replaced_fraction():
    images, labels = _two_class_pool()
    batch, batch_labels = torch.full((64, 3, 32, 32), 0.5), torch.randint(0, 2, (64,))

    def replaced_fraction(p_gen, per_batch=False, trials=20):
        augment = HydraMixAugment(None, images, labels, None, p_gen=p_gen, n_mix=2, mask_kind="grid", per_batch=per_batch)
        g = torch.Generator().manual_seed(1)
        fractions = [(augment(batch, batch_labels, generator=g)[0] != 0.5).flatten(1).any(1).float().mean().item()
                     for _ in range(trials)]
        return fractions

    assert replaced_fraction(0.0) == [0.0] * 20
    assert replaced_fraction(1.0) == [1.0] * 20
    half = replaced_fraction(0.5)
    assert 0.4 < sum(half) / len(half) < 0.6 and all(0 < f < 1 for f in half)
    assert set(replaced_fraction(0.5, per_batch=True)) == {0.0, 1.0}


def test_bad_inputs(cifar10_train, cifar10_test, split, generators):
    with pytest.raises(ValueError, match="Unknown method 'mixdown'"):
        ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method="mixdown")
    with pytest.raises(ValueError, match="Unknown method"):
        parse_method("hydramix+cutout")
    with pytest.raises(ValueError, match="p_gen must be in"):
        ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method="hydramix", p_gen=1.5)
    with pytest.raises(ValueError, match="p_gen must be in"):
        HydraMixAugment(None, *_two_class_pool(), None, p_gen=-0.1, mask_kind="grid")
    with pytest.raises(ValueError, match="Unknown model"):
        build_classifier("vgg", 10)
    config = ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method="hydramix", **TINY)
    with pytest.raises(ValueError, match="needs a trained generator"):
        train_classifier(config, cifar10_train, cifar10_test, split, progress=False)
    _, runs = generators
    with pytest.raises(ValueError, match="trained with chimeramix_seg masks, got one trained with hydramix"):
        train_classifier(ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method="chimeramix_seg", **TINY),
                         cifar10_train, cifar10_test, split, generator_run=runs["hydramix"], progress=False)
    other = create_split(cifar10_train, samples_per_class=2, seed=1)
    with pytest.raises(ValueError, match="trained on"):
        train_classifier(ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=1, method="hydramix", **TINY),
                         cifar10_train, cifar10_test, other, generator_run=runs["hydramix"], progress=False)


def test_sweep_writes_one_file_per_run_and_skips_finished(cifar10_root, generators, monkeypatch, tmp_path):
    results, _ = generators
    monkeypatch.setenv("HYDRAMIX_DATA", str(cifar10_root))
    configs = sweep_configs(dataset="cifar10", samples_per_class=[2], seeds=[0], methods=["baseline", "hydramix"], **TINY)
    table = run_sweep(configs, results, progress=False)
    assert sorted(table["method"]) == ["baseline", "hydramix"]
    record = json.loads((results / "runs" / "cifar10_n2_seed0_hydramix_p0.5.json").read_text())
    for key, kind in [("accuracy", float), ("per_class_accuracy", list), ("config", dict), ("versions", dict),
                      ("train_time_s", float), ("device", str), ("generator", str), ("history", list)]:
        assert isinstance(record[key], kind), key
    assert record["config"]["lr"] == 4.6e-3 and record["config"]["batch_size"] == 10 and record["p_gen"] == 0.5

    def fail(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    with monkeypatch.context() as patch:
        patch.setattr(study, "_make_run", fail)
        assert len(run_sweep(configs, results, progress=False)) == 2

    missing = sweep_configs(dataset="cifar10", samples_per_class=[2], seeds=[1], methods=["hydramix"], **TINY)
    with pytest.raises(CheckpointError, match="No generator checkpoint at .*cifar10_n2_seed1"):
        run_sweep(missing, tmp_path, progress=False)


def test_bank_serves_the_right_class_and_refreshes_a_fraction():
    images, labels = _two_class_pool()
    augment = HydraMixAugment(None, images, labels, None, p_gen=1.0, n_mix=2, mask_kind="grid", bank_size=4, bank_refresh=0.5)
    calls = []
    original = augment.generate
    augment.generate = lambda labels, generator=None: calls.append(len(labels)) or original(labels, generator)
    batch_labels = torch.tensor([0, 1, 1, 0, 1, 0])
    out, _ = augment(torch.full((6, 3, 32, 32), 0.5), batch_labels, generator=torch.Generator().manual_seed(0))
    assert (out[batch_labels == 0] == 0).all() and (out[batch_labels == 1] == 1).all()
    assert calls == [4, 4, 3]  # fill both classes once, then regenerate half of the 6 entries used
    with pytest.raises(ValueError, match="bank_refresh"):
        HydraMixAugment(None, images, labels, None, mask_kind="grid", bank_size=4, bank_refresh=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["hydramix", "autoaugment"])
def test_checkpointed_run_resumes_bit_identical(method, cifar10_train, cifar10_test, split, generators, tmp_path,
                                                monkeypatch):
    """A run killed mid-epoch resumes from its last epoch-boundary checkpoint to the same result."""
    import hydramix_core.engine as engine

    _, runs = generators
    # 2 images/class repeated to 4 per class per epoch: 40 samples = 4 steps of 10 per epoch
    config = ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method=method, samples_per_class_per_epoch=4,
                              **{**TINY, "steps": 14})
    train = dict(generator_run=runs["hydramix"], progress=False, checkpoint_every=1)
    full = train_classifier(config, cifar10_train, cifar10_test, split, **train, checkpoint=tmp_path / "full.pt")

    original, calls = engine.random_crop_flip, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 10:  # step 10: mid-epoch 3, after the checkpoint at step 8
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "random_crop_flip", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(config, cifar10_train, cifar10_test, split, **train, checkpoint=tmp_path / "run.pt")
    assert torch.load(tmp_path / "run.pt", weights_only=True)["step"] == 8
    monkeypatch.setattr(engine, "random_crop_flip", original)
    resumed = train_classifier(config, cifar10_train, cifar10_test, split, **train, checkpoint=tmp_path / "run.pt")
    assert resumed["history"] == full["history"] and resumed["accuracy"] == full["accuracy"]
    assert resumed["per_class_accuracy"] == full["per_class_accuracy"]


def test_the_dct_basis_is_the_2d_dct_ii_with_unit_l1_norms():
    import math

    from hydramix_core.classifier import dct_basis

    basis = dct_basis(3)
    assert basis.shape == (9, 3, 3) and torch.allclose(basis.abs().sum((1, 2)), torch.ones(9))
    assert torch.allclose(basis[0], torch.full((3, 3), 1 / 9))  # the DC filter: a mean
    u, v, x, y = 1, 2, 0, 1  # frequency (1, 2) at index 5, position (0, 1)
    raw = math.cos(math.pi * (x + 0.5) * u / 3) * math.cos(math.pi * (y + 0.5) * v / 3)
    assert math.isclose(basis[u * 3 + v, x, y] * _raw_l1(u, v), raw, rel_tol=1e-5)
    gram = basis.flatten(1) @ basis.flatten(1).T  # orthogonal, but not normalised to unit energy
    assert torch.allclose(gram - torch.diag(gram.diag()), torch.zeros(9, 9), atol=1e-6)


def _raw_l1(u, v):
    import math

    return sum(abs(math.cos(math.pi * (x + 0.5) * u / 3) * math.cos(math.pi * (y + 0.5) * v / 3))
               for x in range(3) for y in range(3))


def test_a_harmonic_block_is_a_convolution_with_the_combined_filters():
    import torch.nn.functional as F

    from hydramix_core.classifier import HarmonicConv2d, dct_basis

    torch.manual_seed(0)
    block, x = HarmonicConv2d(4, 6, stride=2), torch.randn(2, 4, 9, 9)
    kernel = (block.weight[..., None, None] * dct_basis(3)).sum(2)  # sum_f w[o, i, f] DCT_f
    assert torch.allclose(block(x), F.conv2d(x, kernel, stride=2, padding=1), atol=1e-5)
    first = HarmonicConv2d(3, 5, batch_norm=True).eval()  # depthwise DCT responses, normalised, combined
    responses = F.conv2d(x[:, :3], dct_basis(3)[:, None].repeat(3, 1, 1, 1), padding=1, groups=3)
    combined = torch.einsum("oc,bchw->bohw", first.weight.flatten(1), responses / (1 + 1e-5) ** 0.5)
    assert torch.allclose(first(x[:, :3]), combined, atol=1e-5)


def test_harmonic_wide_resnets_replace_every_3x3_convolution():
    from hydramix_core.classifier import HarmonicConv2d, build_classifier

    for width in (2, 8):
        plain, harmonic = build_classifier(f"wrn16_{width}", 10), build_classifier(f"wrn16_{width}_harmonic", 10)
        convs = [m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)]
        assert sum(isinstance(m, HarmonicConv2d) for m in harmonic.modules()) == sum(c.kernel_size == (3, 3) for c in convs)
        assert sum(isinstance(m, torch.nn.Conv2d) for m in harmonic.modules()) == sum(c.kernel_size == (1, 1) for c in convs)
        first = next(m for m in harmonic.modules() if isinstance(m, HarmonicConv2d))
        assert first.norm is not None and sum(m.norm is not None for m in harmonic.modules()
                                              if isinstance(m, HarmonicConv2d)) == 1
        assert harmonic(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_the_harmonic_method_trains_the_harmonic_variant_of_the_runs_model(cifar10_train, cifar10_test, split):
    from hydramix_core.classifier import HarmonicConv2d
    from hydramix_core.engine import Run

    run = Run(ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method="harmonic", **TINY), cifar10_train,
              cifar10_test, split)
    assert any(isinstance(m, HarmonicConv2d) for m in run.model.modules())
    assert run.model.features[1].conv1.weight.shape[:2] == (32, 16)  # WRN-16-2's widths
    with pytest.raises(ValueError, match="needs a WideResNet"):
        Run(ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method="harmonic",
                             **{**TINY, "model": "resnet50"}), cifar10_train, cifar10_test, split)


def test_eval_steps_are_the_fractions_of_the_schedule():
    from hydramix_core.engine import eval_steps

    assert eval_steps((0.125, 0.25, 0.5), 8000) == [1000, 2000, 4000]
    assert eval_steps((0.125, 0.25, 0.5, 1.0), 8000) == [1000, 2000, 4000]  # the end is evaluated by the record
    assert eval_steps((0.1, 0.2), 4) == [1]  # rounded to steps, at least 1, no duplicates
    with pytest.raises(ValueError, match="eval_at"):
        ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, eval_at=(0.0, 0.5))


@pytest.mark.parametrize("method", ["hydramix", "mixup"])
def test_the_learning_curve_does_not_change_the_training(method, cifar10_train, cifar10_test, split, generators):
    """Evaluating during training reads no random number and changes no weight or statistic: the
    run with a curve ends with the same weights, history and accuracy as the run without one."""
    _, runs = generators
    records, weights = [], []
    for eval_at in [(), (0.25, 0.5, 0.75)]:
        config = ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method=method, eval_at=eval_at,
                                  **{**TINY, "steps": 8})
        run = Run(config, cifar10_train, cifar10_test, split, generator_run=runs["hydramix"])
        records.append(train_pack([run], progress=False)[0])
        weights.append({k: v.clone() for k, v in run.model.state_dict().items()})
    without, with_curve = records
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert with_curve["history"] == without["history"] and with_curve["accuracy"] == without["accuracy"]
    assert [p["step"] for p in with_curve["curve"]] == [2, 4, 6, 8] and [p["step"] for p in without["curve"]] == [8]
    assert with_curve["curve"][-1]["accuracy"] == with_curve["accuracy"]
    assert all(0 <= p["accuracy"] <= 1 for p in with_curve["curve"])
    assert with_curve["eval_time_s"] > 0 and with_curve["train_time_s"] > 0


def test_a_resumed_run_keeps_its_learning_curve(cifar10_train, cifar10_test, split, tmp_path, monkeypatch):
    import hydramix_core.engine as engine

    config = ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method="baseline",
                              samples_per_class_per_epoch=4, eval_at=(0.25, 0.5, 0.75), **{**TINY, "steps": 12})
    full = train_classifier(config, cifar10_train, cifar10_test, split, progress=False)
    original, calls = engine.random_crop_flip, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 10:  # mid-epoch 3, after the checkpoint at step 8 and the curve's points at 3 and 6
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "random_crop_flip", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(config, cifar10_train, cifar10_test, split, progress=False, checkpoint=tmp_path / "run.pt",
                         checkpoint_every=1)
    monkeypatch.setattr(engine, "random_crop_flip", original)
    resumed = train_classifier(config, cifar10_train, cifar10_test, split, progress=False,
                               checkpoint=tmp_path / "run.pt", checkpoint_every=1)
    assert resumed["curve"] == full["curve"] and [p["step"] for p in full["curve"]] == [3, 6, 9, 12]


@pytest.mark.slow
def test_cpu_workers_train_each_run_once_with_its_own_numbers(cifar10_root, cifar10_train, cifar10_test, tmp_path,
                                                              monkeypatch):
    """Two one-thread worker processes share a sweep through the runs' locks; each record equals the
    one a single one-thread process writes."""
    monkeypatch.setenv("HYDRAMIX_DATA", str(cifar10_root))  # the workers load the data themselves
    configs = sweep_configs(dataset="cifar10", samples_per_class=[2], seeds=[0, 1], methods=["baseline", "cutout"],
                            **{**TINY, "steps": 3})
    shared = run_sweep(configs, tmp_path / "workers", progress=False, cpu_workers=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = run_sweep(configs, tmp_path / "alone", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert len(shared) == 4 and shared["accuracy"].tolist() == alone["accuracy"].tolist()
    for config in configs:
        a, b = (json.loads(study.run_path(tmp_path / f, config).read_text()) for f in ("workers", "alone"))
        assert a["history"] == b["history"] and a["engine"]["threads"] == 1


def test_a_result_computed_under_other_settings_is_refused_and_the_advice_works(cifar10_root, monkeypatch, tmp_path):
    """Rerunning with a changed setting never shows the old runs as the new ones: the error names
    the setting; deleting the stale runs, as it advises, trains them under the new settings."""
    monkeypatch.setenv("HYDRAMIX_DATA", str(cifar10_root))
    configs = sweep_configs(dataset="cifar10", samples_per_class=[2], seeds=[0], methods=["baseline"], **TINY)
    run_sweep(configs, tmp_path, progress=False)
    changed = sweep_configs(dataset="cifar10", samples_per_class=[2], seeds=[0], methods=["baseline"],
                            **{**TINY, "steps": 3})
    with pytest.raises(study.StaleResultError, match=r"steps = 2, but these runs ask for steps = 3.*rm .*runs/\*\.json"):
        run_sweep(changed, tmp_path, progress=False)
    for path in (tmp_path / "runs").glob("*.json"):  # the advice, followed
        path.unlink()
    assert run_sweep(changed, tmp_path, progress=False)["steps"].tolist() == [3]
    assert len(run_sweep(changed, tmp_path, progress=False)) == 1  # and now it is the result of these settings


@pytest.mark.parametrize("edit", ["impossible accuracy", "above every class", "other seed", "not json", "no config"])
def test_an_edited_record_is_refused_with_its_file_named(edit, cifar10_root, monkeypatch, tmp_path):
    monkeypatch.setenv("HYDRAMIX_DATA", str(cifar10_root))
    configs = sweep_configs(dataset="cifar10", samples_per_class=[2], seeds=[0], methods=["baseline"], **TINY)
    run_sweep(configs, tmp_path, progress=False)
    path = study.run_path(tmp_path, configs[0])
    record = json.loads(path.read_text())
    if edit == "impossible accuracy":  # 0.99 of 20 test images is 19.8 images
        record["accuracy"] = 0.99
    elif edit == "above every class":
        record["accuracy"], record["per_class_accuracy"] = 0.5, [0.0] * 10
    elif edit == "other seed":
        record["seed"] = 7
    elif edit == "no config":
        del record["config"]
    path.write_text("{" if edit == "not json" else json.dumps(record))
    with pytest.raises(study.StaleResultError, match=str(path)):
        run_sweep(configs, tmp_path, progress=False)


@pytest.mark.slow
def test_workers_end_with_the_process_that_started_them(tmp_path):
    """A notebook kernel or job killed outright (SIGKILL: no cleanup runs) leaves no worker
    training on its own."""
    import os
    import signal
    import subprocess
    import sys

    from tests.processes import Started, wait_until

    script = ("import pathlib, time; from hydramix_core.study import in_workers; "
              "in_workers(time.sleep, (600,), [pathlib.Path('never')], workers=2, what='sleeps', progress=False)")
    parent = Started([sys.executable, "-c", script], cwd=tmp_path)

    def workers():
        listed = subprocess.run(["pgrep", "-P", str(parent.process.pid), "-f", "spawn_main"], capture_output=True,
                                text=True).stdout.split()
        return [int(pid) for pid in listed]

    def alive(pid):
        try:
            with open(f"/proc/{pid}/status") as status:
                return "zombie" not in status.read()
        except FileNotFoundError:
            return False

    wait_until(lambda: len(workers()) >= 2, what="two workers", process=parent)
    started = workers()
    parent.process.send_signal(signal.SIGKILL)
    parent.wait()
    wait_until(lambda: not any(alive(pid) for pid in started), what="the workers' end")
    assert os.path.exists(f"/proc/{started[0]}") is False or not alive(started[0])


def test_a_run_also_checkpoints_when_its_time_is_due(cifar10_train, cifar10_test, split, tmp_path):
    """checkpoint_seconds saves at the next epoch boundary once that much time has passed, even
    between checkpoint_every epochs (short epochs on a CPU lose little when stopped)."""
    config = ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, samples_per_class_per_epoch=4,
                              **{**TINY, "steps": 12})
    saved = []
    run = Run(config, cifar10_train, cifar10_test, split, checkpoint=tmp_path / "run.pt", checkpoint_every=100,
              checkpoint_seconds=0.0)
    run._save = lambda: saved.append(run.step)
    train_pack([run], progress=False)
    assert saved == [4, 8]  # every epoch boundary before the end
    never = Run(config, cifar10_train, cifar10_test, split, checkpoint=tmp_path / "other.pt", checkpoint_every=100)
    never._save = lambda: saved.append(-1)
    train_pack([never], progress=False)
    assert -1 not in saved
