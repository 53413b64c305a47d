"""One training step captured as a graph, for classifier runs (engine.py) and generator runs
(train_generator.py) alike.

    graph = capture(run._step, run._state_tensors, run.rng, run.stream)
    graph.replay()    # one whole step: on CUDA a single launch from the host

A step writes only into tensors that persist between steps (weights, optimiser state,
counters, loss sums, the learning rate), draws every random number from ``rng`` and does no
host synchronisation. Capture first runs ``WARMUP_STEPS`` real steps on ``stream`` (cuBLAS
and cuDNN set-up, optimiser state created), each from the state capture found (every state
tensor and the random state are put back after each, so no counter runs past an epoch's
end), then captures one more and puts the state back again: the warm-up leaves no trace,
and optimiser state it created starts at zero, which is where an optimiser's first step
starts too. The caller's stream then waits for the run's stream.

On CUDA the graph is a ``torch.cuda.CUDAGraph``. On a CPU it is a ``TapeGraph``: the ATen
operations of one call of the step, recorded and replayed on the same tensors, with the
same freezing of host-side values that a CUDA graph has (a Python number read at capture
stays that number at every replay). It is as slow as the eager step; it exists so that the
capture path, and each step's fitness for capture, can be tested on any machine: recording
refuses a step that synchronises with the host or draws a random number from any generator
but the run's own (``CaptureError``).
"""

from __future__ import annotations

import contextlib
import traceback
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

WARMUP_STEPS = 3
# Operations whose result the host must wait for (a value or an output shape read from device data).
_HOST_SYNC_TAGS = (torch.Tag.data_dependent_output, torch.Tag.dynamic_output_shape)
_HOST_SYNC_OPS = {torch.ops.aten.is_nonzero.default}
# Indexing is tagged as of dynamic shape, but only a boolean mask as index makes it so (a sync).
_INDEXING = {torch.ops.aten.index.Tensor, torch.ops.aten.index_put.default, torch.ops.aten.index_put_.default,
             torch.ops.aten._index_put_impl_.default}
_HERE, _TORCH = Path(__file__).resolve(), Path(torch.__file__).resolve().parent


class CaptureError(RuntimeError):
    """A step that a graph cannot replay faithfully (a host synchronisation, a foreign random generator)."""


def capture(step: Callable[[], None], state_tensors: Callable[[], list[torch.Tensor]], rng: torch.Generator,
            stream: torch.cuda.Stream | None, *, warmup: int = WARMUP_STEPS):
    """Capture ``step`` as a graph on ``stream`` (``None`` on a CPU: a ``TapeGraph``) without
    changing any state (see the module docstring)."""
    before = {id(t): t.clone() for t in state_tensors()}
    rng_state = rng.get_state()

    def restore():  # state created since ``before`` (optimiser state) starts at zero
        with torch.no_grad():
            for tensor in state_tensors():
                if id(tensor) in before:
                    tensor.copy_(before[id(tensor)])
                else:
                    tensor.zero_()
        rng.set_state(rng_state)

    caller = torch.cuda.current_stream(stream.device) if stream is not None else None
    on_stream = (lambda: torch.cuda.stream(stream)) if stream is not None else contextlib.nullcontext
    if stream is not None:
        stream.wait_stream(caller)
    with on_stream(), warnings.catch_warnings():
        # optimisers built capturable warn when stepped outside a capture, as the warm-up must be
        warnings.filterwarnings("ignore", message=".*capturable=True.*")
        for _ in range(warmup):
            step()
            restore()
    if stream is not None:
        graph = torch.cuda.CUDAGraph()
        try:  # the run's own generator advances with each replay, as the default one does
            graph.register_generator_state(rng)
        except TypeError:  # older torch takes the graph-safe state
            graph.register_generator_state(rng.graphsafe_get_state())
        with torch.cuda.graph(graph, stream=stream):
            step()
    else:
        graph = TapeGraph(rng)
        with graph.recording():
            step()
    with on_stream():
        restore()
    if caller is not None:  # work the caller issues next sees the restored state
        caller.wait_stream(stream)
    return graph


class TapeGraph:
    """The CPU stand-in for a CUDA graph: ``recording()`` runs the step once and keeps its ATen
    operations; ``replay()`` runs them again on the same persistent tensors, each intermediate
    result replaced by its new value. Python control flow and host values are frozen at
    recording, as in a CUDA graph; random operations draw from their generator again, as a
    CUDA graph's registered generator does."""

    def __init__(self, rng: torch.Generator):
        self.rng, self.operations = rng, []

    @contextlib.contextmanager
    def recording(self):
        mode = _Recorder(self.rng)
        with mode:
            yield self
        if mode.problems:
            raise CaptureError("this step cannot be captured as a graph: " + "; ".join(dict.fromkeys(mode.problems)))
        self.operations = mode.operations

    def replay(self) -> None:
        values: dict[int, object] = {}  # id of a recorded result -> its value in this replay

        def current(x):
            return values.get(id(x), x) if isinstance(x, torch.Tensor) else x

        with torch.no_grad():
            for func, args, kwargs, out in self.operations:
                new = func(*tree_map(current, args), **tree_map(current, kwargs))
                for old, fresh in zip(_flat(out), _flat(new)):
                    if isinstance(old, torch.Tensor):
                        values[id(old)] = fresh


class _Recorder(TorchDispatchMode):
    """Keeps every ATen operation (the tape holds their tensors, so no id is reused) and notes
    the ones a graph cannot replay: host synchronisations and draws from another generator."""

    def __init__(self, rng: torch.Generator):
        super().__init__()
        self.rng, self.operations, self.problems = rng, [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _syncs(func, args):
            self.problems.append(f"{func} waits for the device (host synchronisation) at {_caller()}")
        if torch.Tag.nondeterministic_seeded in func.tags and not self._own(kwargs.get("generator")):
            which = "the default generator" if kwargs.get("generator") is None else "another generator"
            self.problems.append(f"{func} draws from {which}, not the run's own, at {_caller()}")
        out = func(*args, **kwargs)
        self.operations.append((func, args, kwargs, out))
        return out


    def _own(self, generator) -> bool:
        # dispatch hands over a new Python wrapper of the generator, so compare what it holds
        return (generator is not None and generator.device == self.rng.device
                and torch.equal(generator.get_state(), self.rng.get_state()))


def _syncs(func, args) -> bool:
    if func in _INDEXING:
        return any(index is not None and index.dtype in (torch.bool, torch.uint8) for index in args[1])
    return func in _HOST_SYNC_OPS or any(tag in func.tags for tag in _HOST_SYNC_TAGS)


def _flat(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _caller() -> str:
    """The innermost line outside torch and this module that led here."""
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename).resolve()
        if not path.is_relative_to(_TORCH) and path != _HERE:
            return f"{path.name}:{frame.lineno} ({frame.line})"
    return "an unknown line"
