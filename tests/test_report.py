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


def test_published_numbers_beside_ours_with_our_interval():
    runs = pd.DataFrame([
        {"method": "chimeramix_seg", "samples_per_class": 10, "seed": 0, "accuracy": 0.470},
        {"method": "chimeramix_seg", "samples_per_class": 10, "seed": 1, "accuracy": 0.480},  # mean 47.5, t-interval ±6.4
        {"method": "chimeramix_grid", "samples_per_class": 10, "seed": 0, "accuracy": 0.400},
        {"method": "chimeramix_grid", "samples_per_class": 10, "seed": 1, "accuracy": 0.402},  # 40.1 ± 1.3: 47.6 above
        {"method": "baseline", "samples_per_class": 50, "seed": 0, "accuracy": 0.55},  # one seed: no interval
    ])
    table = beside_published(runs, "cifar10")  # CIFAR-10 runs beside ciFAIR-10's numbers
    seg10 = table[(table["ours"] == "chimeramix_seg") & (table["n"] == 10)].iloc[0]
    assert seg10["published"] == "chimeramix (cifair10)" and seg10["theirs %"] == 47.60
    assert seg10["ours %"] == "47.5 ± 0.7" and seg10["difference"] == -0.1
    assert seg10["our 95 % interval"] == "[41.1, 53.9]" and seg10["theirs is"] == "inside"
    grid10 = table[(table["ours"] == "chimeramix_grid") & (table["n"] == 10)].iloc[0]
    assert grid10["theirs is"] == "above ours"
    base = table[table["ours"] == "baseline"].iloc[0]
    assert base["difference"] == -3.2 and base["theirs is"] == "no interval" and base["ours %"] == "55.0"
    grid = table[(table["ours"] == "chimeramix_grid") & (table["n"] == 100)].iloc[0]
    assert grid["ours %"] == "not run" and grid["seeds"] == 0 and grid["theirs is"] == ""
    assert beside_published(runs, "stl10").empty


def test_the_accuracy_vs_size_axis_has_plain_tick_labels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hydramix_core.figures import plain_log_ticks

    sizes = [5, 10, 20, 30, 50, 100]
    figure, axis = plt.subplots()
    axis.plot(sizes, [0.2, 0.3, 0.4, 0.45, 0.5, 0.6])
    plain_log_ticks(axis, sizes)
    figure.canvas.draw()
    assert axis.get_xscale() == "log"
    assert [t.get_text() for t in axis.get_xticklabels()] == [str(n) for n in sizes]
    assert [t.get_text() for t in axis.get_xticklabels(minor=True)] in ([], [""] * len(axis.get_xticklabels(minor=True)))
    plt.close(figure)
