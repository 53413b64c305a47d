"""Segmentations and mixing masks.

Every sampler returns M in [0,1]^{B x N x h x w} with sum_i M_i = 1 at every pixel; image i
of a tuple shows through M_i. Segment-based samplers take label maps ``segs`` [B, N, H, W]
(one Felzenszwalb segmentation per tuple image, transformed with the image) and return
masks at ``out_size`` (the generator's feature resolution, H/4).

Samplers (``make_masks(kind, ...)``):
- ``hydramix``  [ours] N-way segment pasting: a random order of the N images; the first is
  the canvas, the image at position k (k = 1..N-1) pastes each of its own segments with
  probability 1/(k+1) over what is there. Each image's expected share is then 1/N (as in
  reservoir sampling), so every image of the tuple shows.
- ``grid``      [ours] N-way grid: each cell of a g x g grid goes to one of the N images
  uniformly; nearest-upsampled with a random shift (ChimeraMix's grid with N images).
- ``chimeramix_seg``  [chimera] N = 2: a random contiguous range of image b's segment ids
  shows image a, the rest shows image b.
- ``chimeramix_grid`` [chimera] N = 2: 4 x 4 Bernoulli(0.5) grid, nearest-upsampled, shifted.

Hard masks are downsampled with nearest neighbour (ChimeraMix's choice) and stay binary;
``soft_edges`` > 0 blurs them (Gaussian, sigma in output pixels) and renormalises.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .outputs import save_atomic

MASK_KINDS = ("hydramix", "grid", "chimeramix_seg", "chimeramix_grid")


# --- segmentation ------------------------------------------------------------------------

def felzenszwalb_segments(images: torch.Tensor, *, size: int, scale: float, min_size: int, progress: bool = False) -> torch.Tensor:
    """Felzenszwalb label maps of uint8 images [N,3,H,W], computed at ``size`` x ``size``.

    Returns int16 [N, size, size], labels 0..S-1 per image.
    """
    from skimage.segmentation import felzenszwalb
    from tqdm.auto import tqdm

    resized = to_working_size(images, size)
    pixels = (resized.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    maps = [felzenszwalb(image, scale=scale, sigma=0.8, min_size=min_size)
            for image in tqdm(pixels, desc="segmenting", disable=not progress, leave=False)]
    return torch.from_numpy(np.stack(maps).astype(np.int16))


def to_working_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 or float [B,3,H,W] -> float [B,3,size,size] in [0,1] (bilinear, antialiased down)."""
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if images.shape[-1] != size or images.shape[-2] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                               antialias=images.shape[-1] > size)
    return images


def cached_segments(images: torch.Tensor, cache_path: str | os.PathLike | None, *, key: str, size: int,
                    scale: float, min_size: int) -> torch.Tensor:
    """Segment once and keep the result at ``cache_path`` (checked against ``key`` and the parameters)."""
    meta = {"key": key, "size": size, "scale": scale, "min_size": min_size, "count": len(images)}
    if cache_path is not None and Path(cache_path).exists():
        try:
            saved = torch.load(cache_path, weights_only=True)
        except Exception as error:  # a cache: an unreadable copy is rebuilt, not fatal
            warnings.warn(f"{cache_path} is unreadable ({type(error).__name__}); segmenting the images again")
            saved = {}
        if saved.get("meta") == meta:
            return saved["segments"]
    segments = felzenszwalb_segments(images, size=size, scale=scale, min_size=min_size, progress=True)
    if cache_path is not None:
        save_atomic({"meta": meta, "segments": segments}, cache_path)
    return segments


# --- joint crop / flip -------------------------------------------------------------------

def draw_device(generator: torch.Generator | None, default: torch.device) -> torch.device:
    """Where random numbers are drawn: on the generator's device (CPU draws stay CPU draws, whatever
    the data's device), else with the global generator of ``default``."""
    return generator.device if generator is not None else default


def random_crop_flip(tensors: list[torch.Tensor], *, pad: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Apply one reflect-pad random crop + horizontal flip per sample to every tensor in the list.

    All tensors are [B, C, H, W] of the same B, H, W (images and their label maps); labels
    pass through unchanged in value (reflect padding copies, it does not interpolate).
    Random numbers are drawn on the generator's device (none: the tensors' device).
    """
    batch, height, width = tensors[0].shape[0], tensors[0].shape[-2], tensors[0].shape[-1]
    device = tensors[0].device
    draws = draw_device(generator, device)
    dy = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=draws).to(device)
    dx = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=draws).to(device)
    flip = (torch.rand(batch, generator=generator, device=draws) < 0.5).to(device)
    rows = dy[:, None] + torch.arange(height, device=device)  # [B, H]
    cols = dx[:, None] + torch.arange(width, device=device)  # [B, W]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    index_b = torch.arange(batch, device=device)[:, None, None]
    out = []
    for tensor in tensors:
        padded = F.pad(tensor.float(), (pad, pad, pad, pad), mode="reflect") if pad else tensor.float()
        cropped = padded.permute(0, 2, 3, 1)[index_b, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
        out.append(cropped.permute(0, 3, 1, 2).to(tensor.dtype).contiguous())
    return out


# --- masks -------------------------------------------------------------------------------

def make_masks(kind: str, *, segs: torch.Tensor | None = None, batch: int | None = None, n_mix: int | None = None,
               out_size: int, generator: torch.Generator | None, soft_edges: float = 0.0, grid_size: int = 4,
               num_segments: int | None = None) -> torch.Tensor:
    """Sample masks [B, N, out_size, out_size]; see the module docstring for the kinds.

    Random numbers are drawn on the generator's device (none: the global generator of the
    segmentations' device, or the CPU's for grids); segment masks are returned on the
    segmentations' device, grid masks on the generator's. ``num_segments`` (an upper bound
    on the label count) spares the host a look at ``segs`` (needed inside a CUDA graph).
    """
    if kind in ("hydramix", "chimeramix_seg"):
        if segs is None:
            raise ValueError(f"mask kind {kind!r} needs segmentations")
        masks = (hydramix_segment_masks(segs, generator, num_segments=num_segments) if kind == "hydramix"
                 else chimeramix_segment_masks(segs, generator))
        masks = F.interpolate(masks, size=(out_size, out_size), mode="nearest")
    elif kind in ("grid", "chimeramix_grid"):
        if batch is None or n_mix is None:
            raise ValueError(f"mask kind {kind!r} needs batch and n_mix")
        if kind == "chimeramix_grid" and n_mix != 2:
            raise ValueError(f"chimeramix_grid mixes 2 images, got n_mix={n_mix}")
        masks = grid_masks(batch, n_mix, out_size=out_size, grid_size=grid_size, generator=generator)
    else:
        raise ValueError(f"Unknown mask kind {kind!r}; choose one of {', '.join(MASK_KINDS)}")
    return soften(masks, soft_edges) if soft_edges > 0 else masks


def hydramix_segment_masks(segs: torch.Tensor, generator: torch.Generator | None, *, num_segments: int | None = None) -> torch.Tensor:
    """N-way segment pasting at the segmentation's resolution: segs [B,N,H,W] -> [B,N,H,W] one-hot."""
    segs = segs.long()
    batch, n_mix = segs.shape[:2]
    if n_mix < 1:
        raise ValueError(f"n_mix must be >= 1, got {n_mix}")
    num_segments = num_segments or int(segs.max()) + 1
    device = segs.device
    draws = draw_device(generator, device)
    position = torch.argsort(torch.rand(batch, n_mix, generator=generator, device=draws), dim=1).argsort(dim=1)  # [B, N]
    paste_prob = 1.0 / (position.float() + 1)  # canvas (position 0) pastes everything
    chosen = torch.rand(batch, n_mix, num_segments, generator=generator, device=draws) < paste_prob[..., None]  # [B, N, S]
    chosen, position = chosen.to(device), position.to(device)
    pasted = torch.gather(chosen, 2, segs.flatten(2)).view_as(segs)  # [B, N, H, W]
    priority = pasted * (position[..., None, None] + 1)  # later pastes win; 0 where not pasted
    return _one_hot(priority.argmax(dim=1), n_mix)


def chimeramix_segment_masks(segs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """ChimeraMix+Seg: image a shows on a random contiguous id range [l, u) of image b's segments."""
    if segs.shape[1] != 2:
        raise ValueError(f"chimeramix_seg mixes 2 images, got {segs.shape[1]}")
    seg_b = segs[:, 1].long()
    draws = draw_device(generator, seg_b.device)
    num_segments = seg_b.flatten(1).max(1).values.to(draws) + 1  # [B]
    low = (torch.rand(len(seg_b), generator=generator, device=draws) * (num_segments - 1).clamp(min=1)).long()
    high_span = torch.maximum(low + 2, num_segments) - (low + 1)
    high = low + 1 + (torch.rand(len(seg_b), generator=generator, device=draws) * high_span).long()
    low, high = low.to(seg_b.device)[:, None, None], high.to(seg_b.device)[:, None, None]
    show_a = ((seg_b >= low) & (seg_b < high)).float()
    return torch.stack([show_a, 1 - show_a], dim=1)


def grid_masks(batch: int, n_mix: int, *, out_size: int, grid_size: int, generator: torch.Generator | None) -> torch.Tensor:
    """Each cell of a grid_size^2 grid goes to one of n_mix images (ChimeraMix's layout: nearest-
    upsampled to out_size + out_size // grid_size, then cropped at a random shift)."""
    device = draw_device(generator, torch.device("cpu"))
    cells = torch.randint(0, n_mix, (batch, 1, grid_size, grid_size), generator=generator, device=device).float()
    pad = max(1, out_size // grid_size)
    upsampled = F.interpolate(cells, size=(out_size + pad, out_size + pad), mode="nearest")[:, 0].long()
    dy = torch.randint(0, pad, (batch,), generator=generator, device=device)
    dx = torch.randint(0, pad, (batch,), generator=generator, device=device)
    rows = dy[:, None] + torch.arange(out_size, device=device)  # [B, out]
    cols = dx[:, None] + torch.arange(out_size, device=device)
    owner = upsampled[torch.arange(batch, device=device)[:, None, None], rows[:, :, None], cols[:, None, :]]  # [B, out, out]
    return _one_hot(owner, n_mix)


def _one_hot(owner: torch.Tensor, n_mix: int) -> torch.Tensor:
    """[B, H, W] image indices -> one-hot masks [B, N, H, W] (no host check of the index range)."""
    return (owner[:, None] == torch.arange(n_mix, device=owner.device)[None, :, None, None]).float()


def soften(masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-blur each mask channel and renormalise so the channels still sum to one."""
    radius = max(1, math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=masks.dtype, device=masks.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = masks.shape[1]
    blurred = F.pad(masks, (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(blurred, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return blurred / blurred.sum(1, keepdim=True)
