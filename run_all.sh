#!/usr/bin/env bash
# Run the study: the notebooks in notebooks/ in order, with papermill, parameters from
# profiles/<profile>.yaml, outputs (executed notebooks, CSV/JSON, figures) in results/<profile>/.
#
#   ./run_all.sh                          # profile smoke (CPU, minutes)
#   ./run_all.sh --profile paper          # the full protocol (GPU)
#   ./run_all.sh --profile my/study.yaml  # a profile file of your own (results in results/study)
#   ./run_all.sh --from 03                # resume from step 03
#   ./run_all.sh --only 02_train_generator
#   ./run_all.sh --results /tmp/fresh      # write somewhere else than results/<profile>
#   ./run_all.sh --profile paper --executor slurm -- --partition gpu --time 720
#   ./run_all.sh --profile paper --executor local  # the training on every visible GPU first
#
# Finished runs are never redone: each step skips work whose results already exist. One run
# at a time writes a results folder: a second is refused, naming the first. With --executor,
# `hydramix sweep run` (options after --) trains every generator and classifier first, as
# Slurm job arrays or one worker per GPU; the notebooks then only gather and plot.
set -euo pipefail
caller="$PWD"  # a profile file given by a relative path is relative to where the command was run
cd "$(dirname "$0")"
usage() { echo "run_all.sh: $1 (see ./run_all.sh --help)" >&2; exit 2; }
profile=smoke from="" only="" out="" executor="" invocation="run_all.sh $*" sweep_options=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile|--from|--only|--results|--executor)
      [ $# -ge 2 ] && [ -n "$2" ] && [[ "$2" != --* ]] || usage "$1 needs a value"
      case "$1" in
        --profile) profile="$2" ;; --from) from="$2" ;; --only) only="$2" ;; --results) out="$2" ;;
        --executor) executor="$2" ;;
      esac
      shift 2 ;;
    --) shift; sweep_options=("$@"); break ;;
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) usage "unknown argument: $1" ;;
  esac
done
case "$executor" in ""|local|slurm) ;; *) usage "--executor must be local or slurm, got $executor" ;; esac
[ -z "$executor" ] && [ ${#sweep_options[@]} -gt 0 ] && usage "options after -- go to --executor; none given"
if [[ "$profile" == *.yaml || "$profile" == *.yml ]]; then  # a profile file given by its path
  [[ "$profile" == /* ]] || profile="$caller/$profile"
  [ -f "$profile" ] || usage "no profile file $profile"
  parameters="$profile" profile="$(basename "${profile%.*}")"
else
  [ -f "profiles/$profile.yaml" ] || usage "no profile profiles/$profile.yaml (have: $(ls profiles | sed 's/.yaml//' | tr '\n' ' '))"
  parameters="profiles/$profile.yaml"
fi
steps=()
for notebook in notebooks/[0-9][0-9]_*.ipynb; do steps+=("$(basename "$notebook" .ipynb)"); done
matches() { local step; for step in "${steps[@]}"; do [[ "$step" == "$1"* ]] && return 0; done; return 1; }
[ -z "$from" ] || matches "$from" || usage "--from $from matches no notebook (have: ${steps[*]})"
[ -z "$only" ] || matches "$only" || usage "--only $only matches no notebook (have: ${steps[*]})"
selected=() started=$([ -z "$from" ] && echo yes || echo no)
for step in "${steps[@]}"; do
  [[ "$step" == "$from"* ]] && started=yes
  [ "$started" = yes ] && { [ -z "$only" ] || [[ "$step" == "$only"* ]]; } && selected+=("$step")
done
[ ${#selected[@]} -gt 0 ] || usage "--from $from with --only $only selects no notebook"

source scripts/venv.sh
# What Jupyter's kernel machinery prints that says nothing about the study
QUIET="zmq|ZMQ|Proactor|frozen modules|PYDEVD_DISABLE_FILE_VALIDATION|Debugger warning|-Xfrozen_modules|to python to disable"
source scripts/offline_data.sh
out="${out:-results/$profile}"
mkdir -p "$out"
# The results folder's write lock: the lock file hydramix_core.outputs.hold uses for it (both flock(2)),
# named from the folder's real path, so a symlink to a folder takes the same lock as the folder.
real="$(cd "$out" && pwd -P)"
lock="$(dirname "$real")/.$(basename "$real").lock"
exec 9>>"$lock"
if ! flock -n 9; then
  holder="$(cat "$lock.holder" 2>/dev/null || echo "holder unknown")"
  echo "run_all.sh: $out is being written by another run ($holder); wait for it to finish or use --results." >&2
  exit 2
fi
# Who holds the lock, for a second run's message; a full disk leaves it unwritten, not the run stopped.
printf '{"pid": %d, "host": "%s", "command": "%s", "since": "%s"}' $$ "$(hostname)" "$invocation" \
  "$(date '+%F %T')" 2>/dev/null > "$lock.holder" || rm -f "$lock.holder"
trap 'rm -f "$lock.holder"' EXIT
interrupted() {
  echo "run_all.sh: interrupted. Finished notebooks, runs and generators are kept in $out/ (running ones resume from" \
    "their last checkpoint); rerun the same command to continue." >&2
  exit 130
}
trap interrupted INT TERM
if [ -n "$executor" ]; then
  echo "== training with --executor $executor (hydramix sweep run)"
  wait_flag=$([ "$executor" = slurm ] && echo --wait || true)
  "$PY" -m hydramix_core.cli sweep run --profile "$parameters" --results "$out" --executor "$executor" $wait_flag \
    "${sweep_options[@]}" || { echo "the sweep left failed units: see hydramix sweep status --profile $profile" >&2; exit 1; }
fi
index=0
for step in "${selected[@]}"; do
  index=$((index + 1))
  "$PY" scripts/run_notebook.py "notebooks/$step.ipynb" "$out" --profile "$parameters" \
    --label "[$index/${#selected[@]}]" 2> >(grep -v -E "$QUIET" >&2) || exit 1
done
echo "Done: results in $out/"
