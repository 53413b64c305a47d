"""Benchmark 6: which CPU levers pay for the study's classifier runs (WRN-16-2, batch 10).

    python -m benchmarks.cpu_levers                       # ~6 minutes on 2 cores
    python -m benchmarks.cpu_levers --variants fp32 bf16_cl --steps 30 --no-compile

Times the engine's real training step (``engine.Run.advance``, baseline method, CIFAR-10
5/class) for each variant in one process, interleaved over ``--repeats`` rounds (median ms a
step): fp32, bf16 autocast, channels_last, both, and ``torch.compile`` of the network (with
both). Then throughput of the machine as the study would use it: one process with all threads
against ``--workers`` processes of one thread each running at once (steps per second summed),
for fp32 and for bf16 + channels_last. Whether bf16 keeps accuracy is not measured here: that
is a paired check of whole runs (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from .common import emit

VARIANTS = {"fp32": dict(amp="off", channels_last=False), "bf16": dict(amp="bf16", channels_last=False),
            "channels_last": dict(amp="off", channels_last=True), "bf16_cl": dict(amp="bf16", channels_last=True),
            "bf16_cl_compile": dict(amp="bf16", channels_last=True)}


def _runs(variants, steps_total: int = 10**6):
    from hydramix_core.data import load_dataset
    from hydramix_core.engine import ClassifierConfig, Run
    from hydramix_core.splits import create_split

    train, test = load_dataset("cifar10", train=True), load_dataset("cifar10", train=False)
    split = create_split(train, 5, 100)
    runs = {}
    for name in variants:
        config = ClassifierConfig(dataset="cifar10", samples_per_class=5, seed=100, model="wrn16_2", steps=steps_total,
                                  device="cpu", eval_at=(), **VARIANTS[name])
        run = Run(config, train, test, split)
        if name.endswith("compile"):
            run.model = torch.compile(run.model)
        runs[name] = run
    return runs


def step_times(variants, *, steps: int, warmup: int, repeats: int) -> dict:
    """Median ms a step per variant, interleaved rounds in this process; compile time apart."""
    runs, warm = _runs(variants), {}
    for name, run in runs.items():
        started = time.perf_counter()
        for _ in range(warmup):
            run.advance()
        warm[name] = round(time.perf_counter() - started, 1)
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            for _ in range(steps):
                run.advance()
            times[name].append((time.perf_counter() - started) / steps * 1000)
    return {name: {"ms_per_step": round(statistics.median(t), 1), "warmup_s": warm[name]} for name, t in times.items()}


def _one_process(variant: str, steps: int, threads: int) -> None:
    """Child: print the ms a step of ``variant`` at ``threads`` threads (after 5 warm-up steps)."""
    torch.set_num_threads(threads)
    run = _runs([variant])[variant]
    for _ in range(5):
        run.advance()
    started = time.perf_counter()
    for _ in range(steps):
        run.advance()
    print(json.dumps({"ms_per_step": (time.perf_counter() - started) / steps * 1000}))


def throughput(variant: str, *, workers: int, steps: int) -> dict:
    """Steps per second of the machine: one process with all threads, and ``workers`` one-thread
    processes at once (each its own run, as ``study.train_in_workers`` trains them)."""
    def launch(count, threads):
        command = [sys.executable, "-m", "benchmarks.cpu_levers", "--child", variant, "--steps", str(steps),
                   "--threads", str(threads)]
        processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(count)]
        return [json.loads(p.communicate()[0].strip().splitlines()[-1])["ms_per_step"] for p in processes]

    threads = torch.get_num_threads()
    alone = launch(1, threads)[0]
    shared = launch(workers, 1)
    together = sum(1000 / ms for ms in shared)
    return {"one_process_ms": round(alone, 1), "threads": threads, "worker_ms": [round(ms, 1) for ms in shared],
            "steps_per_s_one": round(1000 / alone, 2), "steps_per_s_workers": round(together, 2),
            "workers_speedup": round(together * alone / 1000, 2)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variant")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _one_process(args.child, args.steps, args.threads)
        return
    variants = [v for v in args.variants if not (args.no_compile and v.endswith("compile"))]
    results = {"step": step_times(variants, steps=args.steps, warmup=args.warmup, repeats=args.repeats)}
    results["processes"] = {v: throughput(v, workers=args.workers, steps=args.steps) for v in ("fp32", "bf16_cl")
                            if v in variants}
    fp32 = results["step"].get("fp32", {}).get("ms_per_step")
    if fp32:
        results["speedup_vs_fp32"] = {v: round(fp32 / r["ms_per_step"], 2) for v, r in results["step"].items()}
    results["cpu_flags"] = {flag: flag in _cpu_flags() for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")}
    emit("cpu_levers", results)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as info:
            return next((set(line.split(":", 1)[1].split()) for line in info if line.startswith("flags")), set())
    except OSError:
        return set()


if __name__ == "__main__":
    main()
