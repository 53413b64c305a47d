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
eagerly and graphed with torch's own InstanceNorm kernel (``models.PRESERVE_LAYOUT_NORM``
off: NCHW out of every norm layer) beside the layout-preserving one.

Every configuration is checked to compute something: its losses finite and its weights moved
by the timed steps (a fast graph computing nothing fails the row). ``--rows FILE`` appends each
row to FILE as JSON the moment it is measured, so a run stopped at a time limit keeps every
figure it had.

Projection: the sweep's own units of ``--profile`` (default: paper, the ciFAIR-10 table), as
``hydramix sweep run --runs-per-unit K --generators-per-unit G`` plans them: each run at the
rate measured for its kind at its unit's pack size (the largest measured pack not above it;
classic methods at baseline's, MixUp/CutMix at MixUp's, AutoAugment/TrivialAugment at
AutoAugment's, generator methods at HydraMix's, their direct ablations at hydramix_direct's),
each generator step at the mean over its N of the time per step (times averaged, not rates),
in hours on this device.
"""

import argparse
import contextlib
import json
import math
import time
from dataclasses import replace

import torch

from hydramix_core import models
from hydramix_core.data import load_dataset
from hydramix_core.engine import ClassifierConfig, Run
from hydramix_core.generator_files import GeneratorConfig
from hydramix_core.methods import parse_method
from hydramix_core.profiles import load_profile
from hydramix_core.runtime import resolve_device
from hydramix_core.splits import create_split, epoch_length
from hydramix_core.train_generator import GeneratorTrainer

from .common import emit, synchronize, untrained_generator_run

METHODS = ("baseline", "mixup", "autoaugment", "hydramix")  # needed by the projection
# hydramix_direct: HydraMix's drawing and masks without the generator network, to tell the two costs apart


def run_steps_per_second(runs: list, *, warmup: int, steps: int) -> tuple[float, dict]:
    """Run-steps/s of the runs' timed steps, and whether those steps computed something."""
    def issue(count):
        for _ in range(count):
            for run in runs:
                with torch.cuda.stream(run.stream) if run.stream is not None else contextlib.nullcontext():
                    run.advance()

    issue(warmup)
    synchronize()
    before = [_checksum(run) for run in runs]
    start = time.perf_counter()
    issue(steps)
    synchronize()
    seconds = time.perf_counter() - start
    losses = torch.stack([(run.loss_sum if hasattr(run, "loss_sum") else run.loss_sums).float().sum().cpu()
                          for run in runs])
    check = {"losses_finite": bool(torch.isfinite(losses).all()),
             "weights_moved": all(_checksum(run) != old for run, old in zip(runs, before))}
    return len(runs) * steps / seconds, check


def _checksum(run) -> float:
    model = run.model if hasattr(run, "model") else run.generator
    return float(sum(p.detach().double().abs().sum() for p in model.parameters()))


class Rows:
    """Measured rows, each appended to ``path`` (JSON lines) as soon as it exists."""

    def __init__(self, path: str | None):
        self.path, self.rows = path, []

    def add(self, row: dict) -> None:
        if "error" not in row and not (row.pop("losses_finite") and row.pop("weights_moved")):
            row["error"] = "the timed steps computed nothing usable (losses not finite or weights unchanged)"
        self.rows.append(row)
        print(row, flush=True)
        self.note(row)


    def note(self, entry: dict) -> None:
        if self.path:
            with open(self.path, "a") as file:
                file.write(json.dumps(entry) + "\n")


def measure(rows: Rows, row: dict, build, *, warmup: int, steps: int) -> None:
    runs = []
    try:
        runs = build()
        rate, check = run_steps_per_second(runs, warmup=warmup, steps=steps)
    except Exception as error:  # one failing configuration must not hide the others' figures
        rows.add({**row, "error": f"{type(error).__name__}: {error}"})
    else:
        rows.add({**row, "run_steps_per_s": float(f"{rate:.4g}"), "ms_per_run_step": float(f"{1000 / rate:.4g}"), **check})
    del runs
    torch.cuda.empty_cache() if torch.cuda.is_available() else None


def generator_rows(rows: Rows, train_set, split, device, *, packs: list[int], warmup: int, steps: int) -> None:
    """Run-steps/s of packs of protocol-size generator runs, per N (graphed on CUDA; K = 1 eager too)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:  # segments are cached here; no checkpoint is written
        for n_mix in (2, 3, 4):
            config = GeneratorConfig(dataset=split.dataset, samples_per_class=split.samples_per_class, seed=split.seed,
                                     n_mix=(n_mix,), steps=10**6, checkpoint_every=10**9, log_every=10**9,
                                     device=str(device))
            modes = [("graphed", None)] + ([("eager", False)] if device.type == "cuda" else [])
            for mode, graphed in modes:
                for count in packs if mode == "graphed" else [1]:
                    row = {"kind": "generator", "n_mix": n_mix, "engine": mode if device.type == "cuda" else "eager",
                           "runs": count}
                    measure(rows, row, lambda: [GeneratorTrainer(config, train_set, split, folder, resume=False,
                                                                 graphed=graphed) for _ in range(count)],
                            warmup=warmup, steps=steps)
            if device.type == "cuda":  # the same graphed run with torch's InstanceNorm kernel (NCHW out)
                models.PRESERVE_LAYOUT_NORM = False
                try:
                    measure(rows, {"kind": "generator", "n_mix": n_mix, "engine": "graphed, torch norm", "runs": 1},
                            lambda: [GeneratorTrainer(config, train_set, split, folder, resume=False)],
                            warmup=warmup, steps=steps)
                finally:
                    models.PRESERVE_LAYOUT_NORM = True


def rates_by_pack(rows: list[dict], key: str) -> dict:
    """{key value: {pack size: run-steps/s}} of the graphed (CPU: eager) rows without errors."""
    rates: dict = {}
    for row in rows:
        if "error" not in row and key in row and (row["engine"] == "graphed" or "graphed" not in {r["engine"] for r in rows}):
            rates.setdefault(row[key], {})[row["runs"]] = row["run_steps_per_s"]
    return rates


def rate_at(rates: dict, size: int) -> float:
    """The rate of the largest measured pack not above ``size`` (else the smallest measured)."""
    fitting = [k for k in rates if k <= size]
    return rates[max(fitting)] if fitting else rates[min(rates)]


def rate_kind(method: str, measured) -> str:
    base, autoaugment = parse_method(method)
    if base.endswith("_direct") and "hydramix_direct" in measured:
        return "hydramix_direct"
    if base.startswith(("hydramix", "chimeramix")):
        return "hydramix"
    if autoaugment or base == "trivialaugment":
        return "autoaugment"
    return "mixup" if base in ("mixup", "cutmix") else "baseline"


def project(profile_name: str, classifier_rates: dict, generator_rates: dict, *, runs_per_unit: int,
            generators_per_unit: int) -> dict:
    """Hours on this device of a profile's units as the sweep plans them (see the module docstring)."""
    from hydramix_core.sweep import plan

    _, profile = load_profile(profile_name)
    num_classes = {"cifair10": 10, "cifar10": 10, "cifair100": 100, "cifar100": 100, "stl10": 10}[profile["dataset"]]
    hours = {"classifier": 0.0, "generator": 0.0}
    units = plan(profile, "/nonexistent-results", runs_per_unit=runs_per_unit, generators_per_unit=generators_per_unit)
    for unit in units:
        size = len(unit.configs)
        for config in unit.configs:
            if unit.kind == "generator":
                per_epoch = max(1, epoch_length(config.samples_per_class * num_classes, config.samples_per_class,
                                                config.samples_per_class_per_epoch) // config.batch_size)
                seconds_per_step = sum(1 / rate_at(generator_rates[n], size) for n in config.n_mix) / len(config.n_mix)
                hours["generator"] += (config.steps or config.epochs * per_epoch) * seconds_per_step / 3600
            else:
                resolved = config.resolved(96 if profile["dataset"] == "stl10" else 32)
                per_epoch = math.ceil(epoch_length(config.samples_per_class * num_classes, config.samples_per_class,
                                                   resolved.samples_per_class_per_epoch) / resolved.batch_size)
                rate = rate_at(classifier_rates[rate_kind(config.method, classifier_rates)], size)
                hours["classifier"] += (config.steps or config.epochs * per_epoch) / rate / 3600
    runs = sum(len(u.configs) for u in units if u.kind == "classifier")
    return {"profile": profile_name, "runs_per_unit": runs_per_unit, "generators_per_unit": generators_per_unit,
            "classifier_runs": runs, "generators": sum(len(u.configs) for u in units if u.kind == "generator"),
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
    parser.add_argument("--runs-per-unit", type=int, default=8, help="the sweep's classifier pack size to project")
    parser.add_argument("--generators-per-unit", type=int, default=4, help="the sweep's generator pack size to project")
    parser.add_argument("--rows", help="append each measured row to this file (JSON lines) as it is measured")
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

    rows = Rows(args.rows)
    for method in args.methods:
        modes = [("graphed", None)] + ([("eager", False)] if device.type == "cuda" else [])
        for mode, graphed in modes:
            for count in args.packs if mode == "graphed" else [1]:
                row = {"kind": "classifier", "method": method, "engine": mode if device.type == "cuda" else "eager",
                       "runs": count}
                measure(rows, row, lambda: build(method, count, graphed), warmup=args.warmup, steps=args.steps)
    classifier = rates_by_pack(rows.rows, "method")
    best = {m: max(rates.values()) for m, rates in classifier.items()}
    ratios = {f"{m}_vs_baseline": round(best[m] / best["baseline"], 3)
              for m in best if "baseline" in best and m != "baseline"}
    generator_rows(rows, train_set, split, device, packs=args.generator_packs, warmup=args.generator_warmup,
                   steps=args.generator_steps)
    generators = rates_by_pack(rows.rows, "n_mix")
    projection = None
    if set(METHODS) <= set(classifier) and set(generators) == {2, 3, 4}:
        projection = project(args.profile, classifier, generators, runs_per_unit=args.runs_per_unit,
                             generators_per_unit=args.generators_per_unit)
        rows.note({"kind": "projection", **projection})
    emit("sweep_throughput", {"model": "wrn16_8", "batch": 10, "steps_timed": args.steps, "warmup": args.warmup,
                              "rows": [r for r in rows.rows if r["kind"] == "classifier"],
                              "best_run_steps_per_s": best, "ratios": ratios,
                              "generator": {"ngf": 64, "batch": 64, "steps_timed": args.generator_steps,
                                            "rows": [r for r in rows.rows if r["kind"] == "generator"],
                                            "run_steps_per_s": generators},
                              "projection": projection})

if __name__ == "__main__":
    main()
