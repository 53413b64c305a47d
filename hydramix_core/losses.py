"""Generator losses: reconstruction, Laplacian-pyramid "perceptual" loss (no pretrained
network), and least-squares GAN."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _binomial_kernel(channels: int) -> torch.Tensor:
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    kernel = torch.outer(taps, taps) / 256.0  # 5x5, sums to 1
    return kernel.expand(channels, 1, 5, 5).contiguous()


class LaplacianPyramidLoss(nn.Module):
    """Sum over ``levels`` pyramid levels of the L1 distance between Laplacian bands."""

    def __init__(self, *, levels: int = 3, channels: int = 3):
        super().__init__()
        self.levels = levels
        self.register_buffer("kernel", _binomial_kernel(channels), persistent=False)

    def _blur(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel.to(x.dtype), groups=x.shape[1])

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        bands = []
        for _ in range(self.levels):
            down = self._blur(x, self.kernel)[..., ::2, ::2]
            up = torch.zeros_like(x)
            up[..., ::2, ::2] = down  # zero insertion; the 4x kernel restores the mean
            bands.append(x - self._blur(up, 4 * self.kernel))
            x = down
        return bands

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(F.l1_loss(a, b) for a, b in zip(self.pyramid(prediction), self.pyramid(target)))


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN: mean (score - 1)^2 for real targets, score^2 for fake."""
    return F.mse_loss(scores, torch.full_like(scores, 1.0 if real else 0.0))
