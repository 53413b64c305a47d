"""Classifier runs trained from scratch on a few-shot split with any augmentation method:
their configuration, one capturable training step each, and packs of runs trained together.

    config = ClassifierConfig(dataset="cifar10", samples_per_class=5, seed=0, method="hydramix", model="wrn16_2")
    record = train_classifier(config, train_set, test_set, split, generator_run=run)   # record["accuracy"]
    runs = [Run(config, train_set, test_set, split, generator_run=run) for config in configs]
    records = train_pack(runs)    # CUDA: concurrently, each run its own CUDA graph and stream

Protocol (ChimeraMix's, ``docs/protocol.md`` section 2): SGD with Nesterov momentum 0.9, cosine
schedule per step, an epoch = the split repeated to ~500 samples per class (STL-10: 120),
reflect-pad random crop + horizontal flip, normalisation mean = std = 0.5, top-1 accuracy
on the test set after the last epoch (the networks and the evaluation: classifier.py).

A step does everything on the device with static shapes and no host synchronisation: the
batch's indices from the epoch's order, crop and flip, the method's augmentation
(classic.py), the generated samples it uses (each sample replaced with probability p_gen,
through ``torch.where``), forward, loss, backward, and fused SGD-Nesterov at a cosine
learning rate held in a device tensor. Every random number comes from the run's own
generator on its device (the model's dropout too) and every host choice (which N a batch
mixes; ChimeraMix's whole-batch replacement) from the run's own host generator, so a run's
result does not depend on its pack: on CPU it is bit-identical alone or in a pack
(tests/test_engine.py).

Generated samples are rendered ahead: every ``LOOKAHEAD_STEPS`` steps (and at each epoch's
start) the samples those steps will replace are drawn (augment.py's draw) and rendered
together, grouped by N, in batches of up to ``RENDER_BATCH`` (256 on a GPU, 4 on CPU). The
generator is frozen, so its samples are independent draws whenever they are made: rendering
them ahead changes no distribution, but turns ~5 samples a step at batch 10 into batches of
hundreds on a GPU, and the network runs only for the samples replaced. A per-class bank of generated samples
(``bank_size``) is host logic and runs inside the (then eager) step instead.

On CUDA the step is one CUDA graph (graphs.py), captured on first use and replayed on the
run's stream; runs of a pack take turns issuing steps, so their graphs run concurrently.
On CPU (or ``graphed=False``) the same step runs eagerly, one run after the other;
``graphed=True`` on a CPU replays graphs.py's stand-in, which is how tests check the capture.

Epochs: the split repeated to ~500 samples per class, shuffled; an epoch that does not
fill its last batch wraps around to the start of its own order (static batch size).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tqdm.auto import tqdm

from .augment import HydraMixAugment
from .classic import AutoAugment, cutmix, cutout, mixup, random_erasing, zeta_mixup
from .classifier import Dropout, build_classifier, evaluate, harmonic_variant
from .data import ImageSet
from .graphs import capture
from .masks import random_crop_flip
from .methods import DIRECT_METHODS, GENERATOR_METHODS, make_augment, method_parameter, parse_method
from .outputs import positive, save_atomic
from .runtime import device_name, resolve_device, versions
from .splits import FewShotSplit, epoch_length

LOOKAHEAD_STEPS = 64  # steps whose generated samples are rendered together
# Samples per generator call when rendering ahead. A GPU wants large batches; a CPU does not
# (ngf 64, N 4, 2 threads: 24 ms a sample in calls of 5, 34 ms in calls of 16; cache-bound).
RENDER_BATCH = {"gpu": 256, "cpu": 4}


@dataclass
class ClassifierConfig:
    dataset: str
    samples_per_class: int
    seed: int
    method: str = "baseline"
    p_gen: float = 0.5  # probability that a sample is replaced by a generated one
    per_batch: bool = False  # ChimeraMix: replace the whole batch with probability p_gen
    bank_size: int = 0  # >0: draw generated samples from a per-class bank of this size (see augment.py)
    bank_refresh: float = 0.25  # fraction of used bank entries regenerated per step
    n_mix: tuple[int, ...] | None = None  # None: the generator's own (direct methods, zetamixup: 2, 3, 4 / 2)
    model: str | None = None  # None: wrn16_8 for 32 px data, resnet50 for larger
    epochs: int = 200
    samples_per_class_per_epoch: int | None = None  # None: 500 (STL-10: 120)
    steps: int | None = None  # overrides epochs (short CPU runs)
    batch_size: int | None = None  # None: 10 (STL-10: 16)
    lr: float | None = None  # None: 4.6e-3 (STL-10: 7.4e-3)
    weight_decay: float | None = None  # None: 5.3e-3 (STL-10: 4.1e-4)
    crop_pad: int | None = None  # None: 4 at 32 px, 12 at 96 px
    test_subset: int | None = None  # evaluate on the first k test images per class (None: the full test set)
    eval_every: int = 0  # also evaluate every k epochs (0: only at the end)
    # Also evaluate at these fractions of the schedule (the learning curve; the end is always
    # evaluated). Evaluation reads no random number and changes no weight or statistic.
    eval_at: tuple[float, ...] = (0.125, 0.25, 0.5)
    amp: str = "auto"  # "auto": bf16 on CUDA, off on CPU; "bf16"; "off"
    channels_last: bool | None = None  # None: on CUDA only; True: on any device (pays on CPUs too); False: never
    device: str = "auto"

    def __post_init__(self):
        parse_method(self.method)
        if not 0.0 <= self.p_gen <= 1.0:
            raise ValueError(f"p_gen must be in [0, 1], got {self.p_gen}")
        positive("samples_per_class", self.samples_per_class)
        positive("epochs", self.epochs)
        for name in ("steps", "batch_size", "samples_per_class_per_epoch", "test_subset"):
            positive(name, getattr(self, name), allow_none=True)
        if self.bank_size < 0 or self.eval_every < 0:
            raise ValueError(f"bank_size and eval_every must be >= 0, got {self.bank_size} and {self.eval_every}")
        self.n_mix = tuple(self.n_mix) if self.n_mix is not None else None
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"amp must be auto, bf16 or off, got {self.amp!r}")
        self.eval_at = tuple(float(f) for f in self.eval_at)
        if any(not 0.0 < f <= 1.0 for f in self.eval_at):
            raise ValueError(f"eval_at must hold fractions of the schedule in (0, 1], got {self.eval_at}")

    def resolved(self, image_size: int) -> "ClassifierConfig":
        small = image_size <= 32
        values = asdict(self)
        defaults = {"model": "wrn16_8" if small else "resnet50", "samples_per_class_per_epoch": 500 if small else 120,
                    "batch_size": 10 if small else 16, "lr": 4.6e-3 if small else 7.4e-3,
                    "weight_decay": 5.3e-3 if small else 4.1e-4, "crop_pad": image_size // 8}
        values.update({k: v for k, v in defaults.items() if values[k] is None})
        return ClassifierConfig(**values)

    @property
    def run_name(self) -> str:
        name = f"{self.dataset}_n{self.samples_per_class}_seed{self.seed}_{self.method}"
        base, _ = parse_method(self.method)
        if base in GENERATOR_METHODS or base in DIRECT_METHODS:
            name += f"_p{self.p_gen:g}" + ("_batch" if self.per_batch else "")
        return name


class Run:
    """One classifier run's whole state on its device (see the module docstring)."""

    def __init__(self, config: ClassifierConfig, train_set: ImageSet, test_set: ImageSet, split: FewShotSplit, *,
                 generator_run=None, segments_cache=None, augment=None, checkpoint=None, checkpoint_every: int = 10,
                 graphed: bool | None = None, lookahead_steps: int = LOOKAHEAD_STEPS,
                 checkpoint_seconds: float | None = None):
        if split.fingerprint != train_set.fingerprint():
            raise ValueError(f"split {split.filename} was not drawn from this {train_set.name} data")
        if (config.dataset, config.samples_per_class, config.seed) != (split.dataset, split.samples_per_class, split.seed):
            raise ValueError(f"config {config.run_name} does not match split {split.filename}")
        self.config = config = config.resolved(train_set.image_size)
        self.base, use_autoaugment = parse_method(config.method)
        self.device = device = resolve_device(config.device)
        self.test_set, self.split, self.generator_run = test_set, split, generator_run
        self.num_classes, self.image_size = train_set.num_classes, train_set.image_size
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        # Saved at an epoch boundary every checkpoint_every epochs, or once checkpoint_seconds have
        # passed since the last save (short epochs on a CPU); where it saves never changes a result.
        self.checkpoint_every, self.checkpoint_seconds = checkpoint_every, checkpoint_seconds
        self._last_save = time.perf_counter()

        self.rng = torch.Generator(device).manual_seed(config.seed)  # every random number of a step
        self.host_rng = torch.Generator().manual_seed(config.seed)  # host choices: N per batch, whole-batch replacement
        few = train_set.subset(split.indices)
        self.augment = augment or make_augment(config, few, generator_run, segments_cache, device=device)
        # graphed on a CPU: graphs.TapeGraph, which checks that the step can be captured (tests)
        self.graphed = (device.type == "cuda" and not self.bank) if graphed is None else graphed
        if self.graphed and self.bank:
            raise ValueError("graphed steps need bank_size 0 (a bank is host logic inside the step)")
        with torch.random.fork_rng(devices=[]):  # the weights' initialisation depends on the seed alone
            torch.manual_seed(config.seed)
            model = build_classifier(harmonic_variant(config.model) if self.base == "harmonic" else config.model,
                                     train_set.num_classes)
        for module in model.modules():
            if isinstance(module, Dropout):
                module.generator = self.rng
        self.channels_last = device.type == "cuda" if config.channels_last is None else config.channels_last
        self.model = model.to(device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        self.use_amp = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
        self.lr = torch.tensor(config.lr, device=device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9, nesterov=True,
                                         weight_decay=config.weight_decay, fused=True)
        policy = "autoaugment" if use_autoaugment else self.base if self.base in ("trivialaugment", "randaugment") else None
        self.policy = AutoAugment(policy, image_size=self.image_size, device=device) if policy else None
        self.mix_parameter = method_parameter(config.method)  # MixUp's alpha, zeta-mixup's gamma

        self.pool, self.pool_labels = few.images.to(device), few.labels.to(device)
        self.samples_per_epoch = epoch_length(len(few), config.samples_per_class, config.samples_per_class_per_epoch)
        self.steps_per_epoch = math.ceil(self.samples_per_epoch / config.batch_size)
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch
        # Device state a step reads and writes in place (static addresses for the graphs).
        self.order = torch.zeros(self.steps_per_epoch * config.batch_size, dtype=torch.long, device=device)
        self.batch_in_epoch = torch.zeros((), dtype=torch.long, device=device)
        self.step_count = torch.zeros((), dtype=torch.float64, device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.step, self.history, self.elapsed, self.graph = 0, [], 0.0, None
        # The learning curve: test accuracy at these steps (and at the end, in ``record``).
        self.eval_steps = eval_steps(config.eval_at, self.total_steps)
        self.curve, self.eval_time = [], 0.0
        # Generated samples of the next steps, rendered together outside the step (``_generate_ahead``).
        self.lookahead = min(lookahead_steps, self.steps_per_epoch) if self.augment is not None and not self.bank else 0
        size = train_set.image_size
        self.generated = torch.zeros(self.lookahead * config.batch_size, 3, size, size, device=device)
        self.replaced = torch.zeros(self.lookahead * config.batch_size, dtype=torch.bool, device=device)
        self.batch_in_chunk = torch.zeros((), dtype=torch.long, device=device)
        self._started = time.perf_counter()  # train_pack sets it again when this run's training starts
        if self.checkpoint is not None and self.checkpoint.exists():
            self._resume()
        self.model.train()
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        if self.stream is not None:  # everything above was queued on the default stream
            self.stream.wait_stream(torch.cuda.current_stream(device))

    @property
    def bank(self) -> bool:
        return self.augment is not None and self.augment.bank_size > 0

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    # --- one step ---------------------------------------------------------------------------

    def advance(self) -> None:
        """Issue one training step (and an epoch's start or end work on its boundaries)."""
        if self.step % self.steps_per_epoch == 0:
            self._start_epoch()
        if self.lookahead and self.step % self.steps_per_epoch % self.lookahead == 0:
            self._generate_ahead()
        if self.graphed:
            if self.graph is None:
                self.graph = capture(self._step, self._state_tensors, self.rng, self.stream)
            self.graph.replay()
        else:
            self._step()
        self.step += 1
        if self.step in self.eval_steps:
            self._evaluate_curve()
        if self.step % self.steps_per_epoch == 0 or self.done:
            self._end_epoch()

    def _evaluate_curve(self) -> None:
        """One point of the learning curve; its time is kept apart from the training time."""
        started = time.perf_counter()
        accuracy = evaluate(self.model, self.test_set, self.config, self.device, self.use_amp)["accuracy"]
        self.model.train()
        self.curve.append({"step": self.step, "accuracy": accuracy})
        self.eval_time += time.perf_counter() - started

    def _draw_batch_choice(self) -> tuple[int, bool]:
        """N for one batch, and whether ChimeraMix's rule replaces it (True when p_gen is per sample)."""
        choices = self.augment.n_mix
        n_mix = choices[int(torch.randint(len(choices), (), generator=self.host_rng))] if len(choices) > 1 else choices[0]
        generate = bool(torch.rand((), generator=self.host_rng) < self.augment.p_gen) if self.augment.per_batch else True
        return n_mix, generate

    @torch.no_grad()
    def _generate_ahead(self) -> None:
        """Render the generated samples of the next ``lookahead`` steps of this epoch at once.

        Per step: N and (ChimeraMix's rule) the whole-batch decision from the host generator;
        per sample (``p_gen``): an independent draw. Only the samples replaced are rendered,
        grouped by N in batches of up to ``RENDER_BATCH`` for the device; an N with no sample
        in the chunk (every chunk at p_gen 0) renders nothing. Runs outside the graph, and
        waits for the device once per chunk: to read how many samples each N renders.
        """
        augment, batch, device = self.augment, self.config.batch_size, self.device
        first = self.step % self.steps_per_epoch
        steps = min(self.lookahead, self.steps_per_epoch - first, self.total_steps - self.step)
        labels = self.pool_labels[self.order[first * batch:(first + steps) * batch]]
        choices = [self._draw_batch_choice() for _ in range(steps)]
        host = torch.tensor(choices, dtype=torch.long).repeat_interleave(batch, dim=0)  # [steps*B, (N, whole batch)]
        if device.type == "cuda":  # a pinned buffer copies without making the host wait for the stream
            host = host.pin_memory()
        host = host.to(device, non_blocking=True)
        n_mix, replaced = host[:, 0], host[:, 1].bool()
        if not augment.per_batch:
            replaced = torch.rand(steps * batch, generator=self.rng, device=device) < augment.p_gen
        self.replaced.zero_()
        self.replaced[:steps * batch] = replaced
        group = torch.where(replaced, n_mix, 0)  # 0: kept; positions sorted by N, ascending within each N
        counts = torch.zeros(max(augment.n_mix) + 1, dtype=torch.long, device=device)
        counts = counts.index_add_(0, group, torch.ones_like(group)).tolist()  # the chunk's one wait (bincount: two)
        positions = group.argsort(stable=True).split(counts)
        for n in range(1, len(counts)):
            for part in positions[n].split(RENDER_BATCH["cpu" if device.type == "cpu" else "gpu"]) if counts[n] else ():
                tuples, masks, _ = augment.draw(labels[part], n, self.rng)
                self.generated[part] = augment.render(tuples, masks).to(self.generated.dtype)
        self.batch_in_chunk.zero_()

    def _step(self) -> None:
        config, rng, batch = self.config, self.rng, self.config.batch_size
        index = self.order.view(self.steps_per_epoch, batch).index_select(0, self.batch_in_epoch.view(1))[0]
        images, labels = self.pool[index], self.pool_labels[index]  # uint8 [B,3,H,W], [B]
        images = random_crop_flip([images], pad=config.crop_pad, generator=rng)[0]
        if self.policy is not None:
            images = self.policy(images, rng)
        images = images.float() / 255
        if self.lookahead:  # this batch's slot of the samples rendered ahead
            slot = self.batch_in_chunk.view(1)
            generated = self.generated.view(self.lookahead, batch, *images.shape[1:]).index_select(0, slot)[0]
            replaced = self.replaced.view(self.lookahead, batch).index_select(0, slot)[0]
            images = torch.where(replaced[:, None, None, None], generated, images)
            self.batch_in_chunk += 1
        elif self.bank:  # the bank draws which samples it replaces (and N) itself
            images = self.augment(images, labels, generator=self.rng)[0]
        if self.base == "cutout":
            images = cutout(images, rng, size=self.image_size // 2)
        elif self.base == "random_erasing":
            images = random_erasing(images, rng)
        images = (images - 0.5) / 0.5
        targets = labels
        if self.base == "mixup":
            images, targets = mixup(images, labels, self.num_classes, rng, alpha=self.mix_parameter)  # soft [B, C]
        elif self.base == "zetamixup":
            images, targets = zeta_mixup(images, labels, self.num_classes, rng, n_mix=config.n_mix or (2, 3, 4),
                                         gamma=self.mix_parameter)
        elif self.base == "cutmix":
            images, targets = cutmix(images, labels, self.num_classes, rng)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp, cache_enabled=False):
            loss = F.cross_entropy(self.model(images).float(), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # Cosine schedule in closed form (CosineAnnealingLR, eta_min 0) from the device step count.
        self.lr.copy_(config.lr * 0.5 * (1 + torch.cos(math.pi * self.step_count / self.total_steps)))
        self.optimizer.step()
        self.loss_sum += loss.detach()
        self.batch_in_epoch += 1
        self.step_count += 1

    def _start_epoch(self) -> None:
        order = torch.randperm(self.samples_per_epoch, generator=self.rng, device=self.device) % len(self.pool)
        padding = len(self.order) - len(order)
        self.order.copy_(torch.cat([order, order[:padding]]) if padding else order)
        self.batch_in_epoch.zero_()

    def _end_epoch(self) -> None:
        steps = (self.step - 1) % self.steps_per_epoch + 1
        entry = {"step": self.step, "loss": self.loss_sum / steps}  # a device tensor until read (no sync here)
        self.loss_sum.zero_()
        epoch = math.ceil(self.step / self.steps_per_epoch)
        if self.config.eval_every and epoch % self.config.eval_every == 0 and not self.done:
            entry["accuracy"] = evaluate(self.model, self.test_set, self.config, self.device, self.use_amp)["accuracy"]
            self.model.train()
        self.history.append(entry)
        due = epoch % self.checkpoint_every == 0 or (
            self.checkpoint_seconds is not None and time.perf_counter() - self._last_save >= self.checkpoint_seconds)
        if self.checkpoint is not None and due and not self.done:
            self._save()
            self._last_save = time.perf_counter()

    # --- CUDA graphs ------------------------------------------------------------------------

    def _state_tensors(self) -> list[torch.Tensor]:
        """Everything a step changes in place."""
        optimizer_state = [t for state in self.optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
        return [*self.model.parameters(), *self.model.buffers(), *optimizer_state,
                self.batch_in_epoch, self.batch_in_chunk, self.step_count, self.loss_sum, self.lr]

    # --- checkpoints and the result ------------------------------------------------------------

    def _materialise_history(self) -> None:
        for entry in self.history:
            entry["loss"] = float(entry["loss"])

    def _save(self) -> None:
        self._materialise_history()
        state = {"config": asdict(self.config), "step": self.step, "history": self.history,
                 "elapsed": self.elapsed + time.perf_counter() - self._started,
                 "curve": self.curve, "eval_time": self.eval_time,
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "rng": self.rng.get_state(), "host_rng": self.host_rng.get_state(),
                 "bank": {k: v.cpu() for k, v in self.augment.bank.items()} if self.bank else None}
        save_atomic(state, self.checkpoint)

    def _resume(self) -> None:
        path = self.checkpoint
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise RuntimeError(f"{path} is not a readable classifier checkpoint ({type(error).__name__}); "
                               f"delete it to train this run from the start.") from None
        if state.get("config") != asdict(self.config) or "host_rng" not in state:
            raise RuntimeError(f"{path} belongs to another run configuration or engine version; delete it to train "
                               f"this run from the start.")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr  # the schedule writes this device tensor every step
        self.rng.set_state(state["rng"])
        self.host_rng.set_state(state["host_rng"])
        if self.bank and state["bank"]:
            self.augment.bank = {int(k): v.to(self.augment.device) for k, v in state["bank"].items()}
        self.step, self.history, self.elapsed = state["step"], state["history"], state["elapsed"]
        self.curve, self.eval_time = state["curve"], state["eval_time"]
        self.step_count.fill_(self.step)

    def record(self, pack_size: int) -> dict:
        self._materialise_history()
        config, generator_run = self.config, self.generator_run
        started = time.perf_counter()
        evaluation = evaluate(self.model, self.test_set, config, self.device, self.use_amp)
        eval_time = self.eval_time + time.perf_counter() - started
        uses_generator = generator_run is not None and self.augment is not None and self.augment.generator is not None
        return {
            "dataset": config.dataset, "samples_per_class": config.samples_per_class, "seed": config.seed,
            "method": config.method, "p_gen": config.p_gen if self.augment is not None else None,
            "accuracy": evaluation["accuracy"], "per_class_accuracy": evaluation["per_class_accuracy"],
            "test_images": evaluation["test_images"], "steps": self.total_steps,
            "curve": [*self.curve, {"step": self.total_steps, "accuracy": evaluation["accuracy"]}],
            "train_time_s": round(self.elapsed - self.eval_time, 2), "eval_time_s": round(eval_time, 2),
            "device": device_name(self.device),
            "engine": {"graphed": self.graphed, "pack_size": pack_size, "bf16": self.use_amp,
                       "channels_last": self.channels_last, "threads": torch.get_num_threads()},
            "config": asdict(config), "split_fingerprint": self.split.fingerprint,
            "generator": str(generator_run.path) if uses_generator else None,
            "history": self.history, "versions": versions(),
        }


def eval_steps(fractions, total_steps: int) -> list[int]:
    """The steps before the last at which a run of ``total_steps`` evaluates its learning curve:
    each fraction of the schedule rounded to a step (at least 1)."""
    return sorted({max(1, round(f * total_steps)) for f in fractions} - {total_steps})


def train_pack(runs: list[Run], *, interleave: bool | None = None, progress: bool = True) -> list[dict]:
    """Train the runs to the end; returns their result records in order.

    ``interleave`` (default: on CUDA) issues the runs' steps in turn, each on its own stream,
    so a GPU runs them concurrently; otherwise each run trains to the end in turn. Either
    way each run's numbers are its own (tests/test_engine.py).
    """
    if not runs:
        return []
    interleave = all(run.device.type == "cuda" for run in runs) if interleave is None else interleave
    total = sum(run.total_steps for run in runs)
    name = runs[0].config.run_name if len(runs) == 1 else f"pack of {len(runs)} runs"
    bar = tqdm(total=total, initial=sum(run.step for run in runs), desc=f"classifier {name}",
               disable=not progress, mininterval=1.0)
    for group in [runs] if interleave else [[run] for run in runs]:
        for run in group:
            run._started = time.perf_counter()
        while active := [run for run in group if not run.done]:
            for run in active:
                with torch.cuda.stream(run.stream) if run.stream is not None else contextlib.nullcontext():
                    run.advance()
                if run.done:
                    if run.stream is not None:
                        run.stream.synchronize()
                    run.elapsed += time.perf_counter() - run._started
            bar.update(len(active))
    bar.close()
    return [run.record(len(runs)) for run in runs]


def train_classifier(config: ClassifierConfig, train_set: ImageSet, test_set: ImageSet, split: FewShotSplit, *,
                     generator_run=None, segments_cache=None, augment: HydraMixAugment | None = None,
                     progress: bool = True, checkpoint=None, checkpoint_every: int = 10, graphed: bool | None = None) -> dict:
    """Train from scratch on ``split`` and evaluate; returns the result record (JSON-ready).

    A pack of one run of engine.py (each step one CUDA graph on CUDA, eager on CPU).
    ``augment`` overrides the batch augmentation the method would build (e.g. a warm bank).
    ``checkpoint``: a file to save the run to every ``checkpoint_every`` epochs and to resume
    from if it exists (a preempted cluster job). Checkpoints fall on epoch boundaries and hold
    the weights, optimiser, history and the run's random states, so a resumed run gives the
    same weights as an uninterrupted one on CPU. The caller deletes the file once the result
    is stored.
    """
    run = Run(config, train_set, test_set, split, generator_run=generator_run, segments_cache=segments_cache,
              augment=augment, checkpoint=checkpoint, checkpoint_every=checkpoint_every, graphed=graphed)
    return train_pack([run], progress=progress)[0]
