"""A generator pilot: train one HydraMix generator on a split the study does not use, then draw
its loss curves and its sample sheet, to choose a profile's generator settings by looking.

    python scripts/pilot_generator.py results/cpu_long_pilot/generator --seed 100 --ngf 16 --steps 2400

Writes ``<folder>/ngf<w>_steps<s>_<amp>/`` (the generator's folder, resumable) and, beside it,
``<name>_at<step>_losses.png`` and ``<name>_at<step>_sheet.png``; prints the last logged losses.
``--draw-only`` draws the folder's last checkpoint as it is (a pilot stopped early, to compare
widths at equal compute) without training.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from hydramix_core.data import load_dataset
from hydramix_core.figures import sample_sheet, savefig
from hydramix_core.generator_files import GeneratorConfig, load_generator
from hydramix_core.splits import get_split
from hydramix_core.train_generator import train_generator


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--samples-per-class", type=int, default=5)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--ngf", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--amp", default="off", choices=["off", "bf16"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--draw-only", action="store_true", help="draw the last checkpoint, do not train")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    name = f"ngf{args.ngf}_steps{args.steps}_{args.amp}"
    train_set = load_dataset(args.dataset, train=True)
    split = get_split(train_set, args.samples_per_class, args.seed, args.folder / "splits")
    config = GeneratorConfig(dataset=args.dataset, samples_per_class=args.samples_per_class, seed=args.seed,
                             ngf=args.ngf, ndf=args.ngf, batch_size=args.batch_size, steps=args.steps, lr=args.lr,
                             milestones=(0.6, 0.8), amp=args.amp, log_every=50, device="cpu")
    started = time.perf_counter()
    if args.draw_only:
        run = load_generator(args.folder / name, split=split, require_finished=False)
    else:
        run = train_generator(config, train_set, split, args.folder / name, progress=False)
    seconds = time.perf_counter() - started
    name = f"{name}_at{run.step}"

    history = pd.DataFrame(run.history)
    figure, axes = plt.subplots(1, 4, figsize=(13, 2.8))
    for axis, loss in zip(axes, ["rec", "lap", "adv", "disc"]):
        axis.plot(history["step"], history[loss])
        axis.set(title=loss, xlabel="step")
    figure.suptitle(f"{name}: generator losses ({args.dataset}, {args.samples_per_class}/class, seed {args.seed})")
    figure.tight_layout()
    savefig(figure, args.folder, f"{name}_losses", svg=False)
    few = train_set.subset(split.indices)
    sheet = sample_sheet(run, few.images, few.labels, classes=train_set.classes, class_ids=[0, 3, 7],
                         originals=min(4, args.samples_per_class), seed=args.seed)
    savefig(sheet, args.folder, f"{name}_sheet", svg=False)
    last = history.iloc[-1]
    print(f"{name}: {seconds:.0f} s ({torch.get_num_threads()} threads), losses at step {int(last['step'])}: rec {last['rec']:.4f} "
          f"lap {last['lap']:.3f} adv {last['adv']:.3f} disc {last['disc']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
