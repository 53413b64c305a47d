"""Benchmark 3: generator training throughput (mixes per second) for N = 2, 3, 4.

    python -m benchmarks.generator_step                 # CPU: ngf 16 and 64, batch 16; ~3 minutes
    python -m benchmarks.generator_step --ngf 64 --batch 64 --steps 20   # the protocol's size (GPU)
    python -m benchmarks.generator_step --ngf 64 --batch 64 --steps 10 --profile   # where a step's time goes

Times real ``train_generator`` steps (G and D updates, masks, crop/flip) on CIFAR-10 images
at 64x64, set-up included (on CUDA graphed, captures included: ``sweep_throughput`` times
steady-state generator steps). The reference (benchmarks/README.md, "Reference figures"): the
official ChimeraMix step at ngf 64, batch 64, N = 2 runs at 3.1-3.3 samples/s on a 2-core AMD EPYC.
"""

import argparse
import tempfile
import time

import torch

from hydramix_core.data import load_dataset
from hydramix_core.splits import create_split
from hydramix_core import GeneratorConfig
from hydramix_core.train_generator import train_generator

from .common import emit


def mixes_per_second(train_set, split, *, ngf: int, batch: int, n_mix: int, steps: int, device: str,
                     graphed: bool | None = None) -> float:
    config = GeneratorConfig(dataset=train_set.name, samples_per_class=split.samples_per_class, seed=0, ngf=ngf, ndf=ngf,
                             batch_size=batch, n_mix=(n_mix,), steps=steps, checkpoint_every=10**9, device=device)
    with tempfile.TemporaryDirectory() as folder:
        train_generator(config.__class__(**{**config.__dict__, "steps": 2}), train_set, split, folder, progress=False)  # warm-up, segments cached
        with tempfile.TemporaryDirectory() as timed:
            (torch.cuda.synchronize() if torch.cuda.is_available() else None)
            start = time.perf_counter()
            train_generator(config, train_set, split, timed, progress=False, graphed=graphed)
            (torch.cuda.synchronize() if torch.cuda.is_available() else None)
            return steps * batch / (time.perf_counter() - start)


def profile_steps(train_set, split, *, ngf: int, batch: int, steps: int, device: str) -> str:
    """torch.profiler's table of the operators (and CUDA kernels) that take a step's time, N = 3
    (eager steps: a CUDA graph's replay would hide its kernels)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available() and device != "cpu"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    mixes_per_second(train_set, split, ngf=ngf, batch=batch, n_mix=3, steps=2, device=device, graphed=False)  # warm-up
    with profile(activities=activities) as profiler:
        mixes_per_second(train_set, split, ngf=ngf, batch=batch, n_mix=3, steps=steps, device=device, graphed=False)
    return profiler.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                         row_limit=25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ngf", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", action="store_true", help="print where the time of a step goes (first --ngf)")
    args = parser.parse_args()
    train_set = load_dataset("cifar10")
    split = create_split(train_set, samples_per_class=5, seed=0)
    if args.profile:
        print(profile_steps(train_set, split, ngf=args.ngf[0], batch=args.batch, steps=args.steps, device=args.device))
        return
    rows = [{"ngf": ngf, "batch": args.batch, "n_mix": n_mix,
             "mixes_per_s": round(mixes_per_second(train_set, split, ngf=ngf, batch=args.batch, n_mix=n_mix,
                                                   steps=args.steps, device=args.device), 2)}
            for ngf in args.ngf for n_mix in (2, 3, 4)]
    emit("generator_step", {"steps_timed": args.steps, "rows": rows,
                            "reference": "official ChimeraMix, ngf 64, batch 64, N=2, this CPU: 3.1-3.3 samples/s"})


if __name__ == "__main__":
    main()
