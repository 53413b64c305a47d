"""The training engine: a run's result does not depend on its pack; p_gen per sample; the schedule.

CUDA tests (marked `cuda`: graphed runs on a GPU) skip without one; benchmarks/sweep_throughput.py reports the speed.
"""

import math

import pytest
import torch

from hydramix_core import engine
from hydramix_core.engine import ClassifierConfig, Run, train_pack

TINY = dict(model="wrn16_2", test_subset=2, samples_per_class_per_epoch=4)  # 2 images/class: 4 steps an epoch
PACK = [("baseline", {}), ("hydramix", {}), ("autoaugment", {}), ("mixup", {}), ("random_erasing", {}),
        ("chimeramix_grid", {"per_batch": True, "n_mix": (2,)}), ("hydramix_direct", {}), ("cutmix", {}),
        ("zetamixup", {}), ("mixup_a0.2", {}), ("randaugment", {}), ("harmonic", {})]


def _runs(cifar10_train, cifar10_test, split, generators, tmp_path, device="cpu", steps=9, pack=PACK, **kwargs):
    _, generator_runs = generators
    runs = []
    for method, extra in pack:
        config = ClassifierConfig(dataset="cifar10", samples_per_class=2, seed=0, method=method, steps=steps,
                                  device=device, **{**TINY, **extra})
        kind = "chimeramix_grid" if method.startswith("chimeramix_grid") else "hydramix"
        generator_run = generator_runs[kind]
        generator_run.generator.to(device)
        runs.append(Run(config, cifar10_train, cifar10_test, split, generator_run=generator_run,
                        segments_cache=tmp_path / "segments.pt", lookahead_steps=3, **kwargs))
    return runs


def _weights(run):
    return {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}


@pytest.mark.slow
def test_a_run_in_an_interleaved_pack_equals_the_run_alone(cifar10_train, cifar10_test, split, generators, tmp_path):
    """Steps of runs of every kind of method issued in turn give each run bit-identical
    weights and history to training it alone: no run reads another's random numbers."""
    pack = _runs(cifar10_train, cifar10_test, split, generators, tmp_path)
    records = train_pack(pack, interleave=True, progress=False)
    for index, (method, _) in enumerate(PACK):
        alone = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, pack=[PACK[index]])
        record = train_pack(alone, progress=False)[0]
        assert record["history"] == records[index]["history"], method
        weights, reference = _weights(pack[index]), _weights(alone[0])
        assert all(torch.equal(weights[k], reference[k]) for k in reference), method
    assert records[0]["engine"] == {"graphed": False, "pack_size": len(PACK), "bf16": False, "channels_last": False,
                                    "threads": torch.get_num_threads()}
    assert len({r["history"][-1]["loss"] for r in records}) == len(PACK)  # the methods did differ


@pytest.mark.slow
@pytest.mark.parametrize("per_batch", [False, True])
def test_p_gen_replaces_each_sample_independently(per_batch, cifar10_train, cifar10_test, split, generators, tmp_path,
                                                  monkeypatch):
    """0 replaces none, 1 all, 0.5 about half: per sample (mixed batches), or whole batches
    with ChimeraMix's rule; exactly the samples replaced are rendered (ahead, in chunks of 3
    steps and 1, the rest of a 4-step epoch), and each step trains on its own slot."""
    for p_gen in (0.0, 0.5, 1.0):
        run = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, steps=100,
                    pack=[("hydramix_direct", {"p_gen": p_gen, "per_batch": per_batch})])[0]
        rendered, seen = [], []
        run.augment.render = lambda tuples, masks: rendered.append(len(tuples)) or torch.zeros(len(tuples), 3, 32, 32)
        forward = run.model.forward
        # the training steps' inputs (not the learning curve's evaluations)
        run.model.forward = lambda images: (run.model.training and seen.append(images.detach().clone())) or forward(images)
        for _ in range(100):
            run.advance()
        counts = torch.tensor([int((images.flatten(1) == -1).all(1).sum()) for images in seen])  # black = generated
        assert len(counts) == 100 and counts.sum() == sum(rendered), (p_gen, per_batch)
        assert abs(counts.sum().item() / 1000 - p_gen) < 0.08, (p_gen, per_batch)
        assert 0 not in rendered, (p_gen, per_batch)  # an N without samples in a chunk renders nothing
        mixed_batches = ((counts > 0) & (counts < 10)).sum().item()
        assert (mixed_batches == 0) if per_batch or p_gen in (0.0, 1.0) else (mixed_batches > 80)
        batch = engine.RENDER_BATCH["cpu"]  # calls: per N and chunk (2 chunks an epoch), split in batches
        assert run.lookahead == 3 and max(rendered, default=0) <= batch and len(rendered) <= 3 * 50 + sum(rendered) // batch


def test_the_learning_rate_follows_the_cosine_schedule(cifar10_train, cifar10_test, split, generators, tmp_path):
    run = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, pack=[("baseline", {})], steps=10)[0]
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=run.config.lr), T_max=10)
    for step in range(10):
        run.advance()
        expected = run.config.lr * 0.5 * (1 + math.cos(math.pi * step / 10))
        assert run.lr.item() == pytest.approx(expected, rel=1e-6)
        assert run.lr.item() == pytest.approx(reference.get_last_lr()[0], rel=1e-5, abs=1e-12)
        reference.optimizer.step()
        reference.step()


def test_an_epoch_that_does_not_fill_its_last_batch_wraps_around(cifar10_train, cifar10_test, split, generators, tmp_path):
    run = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, pack=[("baseline", {"batch_size": 7})])[0]
    run._start_epoch()
    order = run.order.tolist()
    assert run.steps_per_epoch == 6 and len(order) == 42  # 40 samples in batches of 7
    assert sorted(order[:40]) == sorted(list(range(20)) * 2) and order[40:] == order[:2]


def _same_runs(first, second, method):
    assert [e["loss"] for e in first.history] == [e["loss"] for e in second.history], method
    weights, reference = _weights(first), _weights(second)
    assert all(torch.equal(weights[k], reference[k]) for k in reference), method


@pytest.mark.slow
def test_graphed_runs_replay_the_eager_runs_bit_for_bit(cifar10_train, cifar10_test, split, generators, tmp_path,
                                                       monkeypatch):
    """``graphed=True`` on a CPU captures every method's step with graphs.capture and replays its
    stand-in graph, whose recording refuses a host synchronisation or a draw from any generator
    but the run's own. Histories and weights equal the eager runs'. Chunks of 3 steps in 4-step
    epochs: the capture's warm-up reaches past a chunk's and an epoch's last slot."""
    graphed = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, graphed=True)
    eager = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, graphed=False)
    train_pack(graphed, progress=False)
    train_pack(eager, progress=False)
    for (method, _), first, second in zip(PACK, graphed, eager):
        assert first.graph is not None and second.graph is None, method
        _same_runs(first, second, method)


@pytest.mark.slow
def test_a_run_captured_mid_run_or_after_a_resume_continues_bit_for_bit(cifar10_train, cifar10_test, split, generators,
                                                                       tmp_path, monkeypatch):
    pack = [("baseline", {}), ("hydramix", {})]
    reference = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, steps=12, pack=pack)
    train_pack(reference, progress=False)
    late = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, steps=12, pack=pack)
    for run in late:  # captured at step 6: slot 2 of a 3-step chunk, batch 2 of a 4-step epoch
        for _ in range(6):
            run.advance()
        run.graphed = True
    train_pack(late, progress=False)
    for (method, _), first, second in zip(pack, late, reference):
        _same_runs(first, second, method)
    for index, (method, extra) in enumerate(pack):
        checkpoint = tmp_path / f"{method}.pt"
        interrupted = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, steps=12, pack=[(method, extra)],
                            checkpoint=checkpoint, checkpoint_every=1)[0]
        for _ in range(9):  # checkpoints after epochs 1 and 2 (step 8), then stopped
            interrupted.advance()
        resumed = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, steps=12, pack=[(method, extra)],
                        checkpoint=checkpoint, checkpoint_every=1, graphed=True)[0]
        assert resumed.step == 8
        train_pack([resumed], progress=False)
        _same_runs(resumed, reference[index], method)


@pytest.mark.cuda
def test_graphed_runs_in_a_pack_equal_the_same_runs_graphed_alone(cifar10_train, cifar10_test, split, generators,
                                                                   tmp_path):
    pack = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, device="cuda", steps=12)
    assert all(run.graphed for run in pack)
    records = train_pack(pack, progress=False)
    for index, (method, _) in enumerate(PACK):
        alone = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, device="cuda", steps=12,
                      pack=[PACK[index]])
        record = train_pack(alone, progress=False)[0]
        weights, reference = _weights(pack[index]), _weights(alone[0])
        worst = max(((weights[k].float() - reference[k].float()).abs().max().item() for k in reference), default=0)
        print(f"{method}: pack vs alone, largest weight difference {worst:.3g}")
        assert worst <= 1e-3, method
        assert [round(e["loss"], 3) for e in record["history"]] == [round(e["loss"], 3) for e in records[index]["history"]]


@pytest.mark.cuda
def test_graphed_and_eager_cuda_runs_see_the_same_random_numbers(cifar10_train, cifar10_test, split, generators,
                                                                  tmp_path):
    """A graph replays the eager step's kernels and random stream: the losses agree to 1e-4 (a frozen
    random stream or a stale slot of the samples rendered ahead moves them by far more)."""
    for method, extra in PACK:
        graphed = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, device="cuda", pack=[(method, extra)])
        eager = _runs(cifar10_train, cifar10_test, split, generators, tmp_path, device="cuda", pack=[(method, extra)],
                      graphed=False)
        first, second = train_pack(graphed, progress=False)[0], train_pack(eager, progress=False)[0]
        losses = [(a["loss"], b["loss"]) for a, b in zip(first["history"], second["history"])]
        print(f"{method}: graphed vs eager losses {losses}")
        assert all(abs(a - b) <= 1e-4 * abs(b) for a, b in losses), method


def test_the_drop_in_augmentation_comes_from_a_generator_folder_in_one_call(cifar10_train, split, generators):
    """README's drop-in: ``HydraMixAugment.from_generator(folder, images, labels, p_gen=...)``."""
    from hydramix_core import HydraMixAugment

    _, runs = generators
    run = runs["hydramix"]
    few = cifar10_train.subset(split.indices)
    augment = HydraMixAugment.from_generator(run.path.parent, few.images, few.labels, p_gen=1.0)
    assert augment.n_mix == run.config.n_mix and augment.crop_pad == run.config.crop_pad
    assert torch.equal(augment.pool_segments, run.segments)  # segmented here as the folder's cache was
    images = few.images[:6].float() / 255
    out, labels = augment(images, few.labels[:6], generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and torch.equal(labels, few.labels[:6]) and not torch.equal(out, images)
    cached = HydraMixAugment.from_generator(run.path.parent, few.images, few.labels, segments="folder")
    assert torch.equal(cached.pool_segments, run.segments) and cached.p_gen == 0.5
    with pytest.raises(ValueError, match="folder"):
        HydraMixAugment.from_generator(run.path.parent, few.images[:3], few.labels[:3], segments="folder")
