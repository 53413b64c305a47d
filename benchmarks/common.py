"""Shared helpers: timing (median of repeats), peak memory, hardware description, JSON output."""

from __future__ import annotations

import json
import platform
import resource
import statistics
import sys
import time

import torch


def hardware() -> dict:
    from hydramix_core.runtime import device_name

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return {"device": device_name(device), "torch": torch.__version__, "python": platform.python_version(),
            "cpu_threads": torch.get_num_threads()}


def median_seconds(fn, *, repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_memory_mb() -> dict:
    """Peak resident memory of this process (and children), and peak CUDA memory if any."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out = {"peak_rss_mb": round(max(own, children), 1)}
    if torch.cuda.is_available():
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def emit(name: str, results: dict) -> None:
    print(json.dumps({"benchmark": name, **hardware(), **results, **peak_memory_mb()}, indent=1))
    sys.stdout.flush()


def untrained_generator_run(train_set, split, device):
    """A protocol-size generator (ngf 64, N in {2,3,4}, HydraMix masks) with random weights for
    ``split``: generation costs what a trained one's does, without training one first."""
    from hydramix_core.masks import felzenszwalb_segments
    from hydramix_core.generator_files import GeneratorConfig, GeneratorRun, build_models

    config = GeneratorConfig(dataset=split.dataset, samples_per_class=split.samples_per_class, seed=split.seed)
    config = config.resolved(train_set.image_size)
    generator, _ = build_models(config)
    identity = {"dataset": split.dataset, "samples_per_class": split.samples_per_class, "seed": split.seed,
                "fingerprint": split.fingerprint}
    segments = felzenszwalb_segments(train_set.subset(split.indices).images, size=config.working_size,
                                     scale=config.seg_scale, min_size=config.seg_min_size)
    return GeneratorRun(generator.to(device).eval(), config, identity, segments)
