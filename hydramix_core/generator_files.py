"""A generator run on disk: its configuration, its checkpoint and segment files, and loading a
finished generator for augmentation without the trainer (train_generator.py).

    run = load_generator("results/smoke/checkpoints/generators/hydramix/cifar10_n5_seed0")
    run.generator, run.config, run.segments     # the network, its GeneratorConfig, the split's segments

A generator folder holds ``generator.pt`` (config, split identity, step, history, weights;
optimiser and random states while unfinished), ``segments.pt`` (the split's Felzenszwalb
label maps, made with it) and, once finished, ``finished.json``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .masks import MASK_KINDS
from .models import Discriminator, Generator
from .outputs import positive, save_atomic
from .runtime import resolve_device
from .splits import FewShotSplit

CHECKPOINT_NAME = "generator.pt"
FINISHED_NAME = "finished.json"
SEGMENTS_NAME = "segments.pt"
# Fields that do not change what is trained; a resumed run may differ in these.
_RUNTIME_FIELDS = ("checkpoint_every", "log_every", "device")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used as asked; the message says what to do."""


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


def split_identity(split: FewShotSplit) -> dict:
    return {"dataset": split.dataset, "samples_per_class": split.samples_per_class, "seed": split.seed,
            "fingerprint": split.fingerprint}


def build_models(config: GeneratorConfig) -> tuple[Generator, Discriminator]:
    with torch.random.fork_rng(devices=[]):  # the weights' initialisation depends on the seed alone
        torch.manual_seed(config.seed)
        generator = Generator(ngf=config.ngf, encoder_blocks=config.encoder_blocks, decoder_blocks=config.decoder_blocks,
                              working_size=config.working_size, mask_kind=config.mask_kind, soft_edges=config.soft_edges)
        return generator, Discriminator(ndf=config.ndf)


def save_checkpoint(path: Path, state: dict) -> None:
    save_atomic(state, path)  # atomic: a crash never leaves a half-written checkpoint


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error}); "
                              f"delete it to train from scratch.") from None
    if not isinstance(state, dict) or "config" not in state or "generator" not in state:
        raise CheckpointError(f"{path} is not a HydraMix generator checkpoint; delete it to train from scratch.")
    return state


def check_compatible(state: dict, config: GeneratorConfig, split: FewShotSplit, path: Path) -> None:
    saved = GeneratorConfig(**state["config"]).training_fields()
    wanted = config.training_fields()
    differing = {k: (saved[k], wanted[k]) for k in wanted if saved.get(k) != wanted[k]}
    if differing:
        details = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in differing.items())
        raise CheckpointError(f"{path} was trained with another config ({details}); "
                              f"use another output folder or delete the checkpoint.")
    if state["split"] != split_identity(split):
        raise CheckpointError(f"{path} belongs to split {state['split']}, not {split_identity(split)}.")


def load_generator(path: str | os.PathLike, *, split: FewShotSplit | None = None, device: str = "cpu",
                   require_finished: bool = True, fingerprint: str | None = None) -> GeneratorRun:
    """Load a trained generator; with ``split`` or ``fingerprint`` (of the training images),
    refuse one trained on other data. Its segments cache must be the one made with it."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise CheckpointError(f"No generator checkpoint at {path}: train it first (train_generator or notebook 02).")
    state = load_checkpoint(path)
    if require_finished and not state.get("finished"):
        raise CheckpointError(f"{path} is from an unfinished run (step {state['step']}); resume its training first.")
    if split is not None and state["split"] != split_identity(split):
        raise CheckpointError(f"{path} was trained on {state['split']}, not on {split_identity(split)}.")
    if fingerprint is not None and state["split"].get("fingerprint") != fingerprint:
        raise CheckpointError(f"{path} was trained on other images (fingerprint {state['split'].get('fingerprint')}) "
                              f"than its folder's run record says ({fingerprint}): the folder mixes files of "
                              f"different runs. Train it again with --overwrite.")
    config = GeneratorConfig(**state["config"])
    generator, _ = build_models(config)
    generator.load_state_dict(state["generator"])
    generator.to(resolve_device(device)).eval()
    segments_file = path.parent / SEGMENTS_NAME
    rebuild = ("It is rebuilt from the images when the generator's training is rerun with the same arguments "
               "and resumed (`hydramix fit-generator ... --resume`, or notebook 02).")
    try:
        saved = torch.load(segments_file, weights_only=True)
        segments, meta = saved["segments"], saved.get("meta", {})
    except Exception as error:
        raise CheckpointError(f"{segments_file} is missing or unreadable ({type(error).__name__}). {rebuild}") from None
    identity = split_identity(split) if split is not None else state["split"]
    if (not str(meta.get("key", "")).startswith(f"{identity['fingerprint']}/") or meta.get("size") != config.working_size
            or meta.get("count") != len(segments)):
        raise CheckpointError(f"{segments_file} belongs to another generator run (made for {meta.get('key')!r} at "
                              f"{meta.get('size')} px, not for this checkpoint's images at {config.working_size} px). "
                              f"Delete it. {rebuild}")
    return GeneratorRun(generator, config, state["split"], segments, state["history"], state["step"], path)

