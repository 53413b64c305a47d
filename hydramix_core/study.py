"""Study orchestration for the notebooks: where things live, and resumable sweeps.

Layout under a results folder (``results/<profile>/``):
    splits/<dataset>_n<n>_seed<s>.json                  few-shot splits (notebook 01)
    checkpoints/generators/<mask kind>/<split>/         generator checkpoints (notebook 02)
    runs/<run name>.json                                one classifier result per run (notebooks 03, 04)
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from tqdm.auto import tqdm

from .data import load_dataset
from .engine import ClassifierConfig, Run, train_pack
from .generator_files import FINISHED_NAME, GeneratorConfig, load_generator
from .methods import DIRECT_METHODS, GENERATOR_METHODS, method_rule, parse_method
from .outputs import LockedError, hold, write_atomic
from .published import COMPARABLE, OUR_METHODS, published_for
from .runtime import resolve_device
from .splits import get_split, split_filename
from .stats import inside_interval, interval_of, interval_text, summarize
from .train_generator import train_generator


def generator_folder(results_dir, dataset: str, samples_per_class: int, seed: int, mask_kind: str = "hydramix") -> Path:
    stem = split_filename(dataset, samples_per_class, seed)[:-5]
    return Path(results_dir) / "checkpoints" / "generators" / mask_kind / stem


def run_path(results_dir, config: ClassifierConfig) -> Path:
    return Path(results_dir) / "runs" / f"{config.run_name}.json"


def classifier_checkpoint(results_dir, config: ClassifierConfig) -> Path:
    return Path(results_dir) / "checkpoints" / "classifiers" / f"{config.run_name}.pt"


def run_sweep(configs: list[ClassifierConfig], results_dir, *, progress: bool = True, cpu_workers: int = 1) -> pd.DataFrame:
    """Run every config whose result file does not exist yet; return all their results.

    Each run writes ``runs/<run name>.json`` atomically, so a sweep can be stopped at any
    point and resumed, or its configs spread over machines sharing the folder.
    ``cpu_workers`` > 1: CPU runs are trained by that many processes at once (``train_in_workers``).
    """
    check_runs(configs, results_dir)  # a stale result is refused before anything trains
    if cpu_workers > 1 and resolve_device(configs[0].device).type == "cpu":
        train_in_workers(configs, results_dir, workers=cpu_workers, progress=progress)
    else:
        train_runs(configs, results_dir, progress=progress)
    return load_runs([run_path(results_dir, c) for c in configs], configs=configs)


class StaleResultError(RuntimeError):
    """A result file that was not computed under the settings asked for, or cannot be a result."""


# Settings that say how a run was watched or where it ran, not what it computed.
NOT_IN_IDENTITY = ("device", "eval_every", "eval_at")


def check_record(record: dict, config: ClassifierConfig, path) -> None:
    """Refuse a run record that ``config`` did not produce, or whose values cannot be a result.

    Every setting ``config`` gives (those left at None take the dataset's defaults, which the
    record resolved) must equal the record's; the accuracy must be a count of correct test
    images out of ``test_images`` and agree with the per-class accuracies' range.
    """
    path = Path(path)
    where = f"{path}: "
    fix = (f"Use another results folder for these settings (run_all.sh --results DIR), or delete the stale runs "
           f"to train them again: rm {path.parent}/*.json")
    try:
        identity = {k: record[k] for k in ("dataset", "samples_per_class", "seed", "method")}
        accuracy, tested, per_class = float(record["accuracy"]), int(record["test_images"]), record["per_class_accuracy"]
        settings = record["config"]
    except (KeyError, TypeError, ValueError) as error:
        raise StaleResultError(f"{where}not a run record ({type(error).__name__}: {error}); delete it to train the run "
                               f"again.") from None
    wanted = {"dataset": config.dataset, "samples_per_class": config.samples_per_class, "seed": config.seed,
              "method": config.method}
    if identity != wanted:
        raise StaleResultError(f"{where}holds the run {identity}, not {wanted}; delete it to train the run again.")
    for name, value in asdict(config).items():
        if value is None or name in NOT_IN_IDENTITY:
            continue
        theirs = settings.get(name, "missing")
        if json.loads(json.dumps(value)) != json.loads(json.dumps(theirs)):
            raise StaleResultError(f"{where}was computed with {name} = {theirs!r}, but these runs ask for {name} = "
                                   f"{value!r}. {fix}")
    correct = accuracy * tested
    if not (0.0 <= accuracy <= 1.0 and tested > 0 and abs(correct - round(correct)) < 1e-3 * max(1, tested / 1000)
            and all(0.0 <= float(a) <= 1.0 for a in per_class) and min(per_class) - 1e-9 <= accuracy <= max(per_class) + 1e-9):
        raise StaleResultError(f"{where}accuracy {accuracy!r} on {tested} test images with per-class accuracies "
                               f"{[round(float(a), 3) for a in per_class]} cannot be a result (edited?); delete it to "
                               f"train the run again.")


def check_runs(configs: list[ClassifierConfig], results_dir) -> None:
    """``check_record`` on every existing result of ``configs`` under ``results_dir``."""
    for config in configs:
        path = run_path(results_dir, config)
        if path.exists():
            check_record(_read_record(path), config, path)


def _read_record(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StaleResultError(f"{path}: cannot be read as a run record ({type(error).__name__}: {error}); delete it "
                               f"to train the run again.") from None


def train_in_workers(configs: list[ClassifierConfig], results_dir, *, workers: int, progress: bool = True) -> None:
    """Train the missing runs in ``workers`` processes (``in_workers``), which take runs in turn
    through the runs' write locks. A run's numbers do not depend on which process trains it."""
    results_dir = Path(results_dir)
    todo = [c for c in configs if not run_path(results_dir, c).exists()]
    outputs = [run_path(results_dir, c) for c in todo]
    in_workers(_classifier_worker, (todo, str(results_dir)), outputs, workers=workers, what="runs", progress=progress)


def _classifier_worker(configs: list[ClassifierConfig], results_dir: str) -> None:
    train_runs(configs, results_dir, progress=False, skip_locked=True)


def train_generators_in_workers(configs: list[GeneratorConfig], results_dir, *, workers: int,
                                progress: bool = True) -> None:
    """Train the unfinished generators of ``configs`` in ``workers`` processes, each taking the next
    generator whose folder no other holds (``in_workers``); the caller then loads them."""
    results_dir = Path(results_dir)
    folders = [generator_folder(results_dir, c.dataset, c.samples_per_class, c.seed, c.mask_kind) for c in configs]
    todo = [(c, f) for c, f in zip(configs, folders) if not (f / FINISHED_NAME).exists()]
    outputs = [f / FINISHED_NAME for _, f in todo]
    in_workers(_generator_worker, ([c for c, _ in todo], str(results_dir)), outputs, workers=workers,
               what="generators", progress=progress)


def _generator_worker(configs: list[GeneratorConfig], results_dir: str) -> None:
    datasets = {}
    for config in configs:
        folder = generator_folder(results_dir, config.dataset, config.samples_per_class, config.seed, config.mask_kind)
        if (folder / FINISHED_NAME).exists():
            continue
        if config.dataset not in datasets:
            datasets[config.dataset] = load_dataset(config.dataset, train=True)
        train_set = datasets[config.dataset]
        split = get_split(train_set, config.samples_per_class, config.seed, Path(results_dir) / "splits")
        try:
            train_generator(config, train_set, split, folder, progress=False)
        except LockedError:  # another worker trains it
            continue


def in_workers(target, args: tuple, outputs: list[Path], *, workers: int, what: str, progress: bool = True) -> None:
    """Run ``target(*args)`` in ``workers`` processes with an equal share of this process's threads
    (at least one each) until they exit; the bar counts ``outputs`` as they appear. Every output
    missing at the end is an error (a worker's traceback is above it).

    On a 2-core CPU, two one-thread processes train 1.3x (fp32) to 1.6x (bf16) as many classifier
    steps a second as one two-thread process (benchmarks/README.md): a small network's step does
    not keep two threads busy.
    """
    import multiprocessing

    import torch

    if not outputs:
        return
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    processes = [context.Process(target=_with_threads, args=(os.getpid(), threads, target, args))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    bar = tqdm(total=len(outputs), desc=f"{what} ({workers} workers)", disable=not progress)
    try:
        while any(process.is_alive() for process in processes):
            for process in processes:
                process.join(timeout=5.0)
            bar.n = sum(path.exists() for path in outputs)
            bar.refresh()
    finally:  # an interrupted notebook stops its workers; their work resumes from its checkpoints
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
        bar.close()
    failed = [process.exitcode for process in processes if process.exitcode]
    missing = [path for path in outputs if not path.exists()]
    if failed or missing:
        raise RuntimeError(f"{len(failed)} worker(s) failed (exit codes {failed}); {len(missing)} {what} unfinished "
                           f"({', '.join(str(p) for p in missing[:3])}{' ...' if len(missing) > 3 else ''}). The error "
                           f"is above; rerun to continue from their checkpoints.")


def _with_threads(parent: int, threads: int, target, args: tuple) -> None:
    import torch

    _end_with(parent)
    torch.set_num_threads(threads)
    target(*args)


def _end_with(parent: int) -> None:
    """End this worker when the process that started it ends, however it ends (a notebook's kernel
    stopped, a job killed): no orphan keeps training. Linux: the kernel's parent-death signal
    (prctl PR_SET_PDEATHSIG); elsewhere the worker finishes the run it holds."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the signal was armed
        os._exit(1)


# Runs trained at once on one GPU by default: on an H200, 8 graphed WRN-16-8 runs gave 1,517
# baseline run-steps/s and 16 gave 1,529 (benchmarks/README.md, benchmarks/sweep_throughput.py).
CUDA_PACK_SIZE = 8


def train_runs(configs: list[ClassifierConfig], results_dir, *, progress: bool = True, skip_locked: bool = False,
               pack_size: int | None = None) -> list[str]:
    """Train the configs whose result does not exist; returns the run names trained here.

    Runs are trained in packs of ``pack_size`` (default: ``CUDA_PACK_SIZE`` on CUDA, where a
    pack's runs train concurrently, and 1 on CPU). Each run holds the write lock of its result
    file, checks again that the result is still missing, trains (checkpointing to
    ``checkpoints/classifiers/`` every 10 epochs or 2 minutes, and resuming from there after a preemption),
    writes the result atomically and deletes its checkpoint. A run locked by another process
    is an error, or skipped with ``skip_locked`` (cluster workers share the work that way).
    """
    results_dir = Path(results_dir)
    datasets, trained = {}, []
    todo = [c for c in configs if not run_path(results_dir, c).exists()]
    if not todo:
        return trained
    size = pack_size or (CUDA_PACK_SIZE if resolve_device(todo[0].device).type == "cuda" else 1)
    bar = tqdm(total=len(todo), desc="sweep", disable=not progress)
    for start in range(0, len(todo), size):
        with contextlib.ExitStack() as held:
            pack, runs = [], []
            for config in todo[start:start + size]:
                path = run_path(results_dir, config)
                try:
                    held.enter_context(hold(path, what="run"))
                except LockedError:
                    if not skip_locked:
                        raise
                    continue
                if path.exists():  # finished by another worker meanwhile
                    continue
                if config.dataset not in datasets:
                    datasets[config.dataset] = (load_dataset(config.dataset, train=True),
                                                load_dataset(config.dataset, train=False))
                pack.append(config)
                runs.append(_make_run(config, results_dir, *datasets[config.dataset]))
            for config, record in zip(pack, train_pack(runs, progress=progress)):
                write_atomic(run_path(results_dir, config), json.dumps(record, indent=1) + "\n")
                classifier_checkpoint(results_dir, config).unlink(missing_ok=True)
                trained.append(config.run_name)
        bar.update(len(todo[start:start + size]))
    bar.close()
    return trained


def _make_run(config: ClassifierConfig, results_dir: Path, train_set, test_set):
    split = get_split(train_set, config.samples_per_class, config.seed, results_dir / "splits")
    base, _ = parse_method(config.method)
    generator_run = None
    if base in GENERATOR_METHODS:
        folder = generator_folder(results_dir, config.dataset, config.samples_per_class, config.seed, GENERATOR_METHODS[base])
        generator_run = load_generator(folder, split=split, device=str(resolve_device(config.device)))
    cache = results_dir / "checkpoints" / "segments" / f"{split.filename[:-5]}.pt" if base in DIRECT_METHODS else None
    # Every 10 epochs, or at the first epoch's end 2 minutes after the last save (a CPU's slow runs).
    return Run(config, train_set, test_set, split, generator_run=generator_run, segments_cache=cache,
               checkpoint=classifier_checkpoint(results_dir, config), checkpoint_every=10, checkpoint_seconds=120)


def load_runs(paths, *, configs: list[ClassifierConfig] | None = None) -> pd.DataFrame:
    """Result files -> one row per run (dataset, n, seed, method, p_gen, accuracy, times, device);
    with ``configs`` (one per path) each record is checked against its config first."""
    rows = []
    for index, path in enumerate(paths):
        record = _read_record(path)
        if configs is not None:
            check_record(record, configs[index], path)
        rows.append({**{k: record[k] for k in ("dataset", "samples_per_class", "seed", "method", "p_gen", "accuracy",
                                               "test_images", "steps", "train_time_s", "device")},
                     "eval_time_s": record.get("eval_time_s"),  # kept apart from training since runs keep a curve
                     "rule": rule_name(record["config"]) if record["p_gen"] is not None else "no generated samples"})
    return pd.DataFrame(rows)


def load_curves(runs) -> pd.DataFrame:
    """The learning curves of run records (a folder of them, or a list of paths): one row per
    run and evaluated step (dataset, n, seed, method, p_gen, classes, step, fraction of the
    schedule, accuracy). Records written before runs kept a curve give none."""
    paths = sorted(Path(runs).glob("*.json")) if isinstance(runs, (str, Path)) else runs
    rows = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        for point in record.get("curve", []):
            rows.append({**{k: record[k] for k in ("dataset", "samples_per_class", "seed", "method", "p_gen")},
                         "classes": len(record["per_class_accuracy"]), "step": point["step"],
                         "fraction": point["step"] / record["steps"], "accuracy": point["accuracy"]})
    return pd.DataFrame(rows, columns=["dataset", "samples_per_class", "seed", "method", "p_gen", "classes", "step",
                                       "fraction", "accuracy"])


def sweep_configs(*, dataset: str, samples_per_class: list[int], seeds: list[int], methods: list[str],
                  p_gen: float = 0.5, **overrides) -> list[ClassifierConfig]:
    """One config per (n, seed, method). ChimeraMix methods (and their no-generator ablations)
    follow ChimeraMix's own rule, so their numbers compare with its published ones: two images
    per mix, the whole batch replaced with probability 0.5 (``methods.CHIMERAMIX_RULE``)."""
    base = ClassifierConfig(dataset=dataset, samples_per_class=samples_per_class[0], seed=seeds[0], **overrides)
    return [replace(base, samples_per_class=n, seed=seed, method=method, **{"p_gen": p_gen, **method_rule(method)})
            for n in samples_per_class for seed in seeds for method in methods]


def generator_configs(*, dataset: str, samples_per_class: list[int], seeds: list[int], methods: list[str],
                      generator: dict, device: str = "auto", chimeramix: bool = False) -> list[GeneratorConfig]:
    """Every generator a profile's notebooks use: HydraMix's for each split, one per split for each
    other mask kind the methods draw from (ChimeraMix's with N = 2), and, with ``chimeramix``, the
    ChimeraMix+Seg generator notebook 05 compares at the smallest split."""
    wanted = [(n, seed, "hydramix") for n in samples_per_class for seed in seeds]
    kinds = sorted({GENERATOR_METHODS[parse_method(m)[0]] for m in methods if parse_method(m)[0] in GENERATOR_METHODS})
    wanted += [(n, seed, kind) for kind in kinds if kind != "hydramix" for n in samples_per_class for seed in seeds]
    if chimeramix:
        wanted.append((min(samples_per_class), seeds[0], "chimeramix_seg"))
    configs = {}
    for n, seed, kind in wanted:
        values = {**generator, "mask_kind": kind} if kind == "hydramix" else {**generator, "mask_kind": kind, "n_mix": [2]}
        configs.setdefault((n, seed, kind), GeneratorConfig(dataset=dataset, samples_per_class=n, seed=seed, device=device,
                                                             **values))
    return list(configs.values())


def rule_name(config: dict) -> str:
    """How a run replaced samples: for the report's rows."""
    if config.get("per_batch"):
        return f"ChimeraMix rule: whole batch with p = {config['p_gen']:g}, N = 2"
    return f"per sample with p_gen = {config['p_gen']:g}" if config.get("p_gen") is not None else "no generated samples"


def mean_sd_table(runs: pd.DataFrame, *, index: str = "method", columns: str = "samples_per_class") -> pd.DataFrame:
    """Accuracy (%) as 'mean ± sd (k seeds)' per index x column; a single seed shows no sd."""
    def cell(values):
        values = values * 100
        if len(values) == 1:
            return f"{values.iloc[0]:.1f} (1 seed)"
        return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"

    return runs.pivot_table(index=index, columns=columns, values="accuracy", aggfunc=cell)


def best_in_bold(runs: pd.DataFrame, table: pd.DataFrame, *, index: str = "method", columns: str = "samples_per_class") -> pd.DataFrame:
    """Markdown-bold the best mean of each column of ``mean_sd_table``'s output."""
    means = runs.pivot_table(index=index, columns=columns, values="accuracy", aggfunc="mean")
    table = table.copy()
    for column in table.columns:
        best = means[column].idxmax()
        table.loc[best, column] = f"**{table.loc[best, column]}**"
    return table


def beside_published(runs: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Each published number for ``dataset`` (or its ciFAIR counterpart) beside our matching runs:
    our mean ± sd, seeds, the 95 % t-interval of our mean, the difference in points, and whether
    the published number lies inside that interval (stats.inside_interval)."""
    rows = []
    summary = summarize(runs.assign(dataset=dataset)) if len(runs) else None
    for entry in published_for(COMPARABLE.get(dataset, dataset)):
        for ours in OUR_METHODS.get(entry["method"], [entry["method"]]):
            mine = runs[(runs["method"] == ours) & (runs["samples_per_class"] == entry["samples_per_class"])]
            mean = mine["accuracy"].mean() * 100 if len(mine) else float("nan")
            row = {"published": f"{entry['method']} ({entry['dataset']})", "n": entry["samples_per_class"],
                   "theirs %": entry["accuracy"], "ours": ours, "ours %": "not run" if mine.empty else
                   f"{mean:.1f} ± {mine['accuracy'].std(ddof=1) * 100:.1f}" if len(mine) > 1 else f"{mean:.1f}",
                   "seeds": len(mine), "difference": round(mean - entry["accuracy"], 1) if len(mine) else None,
                   "our 95 % interval": "", "theirs is": ""}
            interval = interval_of(summary, dataset, entry["samples_per_class"], ours) if len(mine) else None
            if interval is not None:
                row["our 95 % interval"] = interval_text(*interval)
            if len(mine):
                row["theirs is"] = inside_interval(summary, dataset, entry["samples_per_class"], ours,
                                                   entry["accuracy"] / 100)
            rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    """A small pipe table without extra dependencies."""
    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in table.iterrows():
        lines.append("| " + " | ".join([str(name)] + ["" if pd.isna(v) else str(v) for v in row]) + " |")
    return "\n".join(lines)
