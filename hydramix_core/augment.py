"""Batch augmentations with torchvision v2's call shape: ``(images, labels) -> (images, labels)``.

    augment = HydraMixAugment.from_generator("runs/gen", few.images, few.labels, p_gen=0.5)
    images, labels = augment(images, labels)   # float [B,3,H,W] in [0,1], int64 [B]

``HydraMixAugment`` replaces each sample, with probability ``p_gen``, by a generated image of
the same class: N images of that class are drawn from the few-shot pool (repeats allowed),
cropped and flipped together with their segmentations, mixed by the generator under a
fresh mask. Labels are kept (no label mixing). ``per_batch=True`` instead replaces the whole
batch with probability ``p_gen`` (ChimeraMix's rule). Without a generator
(``generator=None``) the same masks mix the images in pixel space ("direct" variants).

Generation runs under ``torch.no_grad`` in one batch per call. With ``bank_size`` > 0 it
draws from a bank of ``bank_size`` generated samples per class instead and regenerates a
fraction ``bank_refresh`` of the entries it used: the generator's cost per step drops by
that fraction, and each generated image is reused, unchanged, about 1/``bank_refresh``
times. The samples still come from the same frozen generator, so their distribution is
unchanged; what changes is that fewer distinct generated images are seen per epoch.

``draw`` (partners, crops, masks: random numbers on the generator's device, no host sync)
and ``render`` (the network) split generation so that a training step can draw for the
whole batch and keep each sample with ``torch.where`` inside a CUDA graph (engine.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .generator_files import load_generator
from .masks import cached_segments, draw_device, make_masks, random_crop_flip, to_working_size
from .models import ClassPool, Generator, resize_output


class HydraMixAugment:
    def __init__(self, generator: Generator | None, images: torch.Tensor, labels: torch.Tensor, segments: torch.Tensor | None,
                 *, p_gen: float = 0.5, n_mix: int | tuple[int, ...] = (2, 3, 4), per_batch: bool = False,
                 mask_kind: str | None = None, crop_pad: int | None = None, soft_edges: float | None = None,
                 bank_size: int = 0, bank_refresh: float = 0.25, device: torch.device | str | None = None,
                 amp: bool | None = None):
        if not 0.0 <= p_gen <= 1.0:
            raise ValueError(f"p_gen must be in [0, 1], got {p_gen}")
        self.n_mix = (n_mix,) if isinstance(n_mix, int) else tuple(n_mix)
        if min(self.n_mix) < 1:
            raise ValueError(f"n_mix must be >= 1, got {self.n_mix}")
        self.generator, self.p_gen, self.per_batch = generator, p_gen, per_batch
        self.mask_kind = mask_kind or (generator.mask_kind if generator is not None else "hydramix")
        self.soft_edges = soft_edges if soft_edges is not None else (generator.soft_edges if generator is not None else 0.0)
        self.working_size = generator.working_size if generator is not None else (
            segments.shape[-1] if segments is not None else images.shape[-1])
        if device is None:
            device = next(generator.parameters()).device if generator is not None else images.device
        # The pool lives on the generator's device at the working size, ready to crop and mix.
        self.pool = to_working_size(images, self.working_size).to(device)  # [P, 3, S, S] in [0, 1]
        self.pool_labels = labels.to(device)
        self.pool_segments = segments.to(device) if segments is not None else None
        self.num_segments = int(segments.max()) + 1 if segments is not None else None
        self.classes = ClassPool(self.pool_labels)  # partners drawn on the device
        self.crop_pad = crop_pad if crop_pad is not None else self.working_size // 8
        self.device = device = torch.device(device)
        # The network renders under bf16 autocast on CUDA, as it was trained there (train_generator's amp "auto").
        self.amp = device.type == "cuda" if amp is None else amp
        self.output_size = images.shape[-1]
        if bank_size and not 0.0 < bank_refresh <= 1.0:
            raise ValueError(f"bank_refresh must be in (0, 1], got {bank_refresh}")
        self.bank_size, self.bank_refresh = bank_size, bank_refresh
        self.bank: dict[int, torch.Tensor] = {}  # class -> [bank_size, 3, H, W], filled on first use

    @classmethod
    def from_generator(cls, path, images: torch.Tensor, labels: torch.Tensor, *, p_gen: float = 0.5,
                       segments: torch.Tensor | str | None = None, device: torch.device | str = "cpu",
                       **options) -> "HydraMixAugment":
        """The augmentation of a finished generator folder (``hydramix fit-generator``'s, or the
        study's ``checkpoints/generators/<kind>/<split>``) for ``images`` uint8 [P,3,H,W] with
        ``labels`` [P], in one call. The images are segmented here, at the size and scale the
        generator was trained with (``segments``: label maps of your own; ``"folder"``: the
        folder's cache, valid for the images it was trained on, in its order). ``options`` are
        the constructor's (``n_mix``, ``per_batch``, ``bank_size``, ...)."""
        run = load_generator(path, device=str(device))
        config = run.config
        if isinstance(segments, str):
            if segments != "folder" or len(run.segments) != len(images):
                raise ValueError(f"segments={segments!r}: use 'folder' with the {len(run.segments)} images the "
                                 f"generator was trained on, label maps of your own, or None to segment here")
            segments = run.segments
        elif segments is None:
            segments = cached_segments(images, None, key="", size=config.working_size, scale=config.seg_scale,
                                       min_size=config.seg_min_size)
        options.setdefault("n_mix", config.n_mix)
        options.setdefault("crop_pad", config.crop_pad)
        return cls(run.generator, images, labels, segments, p_gen=p_gen, **options)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None):
        draws = draw_device(generator, self.device)
        batch = len(images)
        if self.per_batch:
            replace = torch.full((batch,), bool(torch.rand((), generator=generator, device=draws) < self.p_gen))
        else:
            replace = torch.rand(batch, generator=generator, device=draws) < self.p_gen
        if not replace.any():
            return images, labels
        chosen = replace.nonzero()[:, 0].to(images.device)
        draw = self.from_bank if self.bank_size else self.generate
        generated = draw(labels[chosen], generator=generator).to(images.device, images.dtype)
        images = images.clone()
        images[chosen] = generated
        return images, labels

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, generator: torch.Generator | None = None, return_details: bool = False):
        """New images of the given classes, float [B,3,H,W] in [0,1] at the pool's original size
        (with ``return_details``, also the masks [B,N,h,w] and the pool indices mixed [B,N])."""
        draws = draw_device(generator, self.device)
        n_mix = self.n_mix[int(torch.randint(len(self.n_mix), (), generator=generator, device=draws))]
        self.classes.check(labels)
        tuples, masks, members = self.draw(labels.to(self.device), n_mix, generator)
        out = self.render(tuples, masks)
        return (out, masks, members) if return_details else out

    def draw(self, labels: torch.Tensor, n_mix: int, generator: torch.Generator | None):
        """The random part of generation, on the device and without host synchronisation: for each
        label, ``n_mix`` pool images of its class (repeats allowed) cropped and flipped with their
        segmentations, and a mask. Returns tuples [B,N,3,S,S] in [0,1], masks [B,N,h,w], members [B,N]."""
        batch = len(labels)
        members = self.classes.draw(labels, n_mix, generator)
        tensors = [self.pool[members.flatten()]]
        if self.pool_segments is not None:
            tensors.append(self.pool_segments[members.flatten()][:, None])
        cropped = random_crop_flip(tensors, pad=self.crop_pad, generator=generator)
        tuples = cropped[0].unflatten(0, (batch, n_mix))  # [B, N, 3, S, S]
        segs = cropped[1][:, 0].unflatten(0, (batch, n_mix)) if self.pool_segments is not None else None
        out_size = self.generator.feature_size if self.generator is not None else self.working_size
        masks = make_masks(self.mask_kind, segs=segs, batch=batch, n_mix=n_mix, out_size=out_size, generator=generator,
                           soft_edges=self.soft_edges, num_segments=self.num_segments).to(self.device)
        return tuples, masks, members

    @torch.no_grad()
    def render(self, tuples: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Mix drawn tuples [B,N,3,S,S] under masks [B,N,h,w]: the generator's image, or (direct
        variants) the masked sum of pixels; float [B,3,H,W] in [0,1] at the pool's original size."""
        size = self.output_size
        if self.generator is None:
            out = (tuples * masks.unsqueeze(2)).sum(1)
            if size != self.working_size:
                out = F.interpolate(out, size=(size, size), mode="bilinear", antialias=True)
            return out
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp, cache_enabled=False):
            out = self.generator(tuples * 2 - 1, masks)
        return resize_output(out, size)

    @torch.no_grad()
    def from_bank(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Generated images of the given classes from the bank; then regenerate a fraction
        ``bank_refresh`` of the entries just used, so each entry serves ~1/bank_refresh times."""
        labels = labels.cpu()
        for label in labels.unique().tolist():
            if label not in self.bank:
                self.bank[label] = self.generate(torch.full((self.bank_size,), label), generator=generator)
        draws = draw_device(generator, torch.device("cpu"))
        slots = torch.randint(self.bank_size, (len(labels),), generator=generator, device=draws).cpu()
        out = torch.stack([self.bank[int(c)][int(s)] for c, s in zip(labels, slots)])
        renew = torch.randperm(len(labels), generator=generator, device=draws).cpu()[:math.ceil(self.bank_refresh * len(labels))]
        fresh = self.generate(labels[renew], generator=generator)
        for index, image in zip(renew.tolist(), fresh):
            self.bank[int(labels[index])][int(slots[index])] = image
        return out
