# %% [markdown]
# # 6 · Report
#
# The study's results in the paper's form: test accuracy (%) as mean ± sd over seeds,
# best in bold, next to published numbers where they exist for this dataset and size.
# Published numbers are other papers' (sources listed), never outputs of this code.

# %% [parameters]
profile = "smoke"
results_dir = "results/smoke"
dataset = "cifar10"

# %%
import json
import platform
from pathlib import Path

import pandas as pd
import torch
from IPython.display import Markdown, display

from hydramix_core.published import published_for
from hydramix_core.study import best_in_bold, load_runs, mean_sd_table, to_markdown

results = Path(results_dir)
runs = load_runs(sorted((results / "runs").glob("*.json")))
runs = runs[runs["dataset"] == dataset]
main = runs[runs["p_gen"].isna() | (runs["p_gen"] == 0.5)]
records = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]
print(f"profile {profile}: {len(runs)} runs on {dataset}; device {runs['device'].iloc[0]}; "
      f"torch {records[0]['versions']['torch']}; model {records[0]['config']['model']}, {records[0]['steps']} steps")

# %% [markdown]
# ## Main table

# %%
table = best_in_bold(main, mean_sd_table(main))
table.columns = [f"{n} / class" for n in table.columns]
display(Markdown(to_markdown(table)))
(results / "report_table.md").write_text(to_markdown(table) + "\n")

# %% [markdown]
# ## Published numbers for this dataset

# %%
published = pd.DataFrame(published_for(dataset))
if published.empty:
    print(f"No published numbers for {dataset}: they exist for ciFAIR-10/100 only (run the paper profile).")
else:
    display(Markdown(to_markdown(published.set_index("method"))))

# %% [markdown]
# ## Where each method gains over the baseline
# Mean accuracy difference to cross-entropy (percentage points) per size, over seeds.

# %%
means = main.pivot_table(index="method", columns="samples_per_class", values="accuracy", aggfunc="mean") * 100
if "baseline" in means.index:
    gain = (means - means.loc["baseline"]).round(1)
    display(Markdown(to_markdown(gain)))
