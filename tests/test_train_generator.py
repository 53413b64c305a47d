import pytest
import torch

from hydramix_core.splits import create_split
from hydramix_core.generator_files import CheckpointError, GeneratorConfig, load_generator
from hydramix_core.train_generator import GeneratorTrainer, train_generator, train_generators



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


@pytest.mark.slow
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

    # a finished run is loaded, not retrained; its checkpoint keeps the generator only (no
    # discriminator, optimiser or random states: nothing resumes a finished run)
    state = torch.load(tmp_path / "full/generator.pt", weights_only=True)
    assert state["finished"] and "generator" in state and not {"discriminator", "opt_g", "opt_d", "rng"} & set(state)
    loaded = train_generator(_config(), cifar10_train, split, tmp_path / "full", progress=False)
    assert all(torch.equal(full_weights[k], v) for k, v in _weights(loaded).items())
    assert all(torch.equal(full_weights[k], v) for k, v in _weights(load_generator(tmp_path / "full")).items())


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


PACK = [dict(seed=0), dict(seed=0, n_mix=(2, 3, 4), batch_size=5), dict(seed=0, mask_kind="chimeramix_seg", n_mix=(2,)),
        dict(seed=1, mask_kind="grid", n_mix=(3,))]


def _pack_jobs(cifar10_train, folder, device="cpu", steps=7):
    splits = {seed: create_split(cifar10_train, samples_per_class=1, seed=seed) for seed in (0, 1)}
    return [(_config(steps=steps, device=device, **extra), cifar10_train, splits[extra["seed"]], folder / f"g{index}")
            for index, extra in enumerate(PACK)]


@pytest.mark.slow
def test_a_generator_in_an_interleaved_pack_equals_the_generator_alone(cifar10_train, tmp_path):
    """Four generators (seeds, N, mask kinds, batch sizes) stepped in turn give each the same
    weights and history as training it alone: no run reads another's random numbers."""
    jobs = _pack_jobs(cifar10_train, tmp_path / "pack")
    pack = train_generators(jobs, interleave=True, progress=False)
    for index, (config, train_set, split, _) in enumerate(jobs):
        alone = train_generator(config, train_set, split, tmp_path / f"alone{index}", progress=False)
        assert alone.history == pack[index].history, PACK[index]
        reference = _weights(alone)
        assert all(torch.equal(reference[k], v) for k, v in _weights(pack[index]).items()), PACK[index]
    assert len({run.history[-1]["rec"] for run in pack}) == len(PACK)  # the runs did differ


@pytest.mark.slow
def test_the_learning_rate_follows_multistep_lr(cifar10_train, split, tmp_path):
    """The step computes the rate on the device (capturable); it equals torch's MultiStepLR."""
    config = _config(steps=20, milestones=(0.3, 0.6, 0.8), log_every=1, checkpoint_every=100)
    trainer = GeneratorTrainer(config, cifar10_train, split, tmp_path)
    reference = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=config.lr)
    schedule = torch.optim.lr_scheduler.MultiStepLR(reference, [6, 12, 16], gamma=config.gamma)
    assert trainer.milestones == [6, 12, 16]
    for step in range(20):
        trainer.advance()
        expected = reference.param_groups[0]["lr"]
        assert trainer.lr.item() == pytest.approx(expected, rel=1e-6), step  # the rate this step used
        assert trainer.lr_at(step) == pytest.approx(expected, rel=1e-12)
        reference.step()
        schedule.step()
    assert trainer.history[-1]["lr"] == pytest.approx(config.lr * config.gamma ** 3)


def _same_generators(first, second, what):
    assert first.history == second.history, what
    reference = _weights(second)
    assert all(torch.equal(reference[k], v) for k, v in _weights(first).items()), what


@pytest.mark.slow
def test_graphed_generators_replay_the_eager_steps_bit_for_bit(cifar10_train, tmp_path):
    """``graphed=True`` on a CPU captures each N's step with graphs.capture and replays its stand-in
    graph (whose recording refuses host synchronisations and foreign generators), for every
    mask kind: the same weights and history as the eager steps."""
    for index, (config, train_set, split, folder) in enumerate(_pack_jobs(cifar10_train, tmp_path)):
        graphed = train_generator(config, train_set, split, folder / "graphed", progress=False, graphed=True)
        eager = train_generator(config, train_set, split, folder / "eager", progress=False, graphed=False)
        _same_generators(graphed, eager, PACK[index])


@pytest.mark.slow
def test_a_graphed_generator_resumed_near_an_epoch_end_equals_an_uninterrupted_one(cifar10_train, split, tmp_path,
                                                                                  interrupt_generator_at):
    """Captured on resuming at step 4 of a 5-step epoch: the capture's warm-up must not run
    past the epoch's last batch (it used to index row 5 of 5)."""
    config = _config(steps=8, samples_per_class_per_epoch=4, checkpoint_every=4, log_every=2, n_mix=(2, 3))
    full = train_generator(config, cifar10_train, split, tmp_path / "full", progress=False)
    disarm = interrupt_generator_at(5)
    with pytest.raises(KeyboardInterrupt):
        train_generator(config, cifar10_train, split, tmp_path / "resumed", progress=False)
    disarm()
    trainer = GeneratorTrainer(config, cifar10_train, split, tmp_path / "resumed", graphed=True)
    assert (trainer.step, trainer.steps_per_epoch) == (4, 5)
    resumed = train_generator(config, cifar10_train, split, tmp_path / "resumed", progress=False, graphed=True)
    _same_generators(resumed, full, "resumed at step 4 of 5")


@pytest.mark.cuda
def test_graphed_generators_in_a_pack_equal_the_same_generators_graphed_alone(cifar10_train, tmp_path):
    jobs = _pack_jobs(cifar10_train, tmp_path / "pack", device="cuda", steps=12)
    pack = train_generators(jobs, progress=False)
    for index, (config, train_set, split, _) in enumerate(jobs):
        alone = train_generator(config, train_set, split, tmp_path / f"alone{index}", progress=False)
        worst = max((alone_w - pack_w).abs().max().item()
                    for alone_w, pack_w in zip(_weights(alone).values(), _weights(pack[index]).values()))
        print(f"generator {PACK[index]}: pack vs alone, largest weight difference {worst:.3g}")
        assert worst <= 1e-3, PACK[index]


@pytest.mark.cuda
def test_graphed_and_eager_cuda_generators_agree(cifar10_train, tmp_path):
    """A graph replays the eager step's kernels and random stream: the losses agree to 1e-3
    (ReflectionPad2d's backward adds with atomics on CUDA, so bits may differ; a frozen random
    stream moves them by far more)."""
    for index, (config, train_set, split, folder) in enumerate(_pack_jobs(cifar10_train, tmp_path, device="cuda", steps=6)):
        graphed = train_generator(config, train_set, split, folder / "graphed", progress=False)
        eager = train_generator(config, train_set, split, folder / "eager", progress=False, graphed=False)
        losses = [(a[k], b[k]) for a, b in zip(graphed.history, eager.history) for k in ("rec", "lap", "adv", "disc")]
        print(f"generator {PACK[index]}: graphed vs eager losses {losses}")
        assert all(abs(a - b) <= 1e-3 * abs(b) + 1e-6 for a, b in losses), PACK[index]


@pytest.mark.slow
def test_cpu_workers_train_each_generator_once(cifar10_root, cifar10_train, monkeypatch, tmp_path):
    """Two worker processes share a profile's generators through the folders' locks: each is trained
    once, to its end, and loads as a finished generator of its split."""
    from hydramix_core.splits import get_split
    from hydramix_core.study import generator_folder, train_generators_in_workers

    monkeypatch.setenv("HYDRAMIX_DATA", str(cifar10_root))  # the workers load the data themselves
    configs = [_config(seed=seed, steps=3, device="cpu") for seed in (0, 1, 2)]
    train_generators_in_workers(configs, tmp_path, workers=2, progress=False)
    for config in configs:
        split = get_split(cifar10_train, 1, config.seed, tmp_path / "splits")
        run = load_generator(generator_folder(tmp_path, "cifar10", 1, config.seed), split=split, device="cpu")
        assert run.step == 3 and run.config.seed == config.seed
