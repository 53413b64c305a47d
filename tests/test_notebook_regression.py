"""nbval regression: re-execute the committed nbcheck notebooks (results/nbcheck/, made by
``./run_all.sh --profile nbcheck``) in a fresh folder and compare the cells marked
``# NBVAL_CHECK_OUTPUT``: split indices, counts, shapes, rounded losses and accuracies."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hydramix_core.runtime import PORTABLE_CPU_ENV

REPO = Path(__file__).resolve().parents[1]
EXECUTED = REPO / "results" / "nbcheck"
SANITIZE = REPO / "tests" / "nb" / "sanitize.cfg"

pytestmark = pytest.mark.slow


def _run_nbval(folder: Path, data_root: Path, notebooks: list[str], **environ) -> subprocess.CompletedProcess:
    # The reference was made with profile nbcheck's portable CPU numerics; its kernels get the same.
    env = {**os.environ, **environ, **PORTABLE_CPU_ENV, "HYDRAMIX_DATA": str(data_root)}
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-sanitize-with", str(SANITIZE),
                           "-p", "no:cacheprovider", "-q", *notebooks], cwd=folder, env=env, capture_output=True, text=True)


def _copy_notebooks(target: Path) -> list[str]:
    names = sorted(p.name for p in EXECUTED.glob("[0-9][0-9]_*.ipynb"))
    for name in names:
        shutil.copy(EXECUTED / name, target / name)
    return names


def test_nbcheck_notebooks_reproduce(tmp_path, cifar10_root):
    names = _copy_notebooks(tmp_path)
    assert len(names) >= 5
    result = _run_nbval(tmp_path, cifar10_root, names)
    assert result.returncode == 0, result.stdout[-4000:]
    assert (tmp_path / "results/nbcheck/runs").is_dir()  # everything was recomputed in the fresh folder


def test_the_reference_was_made_in_results_nbcheck():
    """Made with ``--results`` elsewhere, the reference would carry that folder into every
    re-execution (and its run records): the fresh run would read or write there instead."""
    for path in sorted(EXECUTED.glob("[0-9][0-9]_*.ipynb")):
        injected = next(c for c in json.loads(path.read_text())["cells"]
                        if "injected-parameters" in c["metadata"].get("tags", []))
        assert 'results_dir = "results/nbcheck"' in "".join(injected["source"]), (
            f"{path.name} was executed with another results folder: regenerate the reference with "
            f"./run_all.sh --profile nbcheck (after moving results/nbcheck away), not with --results")


def test_nbval_fails_when_a_checked_result_changes(tmp_path, cifar10_root):
    notebook = json.loads((EXECUTED / "01_data_splits.ipynb").read_text())
    injected = next(c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    source = "".join(injected["source"])
    assert "seeds = [0, 1]" in source
    injected["source"] = source.replace("seeds = [0, 1]", "seeds = [0, 2]")
    (tmp_path / "01_data_splits.ipynb").write_text(json.dumps(notebook))
    result = _run_nbval(tmp_path, cifar10_root, ["01_data_splits.ipynb"])
    assert result.returncode != 0
    assert "cifar10_n2_seed2.json" in result.stdout  # the report shows the changed split
