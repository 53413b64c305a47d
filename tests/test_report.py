"""The report's comparison with published numbers and the ChimeraMix rule of the sweep."""

import pandas as pd

from hydramix_core.study import beside_published, sweep_configs


def test_chimeramix_methods_follow_chimeramix_rule():
    configs = {c.method: c for c in sweep_configs(dataset="cifair10", samples_per_class=[5], seeds=[0], p_gen=0.3,
                                                   methods=["chimeramix_seg", "chimeramix_grid_direct+autoaugment",
                                                            "hydramix", "baseline"])}
    for method in ("chimeramix_seg", "chimeramix_grid_direct+autoaugment"):
        assert (configs[method].per_batch, configs[method].n_mix, configs[method].p_gen) == (True, (2,), 0.5)
        assert configs[method].run_name.endswith("_p0.5_batch")
    assert (configs["hydramix"].per_batch, configs["hydramix"].p_gen) == (False, 0.3)


def test_published_numbers_beside_ours_with_difference_and_flag():
    runs = pd.DataFrame([
        {"method": "chimeramix_seg", "samples_per_class": 10, "seed": 0, "accuracy": 0.470},
        {"method": "chimeramix_seg", "samples_per_class": 10, "seed": 1, "accuracy": 0.480},  # mean 47.5: 0.1 away
        {"method": "baseline", "samples_per_class": 50, "seed": 0, "accuracy": 0.55},  # 3.22 below 58.22
    ])
    table = beside_published(runs, "cifar10")  # CIFAR-10 runs beside ciFAIR-10's numbers
    seg10 = table[(table["ours"] == "chimeramix_seg") & (table["n"] == 10)].iloc[0]
    assert seg10["published"] == "chimeramix (cifair10)" and seg10["theirs %"] == 47.60
    assert seg10["ours %"] == "47.5 ± 0.7" and seg10["difference"] == -0.1
    assert seg10["more than 1.5 points away"] == "no"
    base = table[table["ours"] == "baseline"].iloc[0]
    assert base["difference"] == -3.2 and base["more than 1.5 points away"] == "yes" and base["ours %"] == "55.0"
    grid = table[(table["ours"] == "chimeramix_grid") & (table["n"] == 100)].iloc[0]
    assert grid["ours %"] == "not run" and grid["seeds"] == 0
    assert beside_published(runs, "stl10").empty
