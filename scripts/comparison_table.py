"""Print a results folder's comparison as a Markdown table: each method's accuracy, its 95 %
interval and its differences to the baseline and to MixUp, paired by seed (hydramix_core.stats).

    python scripts/comparison_table.py results/cpu [--references baseline mixup]
"""

import argparse
from pathlib import Path

from hydramix_core.stats import comparison_table
from hydramix_core.study import load_runs, to_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--references", nargs="+", default=["baseline", "mixup"])
    args = parser.parse_args()
    paths = sorted((args.results / "runs").glob("*.json"))
    if not paths:
        raise SystemExit(f"no run results in {args.results / 'runs'}: run the study first (./run_all.sh)")
    runs = load_runs(paths)
    runs = runs[runs["p_gen"].isna() | (runs["p_gen"] == 0.5)]  # the main comparison, not the p_gen ablation
    print(to_markdown(comparison_table(runs, args.references).set_index("method")))


if __name__ == "__main__":
    main()
