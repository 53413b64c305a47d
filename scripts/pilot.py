"""Pilot runs that choose a profile's settings, on seeds the study does not use.

    python scripts/pilot.py results/cpu_long_pilot/lr --seeds 100 101 --steps 10000 \
        --grid lr=0.0046,0.015,0.046 --set model=wrn16_2 amp=bf16 channels_last=true --workers 2

Each point of the grid is its own results folder (``<folder>/<key><value>/``), trained with
``study.run_sweep`` (resumable, one result file a run); the table printed last gives each
point's mean test accuracy over the seeds at every point of the learning curve.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

from hydramix_core.study import load_curves, run_sweep, sweep_configs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--samples-per-class", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", default=["baseline"])
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--grid", required=True, help="KEY=V1,V2,... : one classifier setting to vary")
    parser.add_argument("--set", nargs="*", default=[], help="KEY=VALUE classifier settings held fixed (YAML values)")
    parser.add_argument("--eval-points", type=int, default=16, help="learning-curve points (fractions 1/k .. 1)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    fixed = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    key, values = args.grid.split("=", 1)
    curves = []
    for value in [yaml.safe_load(v) for v in values.split(",")]:
        folder = args.folder / f"{key}{value}"
        settings = {**fixed, key: value, "steps": args.steps, "device": "cpu",
                    "eval_at": [i / args.eval_points for i in range(1, args.eval_points)]}
        configs = sweep_configs(dataset=args.dataset, samples_per_class=[args.samples_per_class], seeds=args.seeds,
                                methods=args.methods, **settings)
        print(f"{folder}: {len(configs)} runs, {settings}", flush=True)
        run_sweep(configs, folder, cpu_workers=args.workers)
        curves.append(load_curves(folder / "runs").assign(**{key: value}))
    curve = pd.concat(curves)
    table = curve.pivot_table(index=[key, "method"], columns="step", values="accuracy", aggfunc="mean") * 100
    print(table.round(1).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
