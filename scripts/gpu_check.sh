#!/usr/bin/env bash
# The GPU checks in one command, for a GPU machine without network: the CUDA tests, the
# throughput benchmark (classifier and generator packs), then a profile of the generator's
# training step; logs go to $OUT.
#
#   mkdir -p device-data && cp cifar10-jpeg.tar.gz{,.sha256} device-data/   # once, beside the repo's files
#   OUT=/tmp/gpu-check scripts/gpu_check.sh [benchmark options]
#
# The machine needs python3 with torch, torchvision, scikit-image, pandas, pyyaml, filelock,
# tqdm and pytest (no papermill or open_clip). Each stage has a time limit, so a hang in one
# still leaves the others' output.
set -uo pipefail
OUT=${OUT:-/tmp/hydramix-gpu-check}
mkdir -p "$OUT"
export HYDRAMIX_DATA=${HYDRAMIX_DATA:-/tmp/hydramix-data} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)" | tee -a "$OUT/gpu.txt"
python3 -m hydramix_core.data --install-archive device-data/cifar10-jpeg.tar.gz || exit 1
# the CUDA-only tests first (graphed classifier and generator runs), then the rest of these files
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -q -s -p no:cacheprovider -k "graphed" tests/test_engine.py \
    tests/test_train_generator.py 2>&1 | tee "$OUT/tests_cuda.log" | grep -v "^segmenting"
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider -k "not graphed" tests/test_engine.py \
    tests/test_classic.py tests/test_train_generator.py 2>&1 | tee "$OUT/tests.log" | grep -v "^segmenting"
timeout "${BENCH_TIMEOUT:-330}" python3 -m benchmarks.sweep_throughput "$@" 2>&1 | tee "$OUT/sweep_throughput.log"
timeout "${PROFILE_TIMEOUT:-120}" python3 -m benchmarks.generator_step --ngf 64 --batch 64 --steps 5 --profile \
    2>&1 | tee "$OUT/generator_profile.txt"
