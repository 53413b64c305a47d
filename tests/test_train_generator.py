import pytest
import torch

from hydramix_core.splits import create_split
from hydramix_core.train_generator import CheckpointError, GeneratorConfig, load_generator, train_generator


def _config(**overrides):
    values = dict(dataset="cifar10", samples_per_class=1, seed=0, ngf=8, ndf=8, batch_size=8, steps=6,
                  checkpoint_every=3, log_every=3)
    values.update(overrides)
    return GeneratorConfig(**values)


@pytest.fixture(scope="module")
def split(cifar10_train):
    return create_split(cifar10_train, samples_per_class=1, seed=0)  # 10 images, one per class


def _weights(run):
    return {k: v.clone() for k, v in run.generator.state_dict().items()}


def test_training_lowers_reconstruction_loss(cifar10_train, split, tmp_path):
    config = _config(steps=200, n_mix=(2,), log_every=20, checkpoint_every=1000, lr=1e-3, milestones=())
    run = train_generator(config, cifar10_train, split, tmp_path, progress=False)
    first, last = run.history[0]["rec"], run.history[-1]["rec"]
    assert last < 0.25 * first, (first, last)
    assert run.history[-1]["step"] == 200 and (tmp_path / "generator.pt").exists()
    few = cifar10_train.subset(split.indices)
    out = run.generator.sample(few.images, few.labels, run.segments, n_mix=2)
    assert out.shape == (10, 3, 32, 32)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(cifar10_train, split, tmp_path, interrupt_generator_at):
    full = train_generator(_config(), cifar10_train, split, tmp_path / "full", progress=False)
    again = train_generator(_config(), cifar10_train, split, tmp_path / "again", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(_weights(full).values(), _weights(again).values()))  # deterministic

    disarm = interrupt_generator_at(4)
    with pytest.raises(KeyboardInterrupt):
        train_generator(_config(), cifar10_train, split, tmp_path / "resumed", progress=False)
    assert torch.load(tmp_path / "resumed/generator.pt", weights_only=True)["step"] == 3
    disarm()
    resumed = train_generator(_config(), cifar10_train, split, tmp_path / "resumed", progress=False)
    assert resumed.step == 6
    full_weights = _weights(full)
    assert all(torch.equal(full_weights[k], v) for k, v in _weights(resumed).items())
    assert [h["step"] for h in resumed.history] == [h["step"] for h in full.history]

    # a finished run is loaded, not retrained
    loaded = train_generator(_config(), cifar10_train, split, tmp_path / "full", progress=False)
    assert all(torch.equal(full_weights[k], v) for k, v in _weights(loaded).items())


def test_resume_with_another_config_refuses(cifar10_train, split, tmp_path):
    train_generator(_config(steps=3), cifar10_train, split, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="another config.*lr"):
        train_generator(_config(steps=3, lr=1e-3), cifar10_train, split, tmp_path, progress=False)
    train_generator(_config(steps=3, checkpoint_every=7), cifar10_train, split, tmp_path, progress=False)  # runtime field


def test_corrupt_checkpoint_and_wrong_split(cifar10_train, split, tmp_path):
    train_generator(_config(steps=2), cifar10_train, split, tmp_path / "ok", progress=False)
    other = create_split(cifar10_train, samples_per_class=1, seed=1)
    with pytest.raises(CheckpointError, match="trained on"):
        load_generator(tmp_path / "ok", split=other)
    assert load_generator(tmp_path / "ok", split=split).step == 2
    (tmp_path / "bad").mkdir()
    blob = (tmp_path / "ok/generator.pt").read_bytes()
    (tmp_path / "bad/generator.pt").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train_generator(_config(steps=2), cifar10_train, split, tmp_path / "bad", progress=False)
    with pytest.raises(CheckpointError, match="No generator checkpoint"):
        load_generator(tmp_path / "nothing")


def test_config_errors(cifar10_train, split, tmp_path):
    with pytest.raises(ValueError, match="n_mix"):
        _config(n_mix=(0,))
    with pytest.raises(ValueError, match="exactly 2"):
        _config(mask_kind="chimeramix_seg", n_mix=(2, 3))
    with pytest.raises(ValueError, match="split is"):
        train_generator(_config(seed=3), cifar10_train, split, tmp_path, progress=False)


@pytest.mark.parametrize("mask_kind,n_mix", [("chimeramix_seg", (2,)), ("grid", (3,))])
def test_other_mask_kinds_and_bf16_autocast_train(cifar10_train, split, tmp_path, mask_kind, n_mix):
    run = train_generator(_config(steps=2, mask_kind=mask_kind, n_mix=n_mix, amp="bf16", channels_last=True),
                          cifar10_train, split, tmp_path, progress=False)
    assert run.step == 2 and all(torch.isfinite(torch.tensor(h["rec"])) for h in run.history)
