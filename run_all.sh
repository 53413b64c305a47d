#!/usr/bin/env bash
# Run the study: the notebooks in notebooks/ in order, with papermill, parameters from
# profiles/<profile>.yaml, outputs (executed notebooks, CSV/JSON, figures) in results/<profile>/.
#
#   ./run_all.sh                          # profile smoke (CPU, minutes)
#   ./run_all.sh --profile paper          # the full protocol (GPU)
#   ./run_all.sh --from 03                # resume from step 03
#   ./run_all.sh --only 02_train_generator
#   ./run_all.sh --results /tmp/fresh      # write somewhere else than results/<profile>
#
# Finished runs are never redone: each step skips work whose results already exist.
set -euo pipefail
profile=smoke from="" only="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --from) from="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --results) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/scripts/venv.sh"
cd "$REPO"
parameters="profiles/$profile.yaml"
[ -f "$parameters" ] || { echo "no profile $parameters (have: $(ls profiles | sed 's/.yaml//' | tr '\n' ' '))" >&2; exit 2; }
source scripts/offline_data.sh
out="${out:-results/$profile}"
mkdir -p "$out"
started=$([ -z "$from" ] && echo yes || echo no)
for notebook in notebooks/[0-9][0-9]_*.ipynb; do
  step="$(basename "$notebook" .ipynb)"
  [[ "$step" == "$from"* ]] && started=yes
  [ "$started" = yes ] || continue
  [ -z "$only" ] || [[ "$step" == "$only"* ]] || continue
  echo "== $step ($profile)"
  if ! papermill "$notebook" "$out/$step.ipynb" -f "$parameters" -p profile "$profile" -p results_dir "$out" \
       --cwd "$REPO" --progress-bar; then
    echo "Step $step failed; the executed notebook with the error is $out/$step.ipynb" >&2
    exit 1
  fi
done
echo "Done: results in $out/"
