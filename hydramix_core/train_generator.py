"""Train the HydraMix generator on one few-shot split.

    from hydramix_core.train_generator import GeneratorConfig, train_generator
    config = GeneratorConfig(dataset="cifar10", samples_per_class=5, seed=0, ngf=16, steps=300)
    result = train_generator(config, train_set, split, out_dir="results/smoke/generators/cifar10_n5_seed0")
    images = result.generator.sample(few.images, few.labels, result.segments, n_mix=3)

One step: draw B same-class N-tuples (an anchor from the repeated few-shot set plus N-1
partners of its class, repeats allowed), crop/flip each image together with its
segmentation, encode the B*N images once, decode the B*N reconstructions and the B mixes
in one batch. Losses: ``rec_weight`` * sum_i MSE(recon_i, x_i) + ``lap_weight`` * sum_i
Laplacian(recon_i, x_i) + ``adv_weight`` * LSGAN(D(mix), real). D step: LSGAN on the anchors
(real) and a fresh mix (fake) decoded from the same features with a new mask.

All randomness of step t comes from a generator seeded by (seed, t), so a resumed run
replays exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .data import ImageSet
from .losses import LaplacianPyramidLoss, lsgan_loss
from .masks import MASK_KINDS, cached_segments, make_masks, random_crop_flip, to_working_size
from .models import Discriminator, Generator, draw_partners, mix
from .outputs import hold, positive, replacing, write_atomic
from .splits import FewShotSplit, epoch_length

CHECKPOINT_NAME = "generator.pt"
FINISHED_NAME = "finished.json"
SEGMENTS_NAME = "segments.pt"
# Fields that do not change what is trained; a resumed run may differ in these.
_RUNTIME_FIELDS = ("checkpoint_every", "log_every", "device")


class CheckpointError(RuntimeError):
    pass


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says where the last checkpoint is and how to resume."""


@dataclass
class GeneratorConfig:
    dataset: str
    samples_per_class: int
    seed: int
    n_mix: tuple[int, ...] = (2, 3, 4)  # [ours] N drawn per batch from these
    mask_kind: str = "hydramix"  # one of masks.MASK_KINDS
    soft_edges: float = 0.0  # [ours] Gaussian sigma (feature pixels) of mask edges; 0 = hard masks
    ngf: int = 64
    ndf: int = 64
    encoder_blocks: int = 2
    decoder_blocks: int = 2
    working_size: int | None = None  # None: 64 for images up to 32 px (ChimeraMix), else the image size
    epochs: int = 200
    samples_per_class_per_epoch: int = 500  # ChimeraMix repeats the split to ~500 per class per epoch (STL-10: 30)
    steps: int | None = None  # overrides epochs (short CPU runs)
    batch_size: int = 64  # STL-10: 8
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    milestones: tuple[float, ...] = (0.3, 0.6, 0.8)  # fractions of training = epochs 60/120/160 of 200
    gamma: float = 0.2
    rec_weight: float = 1000.0
    lap_weight: float = 1.0
    adv_weight: float = 1.0
    seg_scale: float | None = None  # None: 60 for 32 px data, 400 for larger
    seg_min_size: int | None = None  # None: same as seg_scale
    crop_pad: int | None = None  # None: 1/8 of the working size (4 px at 32, 12 px at 96)
    amp: str = "auto"  # "auto": bf16 on CUDA, off on CPU; "bf16"; "off"
    channels_last: bool = True  # used on CUDA only
    checkpoint_every: int = 500
    log_every: int = 25
    device: str = "auto"

    def __post_init__(self):
        self.n_mix, self.betas, self.milestones = tuple(self.n_mix), tuple(self.betas), tuple(self.milestones)
        for name in ("samples_per_class", "ngf", "ndf", "epochs", "samples_per_class_per_epoch", "batch_size",
                     "checkpoint_every", "log_every"):
            positive(name, getattr(self, name))
        positive("steps", self.steps, allow_none=True)
        if not self.n_mix or min(self.n_mix) < 1:
            raise ValueError(f"n_mix values must be >= 1, got {self.n_mix}")
        if self.mask_kind not in MASK_KINDS:
            raise ValueError(f"Unknown mask_kind {self.mask_kind!r}; choose one of {', '.join(MASK_KINDS)}")
        if self.mask_kind.startswith("chimeramix") and self.n_mix != (2,):
            raise ValueError(f"{self.mask_kind} mixes exactly 2 images: set n_mix=(2,)")
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"amp must be auto, bf16 or off, got {self.amp!r}")

    def resolved(self, image_size: int) -> "GeneratorConfig":
        """Fill the size-dependent defaults for data of ``image_size`` pixels."""
        values = asdict(self)
        values["working_size"] = self.working_size or (64 if image_size <= 32 else image_size)
        values["seg_scale"] = self.seg_scale or (60.0 if image_size <= 32 else 400.0)
        values["seg_min_size"] = self.seg_min_size or int(values["seg_scale"])
        values["crop_pad"] = self.crop_pad if self.crop_pad is not None else values["working_size"] // 8
        return GeneratorConfig(**values)

    def training_fields(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in _RUNTIME_FIELDS}


@dataclass
class GeneratorRun:
    """A trained (or loaded) generator with what produced it."""

    generator: Generator
    config: GeneratorConfig
    split: dict  # dataset, samples_per_class, seed, fingerprint
    segments: torch.Tensor  # [n, S, S] label maps of the split's images, in split order
    history: list[dict] = field(default_factory=list)
    step: int = 0
    path: Path | None = None


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _split_identity(split: FewShotSplit) -> dict:
    return {"dataset": split.dataset, "samples_per_class": split.samples_per_class, "seed": split.seed,
            "fingerprint": split.fingerprint}


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step + 1)


def build_models(config: GeneratorConfig) -> tuple[Generator, Discriminator]:
    torch.manual_seed(config.seed)
    generator = Generator(ngf=config.ngf, encoder_blocks=config.encoder_blocks, decoder_blocks=config.decoder_blocks,
                          working_size=config.working_size, mask_kind=config.mask_kind, soft_edges=config.soft_edges)
    return generator, Discriminator(ndf=config.ndf)


def train_generator(config: GeneratorConfig, train_set: ImageSet, split: FewShotSplit, out_dir: str | os.PathLike, *,
                    resume: bool = True, progress: bool = True) -> GeneratorRun:
    """Train (or resume, or just load if finished) the generator for ``split`` into ``out_dir``.

    Holds the folder's write lock (``outputs.hold``) throughout: a second trainer of the same
    folder is refused. Ctrl-C raises ``TrainingInterrupted`` saying where to resume from.
    """
    if split.fingerprint != train_set.fingerprint():
        raise ValueError(f"split {split.filename} was not drawn from this {train_set.name} data (fingerprint differs)")
    config = config.resolved(train_set.image_size)
    if (config.dataset, config.samples_per_class, config.seed) != (split.dataset, split.samples_per_class, split.seed):
        raise ValueError(f"config is for {config.dataset} n={config.samples_per_class} seed={config.seed}, "
                         f"split is {split.filename}")
    out_dir = Path(out_dir)
    with hold(out_dir, what="generator folder"):
        return _train(config, train_set, split, out_dir, resume=resume, progress=progress)


def _train(config: GeneratorConfig, train_set: ImageSet, split: FewShotSplit, out_dir: Path, *, resume: bool,
           progress: bool) -> GeneratorRun:
    from tqdm.auto import tqdm

    path = out_dir / CHECKPOINT_NAME
    state = None
    if resume and path.exists():  # checked before anything is written: a refused resume changes nothing
        state = _load_checkpoint(path)
        _check_compatible(state, config, split, path)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    few = train_set.subset(split.indices)
    segments = cached_segments(few.images, out_dir / SEGMENTS_NAME, key=f"{split.fingerprint}/{split.filename}",
                               size=config.working_size, scale=config.seg_scale, min_size=config.seg_min_size)

    generator, discriminator = build_models(config)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=config.betas)
    samples_per_epoch = epoch_length(len(few), config.samples_per_class, config.samples_per_class_per_epoch)
    steps_per_epoch = max(1, samples_per_epoch // config.batch_size)
    total_steps = config.steps or config.epochs * steps_per_epoch
    milestones = sorted({max(1, int(f * total_steps)) for f in config.milestones})
    sched_g = torch.optim.lr_scheduler.MultiStepLR(opt_g, milestones, gamma=config.gamma)
    sched_d = torch.optim.lr_scheduler.MultiStepLR(opt_d, milestones, gamma=config.gamma)

    step, history, finished, running = 0, [], False, None
    if state is not None:
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        sched_g.load_state_dict(state["sched_g"])
        sched_d.load_state_dict(state["sched_d"])
        step, history, finished = state["step"], state["history"], state["finished"]
        if state.get("running") is not None:  # loss sums of the log interval the checkpoint fell in
            running = torch.tensor(state["running"])

    generator.to(device)
    discriminator.to(device)
    use_channels_last = config.channels_last and device.type == "cuda"
    if use_channels_last:
        generator.to(memory_format=torch.channels_last)
        discriminator.to(memory_format=torch.channels_last)
    for optimizer in (opt_g, opt_d):  # optimiser state follows the parameters' device
        for param_state in optimizer.state.values():
            for key, value in param_state.items():
                if torch.is_tensor(value) and key != "step":
                    param_state[key] = value.to(device)
    use_amp = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
    laplacian = LaplacianPyramidLoss(levels=3).to(device)

    # The few-shot set lives on the device at the working size, in [-1, 1].
    pool = to_working_size(few.images, config.working_size).to(device) * 2 - 1  # [n, 3, S, S]
    pool_segments = segments.to(device)
    labels = few.labels
    feature_size = config.working_size // 4

    def save(finished: bool):
        _save_checkpoint(path, {
            "config": asdict(config), "split": _split_identity(split), "step": step, "finished": finished,
            "history": history, "running": None if running is None else running.tolist(),
            "generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict(),
        })

    generator.train()
    discriminator.train()
    if running is not None:
        running = running.to(device)
    start_step, order_epoch, order = step, None, None
    bar = tqdm(total=total_steps, initial=step, desc=f"generator {split.filename[:-5]}", disable=not progress)
    try:
        while step < total_steps:
            rng = _step_generator(config.seed, step)
            epoch, offset = divmod(step, steps_per_epoch)
            if epoch != order_epoch:  # the anchor order of an epoch depends only on (seed, epoch)
                order_epoch = epoch
                order = torch.randperm(samples_per_epoch, generator=torch.Generator().manual_seed(config.seed * 7919 + epoch))
            anchors = order[offset * config.batch_size:(offset + 1) * config.batch_size] % len(few)
            n_mix = config.n_mix[int(torch.randint(len(config.n_mix), (1,), generator=rng))]
            members = torch.cat([anchors[:, None], draw_partners(labels[anchors], labels, n_mix - 1, rng)], 1)  # [B, N]
            batch = len(members)
            members = members.to(device)
            images, segs = random_crop_flip([pool[members.flatten()], pool_segments[members.flatten()][:, None]],
                                            pad=config.crop_pad, generator=rng)
            images = images.unflatten(0, (batch, n_mix))  # [B, N, 3, S, S]
            segs = segs[:, 0].unflatten(0, (batch, n_mix))  # [B, N, S, S]
            masks = make_masks(config.mask_kind, segs=segs, batch=batch, n_mix=n_mix, out_size=feature_size,
                               generator=rng, soft_edges=config.soft_edges).to(device)
            fresh_masks = make_masks(config.mask_kind, segs=segs, batch=batch, n_mix=n_mix, out_size=feature_size,
                                     generator=rng, soft_edges=config.soft_edges).to(device)

            # Generator step: the discriminator's weights get no gradients here.
            discriminator.requires_grad_(False)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                features = generator.encode(images)  # [B, N, C, h, w]
                decoded = generator.decode(torch.cat([features.flatten(0, 1), mix(features, masks)]))  # [B*N + B, 3, S, S]
                recon, mixed = decoded[:batch * n_mix].float(), decoded[batch * n_mix:]
                targets = images.flatten(0, 1)
                loss_rec = torch.nn.functional.mse_loss(recon, targets) * n_mix  # = sum over the N inputs of their MSE
                loss_lap = laplacian(recon, targets) * n_mix
                loss_adv = lsgan_loss(discriminator(mixed).float(), real=True)
                loss_g = config.rec_weight * loss_rec + config.lap_weight * loss_lap + config.adv_weight * loss_adv
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

            # Discriminator step: anchors are real, a fresh mix of the same features is fake.
            discriminator.requires_grad_(True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                with torch.no_grad():
                    fake = generator.decode(mix(features.detach(), fresh_masks))
                loss_d = (lsgan_loss(discriminator(images[:, 0]).float(), real=True)
                          + lsgan_loss(discriminator(fake).float(), real=False))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            sched_g.step()
            sched_d.step()
            step += 1
            bar.update(1)

            losses = torch.stack([loss_rec, loss_lap, loss_adv, loss_d]).detach()
            running = losses if running is None else running + losses
            if step % config.log_every == 0 or step == total_steps:
                count = step - (history[-1]["step"] if history else 0)  # steps summed in running, resumes included
                values = (running / count).tolist()  # the only host sync, once per log interval
                history.append({"step": step, "rec": values[0], "lap": values[1], "adv": values[2], "disc": values[3],
                                "lr": sched_g.get_last_lr()[0]})
                bar.set_postfix(rec=f"{values[0]:.4f}", lap=f"{values[1]:.3f}", adv=f"{values[2]:.3f}", d=f"{values[3]:.3f}")
                running = None
            if step % config.checkpoint_every == 0 and step < total_steps:
                save(finished=False)
    except KeyboardInterrupt:
        bar.close()
        raise TrainingInterrupted(f"generator training interrupted at step {step}; {_saved_step(path)}. Rerun with the "
                                  f"same arguments and --resume (resume=True) to continue from there.") from None
    bar.close()
    if step > start_step or not finished:
        save(finished=True)
        # a small sign of completion that status checks read without loading the checkpoint
        write_atomic(out_dir / FINISHED_NAME, json.dumps({"step": step, "history": history[-1:]}) + "\n")
    generator.eval()
    return GeneratorRun(generator, config, _split_identity(split), segments, history, step, path)


def _saved_step(path: Path) -> str:
    try:
        return f"the checkpoint {path} is at step {_load_checkpoint(path)['step']}"
    except CheckpointError:
        return f"no checkpoint was written to {path.parent} yet"


def _save_checkpoint(path: Path, state: dict) -> None:
    with replacing(path) as tmp:  # atomic: a crash never leaves a half-written checkpoint
        torch.save(state, tmp)


def _load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error}); "
                              f"delete it to train from scratch.") from None
    if not isinstance(state, dict) or "config" not in state or "generator" not in state:
        raise CheckpointError(f"{path} is not a HydraMix generator checkpoint; delete it to train from scratch.")
    return state


def _check_compatible(state: dict, config: GeneratorConfig, split: FewShotSplit, path: Path) -> None:
    saved = GeneratorConfig(**state["config"]).training_fields()
    wanted = config.training_fields()
    differing = {k: (saved[k], wanted[k]) for k in wanted if saved.get(k) != wanted[k]}
    if differing:
        details = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in differing.items())
        raise CheckpointError(f"{path} was trained with another config ({details}); "
                              f"use another output folder or delete the checkpoint.")
    if state["split"] != _split_identity(split):
        raise CheckpointError(f"{path} belongs to split {state['split']}, not {_split_identity(split)}.")


def load_generator(path: str | os.PathLike, *, split: FewShotSplit | None = None, device: str = "cpu",
                   require_finished: bool = True) -> GeneratorRun:
    """Load a trained generator; with ``split``, refuse one trained on other data."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise CheckpointError(f"No generator checkpoint at {path}: train it first (train_generator or notebook 02).")
    state = _load_checkpoint(path)
    if require_finished and not state.get("finished"):
        raise CheckpointError(f"{path} is from an unfinished run (step {state['step']}); resume its training first.")
    if split is not None and state["split"] != _split_identity(split):
        raise CheckpointError(f"{path} was trained on {state['split']}, not on {_split_identity(split)}.")
    config = GeneratorConfig(**state["config"])
    generator, _ = build_models(config)
    generator.load_state_dict(state["generator"])
    generator.to(resolve_device(device)).eval()
    segments_file = path.parent / SEGMENTS_NAME
    try:
        segments = torch.load(segments_file, weights_only=True)["segments"]
    except Exception as error:
        raise CheckpointError(f"{segments_file} is missing or unreadable ({type(error).__name__}). It is rebuilt from the "
                              f"images: rerun the generator's training with the same arguments and resume "
                              f"(`hydramix fit-generator ... --resume`, or notebook 02).") from None
    return GeneratorRun(generator, config, state["split"], segments, state["history"], state["step"], path)

