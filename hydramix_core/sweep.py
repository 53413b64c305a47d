"""The study as independent work units, spread over a Slurm cluster (through submitit) or the
GPUs of this machine; afterwards the notebooks only gather, tabulate and plot.

    hydramix sweep run --profile paper --executor slurm --partition gpu --time 720 --gpus 1
    hydramix sweep run --profile paper --executor local        # one worker per visible GPU
    hydramix sweep status --profile paper

Units, from a profile (the same runs notebooks 02-05 would do): a generator per split and
mask kind first (or packs of ``generators_per_unit``, trained concurrently on a GPU), then
classifier packs of ``runs_per_unit`` runs. Every unit checks again
that its results are missing before it starts, holds the write lock of each output while it
works (a second worker skips it), and writes atomically; so a sweep submitted twice, two
sweeps on one results folder, or a job cancelled and submitted again never duplicate, lose
or corrupt a result. Generators resume from their checkpoints, classifier runs from the
checkpoints they write every 10 epochs. A unit that raises is recorded with its error in
``sweep/failed/<unit>.json`` and the others go on.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path


from .data import load_dataset
from .generator_files import CHECKPOINT_NAME, FINISHED_NAME
from .methods import GENERATOR_METHODS, parse_method
from .outputs import LockedError, is_held, write_atomic
from .profiles import load_profile
from .splits import get_split
from .study import generator_configs, generator_folder, run_path, sweep_configs, train_runs
from .train_generator import train_generators

try:  # a requeued job (timeout, preemption) calls the unit again; it resumes from its checkpoints
    from submitit.helpers import Checkpointable
except ImportError:  # submitit is needed for --executor slurm only
    Checkpointable = object

REPO = Path(__file__).resolve().parents[1]
SWEEP_DIR = "sweep"  # under the results folder: failures, submitted jobs, submitit's logs


class SweepError(RuntimeError):
    """A sweep cannot be planned or submitted as asked; the message says what to do."""


@dataclass(frozen=True)
class Unit:
    kind: str  # "generator" or "classifier"
    name: str
    configs: tuple  # GeneratorConfigs or ClassifierConfigs: a pack, trained together
    needs: tuple[tuple, ...] = ()  # (dataset, n, seed, mask kind) of the generators the classifier runs load

    def describe(self) -> str:
        if self.kind == "generator":
            return ", ".join(f"{c.dataset} n={c.samples_per_class} seed={c.seed} {c.mask_kind}" for c in self.configs)
        return ", ".join(c.run_name for c in self.configs)


# --- planning ------------------------------------------------------------------------------

def plan(profile: dict, results_dir, *, runs_per_unit: int = 4, generators_per_unit: int = 1) -> list[Unit]:
    """Every unit of the profile, done or not: generators first (``generators_per_unit`` > 1:
    packs of them, trained concurrently on a GPU), then classifier packs."""
    dataset, sizes, seeds = profile["dataset"], profile["samples_per_class"], profile["seeds"]
    device, generator = profile.get("device", "auto"), profile["generator"]
    classifier = profile.get("classifier", {})
    configs = sweep_configs(dataset=dataset, samples_per_class=sizes, seeds=seeds, methods=profile["methods"],
                            p_gen=profile.get("p_gen", 0.5), device=device, **classifier)  # notebook 03
    if profile.get("p_gen_values"):  # notebook 04: HydraMix at the smallest size over p_gen
        base = sweep_configs(dataset=dataset, samples_per_class=[min(sizes)], seeds=seeds, methods=["hydramix"],
                             device=device, **classifier)
        configs += [replace(config, p_gen=p) for p in profile["p_gen_values"] for config in base]
    configs = list({c.run_name: c for c in configs}.values())

    generators = generator_configs(dataset=dataset, samples_per_class=sizes, seeds=seeds, methods=profile["methods"],
                                   generator=generator, device=device, chimeramix=profile.get("chimeramix", False))
    if generators_per_unit == 1:
        generator_units = [Unit("generator", "generator-{}_n{}_seed{}_{}".format(
            dataset, c.samples_per_class, c.seed, c.mask_kind), (c,)) for c in generators]
    else:
        generator_units = [Unit("generator", f"generators-{start // generators_per_unit:04d}",
                                tuple(generators[start:start + generators_per_unit]))
                           for start in range(0, len(generators), generators_per_unit)]
    needs = {}
    for config in configs:
        base, _ = parse_method(config.method)
        kind = GENERATOR_METHODS.get(base)
        needs[config.run_name] = ((dataset, config.samples_per_class, config.seed, kind),) if kind else ()

    packs = []
    configs.sort(key=lambda c: (c.samples_per_class, c.seed, c.method, c.p_gen))
    for start in range(0, len(configs), runs_per_unit):
        pack = tuple(configs[start:start + runs_per_unit])
        pack_needs = tuple(sorted({key for c in pack for key in needs[c.run_name]}))
        packs.append(Unit("classifier", f"classifier-{start // runs_per_unit:04d}", pack, pack_needs))
    return generator_units + packs


def _generator_finished(folder: Path) -> bool:
    if (folder / FINISHED_NAME).exists():
        return True
    if not (folder / CHECKPOINT_NAME).exists():
        return False
    import torch

    try:  # generators trained before finished.json existed
        return bool(torch.load(folder / CHECKPOINT_NAME, map_location="cpu", weights_only=True).get("finished"))
    except Exception:
        return False


def unit_outputs(unit: Unit, results_dir) -> list[Path]:
    """The files a unit writes: its lock names and how its completion is seen."""
    if unit.kind == "generator":
        return [generator_folder(results_dir, c.dataset, c.samples_per_class, c.seed, c.mask_kind) for c in unit.configs]
    return [run_path(results_dir, config) for config in unit.configs]


def is_done(unit: Unit, results_dir) -> bool:
    if unit.kind == "generator":
        return all(_generator_finished(folder) for folder in unit_outputs(unit, results_dir))
    return all(path.exists() for path in unit_outputs(unit, results_dir))


def is_running(unit: Unit, results_dir) -> bool:
    return any(is_held(path) for path in unit_outputs(unit, results_dir))


# --- running one unit ----------------------------------------------------------------------

def failure_path(results_dir, unit: Unit) -> Path:
    return Path(results_dir) / SWEEP_DIR / "failed" / f"{unit.name}.json"


def execute(unit: Unit, results_dir, *, progress: bool = False) -> str:
    """Run one unit where it is (a Slurm task, a local worker); returns what happened.

    An exception is recorded in ``sweep/failed/<unit>.json`` (and re-raised, so a scheduler
    marks the task failed); the record is removed when the unit later succeeds.
    """
    results_dir = Path(results_dir)
    if is_done(unit, results_dir):
        return "already done"
    needed = [generator_folder(results_dir, *key) for key in unit.needs]
    for folder in needed:  # a generator another worker is training: wait for it
        while not _generator_finished(folder) and is_held(folder):
            time.sleep(2)
    missing = [str(folder) for folder in needed if not _generator_finished(folder)]
    if missing:
        message = f"the generators it needs are not trained (see their units' errors): {', '.join(missing)}"
        _record_failure(results_dir, unit, message)
        raise SweepError(f"{unit.name}: {message}")
    try:
        if unit.kind == "generator":
            train_set = load_dataset(unit.configs[0].dataset, train=True)
            jobs = [(config, train_set, get_split(train_set, config.samples_per_class, config.seed, results_dir / "splits"),
                     folder) for config, folder in zip(unit.configs, unit_outputs(unit, results_dir))
                    if not _generator_finished(folder) and not is_held(folder)]  # others: done, or another worker's
            try:
                train_generators(jobs, progress=progress)
            except LockedError:
                return "running elsewhere"
            if not is_done(unit, results_dir):
                return "running elsewhere"
            if not jobs:
                return "done elsewhere"
        else:
            trained = train_runs(list(unit.configs), results_dir, progress=progress, skip_locked=True)
            if not is_done(unit, results_dir):
                return "running elsewhere"
            if not trained:  # another worker held every run and finished them meanwhile
                return "done elsewhere"
    except Exception as error:
        _record_failure(results_dir, unit, f"{type(error).__name__}: {error}", traceback.format_exc())
        raise
    failure_path(results_dir, unit).unlink(missing_ok=True)
    return "done"


def _record_failure(results_dir: Path, unit: Unit, error: str, details: str = "") -> None:
    write_atomic(failure_path(results_dir, unit), json.dumps({
        "unit": unit.name, "what": unit.describe(), "error": error, "traceback": details, "host": socket.gethostname(),
        "job": os.environ.get("SLURM_JOB_ID"), "time": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1) + "\n")


class UnitJob(Checkpointable):
    """What a Slurm array task runs. As a submitit Checkpointable, a task that runs out of time or is
    preempted is requeued with the same arguments and resumes from the checkpoints on disk."""

    def __call__(self, unit: Unit, results_dir: str) -> str:
        import torch

        torch.set_num_threads(int(os.environ.get("SLURM_CPUS_PER_TASK", torch.get_num_threads())))
        return execute(unit, results_dir)


# --- executors -----------------------------------------------------------------------------

def pending(units: list[Unit], results_dir) -> list[Unit]:
    return [unit for unit in units if not is_done(unit, results_dir)]


def run_local(units: list[Unit], results_dir, *, profile: str, runs_per_unit: int, generators_per_unit: int = 1,
              devices: list[str] | None = None, log=print) -> dict:
    """Run the pending units on this machine: in this process on CPU, else one worker process per
    GPU (each with its own CUDA_VISIBLE_DEVICES). Generators first, then classifier packs.

    Own worker processes rather than submitit's LocalExecutor: that one gives every job the
    same first GPUs instead of one GPU each.
    """
    import torch

    if devices is None:
        devices = [str(i) for i in range(torch.cuda.device_count())]
    counts = {}
    for kind in ("generator", "classifier"):
        todo = [unit for unit in pending(units, results_dir) if unit.kind == kind]
        if not todo:
            continue
        log(f"{len(todo)} {kind} units on {len(devices) or 1} {'GPU worker(s)' if devices else 'CPU worker'}")
        if not devices:
            for unit in todo:
                counts[unit.name] = _run_logged(unit, results_dir, log)
            continue
        workers = [subprocess.Popen([sys.executable, "-m", "hydramix_core.cli", "sweep", "worker", "--profile", profile,
                                     "--results", str(results_dir), "--kind", kind, "--runs-per-unit", str(runs_per_unit),
                                     "--generators-per-unit", str(generators_per_unit)],
                                    env={**os.environ, "CUDA_VISIBLE_DEVICES": device}) for device in devices]
        codes = [worker.wait() for worker in workers]
        if any(codes):
            log(f"{sum(1 for c in codes if c)} worker(s) reported failed units; see `hydramix sweep status`")
    return counts


def _run_logged(unit: Unit, results_dir, log) -> str:
    started = time.perf_counter()
    try:
        outcome = execute(unit, results_dir, progress=False)
    except Exception as error:
        outcome = f"failed ({type(error).__name__}: {error})"
    log(f"{unit.name} [{unit.describe()}]: {outcome} ({time.perf_counter() - started:.0f} s)")
    return outcome


def worker(profile: str, results_dir, *, kind: str, runs_per_unit: int, generators_per_unit: int = 1) -> int:
    """One local worker: every pending unit of ``kind`` whose outputs no other worker holds."""
    _, parameters = load_profile(profile)
    units = plan(parameters, results_dir, runs_per_unit=runs_per_unit, generators_per_unit=generators_per_unit)
    units = [u for u in pending(units, results_dir) if u.kind == kind]
    outcomes = [_run_logged(unit, results_dir, print) for unit in units]
    return int(any(outcome.startswith("failed") for outcome in outcomes))


SLURM_DEFAULTS = {"partition": None, "time": 240, "gpus": 1, "cpus": 8, "mem": 32, "parallelism": 64}


def submit_slurm(units: list[Unit], results_dir, *, partition: str | None = None, time_min: int = 240,
                 gpus: int = 1, cpus: int = 8, mem_gb: int = 32, parallelism: int = 64, log=print) -> list[str]:
    """Submit the pending units not already queued as two Slurm job arrays through submitit:
    generators, then classifier packs that start when the generator array has ended
    (``afterany``: a failed generator fails only the packs that need it, with a clear record)."""
    try:
        import submitit
    except ImportError:
        raise SweepError("--executor slurm needs submitit: pip install submitit (or pip install -e '.[cluster]')") from None
    check_slurm()
    results_dir = Path(results_dir).resolve()
    queued = queued_units(results_dir)
    todo = [unit for unit in pending(units, results_dir) if unit.name not in queued]
    if not todo:
        log("nothing to submit: every unit is done or already queued")
        return []
    folder = results_dir / SWEEP_DIR / "slurm"
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
    executor.update_parameters(timeout_min=time_min, gpus_per_node=gpus, cpus_per_task=cpus, mem_gb=mem_gb,
                               slurm_partition=partition, slurm_array_parallelism=parallelism,
                               slurm_signal_delay_s=60)
    submitted, generator_array = [], None
    for kind in ("generator", "classifier"):
        batch = [unit for unit in todo if unit.kind == kind]
        if not batch:
            continue
        dependency = f"afterany:{generator_array}" if kind == "classifier" and generator_array else None
        executor.update_parameters(name=f"hydramix-{kind}", slurm_additional_parameters=
                                   {"dependency": dependency} if dependency else {})
        jobs = executor.map_array(UnitJob(), batch, [str(results_dir)] * len(batch))
        array_id = jobs[0].job_id.split("_")[0]
        if kind == "generator":
            generator_array = array_id
        _remember_jobs(results_dir, {job.job_id: unit.name for job, unit in zip(jobs, batch)})
        submitted += [job.job_id for job in jobs]
        log(f"submitted {len(batch)} {kind} units as Slurm array {array_id}"
            + (f" (starts after array {generator_array} ends)" if dependency else ""))
    return submitted


def check_slurm() -> None:
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise SweepError("no Slurm client here (sbatch/squeue not found): run on a cluster login node, "
                         "or use --executor local.")
    try:
        probe = subprocess.run(["squeue", "--noheader", "--me"], capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        raise SweepError("the Slurm scheduler did not answer squeue within 90 s; check that slurmctld is up.") from None
    if probe.returncode != 0:
        raise SweepError(f"the Slurm scheduler is not reachable (squeue: {probe.stderr.strip()}); check that slurmctld "
                         f"is up and SLURM_CONF points at the cluster's slurm.conf.")


def _jobs_file(results_dir) -> Path:
    return Path(results_dir) / SWEEP_DIR / "slurm_jobs.json"


def _remember_jobs(results_dir, jobs: dict) -> None:
    path = _jobs_file(results_dir)
    known = json.loads(path.read_text()) if path.exists() else {}
    write_atomic(path, json.dumps({**known, **jobs}, indent=1) + "\n")


def scheduler_states(results_dir) -> dict[str, str]:
    """Unit name -> Slurm state (PENDING, RUNNING, ...) of the jobs this results folder submitted
    that the scheduler still lists."""
    path = _jobs_file(results_dir)
    if not path.exists() or shutil.which("squeue") is None:
        return {}
    jobs = json.loads(path.read_text())
    listed = subprocess.run(["squeue", "--noheader", "--array", "--format=%i %T"], capture_output=True, text=True)
    states = dict(line.split() for line in listed.stdout.splitlines() if len(line.split()) == 2)
    return {unit: states[job] for job, unit in jobs.items() if job in states}


def queued_units(results_dir) -> set[str]:
    return {unit for unit, state in scheduler_states(results_dir).items()
            if state in ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "SUSPENDED", "RESIZING", "COMPLETING")}


def wait(units: list[Unit], results_dir, *, poll_s: float = 5.0, log=print) -> None:
    """Wait until no unit of this results folder is queued or running."""
    last = None
    while True:
        states = scheduler_states(results_dir)
        active = [u for u in units if u.name in states and states[u.name] not in ("COMPLETED", "FAILED", "CANCELLED")]
        line = f"{len(units) - len(pending(units, results_dir))}/{len(units)} units done, {len(active)} queued or running"
        if line != last:
            log(line)
            last = line
        if not active:
            return
        time.sleep(poll_s)


# --- status --------------------------------------------------------------------------------

def status(units: list[Unit], results_dir) -> list[dict]:
    """One row per unit: name, kind, what, state (done / running / queued / failed / pending), error."""
    results_dir = Path(results_dir)
    scheduled = scheduler_states(results_dir)
    rows = []
    for unit in units:
        failure = failure_path(results_dir, unit)
        error = ""
        if is_done(unit, results_dir):
            state = "done"
        elif is_running(unit, results_dir) or scheduled.get(unit.name) == "RUNNING":
            state = "running"
        elif scheduled.get(unit.name) in ("PENDING", "REQUEUED", "CONFIGURING"):
            state = "queued"
        elif failure.exists():
            state, error = "failed", json.loads(failure.read_text())["error"]
        else:
            state = "pending"
        rows.append({"unit": unit.name, "kind": unit.kind, "what": unit.describe(), "state": state, "error": error})
    return rows


def format_status(rows: list[dict], *, profile: str, results_dir) -> str:
    states = ("done", "running", "queued", "pending", "failed")
    lines = [f"profile {profile}, results in {results_dir}", f"{'':12}" + "".join(f"{s:>9}" for s in states)]
    for kind in ("generator", "classifier"):
        mine = [r for r in rows if r["kind"] == kind]
        lines.append(f"{kind:12}" + "".join(f"{sum(r['state'] == s for r in mine):>9}" for s in states))
    for row in rows:
        if row["state"] == "failed":
            lines.append(f"failed: {row['unit']} [{row['what']}]: {row['error']}")
    return "\n".join(lines)


# --- command line --------------------------------------------------------------------------

def main_with(args) -> int:
    """``hydramix sweep ...`` (arguments: ``cli.add_sweep_arguments``)."""
    if args.action == "worker":
        return worker(args.profile, args.results, kind=args.kind, runs_per_unit=args.runs_per_unit,
                      generators_per_unit=args.generators_per_unit)
    name, parameters = load_profile(args.profile)
    results_dir = Path(args.results or REPO / "results" / name)
    for flag in ("runs_per_unit", "generators_per_unit"):
        if getattr(args, flag) < 1:
            raise SweepError(f"--{flag.replace('_', '-')} must be a positive integer, got {getattr(args, flag)}")
    units = plan(parameters, results_dir, runs_per_unit=args.runs_per_unit, generators_per_unit=args.generators_per_unit)
    if args.action == "status":
        print(format_status(status(units, results_dir), profile=name, results_dir=results_dir))
        return 0
    results_dir.mkdir(parents=True, exist_ok=True)
    if args.executor == "slurm":
        given = {"partition": args.partition, "time": args.time, "gpus": args.gpus, "cpus": args.cpus, "mem": args.mem,
                 "parallelism": args.parallelism}
        unknown = set(parameters.get("slurm", {})) - set(given)
        if unknown:
            raise SweepError(f"unknown keys in the profile's slurm section: {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(given)})")
        resources = {**SLURM_DEFAULTS, **parameters.get("slurm", {}), **{k: v for k, v in given.items() if v is not None}}
        submit_slurm(units, results_dir, partition=resources["partition"], time_min=resources["time"],
                     gpus=resources["gpus"], cpus=resources["cpus"], mem_gb=resources["mem"],
                     parallelism=resources["parallelism"])
        if args.wait:
            wait(units, results_dir)
    else:
        devices = None if args.devices is None else [d for d in args.devices.split(",") if d and d != "none"]
        run_local(units, results_dir, profile=str(args.profile), runs_per_unit=args.runs_per_unit,
                  generators_per_unit=args.generators_per_unit, devices=devices)
    rows = status(units, results_dir)
    print(format_status(rows, profile=name, results_dir=results_dir))
    return 1 if any(r["state"] == "failed" for r in rows) else 0
