"""Execute one study notebook with papermill, as run_all.sh does for each step.

    python scripts/run_notebook.py notebooks/03_classifier_evaluation.ipynb results/smoke \
        --profile profiles/smoke.yaml --label "[3/6]"

The notebook gets only the profile values its ``parameters`` cell declares (plus ``profile``
and ``results_dir``), so papermill has nothing to warn about; the terminal shows one line per
notebook with its progress in cells and its time. A failing cell's error is printed with the
path of the executed notebook that holds it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import papermill as pm
from papermill.exceptions import PapermillExecutionError

from hydramix_core.profiles import ProfileError, load_profile
from hydramix_core.runtime import PORTABLE_CPU_ENV


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--profile", type=Path, required=True, help="profile YAML")
    parser.add_argument("--label", default="", help="shown before the notebook's name, e.g. [2/6]")
    parser.add_argument("--cwd", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)

    logging.getLogger("papermill").setLevel(logging.ERROR)  # its INFO lines repeat what our line says
    declared = pm.inspect_notebook(str(args.notebook))
    try:
        _, values = load_profile(args.profile)
    except ProfileError as error:
        print(f"{args.notebook.stem}: {error}", file=sys.stderr)
        return 2
    if values.get("cpu_numerics", "native") == "portable":  # the kernel inherits it (see hydramix_core/runtime.py)
        os.environ.update(PORTABLE_CPU_ENV)
    values.update(profile=args.profile.stem, results_dir=str(args.results_dir))
    parameters = {name: value for name, value in values.items() if name in declared}
    output = args.results_dir / args.notebook.name
    # Executed into a hidden name and moved in on success: a failed or interrupted run keeps the
    # previous good notebook (papermill writes its output in place as cells finish).
    running = args.results_dir / f".{args.notebook.stem}.running.ipynb"
    failed = args.results_dir / f"{args.notebook.stem}.failed.ipynb"
    name = f"{args.label} {args.notebook.stem}".strip()
    started = time.perf_counter()
    try:
        pm.execute_notebook(str(args.notebook), str(running), parameters=parameters, cwd=str(args.cwd),
                            progress_bar={"desc": f"{name:<30}", "unit": "cell", "leave": True,
                                          "bar_format": "{desc} {bar:20} {n_fmt}/{total_fmt} cells [{elapsed}]"})
    except PapermillExecutionError as error:
        where = f"The executed notebook with the error is {failed}" if _moved(running, failed) else "No executed notebook was kept"
        kept = f"; the previous executed notebook {output} is kept" if output.exists() else ""
        advice = (f"\nThe disk holding {args.results_dir} is full: free space there, then rerun the same command "
                  f"(finished work is not redone).") if "No space left" in str(error.evalue) else ""
        print(f"{name} failed after {time.perf_counter() - started:.0f} s in cell {error.exec_count}: "
              f"{error.ename}: {error.evalue}\n{where}{kept}.{advice}", file=sys.stderr)
        return 1
    except OSError as error:  # a full disk or a permission error while papermill writes
        running.unlink(missing_ok=True)
        kept = f" The previous executed notebook {output} is kept." if output.exists() else ""
        print(f"{name}: cannot write the executed notebook in {args.results_dir}: {error.strerror or error} "
              f"({error.filename or running}).{kept} Free space or fix the permissions there, then rerun the same "
              f"command (finished work is not redone).", file=sys.stderr)
        return 1
    os.replace(running, output)
    failed.unlink(missing_ok=True)
    return 0


def _moved(source: Path, target: Path) -> bool:
    try:
        os.replace(source, target)
        return True
    except OSError:
        source.unlink(missing_ok=True)
        return False


if __name__ == "__main__":
    sys.exit(main())
