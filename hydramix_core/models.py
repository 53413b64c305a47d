"""Generator (encoder, mixer, decoder) and PatchGAN discriminator.

Architecture as ChimeraMix's (CycleGAN-style, InstanceNorm + ReLU), generalised to mixing
N feature maps. Parameter counts at ngf = ndf = 64 equal the official models': encoder
2,738,816, decoder 2,532,547, discriminator 2,764,737. Unlike the released ChimeraMix
decoder, ours runs its residual blocks.

Images enter and leave the networks in [-1, 1] at the working size (64 for 32x32 data,
96 for STL-10); features are [C = 4 ngf, size/4, size/4].
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .masks import draw_device, make_masks, to_working_size


# Normalise channels_last inputs with layout-preserving operations (InstanceNorm below); False:
# torch's kernel everywhere (benchmarks/sweep_throughput.py times both on a GPU).
PRESERVE_LAYOUT_NORM = True


class InstanceNorm(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (no affine, no running statistics; the same state dict) that keeps
    a channels_last input channels_last. Torch's kernel normalises through a contiguous copy
    and returns NCHW, so every norm layer of a channels_last generator (CUDA) would change the
    layout twice; here the statistics come from ``var_mean`` over the spatial dimensions in
    float32 and the rest is elementwise, which keeps the layout. Contiguous NCHW inputs (the
    CPU) go through torch's kernel, bit for bit as before."""

    def forward(self, x):
        if PRESERVE_LAYOUT_NORM and x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
                memory_format=torch.channels_last):
            wide = x.float()
            var, mean = torch.var_mean(wide, dim=(2, 3), keepdim=True, correction=0)
            return ((wide - mean) * torch.rsqrt(var + self.eps)).to(x.dtype)
        return super().forward(x)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, *, bias: bool):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), InstanceNorm(channels), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), InstanceNorm(channels),
        )

    def forward(self, x):
        return x + self.block(x)


class Encoder(nn.Module):
    """[B,3,S,S] -> [B,4ngf,S/4,S/4]: 7x7 conv, two stride-2 convs, residual blocks."""

    def __init__(self, *, ngf: int = 64, blocks: int = 2):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), InstanceNorm(ngf), nn.ReLU(inplace=True),
            nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1), InstanceNorm(2 * ngf), nn.ReLU(inplace=True),
            nn.Conv2d(2 * ngf, 4 * ngf, 3, stride=2, padding=1), InstanceNorm(4 * ngf), nn.ReLU(inplace=True),
            *[ResidualBlock(4 * ngf, bias=True) for _ in range(blocks)],
        )

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """[B,4ngf,S/4,S/4] -> [B,3,S,S] in [-1,1]: residual blocks, two 2x transposed convs, 7x7 conv, tanh."""

    def __init__(self, *, ngf: int = 64, blocks: int = 2):
        super().__init__()
        # Convolutions before InstanceNorm carry no bias (it would be normalised away), as in ChimeraMix.
        self.net = nn.Sequential(
            *[ResidualBlock(4 * ngf, bias=False) for _ in range(blocks)],
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 2, stride=2, bias=False), InstanceNorm(2 * ngf), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * ngf, ngf, 2, stride=2, bias=False), InstanceNorm(ngf), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh(),
        )

    def forward(self, features):
        return self.net(features)


def mix(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """F_mix = sum_i M_i * F_i: features [B,N,C,h,w], masks [B,N,h,w] -> [B,C,h,w]."""
    if features.shape[:2] != masks.shape[:2] or features.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"features {tuple(features.shape)} and masks {tuple(masks.shape)} do not match")
    return (features * masks.unsqueeze(2).to(features.dtype)).sum(1)


class Generator(nn.Module):
    """Encoder + mask mixing + decoder, plus ``sample`` for augmentation."""

    def __init__(self, *, ngf: int = 64, encoder_blocks: int = 2, decoder_blocks: int = 2, working_size: int = 64,
                 mask_kind: str = "hydramix", soft_edges: float = 0.0):
        super().__init__()
        self.encoder = Encoder(ngf=ngf, blocks=encoder_blocks)
        self.decoder = Decoder(ngf=ngf, blocks=decoder_blocks)
        self.working_size, self.mask_kind, self.soft_edges = working_size, mask_kind, soft_edges

    @property
    def feature_size(self) -> int:
        return self.working_size // 4

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[B,N,3,S,S] in [-1,1] -> [B,N,C,S/4,S/4], all N encoded in one batch."""
        batch, n_mix = images.shape[:2]
        return self.encoder(images.flatten(0, 1)).unflatten(0, (batch, n_mix))

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        return self.decoder(features)

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Mix tuples: images [B,N,3,S,S] in [-1,1], masks [B,N,S/4,S/4] -> [B,3,S,S] in [-1,1]."""
        return self.decode(mix(self.encode(images), masks))

    @torch.no_grad()
    def sample(self, images: torch.Tensor, labels: torch.Tensor, segs: torch.Tensor | None, n_mix: int, *,
               pool: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None,
               generator: torch.Generator | None = None, return_masks: bool = False):
        """One new image per input image, mixed with n_mix - 1 partners of its own class.

        images: uint8 or float-in-[0,1] [B,3,H,W] (any H = W); labels [B]; segs: label maps
        [B,S,S] at the working size (needed by segment masks). Partners are drawn from
        ``pool`` = (images, labels, segs), by default the inputs themselves; a class with a
        single image mixes with itself. Returns float [B,3,H,W] in [0,1] on the input's
        device (and the masks if asked).
        """
        if n_mix < 1:
            raise ValueError(f"n_mix must be >= 1, got {n_mix}")
        pool_images, pool_labels, pool_segs = pool if pool is not None else (images, labels, segs)
        generator = generator or torch.Generator().manual_seed(0)
        classes = ClassPool(pool_labels)
        classes.check(labels)
        partners = classes.draw(labels, n_mix - 1, generator)  # [B, N-1]
        tuple_images = torch.cat([images[:, None], pool_images[partners]], dim=1)  # [B, N, 3, H, W]
        tuple_segs = None if segs is None else torch.cat([segs[:, None], pool_segs[partners]], dim=1)
        return self.mix_tuples(tuple_images, tuple_segs, generator=generator, return_masks=return_masks)

    @torch.no_grad()
    def mix_tuples(self, tuple_images: torch.Tensor, tuple_segs: torch.Tensor | None, *, generator: torch.Generator,
                   return_masks: bool = False):
        """Mix given tuples: uint8 or [0,1] images [B,N,3,H,W], label maps [B,N,S,S] -> [B,3,H,W] in [0,1]."""
        batch, n_mix, size = tuple_images.shape[0], tuple_images.shape[1], tuple_images.shape[-1]
        device = next(self.parameters()).device
        working = to_working_size(tuple_images.flatten(0, 1).to(device), self.working_size) * 2 - 1
        if tuple_segs is not None:
            tuple_segs = tuple_segs.to(device)
            if tuple_segs.shape[-1] != self.working_size:
                raise ValueError(f"segmentations are {tuple_segs.shape[-1]}x{tuple_segs.shape[-1]}, the generator works "
                                 f"at {self.working_size}x{self.working_size}: segment at the working size")
        masks = make_masks(self.mask_kind, segs=tuple_segs, batch=batch, n_mix=n_mix, out_size=self.feature_size,
                           generator=generator, soft_edges=self.soft_edges).to(device)
        out = resize_output(self(working.unflatten(0, (batch, n_mix)), masks), size)
        return (out, masks) if return_masks else out


class ClassPool:
    """Pool indices grouped by class, so that same-class images are drawn on the device without a
    host synchronisation (inside a CUDA graph too): class c's images are
    ``members[start[c] : start[c] + count[c]]``."""

    def __init__(self, labels: torch.Tensor):
        host = labels.cpu()
        self.labels = set(host.tolist())
        counts = torch.bincount(host, minlength=int(host.max()) + 1)
        self.members = torch.argsort(host, stable=True).to(labels.device)
        self.start, self.count = (torch.cumsum(counts, 0) - counts).to(labels.device), counts.to(labels.device)

    def check(self, labels: torch.Tensor) -> None:
        """Refuse labels without images in the pool (a host look: call it outside CUDA graphs)."""
        missing = set(labels.tolist()) - self.labels
        if missing:
            raise ValueError(f"no images of class(es) {sorted(missing)} to mix with")

    def draw(self, labels: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
        """For each label, ``count`` pool indices of its class, uniformly with repetition: [B, count]."""
        device = self.members.device
        labels = labels.to(device)
        offset = torch.rand(len(labels), count, generator=generator, device=draw_device(generator, device)).to(device)
        size = self.count[labels][:, None]
        return self.members[self.start[labels][:, None] + torch.minimum((offset * size).long(), size - 1)]


class Discriminator(nn.Module):
    """PatchGAN: 4x4 stride-2 convs 3 -> ndf -> 2ndf -> 4ndf -> 8ndf (InstanceNorm from the second,
    LeakyReLU 0.2), then a 4x4 conv to one score per patch. Unconditional."""

    def __init__(self, *, ndf: int = 64):
        super().__init__()
        layers, channels = [], 3
        for index, out in enumerate([ndf, 2 * ndf, 4 * ndf, 8 * ndf]):
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1)]
            layers += [InstanceNorm(out)] if index else []
            layers += [nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        layers += [nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(channels, 1, 4, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images):
        return self.net(images)


def resize_output(images: torch.Tensor, size: int) -> torch.Tensor:
    """Generator output [-1,1] at the working size -> [0,1] at ``size``."""
    images = (images.float() + 1) / 2
    if images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return images.clamp(0, 1)
