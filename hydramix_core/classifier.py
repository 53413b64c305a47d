"""The classifier networks, and their evaluation on a test set.

    model = build_classifier("wrn16_8", num_classes=10)      # WRN-16-8, WRN-16-2 or ResNet-50
    evaluate(model, test_set, config, device, use_amp)["accuracy"]

Training (runs, packs of runs, ``train_classifier``) is engine.py's.
"""

from __future__ import annotations

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
