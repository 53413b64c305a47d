"""Benchmark 2: masks from precomputed, crop/flipped segmentations vs Felzenszwalb per sample per step.

    python -m benchmarks.mask_pipeline            # prints JSON; ~1 minute on 2 CPU cores

Both sides produce a batch of N-way HydraMix masks for B tuples of 64x64 images
(32x32 CIFAR-10 upsampled, as the generator sees them). The reference recomputes the
segmentation of every tuple image at every step (as ChimeraMix does); ours crops and flips
label maps computed once. Figure: tuples per second, and their ratio.
"""

import torch

from hydramix_core.data import load_dataset
from hydramix_core.masks import felzenszwalb_segments, make_masks, random_crop_flip, to_working_size

from .common import emit, median_seconds

BATCH, N_MIX, SIZE = 64, 3, 64


def main() -> None:
    torch.manual_seed(0)
    images = load_dataset("cifar10").images[:200]
    segments = felzenszwalb_segments(images, size=SIZE, scale=60, min_size=60)  # once, up front
    pool = to_working_size(images, SIZE)
    generator = torch.Generator().manual_seed(0)

    def draw():
        return torch.randint(len(images), (BATCH * N_MIX,), generator=generator)

    def reference():
        members = draw()
        cropped = random_crop_flip([pool[members]], pad=8, generator=generator)[0]
        uint8 = (cropped * 255).round().to(torch.uint8)
        segs = felzenszwalb_segments(uint8, size=SIZE, scale=60, min_size=60)  # every step, every image
        make_masks("hydramix", segs=segs.view(BATCH, N_MIX, SIZE, SIZE), out_size=16, generator=generator)

    def ours():
        members = draw()
        _, segs = random_crop_flip([pool[members], segments[members][:, None]], pad=8, generator=generator)
        make_masks("hydramix", segs=segs[:, 0].view(BATCH, N_MIX, SIZE, SIZE), out_size=16, generator=generator)

    reference_s, _ = median_seconds(reference, repeats=3)
    ours_s, _ = median_seconds(ours, repeats=20)
    emit("mask_pipeline", {"batch": BATCH, "n_mix": N_MIX, "size": SIZE,
                           "reference_tuples_per_s": round(BATCH / reference_s, 1),
                           "ours_tuples_per_s": round(BATCH / ours_s, 1),
                           "speedup": round(reference_s / ours_s, 1), "target_speedup": 10})


if __name__ == "__main__":
    main()
