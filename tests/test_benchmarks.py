"""The sweep benchmark's bookkeeping: which measured rate a planned unit gets, and the projected hours."""

import pytest

from benchmarks.sweep_throughput import Rows, project, rate_at

S, G = 100_000, 50_000  # classifier and generator steps
PROFILE = """
dataset: cifar10
samples_per_class: [5]
seeds: [0, 1, 2]
device: cpu
generator: {ngf: 16, ndf: 16, batch_size: 8, steps: 50000, n_mix: [2, 3, 4], mask_kind: hydramix}
methods: [baseline, hydramix]
classifier: {model: wrn16_2, steps: 100000}
scorer: surrogate
chimeramix: false
"""


def test_a_pack_gets_the_rate_of_the_largest_measured_pack_not_above_it():
    rates = {1: 10.0, 4: 30.0, 8: 40.0}
    assert [rate_at(rates, k) for k in (1, 3, 4, 6, 8, 16)] == [10.0, 10.0, 30.0, 30.0, 40.0, 40.0]
    assert rate_at({4: 30.0}, 2) == 30.0  # nothing measured at or below: the smallest pack measured


def test_the_projection_runs_each_unit_at_its_own_pack_size_and_averages_times(tmp_path):
    """6 classifier runs of 100k steps (3 seeds x 2 methods) and 3 generators of 50k steps; with
    packs of 4 the sweep plans a unit of 4 runs and one of 2."""
    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE)
    classifier = {"baseline": {1: 10.0, 4: 20.0}, "hydramix": {1: 5.0, 4: 10.0}, "mixup": {1: 1.0}, "autoaugment": {1: 1.0}}
    generators = {2: {1: 1.0, 2: 2.0}, 3: {1: 2.0}, 4: {1: 4.0}}
    alone = project(str(profile), classifier, generators, runs_per_unit=1, generators_per_unit=1)
    assert (alone["classifier_runs"], alone["generators"]) == (6, 3)
    assert alone["classifier_hours"] == pytest.approx((3 * S / 10 + 3 * S / 5) / 3600, abs=0.01)
    seconds_per_generator_step = (1 / 1.0 + 1 / 2.0 + 1 / 4.0) / 3  # times averaged over N, not rates
    assert alone["generator_hours"] == pytest.approx(3 * G * seconds_per_generator_step / 3600, abs=0.01)

    packed = project(str(profile), classifier, generators, runs_per_unit=4, generators_per_unit=2)
    # sorted by (n, seed, method): the first unit holds seeds 0, 1 (4 runs, pack rates), the second seed 2 (2 runs)
    expected = (2 * S / 20 + 2 * S / 10) + (S / 10 + S / 5)
    assert packed["classifier_hours"] == pytest.approx(expected / 3600, abs=0.01)
    two = (1 / 2.0 + 1 / 2.0 + 1 / 4.0) / 3  # the pack of 2 at N = 2's pack rate, the last generator alone
    assert packed["generator_hours"] == pytest.approx((2 * G * two + G * seconds_per_generator_step) / 3600, abs=0.01)


def test_a_row_whose_steps_computed_nothing_is_an_error(tmp_path):
    rows = Rows(str(tmp_path / "rows.jsonl"))
    rows.add({"kind": "classifier", "runs": 1, "run_steps_per_s": 9.0, "losses_finite": True, "weights_moved": False})
    rows.add({"kind": "classifier", "runs": 2, "run_steps_per_s": 9.0, "losses_finite": True, "weights_moved": True})
    assert "error" in rows.rows[0] and "error" not in rows.rows[1]
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 2  # written as measured


def test_the_gpu_check_fits_one_device_command_by_its_own_budgets():
    """scripts/gpu_check.sh's stage budgets (plus 15 s to pack and print) fit a 9-minute command."""
    import re
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / "scripts/gpu_check.sh").read_text()
    budgets = {name: int(value) for name, value in re.findall(r"\$\{(\w+)_BUDGET:-(\d+)\}", script)}
    assert set(budgets) == {"SETUP", "TESTS", "BENCH", "SWEEP"}
    assert sum(budgets.values()) + 15 <= 540, budgets


@pytest.mark.slow
def test_the_cpu_levers_benchmark_reports_every_variant_and_both_process_layouts(cifar10_root, monkeypatch, capsys):
    import json

    from benchmarks import cpu_levers

    monkeypatch.setenv("HYDRAMIX_DATA", str(cifar10_root))  # the worker processes load the data themselves
    cpu_levers.main(["--variants", "fp32", "bf16_cl", "--steps", "1", "--warmup", "1", "--repeats", "1"])
    result = json.loads(capsys.readouterr().out)
    assert set(result["step"]) == {"fp32", "bf16_cl"} and all(r["ms_per_step"] > 0 for r in result["step"].values())
    assert set(result["processes"]) == {"fp32", "bf16_cl"}
    assert all(len(r["worker_ms"]) == 2 and r["steps_per_s_workers"] > 0 for r in result["processes"].values())
