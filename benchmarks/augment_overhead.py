"""Benchmark 1: classifier training throughput with HydraMix (p_gen 0.5) relative to baseline.

    python -m benchmarks.augment_overhead                     # CPU, WRN-16-8, batch 10 and 128; ~7 minutes
    python -m benchmarks.augment_overhead --steps 50 --repeats 5   # GPU

Runs the real ``train_classifier`` loop (same model, batch, data) for baseline and for
``hydramix`` with an untrained protocol-size generator (ngf 64, N from {2,3,4}; its speed
does not depend on its weights), with generation on the fly and from a bank
(``--bank-size`` per class, refresh 0.25, filled before timing). Figure: images/s and the ratio hydramix / baseline, the
median of ``--repeats`` runs measured in this one process. Targets: >= 0.75 on CPU, >= 0.85 on GPU.
"""

import argparse
from dataclasses import replace

import torch

from hydramix_core.engine import ClassifierConfig, train_classifier
from hydramix_core.methods import make_augment
from hydramix_core.data import load_dataset
from hydramix_core.splits import create_split
from hydramix_core.runtime import resolve_device

from .common import emit, untrained_generator_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="wrn16_8")
    parser.add_argument("--batch", type=int, nargs="+", default=[10, 128])
    parser.add_argument("--images", type=int, default=640,
                        help="training images per timed run (steps = images / batch): HydraMix's cost depends on "
                             "how many samples its draws replace, about half of them give or take sqrt(images)/2")
    parser.add_argument("--steps", type=int, help="steps per timed run (overrides --images)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bank-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    train_set, test_set = load_dataset("cifar10"), load_dataset("cifar10", train=False)
    split = create_split(train_set, samples_per_class=20, seed=0)
    few = train_set.subset(split.indices)
    run = untrained_generator_run(train_set, split, device)

    rows = []
    for batch in args.batch:
        steps = args.steps or -(-args.images // batch)
        base = ClassifierConfig(dataset="cifar10", samples_per_class=20, seed=0, model=args.model, batch_size=batch,
                                steps=steps, test_subset=1, device=str(device))
        variants = {"baseline": base, "hydramix": replace(base, method="hydramix"),
                    "hydramix_bank": replace(base, method="hydramix", bank_size=args.bank_size, bank_refresh=0.25)}
        # The bank is filled once per class at first use; a long run amortises that, so it is filled before timing.
        bank = make_augment(variants["hydramix_bank"], few, run)
        bank.from_bank(torch.arange(train_set.num_classes))
        times = {name: [] for name in variants}
        for _ in range(args.repeats):  # interleaved, so drift hits every variant alike
            for name, config in variants.items():
                record = train_classifier(config, train_set, test_set, split, generator_run=run, progress=False,
                                          augment=bank if name == "hydramix_bank" else None)
                times[name].append(record["train_time_s"])
        median = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
        throughput = {name: batch * steps / seconds for name, seconds in median.items()}
        rows.append({"batch": batch, "steps": steps, **{f"{name}_images_per_s": round(v, 1) for name, v in throughput.items()},
                     "ratio_hydramix": round(throughput["hydramix"] / throughput["baseline"], 3),
                     "ratio_hydramix_bank": round(throughput["hydramix_bank"] / throughput["baseline"], 3)})
    emit("augment_overhead", {"model": args.model, "repeats": args.repeats, "p_gen": 0.5,
                              "generator": "ngf 64, N in {2,3,4}", "rows": rows,
                              "target_ratio": 0.85 if device.type == "cuda" else 0.75})


if __name__ == "__main__":
    main()
