"""The classifier networks, and their evaluation on a test set.

    model = build_classifier("wrn16_8", num_classes=10)      # WRN-16-8, WRN-16-2 or ResNet-50
    model = build_classifier("wrn16_8_harmonic", 10)         # the Harmonic WideResNet (DCT filter banks)
    evaluate(model, test_set, config, device, use_amp)["accuracy"]

Training (runs, packs of runs, ``train_classifier``) is engine.py's.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from .data import ImageSet


class Dropout(nn.Dropout):
    """nn.Dropout that draws from ``generator`` when one is set (a run's own random stream, so
    runs sharing a process or a CUDA graph pool do not share random numbers)."""

    generator: torch.Generator | None = None

    def forward(self, x):
        if not self.training or self.p == 0 or self.generator is None:
            return super().forward(x)
        scale = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator).div_(1 - self.p)
        return x * scale  # as F.dropout: one mask multiply forward and backward


def dct_basis(size: int = 3) -> torch.Tensor:
    """The size x size 2-D DCT-II filters [size*size, size, size], frequency (u, v) at index u*size + v:
    cos(pi (x + 1/2) u / size) cos(pi (y + 1/2) v / size), each scaled to an L1 norm of 1 (as the
    Harmonic Networks of Ulicny et al. 2019 and the GEM benchmark's harmonic pipeline use them)."""
    grid = (torch.arange(size, dtype=torch.float64) + 0.5) * math.pi / size
    cosines = torch.cos(grid[None, :] * torch.arange(size, dtype=torch.float64)[:, None])  # [frequency, position]
    filters = (cosines[:, None, :, None] * cosines[None, :, None, :]).reshape(size * size, size, size)
    return (filters / filters.abs().sum(dim=(1, 2), keepdim=True)).float()


class HarmonicConv2d(nn.Module):
    """A harmonic block (Ulicny et al., Harmonic Networks, 2019): the input is described by fixed
    DCT filters and a learned 1x1 combination of their responses makes the output.

    ``batch_norm=False``: the combination folds into one convolution with the filter
    sum_f w[o, i, f] DCT_f (the same function, at a plain convolution's cost); the learned
    parameters are the coefficients w, so training differs from a plain convolution's through
    the L1-normalised (not orthonormal) basis. ``batch_norm=True`` (the network's first layer):
    each input channel's DCT responses are normalised (BatchNorm without affine) before the 1x1
    combination. Coefficients start Kaiming-normal (fan out), as the reference implementation's.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, stride: int = 1, padding: int = 1,
                 batch_norm: bool = False):
        super().__init__()
        self.stride, self.padding, self.in_channels = stride, padding, in_channels
        self.register_buffer("basis", dct_basis(kernel_size))  # [F, k, k]
        filters = kernel_size * kernel_size
        self.norm = nn.BatchNorm2d(in_channels * filters, affine=False) if batch_norm else None
        # [out, in, F]: 3-D, so Module.to(memory_format=channels_last) leaves it alone (4-D and 5-D it converts)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, filters))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")  # fan out = out * F, as [out, in, F, 1, 1]

    def forward(self, x):
        if self.norm is None:
            kernel = torch.einsum("oif,fxy->oixy", self.weight, self.basis)  # [out, in, k, k]
            return F.conv2d(x, kernel, stride=self.stride, padding=self.padding)
        depthwise = self.basis[:, None].repeat(self.in_channels, 1, 1, 1)  # [in*F, 1, k, k]
        responses = self.norm(F.conv2d(x, depthwise, stride=self.stride, padding=self.padding, groups=self.in_channels))
        return F.conv2d(responses, self.weight.flatten(1)[..., None, None])


def _conv3x3(in_channels: int, out_channels: int, *, stride: int = 1, harmonic: bool = False, first: bool = False):
    if harmonic:
        return HarmonicConv2d(in_channels, out_channels, stride=stride, batch_norm=first)
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class _WideBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float, harmonic: bool = False):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_channels), nn.BatchNorm2d(out_channels)
        self.conv1 = _conv3x3(in_channels, out_channels, stride=stride, harmonic=harmonic)
        self.conv2 = _conv3x3(out_channels, out_channels, harmonic=harmonic)
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
    """WRN-depth-width (Zagoruyko & Komodakis 2016), pre-activation blocks, dropout between convs.

    ``harmonic``: every 3x3 convolution a HarmonicConv2d, the first one with its BatchNorm
    (the Harmonic WideResNet as the GEM benchmark builds it); 1x1 shortcuts stay convolutions.
    """

    def __init__(self, *, depth: int = 16, width: int = 8, num_classes: int = 10, dropout: float = 0.3,
                 harmonic: bool = False):
        super().__init__()
        blocks_per_stage = (depth - 4) // 6
        channels = [16, 16 * width, 32 * width, 64 * width]
        layers = [_conv3x3(3, channels[0], harmonic=harmonic, first=True)]
        for stage in range(3):
            for block in range(blocks_per_stage):
                layers.append(_WideBlock(channels[stage] if block == 0 else channels[stage + 1], channels[stage + 1],
                                         stride=(1 if stage == 0 else 2) if block == 0 else 1, dropout=dropout,
                                         harmonic=harmonic))
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(channels[3]), nn.ReLU(inplace=True),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels[3], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.head(self.features(x))


MODELS = ("wrn16_8", "wrn16_2", "wrn16_8_harmonic", "wrn16_2_harmonic", "resnet50")


def harmonic_variant(name: str) -> str:
    """The Harmonic version of a WideResNet ('wrn16_8' -> 'wrn16_8_harmonic'): the model method 'harmonic' trains."""
    if name.endswith("_harmonic"):
        return name
    if f"{name}_harmonic" not in MODELS:
        raise ValueError(f"method 'harmonic' needs a WideResNet (wrn16_8 or wrn16_2), got model {name!r}")
    return f"{name}_harmonic"


def build_classifier(name: str, num_classes: int) -> nn.Module:
    if name in ("wrn16_8", "wrn16_2", "wrn16_8_harmonic", "wrn16_2_harmonic"):
        return WideResNet(depth=16, width=int(name[6]), num_classes=num_classes, dropout=0.3,
                          harmonic=name.endswith("_harmonic"))
    if name == "resnet50":
        return torchvision.models.resnet50(weights=None, num_classes=num_classes)
    raise ValueError(f"Unknown model {name!r}: use one of {', '.join(MODELS)}")


@torch.no_grad()
@torch.no_grad()
def evaluate(model: nn.Module, test_set: ImageSet, config, device: torch.device, use_amp: bool) -> dict:
    """Top-1 and per-class accuracy on the test set (or its first ``config.test_subset`` images per class)."""
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
