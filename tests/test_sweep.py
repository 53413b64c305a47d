"""The study as work units: planned from a profile, run locally or as Slurm job arrays through
submitit on a real one-node Slurm cluster (scripts/slurm_cluster.sh), resubmitted, cancelled,
resumed, with every result written exactly once."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hydramix_core.sweep import execute, is_done, load_profile, plan
from tests.processes import LIMIT, Started, wait_until

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "scripts" / "slurm_cluster.sh"
SLURM_TASK = ("--gpus", 0, "--cpus", 1, "--mem", 2, "--time", 10)


def sweep(*args, env=None, check=True):
    result = subprocess.run([sys.executable, "-m", "hydramix_core.cli", "sweep", *map(str, args)], capture_output=True,
                            text=True, env=env, timeout=LIMIT)
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def slurm(cifar10_root):
    """A running one-node Slurm cluster; started here (and stopped afterwards) unless one already runs.
    Never skipped: a cluster that cannot start fails the tests with its reason."""
    if shutil.which("slurmctld") is None:
        install = subprocess.run([str(CLUSTER), "install"], capture_output=True, text=True)
        if install.returncode != 0:
            pytest.fail(f"cannot install Slurm: {install.stderr[-2000:]}")
    was_running = subprocess.run([str(CLUSTER), "status"], capture_output=True).returncode == 0
    started = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(f"Slurm did not start: {started.stderr[-3000:]}")
    conf = started.stdout.strip().split("=", 1)[1]
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    os.environ.setdefault("HYDRAMIX_DATA", str(cifar10_root))  # the jobs inherit the environment
    yield conf
    if previous is None:
        os.environ.pop("SLURM_CONF")
    if not was_running:
        subprocess.run([str(CLUSTER), "stop"], capture_output=True)


def squeue() -> list[str]:
    return subprocess.run(["squeue", "--noheader", "--array", "--format=%i %T"], capture_output=True,
                          text=True).stdout.split("\n")[:-1]


def active_jobs() -> list[str]:
    return [line for line in squeue() if line.split()[-1] in ("RUNNING", "PENDING", "COMPLETING", "CONFIGURING")]


def checkpoints(results: Path) -> list[Path]:
    return list((results / "checkpoints" / "classifiers").glob("*.pt"))


def result_files(results: Path) -> list[str]:
    return sorted(p.name for p in (results / "runs").iterdir() if not p.name.startswith("."))


NBCHECK_RUNS = [f"cifar10_n2_seed{s}_{m}" for s in (0, 1) for m in (
    "baseline", "hydramix_p0.5", "hydramix_p0", "hydramix_direct_p0.5", "hydramix+autoaugment_p0.5",
    "chimeramix_grid_p0.5_batch", "chimeramix_grid_direct_p0.5_batch", "chimeramix_seg_p0.5_batch",
    "chimeramix_seg_direct_p0.5_batch", "chimeramix_grid+autoaugment_p0.5_batch", "zetamixup", "mixup_a0.2",
    "randaugment", "harmonic")]


def test_plan_matches_the_notebooks():
    _, profile = load_profile("nbcheck")
    units = plan(profile, "/tmp/unused", runs_per_unit=4)
    generators = [u.name for u in units if u.kind == "generator"]
    # HydraMix's per split, then each kind the methods draw from (05's ChimeraMix+Seg is among them)
    assert generators == [f"generator-cifar10_n2_seed{s}_{k}" for k in ("hydramix", "chimeramix_grid", "chimeramix_seg")
                          for s in (0, 1)]
    runs = [c.run_name for u in units if u.kind == "classifier" for c in u.configs]
    assert sorted(runs) == sorted(NBCHECK_RUNS)
    assert all(len(u.configs) <= 4 for u in units if u.kind == "classifier")
    hydramix_pack = next(u for u in units if u.kind == "classifier" and any(c.method == "hydramix" for c in u.configs))
    assert ("cifar10", 2, 0, "hydramix") in hydramix_pack.needs


def test_generator_packs_train_every_generator_once(cifar10_root, tmp_path, monkeypatch):
    """With generators_per_unit > 1 a unit trains several generators together; a unit whose
    generators are all finished is not retrained, and a classifier unit finds what it needs."""
    monkeypatch.setenv("HYDRAMIX_DATA", str(cifar10_root))
    _, profile = load_profile("nbcheck")
    single = [u for u in plan(profile, tmp_path, runs_per_unit=4) if u.kind == "generator"]
    units = plan(profile, tmp_path, runs_per_unit=4, generators_per_unit=4)
    packs = [u for u in units if u.kind == "generator"]
    assert [len(u.configs) for u in packs] == [4, 2] and [u.name for u in packs] == ["generators-0000", "generators-0001"]
    assert [c for u in packs for c in u.configs] == [c for u in single for c in u.configs]
    assert execute(packs[0], tmp_path) == "done"
    assert all(is_done(unit, tmp_path) for unit in single[:4]) and not is_done(single[4], tmp_path)
    assert execute(packs[0], tmp_path) == "already done"
    assert execute(single[4], tmp_path) == "done" and execute(packs[1], tmp_path) == "done"
    first = next(u for u in units if u.kind == "classifier")
    assert execute(first, tmp_path) == "done"


def test_slurm_sweep_runs_once_resubmits_nothing_and_notebooks_render(slurm, tmp_path):
    results = tmp_path / "results"
    started = time.time()
    out = sweep("run", "--profile", "nbcheck", "--results", results, "--executor", "slurm", *SLURM_TASK, "--wait").stdout
    assert "submitted 6 generator units as Slurm array" in out and "starts after array" in out
    assert "13/13 units done" in out, out
    assert result_files(results) == sorted(f"{name}.json" for name in NBCHECK_RUNS)
    assert not list((results / "checkpoints" / "classifiers").glob("*"))  # deleted once each result was stored
    jobs = json.loads((results / "sweep" / "slurm_jobs.json").read_text())
    assert len(jobs) == 13
    print(f"slurm sweep of profile nbcheck: {time.time() - started:.0f} s")

    again = sweep("run", "--profile", "nbcheck", "--results", results, "--executor", "slurm", *SLURM_TASK).stdout
    assert "nothing to submit" in again and json.loads((results / "sweep" / "slurm_jobs.json").read_text()) == jobs
    status = sweep("status", "--profile", "nbcheck", "--results", results).stdout
    assert "generator           6        0        0        0        0" in status
    assert "classifier          7        0        0        0        0" in status

    stamps = {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}
    rendered = subprocess.run([str(REPO / "run_all.sh"), "--profile", "nbcheck", "--results", results, "--only", "03",
                               "--executor", "slurm", "--", *map(str, SLURM_TASK)], capture_output=True, text=True,
                              timeout=600)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert "nothing to submit" in rendered.stdout
    assert {p: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")} == stamps  # gathered, not retrained
    assert (results / "03_classifier_evaluation.ipynb").exists() and (results / "classifier_runs.csv").exists()


def test_cancelled_jobs_resume_without_duplicates(slurm, tmp_path):
    profile = yaml.safe_load((REPO / "profiles" / "nbcheck.yaml").read_text())
    profile.update(methods=["baseline"], p_gen_values=[], chimeramix=False,
                   classifier={"model": "wrn16_2", "steps": 1500, "test_subset": 5, "samples_per_class_per_epoch": 4},
                   slurm={"gpus": 0, "cpus": 1, "mem": 2, "time": 10})  # resources from the profile this time
    path = tmp_path / "long.yaml"  # 4 steps per epoch: a checkpoint every 40 steps
    path.write_text(yaml.safe_dump(profile))
    results = tmp_path / "results"
    args = ("run", "--profile", path, "--results", results, "--executor", "slurm", "--runs-per-unit", 1)
    sweep(*args)
    wait_until(lambda: checkpoints(results), what="classifier checkpoint", poll=0.2)
    subprocess.run(["scancel", "--name", "hydramix-classifier"], check=True)
    wait_until(lambda: not active_jobs(), what="end of the cancelled jobs", poll=0.5)
    interrupted = sweep("status", "--profile", path, "--results", results).stdout
    assert "classifier          0" in interrupted, interrupted  # neither pack finished
    assert checkpoints(results)  # kept for the resumed run

    resumed = sweep(*args, "--wait").stdout
    assert "4/4 units done" in resumed, resumed
    assert result_files(results) == ["cifar10_n2_seed0_baseline.json", "cifar10_n2_seed1_baseline.json"]
    assert not list((results / "checkpoints" / "classifiers").glob("*.pt"))
    assert all(not p.name.endswith(".tmp") for p in (results / "runs").iterdir())
    for seed in (0, 1):
        record = json.loads((results / "runs" / f"cifar10_n2_seed{seed}_baseline.json").read_text())
        assert record["steps"] == 1500 and len(record["history"]) == 375


def test_failing_unit_is_recorded_and_the_others_finish(cifar10_root, tmp_path):
    profile = yaml.safe_load((REPO / "profiles" / "nbcheck.yaml").read_text())
    profile.update(samples_per_class=[2, 6000], seeds=[0], methods=["baseline", "hydramix"], p_gen_values=[],
                   chimeramix=False)
    path = tmp_path / "bad.yaml"  # CIFAR-10 has 5000 training images per class: n=6000 cannot be drawn
    path.write_text(yaml.safe_dump(profile))
    results = tmp_path / "results"
    env = {**os.environ, "HYDRAMIX_DATA": str(cifar10_root)}
    result = sweep("run", "--profile", path, "--results", results, "--devices", "none", "--runs-per-unit", 1, env=env,
                   check=False)
    assert result.returncode == 1
    assert "failed: generator-cifar10_n6000_seed0_hydramix" in result.stdout and "5000" in result.stdout
    assert "failed: classifier-0003" in result.stdout and "generators it needs are not trained" in result.stdout
    assert "failed: classifier-0002" in result.stdout  # n=6000 baseline: the split itself cannot be drawn
    assert result_files(results) == ["cifar10_n2_seed0_baseline.json", "cifar10_n2_seed0_hydramix_p0.5.json"]
    failure = json.loads((results / "sweep" / "failed" / "generator-cifar10_n6000_seed0_hydramix.json").read_text())
    assert "Traceback" in failure["traceback"] and failure["host"]


def test_clear_errors_without_scheduler_or_submitit(tmp_path):
    no_slurm = {**os.environ, "PATH": "/nonexistent"}
    result = subprocess.run([sys.executable, "-m", "hydramix_core.cli", "sweep", "run", "--profile", "nbcheck",
                             "--results", tmp_path / "r", "--executor", "slurm"], capture_output=True, text=True,
                            env=no_slurm)
    assert result.returncode == 2 and "no Slurm client here" in result.stderr and "Traceback" not in result.stderr

    dead = tmp_path / "dead.conf"  # a controller port nothing listens on
    dead.write_text("ClusterName=dead\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=6999\nMessageTimeout=2\n"
                    "NodeName=localhost CPUs=1 State=UNKNOWN\nPartitionName=p Nodes=ALL Default=YES State=UP\n")
    unreachable = {**os.environ, "SLURM_CONF": str(dead)}
    result = sweep("run", "--profile", "nbcheck", "--results", tmp_path / "r", "--executor", "slurm", env=unreachable,
                   check=False)
    assert result.returncode == 2 and "not reachable" in result.stderr, result.stderr

    fake = tmp_path / "fake"
    (fake / "submitit").mkdir(parents=True)
    (fake / "submitit" / "__init__.py").write_text("raise ImportError('No module named submitit')\n")
    hidden = {**os.environ, "PYTHONPATH": str(fake)}
    result = sweep("run", "--profile", "nbcheck", "--results", tmp_path / "r", "--executor", "slurm", env=hidden,
                   check=False)
    assert result.returncode == 2 and "pip install submitit" in result.stderr, result.stderr
    result = sweep("run", "--profile", "nosuch", "--executor", "local", check=False)
    assert result.returncode == 2 and "no profile" in result.stderr


def test_two_sweeps_on_one_results_folder_share_the_work(cifar10_root, tmp_path):
    results = tmp_path / "results"
    env = {**os.environ, "HYDRAMIX_DATA": str(cifar10_root)}
    command = [sys.executable, "-m", "hydramix_core.cli", "sweep", "run", "--profile", "nbcheck", "--results",
               str(results), "--devices", "none", "--runs-per-unit", "1"]
    sweeps = [Started(command, env=env) for _ in range(2)]
    outputs = [(sweep.wait(), sweep.stdout, sweep.stderr)[1:] for sweep in sweeps]
    assert all(sweep.returncode == 0 for sweep in sweeps), [err[-2000:] for _, err in outputs]
    trained = [line for out, _ in outputs for line in out.splitlines() if line.startswith("classifier-")]
    assert sum(": done (" in line for line in trained) == len(NBCHECK_RUNS), trained  # each pack by one of them
    assert len(result_files(results)) == len(NBCHECK_RUNS)
    for path in (results / "runs").glob("*.json"):
        assert json.loads(path.read_text())["steps"] == 6
