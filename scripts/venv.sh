# Sourced by run_all.sh and run_tests.sh: create or reuse the project's virtual
# environment and install the package (with the torch build pinned in environment.yml)
# the first time, or again when pyproject.toml or environment.yml changed.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HYDRAMIX_VENV:-$REPO/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  PYTHON_BIN="$(command -v python3.11 || command -v python3)"
  echo "Creating virtual environment $VENV with $PYTHON_BIN" >&2
  "$PYTHON_BIN" -m venv "$VENV"
fi
STAMP="$VENV/.hydramix-installed"
if [ ! -f "$STAMP" ] || [ "$REPO/pyproject.toml" -nt "$STAMP" ] || [ "$REPO/environment.yml" -nt "$STAMP" ]; then
  echo "Installing hydramix into $VENV (first run takes a few minutes)" >&2
  TORCH_PINS="$(grep -oE '(torch|torchvision)==[0-9.]+' "$REPO/environment.yml" | tr '\n' ' ')"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install -q $TORCH_PINS
  "$VENV/bin/python" -m pip install -q -e "$REPO[notebooks,clip,cluster,dev]"
  touch "$STAMP"
fi
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
