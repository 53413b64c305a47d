"""Train the HydraMix generator on one few-shot split (its configuration and files:
generator_files.py).

    from hydramix_core import GeneratorConfig
    from hydramix_core.train_generator import train_generator
    config = GeneratorConfig(dataset="cifar10", samples_per_class=5, seed=0, ngf=16, steps=300)
    result = train_generator(config, train_set, split, out_dir="results/smoke/generators/cifar10_n5_seed0")
    images = result.generator.sample(few.images, few.labels, result.segments, n_mix=3)

One step: draw B same-class N-tuples (an anchor from the repeated few-shot set plus N-1
partners of its class, repeats allowed), crop/flip each image together with its
segmentation, encode the B*N images once, decode the B*N reconstructions and the B mixes
in one batch. Losses: ``rec_weight`` * sum_i MSE(recon_i, x_i) + ``lap_weight`` * sum_i
Laplacian(recon_i, x_i) + ``adv_weight`` * LSGAN(D(mix), real). D step: LSGAN on the anchors
(real) and a fresh mix (fake) decoded from the same features with a new mask.

The step is capturable (``GeneratorTrainer``): on CUDA each N is one CUDA graph, and
``train_generators`` trains several splits' generators concurrently on one GPU, each on its
own stream. Every random number comes from the run's own generators, saved in checkpoints,
so a resumed run replays exactly what an uninterrupted one would have done and a run's
result does not depend on the runs trained beside it.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import ImageSet
from .generator_files import (CHECKPOINT_NAME, FINISHED_NAME, SEGMENTS_NAME, CheckpointError, GeneratorConfig,
                              GeneratorRun, build_models, check_compatible, load_checkpoint, save_checkpoint,
                              split_identity)
from .generator_files import load_generator  # noqa: F401  (imported from here by notebooks rendered before the split)
from .graphs import capture
from .losses import LaplacianPyramidLoss, lsgan_loss
from .masks import cached_segments, make_masks, random_crop_flip, to_working_size
from .models import ClassPool, mix
from .outputs import hold, write_atomic
from .runtime import resolve_device
from .splits import FewShotSplit, epoch_length


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says where the last checkpoint is and how to resume."""


def train_generator(config: GeneratorConfig, train_set: ImageSet, split: FewShotSplit, out_dir: str | os.PathLike, *,
                    resume: bool = True, progress: bool = True, graphed: bool | None = None) -> GeneratorRun:
    """Train (or resume, or just load if finished) the generator for ``split`` into ``out_dir``.

    Holds the folder's write lock (``outputs.hold``) throughout: a second trainer of the same
    folder is refused. Ctrl-C raises ``TrainingInterrupted`` saying where to resume from.
    """
    return train_generators([(config, train_set, split, out_dir)], resume=resume, progress=progress, graphed=graphed)[0]


def train_generators(jobs: list[tuple[GeneratorConfig, ImageSet, FewShotSplit, str | os.PathLike]], *, resume: bool = True,
                     progress: bool = True, graphed: bool | None = None, interleave: bool | None = None) -> list[GeneratorRun]:
    """Train several generators, each ``(config, train_set, split, out_dir)`` as ``train_generator``
    would; on CUDA concurrently (``interleave``, default on CUDA: their steps are issued in turn,
    each run's on its own stream), elsewhere one after the other. A run's result does not
    depend on the others (tests/test_train_generator.py)."""
    if not jobs:
        return []
    with contextlib.ExitStack() as locks:
        trainers = []
        for config, train_set, split, out_dir in jobs:
            locks.enter_context(hold(Path(out_dir), what="generator folder"))
            trainers.append(GeneratorTrainer(config, train_set, split, out_dir, resume=resume, graphed=graphed))
        interleave = all(t.device.type == "cuda" for t in trainers) if interleave is None else interleave
        name = f"generator {trainers[0].split.filename[:-5]}" if len(trainers) == 1 else f"{len(trainers)} generators"
        bar = tqdm(total=sum(t.total_steps for t in trainers), initial=sum(t.step for t in trainers), desc=name,
                   disable=not progress, mininterval=1.0)
        try:
            for group in [trainers] if interleave else [[t] for t in trainers]:
                while active := [t for t in group if not t.done]:
                    for trainer in active:
                        with torch.cuda.stream(trainer.stream) if trainer.stream is not None else contextlib.nullcontext():
                            trainer.advance()
                        if len(trainers) == 1 and trainer.history and trainer.history[-1]["step"] == trainer.step:
                            last = trainer.history[-1]
                            bar.set_postfix(rec=f"{last['rec']:.4f}", lap=f"{last['lap']:.3f}", adv=f"{last['adv']:.3f}",
                                            d=f"{last['disc']:.3f}")
                    bar.update(len(active))
        except KeyboardInterrupt:
            bar.close()
            where = "; ".join(f"generator {t.split.filename[:-5]} interrupted at step {t.step}; {_saved_step(t.path)}"
                              for t in trainers if not t.done)
            raise TrainingInterrupted(f"{where}. Rerun with the same arguments and --resume (resume=True) to continue "
                                      f"from there.") from None
        bar.close()
        return [trainer.finish() for trainer in trainers]


class GeneratorTrainer:
    """One generator run's whole state on its device, trained one ``advance()`` at a time.

    A step is capturable: the anchors come from the epoch's order in a device tensor, the N-1
    partners of each anchor from ``models.ClassPool`` (device-side), crops, flips and masks
    from the run's own generator ``rng``, the learning rates (MultiStepLR in closed form) from
    a device step counter, and the losses are summed on the device. The only host choice, N
    per batch, comes from ``host_rng``; on CUDA each N is one CUDA graph (``graphs.capture``)
    replayed on the run's stream, elsewhere the same step runs eagerly. Checkpoints keep both
    random states, so a resumed run replays exactly what an uninterrupted one would have done.
    """

    def __init__(self, config: GeneratorConfig, train_set: ImageSet, split: FewShotSplit, out_dir: str | os.PathLike, *,
                 resume: bool = True, graphed: bool | None = None):
        if split.fingerprint != train_set.fingerprint():
            raise ValueError(f"split {split.filename} was not drawn from this {train_set.name} data (fingerprint differs)")
        self.config = config = config.resolved(train_set.image_size)
        if (config.dataset, config.samples_per_class, config.seed) != (split.dataset, split.samples_per_class, split.seed):
            raise ValueError(f"config is for {config.dataset} n={config.samples_per_class} seed={config.seed}, "
                             f"split is {split.filename}")
        self.split, self.out_dir = split, Path(out_dir)
        self.path = path = self.out_dir / CHECKPOINT_NAME
        state = None
        if resume and path.exists():  # checked before anything is written: a refused resume changes nothing
            state = load_checkpoint(path)
            check_compatible(state, config, split, path)
        self.device = device = resolve_device(config.device)
        # graphed on a CPU: graphs.TapeGraph, which checks that the step can be captured (tests)
        self.graphed = device.type == "cuda" if graphed is None else graphed
        self.capturable = self.graphed and device.type == "cuda"  # Adam's state on the device
        self.out_dir.mkdir(parents=True, exist_ok=True)
        few = train_set.subset(split.indices)
        self.segments = cached_segments(few.images, self.out_dir / SEGMENTS_NAME,
                                        key=f"{split.fingerprint}/{split.filename}", size=config.working_size,
                                        scale=config.seg_scale, min_size=config.seg_min_size)

        self.generator, self.discriminator = build_models(config)
        self.use_amp = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
        layout = torch.channels_last if config.channels_last and device.type == "cuda" else torch.preserve_format
        self.generator.to(device, memory_format=layout).train()
        self.discriminator.to(device, memory_format=layout).train()
        self.lr = torch.tensor(config.lr, device=device)  # both optimisers read it; the step writes it
        adam = dict(lr=self.lr, betas=config.betas, fused=True, capturable=self.capturable)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), **adam)
        self.laplacian = LaplacianPyramidLoss(levels=3).to(device)
        self.rng = torch.Generator(device).manual_seed(config.seed)  # every random number of a step
        self.host_rng = torch.Generator().manual_seed(config.seed)  # N per batch

        # The few-shot set lives on the device at the working size, in [-1, 1].
        self.pool = to_working_size(few.images, config.working_size).to(device) * 2 - 1  # [n, 3, S, S]
        self.pool_segments = self.segments.to(device)
        self.num_segments = int(self.segments.max()) + 1
        self.pool_labels = few.labels.to(device)
        self.classes = ClassPool(self.pool_labels)
        self.samples_per_epoch = epoch_length(len(few), config.samples_per_class, config.samples_per_class_per_epoch)
        self.steps_per_epoch = max(1, self.samples_per_epoch // config.batch_size)
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch
        self.milestones = sorted({max(1, int(f * self.total_steps)) for f in config.milestones})
        # Device state a step reads and writes in place (static addresses for the graphs).
        self.order = torch.zeros(self.steps_per_epoch * config.batch_size, dtype=torch.long, device=device)
        self.batch_in_epoch = torch.zeros((), dtype=torch.long, device=device)
        self.step_count = torch.zeros((), dtype=torch.long, device=device)
        self.milestone_steps = torch.tensor(self.milestones, dtype=torch.long, device=device)
        self.loss_sums = torch.zeros(4, device=device)  # rec, lap, adv, disc since the last log entry
        self.step, self.history, self.finished, self.graphs = 0, [], False, {}
        if state is not None:
            self._load(state)
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        if self.stream is not None:  # everything above was queued on the default stream
            self.stream.wait_stream(torch.cuda.current_stream(device))

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    def lr_at(self, step: int) -> float:
        """MultiStepLR's rate for ``step`` (0-based), in closed form."""
        return self.config.lr * self.config.gamma ** bisect.bisect_right(self.milestones, step)

    def advance(self) -> None:
        """Issue one training step (and the epoch's order, log entry and checkpoint on their boundaries)."""
        config = self.config
        if self.step % self.steps_per_epoch == 0:
            self._start_epoch()
        choices = config.n_mix
        n_mix = choices[int(torch.randint(len(choices), (), generator=self.host_rng))] if len(choices) > 1 else choices[0]
        if self.graphed:
            if n_mix not in self.graphs:
                self.graphs[n_mix] = capture(lambda: self._step(n_mix), self._state_tensors, self.rng, self.stream)
            self.graphs[n_mix].replay()
        else:
            self._step(n_mix)
        self.step += 1
        if self.step % config.log_every == 0 or self.done:
            self._log()
        if self.step % config.checkpoint_every == 0 and not self.done:
            self._save(finished=False)

    def _start_epoch(self) -> None:
        order = torch.randperm(self.samples_per_epoch, generator=self.rng, device=self.device) % len(self.pool)
        self.order.copy_(order[torch.arange(len(self.order), device=self.device) % len(order)])  # static length
        self.batch_in_epoch.zero_()

    def _step(self, n_mix: int) -> None:
        config, rng, batch = self.config, self.rng, self.config.batch_size
        generator, discriminator = self.generator, self.discriminator
        anchors = self.order.view(self.steps_per_epoch, batch).index_select(0, self.batch_in_epoch.view(1))[0]
        members = torch.cat([anchors[:, None], self.classes.draw(self.pool_labels[anchors], n_mix - 1, rng)], 1)  # [B, N]
        images, segs = random_crop_flip([self.pool[members.flatten()], self.pool_segments[members.flatten()][:, None]],
                                        pad=config.crop_pad, generator=rng)
        images = images.unflatten(0, (batch, n_mix))  # [B, N, 3, S, S]
        segs = segs[:, 0].unflatten(0, (batch, n_mix))  # [B, N, S, S]
        masks, fresh_masks = (make_masks(config.mask_kind, segs=segs, batch=batch, n_mix=n_mix,
                                         out_size=config.working_size // 4, generator=rng, soft_edges=config.soft_edges,
                                         num_segments=self.num_segments).to(self.device) for _ in range(2))
        self.lr.copy_(config.lr * config.gamma ** (self.milestone_steps <= self.step_count).sum())
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp, cache_enabled=False)

        # Generator step: the discriminator's weights get no gradients here.
        discriminator.requires_grad_(False)
        with autocast:
            features = generator.encode(images)  # [B, N, C, h, w]
            decoded = generator.decode(torch.cat([features.flatten(0, 1), mix(features, masks)]))  # [B*N + B, 3, S, S]
            recon, mixed = decoded[:batch * n_mix].float(), decoded[batch * n_mix:]
            targets = images.flatten(0, 1)
            loss_rec = F.mse_loss(recon, targets) * n_mix  # = sum over the N inputs of their MSE
            loss_lap = self.laplacian(recon, targets) * n_mix
            loss_adv = lsgan_loss(discriminator(mixed).float(), real=True)
            loss_g = config.rec_weight * loss_rec + config.lap_weight * loss_lap + config.adv_weight * loss_adv
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()

        # Discriminator step: anchors are real, a fresh mix of the same features is fake.
        discriminator.requires_grad_(True)
        with autocast:
            with torch.no_grad():
                fake = generator.decode(mix(features.detach(), fresh_masks))
            loss_d = (lsgan_loss(discriminator(images[:, 0]).float(), real=True)
                      + lsgan_loss(discriminator(fake).float(), real=False))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.loss_sums += torch.stack([loss_rec, loss_lap, loss_adv, loss_d]).detach()
        self.batch_in_epoch += 1
        self.step_count += 1

    def _state_tensors(self) -> list[torch.Tensor]:
        """Everything a step changes in place."""
        optimiser_state = [t for optimiser in (self.opt_g, self.opt_d) for state in optimiser.state.values()
                           for t in state.values() if torch.is_tensor(t)]
        return [*self.generator.parameters(), *self.generator.buffers(), *self.discriminator.parameters(),
                *self.discriminator.buffers(), *optimiser_state, self.batch_in_epoch, self.step_count, self.loss_sums,
                self.lr]

    def _log(self) -> None:
        count = self.step - (self.history[-1]["step"] if self.history else 0)  # steps summed, resumes included
        values = (self.loss_sums / count).tolist()  # the only host sync, once per log interval
        self.loss_sums.zero_()
        self.history.append({"step": self.step, "rec": values[0], "lap": values[1], "adv": values[2], "disc": values[3],
                             "lr": self.lr_at(self.step)})

    def _save(self, finished: bool) -> None:
        state = {"config": asdict(self.config), "split": split_identity(self.split), "step": self.step,
                 "finished": finished, "history": self.history, "generator": self.generator.state_dict()}
        if not finished:  # what resuming needs; a finished generator keeps only itself (a fifth of the bytes)
            state.update({"loss_sums": self.loss_sums.cpu(), "order": self.order.cpu(),
                          "discriminator": self.discriminator.state_dict(), "opt_g": self.opt_g.state_dict(),
                          "opt_d": self.opt_d.state_dict(), "rng": self.rng.get_state(),
                          "host_rng": self.host_rng.get_state()})
        save_checkpoint(self.path, state)

    def _load(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        if state["finished"]:
            self.step, self.history, self.finished = state["step"], state["history"], True
            return
        self.discriminator.load_state_dict(state["discriminator"])
        if "rng" not in state:
            raise CheckpointError(f"{self.path} is an unfinished checkpoint of an older version of this trainer; "
                                  f"delete it to train from scratch.")
        for optimiser, key in ((self.opt_g, "opt_g"), (self.opt_d, "opt_d")):
            optimiser.load_state_dict(state[key])
            for group in optimiser.param_groups:  # as built here, whatever device the checkpoint came from
                group["lr"], group["capturable"] = self.lr, self.capturable  # the step writes this device tensor
        self.rng.set_state(state["rng"])
        self.host_rng.set_state(state["host_rng"])
        self.loss_sums.copy_(state["loss_sums"])
        self.step, self.history = state["step"], state["history"]
        self.step_count.fill_(self.step)
        self.order.copy_(state["order"])  # this epoch's order, as drawn at its start
        self.batch_in_epoch.fill_(self.step % self.steps_per_epoch)

    def finish(self) -> GeneratorRun:
        """Write the final checkpoint (unless it was loaded finished) and return the trained generator."""
        if self.stream is not None:
            self.stream.synchronize()
        if not self.finished:
            self._save(finished=True)
            # a small sign of completion that status checks read without loading the checkpoint
            write_atomic(self.out_dir / FINISHED_NAME, json.dumps({"step": self.step, "history": self.history[-1:]}) + "\n")
            self.finished = True
        self.generator.eval()
        return GeneratorRun(self.generator, self.config, split_identity(self.split), self.segments, self.history,
                            self.step, self.path)


def _saved_step(path: Path) -> str:
    try:
        return f"the checkpoint {path} is at step {load_checkpoint(path)['step']}"
    except CheckpointError:
        return f"no checkpoint was written to {path.parent} yet"


