#!/usr/bin/env bash
# The GPU checks in one command of at most 9 minutes, for a GPU machine without network:
#   1. set-up: GPU, versions, the CIFAR-10 copy installed from device-data/        45 s
#   2. the CUDA tests (pytest -m cuda: graphed runs and generators, pack vs alone)  120 s
#   3. the throughput benchmark, each row appended to $OUT as it is measured,
#      every row checked to compute something, and the projection of `paper`       210 s
#   4. profile gpu through the sweep (resumable: as much of it as fits)            150 s
#   5. its records packed into $OUT/results_gpu.tar.gz, and a table printed last     15 s
# The budgets add up to 540 s; a stage that hangs is stopped at its own and the next one runs.
#
# Here, once (copies the offline CIFAR-10 archive into the git-ignored device-data/):
#   scripts/gpu_check.sh --prepare
# Then the device call (benchmarks/README.md): command "scripts/gpu_check.sh", carry
# ["device-data"], timeout_s 600. Outputs (6 files in $OUT): check.txt (GPU, versions, each
# stage's exit code and seconds), tests_cuda.log, benchmark.log, benchmark_rows.jsonl,
# sweep_gpu.log, results_gpu.tar.gz (results/gpu without its .pt checkpoints).
#
# The machine needs python3 with torch, torchvision, scikit-image, pandas, pyyaml, filelock,
# tqdm and pytest (no papermill, submitit or open_clip). BENCH_ARGS, SWEEP_PROFILE and the
# *_BUDGET variables override the defaults (a dry run on a CPU: see benchmarks/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --prepare ]]; then
    archive=${HYDRAMIX_OFFLINE_ARCHIVE:-../shared/data/cifar10-jpeg.tar.gz}
    [[ -f $archive && -f $archive.sha256 ]] || { echo "no $archive (+ .sha256): set HYDRAMIX_OFFLINE_ARCHIVE" >&2; exit 2; }
    mkdir -p device-data && install -m 644 "$archive" "$archive.sha256" device-data/ && ls -l device-data
    exit 0
fi
OUT=${OUT:-/tmp/hydramix-gpu-check}
mkdir -p "$OUT"
export HYDRAMIX_DATA=${HYDRAMIX_DATA:-/tmp/hydramix-data} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
RESULTS=${RESULTS:-/tmp/hydramix-results-gpu}
SWEEP_PROFILE=${SWEEP_PROFILE:-gpu}
BENCH_ARGS=${BENCH_ARGS:---packs 1 4 8 --steps 100 --warmup 10 --generator-packs 1 2 4 --generator-steps 20 --generator-warmup 3}
CHECK="$OUT/check.txt"
: > "$CHECK"

stage() {  # stage NAME BUDGET_SECONDS LOG COMMAND...: run it under its budget, note exit code and time
    local name=$1 budget=$2 log=$3 start=$SECONDS rc
    shift 3
    timeout --kill-after=5 "$budget" "$@" > "$log" 2>&1
    rc=$?
    echo "stage $name: exit $rc$([[ $rc == 124 || $rc == 137 ]] && echo ' (stopped at its budget)') in $((SECONDS - start)) s of $budget s" | tee -a "$CHECK"
    return $rc
}

{
    date -u +"%Y-%m-%d %H:%M UTC"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda, 'visible', torch.cuda.is_available())"
} >> "$CHECK" 2>&1
if [[ ! -f device-data/cifar10-jpeg.tar.gz ]]; then
    echo "device-data/cifar10-jpeg.tar.gz is missing: run scripts/gpu_check.sh --prepare here and carry device-data" | tee -a "$CHECK"
    exit 2
fi
stage setup "${SETUP_BUDGET:-45}" "$OUT/setup.log" python3 -m hydramix_core.data --install-archive device-data/cifar10-jpeg.tar.gz \
    || { cat "$OUT/setup.log"; exit 2; }
rm -f "$OUT/setup.log"
stage tests "${TESTS_BUDGET:-120}" "$OUT/tests_cuda.log" python3 -m pytest -q -s -p no:cacheprovider -m cuda tests/
rm -f "$OUT/benchmark_rows.jsonl"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of options
stage benchmark "${BENCH_BUDGET:-210}" "$OUT/benchmark.log" python3 -m benchmarks.sweep_throughput $BENCH_ARGS \
    --rows "$OUT/benchmark_rows.jsonl" --runs-per-unit 8 --generators-per-unit 4
stage sweep "${SWEEP_BUDGET:-150}" "$OUT/sweep_gpu.log" python3 -m hydramix_core.cli sweep run --profile "$SWEEP_PROFILE" \
    --results "$RESULTS" --executor local --runs-per-unit 10 --generators-per-unit 5
tar -czf "$OUT/results_gpu.tar.gz" --exclude='*.pt' -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")" 2>> "$CHECK"

python3 - "$OUT/benchmark_rows.jsonl" "$RESULTS" <<'EOF' | tee -a "$CHECK"
import json, sys
from pathlib import Path

rows = [json.loads(line) for line in open(sys.argv[1])] if Path(sys.argv[1]).exists() else []
projections = [r for r in rows if r["kind"] == "projection"]
rows = [r for r in rows if r["kind"] != "projection"]
print("benchmark (run-steps/s; ms per step of one run):")
for r in rows:
    what = r.get("method") or f"generator N={r.get('n_mix')}"
    print(f"  {what:>16} {r['engine']:>7} K={r['runs']:<2}", r.get("error") or f"{r['run_steps_per_s']} ({r['ms_per_run_step']} ms)")
for p in projections:
    print(f"projection of profile {p['profile']} (packs of {p['runs_per_unit']} runs, {p['generators_per_unit']} generators): "
          f"classifier {p['classifier_hours']} h + generators {p['generator_hours']} h = {p['total_hours']} GPU-hours")
records = sorted(Path(sys.argv[2], "runs").glob("*.json"))
if records:
    from hydramix_core.study import load_runs, mean_sd_table, to_markdown
    print(f"profile sweep: {len(records)} classifier runs finished; accuracy (%) mean ± sd over seeds:")
    print(to_markdown(mean_sd_table(load_runs(records))))
else:
    print("profile sweep: no classifier run finished in its budget")
EOF
