"""One training step captured as a CUDA graph, for classifier runs (engine.py) and generator
runs (train_generator.py) alike.

    graph = capture(run._step, run._state_tensors, run.rng, run.stream)
    graph.replay()    # one whole step: a single launch from the host

A step writes only into tensors that persist between steps (weights, optimiser state,
counters, loss sums, the learning rate), draws every random number from ``rng`` and does no
host synchronisation. Capture first runs ``WARMUP_STEPS`` real steps on ``stream`` (cuBLAS
and cuDNN set-up, optimiser state created), captures one more, then restores every state
tensor and the random state, so the warm-up leaves no trace: optimiser state it created
starts at zero, which is where an optimiser's first step starts too. ``../shared/GPU.md``
lists the pitfalls this avoids.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch

WARMUP_STEPS = 3


def capture(step: Callable[[], None], state_tensors: Callable[[], list[torch.Tensor]], rng: torch.Generator,
            stream: torch.cuda.Stream, *, warmup: int = WARMUP_STEPS) -> torch.cuda.CUDAGraph:
    """Capture ``step`` as a CUDA graph on ``stream`` without changing any state (see the module docstring)."""
    before = {id(t): t.clone() for t in state_tensors()}
    rng_state = rng.get_state()
    stream.wait_stream(torch.cuda.current_stream(stream.device))
    with torch.cuda.stream(stream), warnings.catch_warnings():
        # optimisers built capturable warn when stepped outside a capture, as the warm-up must be
        warnings.filterwarnings("ignore", message=".*capturable=True.*")
        for _ in range(warmup):
            step()
    graph = torch.cuda.CUDAGraph()
    try:  # the run's own generator advances with each replay, as the default one does
        graph.register_generator_state(rng)
    except TypeError:  # older torch takes the graph-safe state
        graph.register_generator_state(rng.graphsafe_get_state())
    with torch.cuda.graph(graph, stream=stream):
        step()
    with torch.cuda.stream(stream), torch.no_grad():
        for tensor in state_tensors():  # undo the warm-up; state it created starts at zero
            if id(tensor) in before:
                tensor.copy_(before[id(tensor)])
            else:
                tensor.zero_()
        rng.set_state(rng_state)
    return graph
