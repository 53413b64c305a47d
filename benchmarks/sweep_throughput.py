"""Benchmark 4: classifier run-steps/s in packs of K runs, graphed and eager; projected cost of a profile.

    python -m benchmarks.sweep_throughput                                   # GPU: K = 1, 4, 8, 16; ~3 minutes
    python -m benchmarks.sweep_throughput --packs 1 2 --steps 10 --warmup 2 # CPU (eager only)

For each method (baseline, mixup, autoaugment, hydramix with an untrained ngf-64 generator,
N from {2,3,4}, p_gen 0.5 per sample, its speed does not depend on its weights; and
hydramix_direct, the same draws and masks without the network), K runs
of WRN-16-8 (K copies of the seed-0 run: a step's cost does not depend on the seed) at batch 10 on a CIFAR-10 split are built and warmed up
(``--warmup`` steps each: on CUDA the graphs are captured then), then ``--steps`` steps of
each are issued in turn as ``train_pack`` does and timed: run-steps/s = K x steps / seconds.
On CUDA, K = 1 is also run eagerly (``graphed=False``, today's step without graphs) in the
same process. Generators: run-steps/s of K ``GeneratorTrainer`` runs (ngf 64, batch 64, one N
each of 2/3/4, K = ``--generator-packs``) stepped the same way, graphed on CUDA, and K = 1
eagerly.

Projection: every classifier run and generator of ``--profile`` (default: paper, the
ciFAIR-10 table) at the best measured rate of its kind (classic methods at baseline's,
MixUp/CutMix at MixUp's, AutoAugment/TrivialAugment at AutoAugment's, generator methods at
HydraMix's, their direct ablations at hydramix_direct's), in hours on this device.
"""

import argparse
import contextlib
import math
import time
from dataclasses import replace

import torch

from hydramix_core.classifier import ClassifierConfig, parse_method
from hydramix_core.data import load_dataset
from hydramix_core.engine import Run
from hydramix_core.splits import create_split, epoch_length
from hydramix_core.sweep import load_profile
from hydramix_core.train_generator import GeneratorConfig, GeneratorTrainer, resolve_device

from .common import emit, synchronize, untrained_generator_run

METHODS = ("baseline", "mixup", "autoaugment", "hydramix")  # needed by the projection
# hydramix_direct: HydraMix's drawing and masks without the generator network, to tell the two costs apart


def run_steps_per_second(runs: list[Run], *, warmup: int, steps: int) -> float:
    def issue(count):
        for _ in range(count):
            for run in runs:
                with torch.cuda.stream(run.stream) if run.stream is not None else contextlib.nullcontext():
                    run.advance()

    issue(warmup)
    synchronize()
    start = time.perf_counter()
    issue(steps)
    synchronize()
    return len(runs) * steps / (time.perf_counter() - start)


def generator_rows(train_set, split, device, *, packs: list[int], warmup: int, steps: int) -> list[dict]:
    """Run-steps/s of packs of protocol-size generator runs, per N (graphed on CUDA; K = 1 eager too)."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as folder:  # segments are cached here; no checkpoint is written
        for n_mix in (2, 3, 4):
            config = GeneratorConfig(dataset=split.dataset, samples_per_class=split.samples_per_class, seed=split.seed,
                                     n_mix=(n_mix,), steps=10**6, checkpoint_every=10**9, log_every=10**9,
                                     device=str(device))
            modes = [("graphed", None)] + ([("eager", False)] if device.type == "cuda" else [])
            for mode, graphed in modes:
                for count in packs if mode == "graphed" else [1]:
                    row = {"n_mix": n_mix, "engine": mode if device.type == "cuda" else "eager", "runs": count}
                    trainers = []
                    try:
                        trainers = [GeneratorTrainer(config, train_set, split, folder, resume=False, graphed=graphed)
                                    for _ in range(count)]
                        rate = run_steps_per_second(trainers, warmup=warmup, steps=steps)
                    except Exception as error:  # one failing configuration must not hide the others' figures
                        rows.append({**row, "error": f"{type(error).__name__}: {error}"})
                    else:
                        rows.append({**row, "run_steps_per_s": round(rate, 2), "ms_per_run_step": round(1000 / rate, 2)})
                    print(rows[-1], flush=True)
                    del trainers
                    torch.cuda.empty_cache() if device.type == "cuda" else None
    return rows


def rate_kind(method: str, measured) -> str:
    base, autoaugment = parse_method(method)
    if base.endswith("_direct") and "hydramix_direct" in measured:
        return "hydramix_direct"
    if base.startswith(("hydramix", "chimeramix")):
        return "hydramix"
    if autoaugment or base == "trivialaugment":
        return "autoaugment"
    return "mixup" if base in ("mixup", "cutmix") else "baseline"


def project(profile_name: str, best: dict, generator_steps_per_s: float) -> dict:
    """Hours on this device of a profile's classifier runs and generators at the measured rates."""
    from hydramix_core.sweep import plan

    _, profile = load_profile(profile_name)
    num_classes = {"cifair10": 10, "cifar10": 10, "cifair100": 100, "cifar100": 100, "stl10": 10}[profile["dataset"]]
    hours = {"classifier": 0.0, "generator": 0.0}
    units = plan(profile, "/nonexistent-results")
    for unit in units:
        for config in unit.configs:
            if unit.kind == "generator":
                per_epoch = max(1, epoch_length(config.samples_per_class * num_classes, config.samples_per_class,
                                                config.samples_per_class_per_epoch) // config.batch_size)
                hours["generator"] += (config.steps or config.epochs * per_epoch) / generator_steps_per_s / 3600
            else:
                resolved = config.resolved(96 if profile["dataset"] == "stl10" else 32)
                per_epoch = math.ceil(epoch_length(config.samples_per_class * num_classes, config.samples_per_class,
                                                   resolved.samples_per_class_per_epoch) / resolved.batch_size)
                hours["classifier"] += (config.steps or config.epochs * per_epoch) / best[rate_kind(config.method, best)] / 3600
    runs = sum(len(u.configs) for u in units if u.kind == "classifier")
    return {"profile": profile_name, "classifier_runs": runs, "generators": sum(u.kind == "generator" for u in units),
            **{f"{k}_hours": round(v, 2) for k, v in hours.items()}, "total_hours": round(sum(hours.values()), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packs", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--methods", nargs="+", default=[*METHODS, "hydramix_direct"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--generator-packs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--generator-steps", type=int, default=20)
    parser.add_argument("--generator-warmup", type=int, default=5)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    train_set, test_set = load_dataset("cifar10"), load_dataset("cifar10", train=False)
    split = create_split(train_set, samples_per_class=10, seed=0)
    generator_run = untrained_generator_run(train_set, split, device)
    base = ClassifierConfig(dataset="cifar10", samples_per_class=10, seed=0, model="wrn16_8", batch_size=10,
                            steps=10**6, test_subset=1, device=str(device))

    def build(method, count, graphed=None):
        return [Run(replace(base, method=method), train_set, test_set, split, generator_run=generator_run,
                    graphed=graphed) for _ in range(count)]

    rows = []
    for method in args.methods:
        modes = [("graphed", None)] + ([("eager", False)] if device.type == "cuda" else [])
        for mode, graphed in modes:
            for count in args.packs if mode == "graphed" else [1]:
                row = {"method": method, "engine": mode if device.type == "cuda" else "eager", "runs": count}
                try:
                    rate = run_steps_per_second(build(method, count, graphed), warmup=args.warmup, steps=args.steps)
                except Exception as error:  # one failing configuration must not hide the others' figures
                    rows.append({**row, "error": f"{type(error).__name__}: {error}"})
                    print(rows[-1], flush=True)
                    continue
                rows.append({**row, "run_steps_per_s": round(rate, 1), "ms_per_run_step": round(1000 / rate, 3)})
                print(rows[-1], flush=True)
                torch.cuda.empty_cache() if device.type == "cuda" else None
    best = {m: max(r["run_steps_per_s"] for r in rows if r["method"] == m and "error" not in r)
            for m in args.methods if any(r["method"] == m and "error" not in r for r in rows)}
    ratios = {f"{m}_vs_baseline": round(best[m] / best["baseline"], 3)
              for m in best if "baseline" in best and m != "baseline"}
    generators = generator_rows(train_set, split, device, packs=args.generator_packs, warmup=args.generator_warmup,
                                steps=args.generator_steps)
    best_generator = {n: max((r["run_steps_per_s"] for r in generators if r["n_mix"] == n and "error" not in r), default=None)
                      for n in (2, 3, 4)}
    measured = [rate for rate in best_generator.values() if rate]
    generator_rate = sum(measured) / len(measured) if measured else None  # profiles draw N uniformly from {2, 3, 4}
    projection = project(args.profile, best, generator_rate) if set(METHODS) <= set(best) and generator_rate else None
    emit("sweep_throughput", {"model": "wrn16_8", "batch": 10, "steps_timed": args.steps, "warmup": args.warmup,
                              "rows": rows, "best_run_steps_per_s": best, "ratios": ratios,
                              "generator": {"ngf": 64, "batch": 64, "steps_timed": args.generator_steps, "rows": generators,
                                            "best_run_steps_per_s": best_generator},
                              "projection": projection})


if __name__ == "__main__":
    main()
