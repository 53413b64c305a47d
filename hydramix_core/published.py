"""Published test accuracies (%) to show beside ours, with their sources (``docs/protocol.md`` section 5).

These are other people's numbers, never outputs of this code; the report labels them so.
HydraMix's own tables are not available offline.
"""

PUBLISHED = [
    # (dataset, samples per class, method, accuracy %, source)
    ("cifair10", 10, "chimeramix", 47.60, "ChimeraMix (IJCAI 2022) benchmark listing"),
    ("cifair10", 50, "chimeramix", 67.30, "ChimeraMix (IJCAI 2022) benchmark listing"),
    ("cifair10", 100, "chimeramix", 74.96, "ChimeraMix (IJCAI 2022) benchmark listing"),
    ("cifair100", 10, "chimeramix", 32.72, "ChimeraMix (IJCAI 2022) benchmark listing"),
    ("cifair10", 10, "chimeramix+autoaugment", 49.75, "ChimeraMix (IJCAI 2022) benchmark listing"),
    ("cifair10", 50, "chimeramix+autoaugment", 70.09, "ChimeraMix (IJCAI 2022) benchmark listing"),
    ("cifair10", 100, "chimeramix+autoaugment", 76.76, "ChimeraMix (IJCAI 2022) benchmark listing"),
    ("cifair100", 10, "chimeramix+autoaugment", 35.02, "ChimeraMix (IJCAI 2022) benchmark listing"),
    ("cifair10", 50, "baseline", 58.22, "DEIC benchmark, tuned WRN-16-8 cross-entropy"),
    ("cifair100", 50, "baseline", 53.42, "DEIC benchmark, tuned WRN-16-8 cross-entropy"),
]


def published_for(dataset: str) -> list[dict]:
    keys = ("dataset", "samples_per_class", "method", "accuracy", "source")
    return [dict(zip(keys, row)) for row in PUBLISHED if row[0] == dataset]


# Ours beside theirs: the listing does not say which ChimeraMix variant it reports, so both of ours
# stand beside it. CIFAR-10/100 runs are compared with ciFAIR-10/100 numbers: the same training
# images; ciFAIR's test sets replace CIFAR's near-duplicates of training images.
OUR_METHODS = {"chimeramix": ["chimeramix_seg", "chimeramix_grid"],
               "chimeramix+autoaugment": ["chimeramix_seg+autoaugment", "chimeramix_grid+autoaugment"],
               "baseline": ["baseline"]}
COMPARABLE = {"cifar10": "cifair10", "cifar100": "cifair100"}
