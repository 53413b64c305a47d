"""Classifiers trained from scratch on a few-shot split, with any augmentation method.

    config = ClassifierConfig(dataset="cifar10", samples_per_class=5, seed=0, method="hydramix", model="wrn16_2")
    record = train_classifier(config, train_set, test_set, split, generator_run=run)
    record["accuracy"]

Protocol (ChimeraMix's, ``PAPER.md`` section 2): SGD with Nesterov momentum 0.9, cosine
schedule per step, an epoch = the split repeated to ~500 samples per class (STL-10: 120),
reflect-pad random crop + horizontal flip, normalisation mean = std = 0.5, top-1 accuracy
on the test set after the last epoch.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from .augment import HydraMixAugment
from .data import ImageSet
from .masks import cached_segments
from .outputs import positive
from .runtime import cpu_numerics
from .splits import FewShotSplit

BASE_METHODS = ("baseline", "cutout", "random_erasing", "autoaugment", "trivialaugment", "mixup", "cutmix",
                "chimeramix_grid", "chimeramix_seg", "hydramix", "hydramix_direct", "chimeramix_grid_direct",
                "chimeramix_seg_direct")
# Methods that draw from a trained generator, and the mask kind that generator was trained with.
GENERATOR_METHODS = {"hydramix": "hydramix", "chimeramix_grid": "chimeramix_grid", "chimeramix_seg": "chimeramix_seg"}
DIRECT_METHODS = {"hydramix_direct": "hydramix", "chimeramix_grid_direct": "chimeramix_grid",
                  "chimeramix_seg_direct": "chimeramix_seg"}


def parse_method(method: str) -> tuple[str, bool]:
    """'hydramix+autoaugment' -> ('hydramix', True). Raises on unknown names."""
    parts = method.split("+")
    base, extras = parts[0], parts[1:]
    if base not in BASE_METHODS or any(extra != "autoaugment" for extra in extras) or (extras and base == "autoaugment"):
        raise ValueError(f"Unknown method {method!r}: use one of {', '.join(BASE_METHODS)}, optionally '+autoaugment'")
    return base, bool(extras) or base == "autoaugment"


# --- models ------------------------------------------------------------------------------

class Dropout(nn.Dropout):
    """nn.Dropout that draws from ``generator`` when one is set (a run's own random stream, so
    runs sharing a process or a CUDA graph pool do not share random numbers)."""

    generator: torch.Generator | None = None

    def forward(self, x):
        if not self.training or self.p == 0 or self.generator is None:
            return super().forward(x)
        scale = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator).div_(1 - self.p)
        return x * scale  # as F.dropout: one mask multiply forward and backward


class _WideBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_channels), nn.BatchNorm2d(out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.dropout = Dropout(dropout)
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
                         if stride != 1 or in_channels != out_channels else None)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-depth-width (Zagoruyko & Komodakis 2016), pre-activation blocks, dropout between convs."""

    def __init__(self, *, depth: int = 16, width: int = 8, num_classes: int = 10, dropout: float = 0.3):
        super().__init__()
        blocks_per_stage = (depth - 4) // 6
        channels = [16, 16 * width, 32 * width, 64 * width]
        layers = [nn.Conv2d(3, channels[0], 3, padding=1, bias=False)]
        for stage in range(3):
            for block in range(blocks_per_stage):
                layers.append(_WideBlock(channels[stage] if block == 0 else channels[stage + 1], channels[stage + 1],
                                         stride=(1 if stage == 0 else 2) if block == 0 else 1, dropout=dropout))
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(channels[3]), nn.ReLU(inplace=True),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels[3], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.head(self.features(x))


def build_classifier(name: str, num_classes: int) -> nn.Module:
    if name == "wrn16_8":
        return WideResNet(depth=16, width=8, num_classes=num_classes, dropout=0.3)
    if name == "wrn16_2":
        return WideResNet(depth=16, width=2, num_classes=num_classes, dropout=0.3)
    if name == "resnet50":
        return torchvision.models.resnet50(weights=None, num_classes=num_classes)
    raise ValueError(f"Unknown model {name!r}: use wrn16_8, wrn16_2 or resnet50")


# --- config ------------------------------------------------------------------------------

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
    n_mix: tuple[int, ...] | None = None  # None: the generator's own (direct methods: 2, 3, 4 / 2)
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
    amp: str = "auto"  # "auto": bf16 on CUDA, off on CPU; "bf16"; "off"
    channels_last: bool = True  # CUDA only
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


# --- training ----------------------------------------------------------------------------

def make_augment(config: ClassifierConfig, few: ImageSet, generator_run=None, segments_cache=None,
                 device=None) -> HydraMixAugment | None:
    """The batch-level HydraMix/ChimeraMix augmentation a method needs (None for the classic ones);
    ``device``: where the direct variants keep their pool (default: the images')."""
    base, _ = parse_method(config.method)
    if base in GENERATOR_METHODS:
        if generator_run is None:
            raise ValueError(f"method {config.method!r} needs a trained generator for {config.run_name}")
        if generator_run.config.mask_kind != GENERATOR_METHODS[base]:
            raise ValueError(f"method {config.method!r} needs a generator trained with {GENERATOR_METHODS[base]} masks, "
                             f"got one trained with {generator_run.config.mask_kind}")
        identity = {"dataset": config.dataset, "samples_per_class": config.samples_per_class, "seed": config.seed}
        if {k: generator_run.split[k] for k in identity} != identity:
            raise ValueError(f"the generator was trained on {generator_run.split}, not on {identity}")
        n_mix = config.n_mix or generator_run.config.n_mix
        return HydraMixAugment(generator_run.generator, few.images, few.labels, generator_run.segments, p_gen=config.p_gen,
                               n_mix=n_mix, per_batch=config.per_batch, crop_pad=generator_run.config.crop_pad,
                               bank_size=config.bank_size, bank_refresh=config.bank_refresh)
    if base in DIRECT_METHODS:
        from .train_generator import GeneratorConfig

        kind = DIRECT_METHODS[base]
        # Segment at the size and scale the generator would use, so direct and generated masks match.
        sizes = GeneratorConfig(dataset=config.dataset, samples_per_class=config.samples_per_class,
                                seed=config.seed).resolved(few.image_size)
        segments = None if kind == "chimeramix_grid" else cached_segments(
            few.images, segments_cache, key=few.fingerprint(), size=sizes.working_size, scale=sizes.seg_scale,
            min_size=sizes.seg_min_size)
        n_mix = config.n_mix or ((2,) if kind.startswith("chimeramix") else (2, 3, 4))
        return HydraMixAugment(None, few.images, few.labels, segments, p_gen=config.p_gen, n_mix=n_mix, mask_kind=kind,
                               per_batch=config.per_batch, device=device)
    return None


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
    from .engine import Run, train_pack

    run = Run(config, train_set, test_set, split, generator_run=generator_run, segments_cache=segments_cache,
              augment=augment, checkpoint=checkpoint, checkpoint_every=checkpoint_every, graphed=graphed)
    return train_pack([run], progress=progress)[0]


@torch.no_grad()
def evaluate(model: nn.Module, test_set: ImageSet, config: ClassifierConfig, device: torch.device, use_amp: bool) -> dict:
    """Top-1 and per-class accuracy on the test set (or its first ``test_subset`` images per class)."""
    model.eval()
    images, labels = test_set.images, test_set.labels
    if config.test_subset:
        keep = torch.cat([torch.where(labels == c)[0][:config.test_subset] for c in range(test_set.num_classes)])
        images, labels = images[keep], labels[keep]
    predictions = []
    for start in range(0, len(images), 500):
        batch = (images[start:start + 500].to(device).float() / 255 - 0.5) / 0.5
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            predictions.append(model(batch).argmax(1).cpu())
    correct = (torch.cat(predictions) == labels).float()
    per_class = [correct[labels == c].mean().item() for c in range(test_set.num_classes)]
    return {"accuracy": correct.mean().item(), "per_class_accuracy": per_class, "test_images": len(labels)}


def device_name(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3' or 'cpu (AMD EPYC 9R14, 2 threads)': what a timing was measured on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu ({model}, {torch.get_num_threads()} threads)"


def versions() -> dict:
    import numpy

    from . import __version__

    return {"hydramix": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "python": platform.python_version(), "cpu_numerics": cpu_numerics()}
