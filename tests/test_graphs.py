"""graphs.capture on any machine: the CPU stand-in replays a step bit for bit, capture leaves no
trace, refuses steps a graph cannot replay, and orders its work on the CUDA streams.

Whole classifier and generator runs through the stand-in: tests/test_engine.py and
tests/test_train_generator.py (``graphed=True`` on CPU).
"""

import contextlib

import pytest
import torch
import torch.nn.functional as F

from hydramix_core import graphs
from hydramix_core.graphs import CaptureError, TapeGraph, capture


class TinyRun:
    """A small capturable training step: a counter-indexed batch, noise from the run's generator,
    fused SGD at a learning rate held in a tensor."""

    def __init__(self, steps_per_epoch=5, draw=None):
        torch.manual_seed(0)
        self.model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                         torch.nn.Linear(4 * 6 * 6, 3))
        self.lr = torch.tensor(0.1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9, nesterov=True, fused=True)
        self.rng = torch.Generator().manual_seed(1)
        self.images = torch.randn(steps_per_epoch, 4, 3, 8, 8)
        self.labels = torch.randint(3, (steps_per_epoch, 4))
        self.batch_in_epoch = torch.zeros((), dtype=torch.long)
        self.loss_sum = torch.zeros(())
        self.draw = draw or (lambda shape: torch.rand(shape, generator=self.rng))

    def step(self):
        slot = self.batch_in_epoch.view(1)
        images = self.images.index_select(0, slot)[0] + self.draw((4, 3, 8, 8))
        loss = F.cross_entropy(self.model(images), self.labels.index_select(0, slot)[0])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.loss_sum += loss.detach()
        self.batch_in_epoch += 1

    def state_tensors(self):
        optimizer_state = [t for state in self.optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
        return [*self.model.parameters(), *optimizer_state, self.batch_in_epoch, self.loss_sum, self.lr]

    def snapshot(self, optimizer=True):
        tensors = self.state_tensors() if optimizer else [*self.model.parameters(), self.batch_in_epoch, self.loss_sum]
        return [t.detach().clone() for t in tensors] + [self.rng.get_state()]


def _equal(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("start", [0, 3, 4])
def test_a_captured_step_replays_the_eager_steps_bit_for_bit(start):
    """Captured at any step of the epoch (within the warm-up's length of its end too), the
    graph's replays equal the eager steps; capture itself changes nothing."""
    eager, graphed = TinyRun(), TinyRun()
    for run in (eager, graphed):
        for _ in range(start):
            run.step()
    before, created = graphed.snapshot(optimizer=False), not graphed.optimizer.state
    graph = capture(graphed.step, graphed.state_tensors, graphed.rng, None)
    assert isinstance(graph, TapeGraph) and _equal(graphed.snapshot(optimizer=False), before)
    if created:  # optimiser state the warm-up created starts at zero, as a first step's does
        momentum = [state["momentum_buffer"] for state in graphed.optimizer.state.values()]
        assert momentum and not any(t.any() for t in momentum)
    for _ in range(5 - start):
        eager.step()
        graph.replay()
    assert _equal(graphed.snapshot(), eager.snapshot())
    assert graphed.batch_in_epoch.item() == 5


def test_the_tape_freezes_host_values_as_a_cuda_graph_does():
    """A Python number that changes from call to call is baked in at recording: the stand-in
    shows the bug a CUDA graph would have, instead of hiding it as an eager replay would."""
    def counting():
        calls = []
        return calls, lambda shape: calls.append(1) or torch.full(shape, float(len(calls)))

    (eager_calls, eager_draw), (graph_calls, graph_draw) = counting(), counting()
    eager, graphed = TinyRun(draw=eager_draw), TinyRun(draw=graph_draw)
    graph = capture(graphed.step, graphed.state_tensors, graphed.rng, None)
    for _ in range(2):
        eager.step()
        graph.replay()
    assert len(graph_calls) == graphs.WARMUP_STEPS + 1 and len(eager_calls) == 2  # replays run no Python
    assert graphed.batch_in_epoch.item() == eager.batch_in_epoch.item() == 2
    assert not torch.equal(graphed.loss_sum, eager.loss_sum)  # offsets 4, 4 replayed against 1, 2


def _masked(noise):
    noise[noise > 0.5] = 0  # a boolean mask as index: its size is read on the host
    return noise


@pytest.mark.parametrize("bad", ["default generator", "item", "nonzero", "boolean mask"])
def test_recording_refuses_a_step_a_graph_cannot_replay(bad):
    draws = {"default generator": lambda shape: torch.rand(shape),
             "item": lambda shape: torch.rand(shape, generator=run.rng) * torch.rand((), generator=run.rng).item(),
             "nonzero": lambda shape: torch.rand(shape, generator=run.rng) * (torch.rand(shape, generator=run.rng) > 0.5)
             .nonzero().shape[0],
             "boolean mask": lambda shape: _masked(torch.rand(shape, generator=run.rng))}
    run = TinyRun()
    run.draw = draws[bad]
    with pytest.raises(CaptureError, match="draws from the default generator|host synchronisation") as error:
        capture(run.step, run.state_tensors, run.rng, None)
    assert "test_graphs.py" in str(error.value)  # the message names the line that did it
    good = TinyRun()  # the same step drawing from the run's generator is accepted
    capture(good.step, good.state_tensors, good.rng, None)


def test_capture_without_restoring_the_warm_up_would_be_caught():
    """Mutation check of the first test: a capture that kept its warm-up's steps (the engine's
    capture before the restore after each warm-up step) changes the run it captures."""
    def leaky(step, state_tensors, rng, stream, *, warmup=graphs.WARMUP_STEPS):
        for _ in range(warmup):
            step()
        graph = TapeGraph(rng)
        with graph.recording():
            step()
        return graph

    run = TinyRun()
    before = run.snapshot()
    leaky(run.step, run.state_tensors, run.rng, None)
    assert not _equal(run.snapshot(), before)
    late = TinyRun()
    for _ in range(3):
        late.step()
    with pytest.raises(IndexError):  # captured within the warm-up of the epoch's end: past its last batch
        leaky(late.step, late.state_tensors, late.rng, None)


class _Stream:
    def __init__(self, name, log):
        self.name, self.log, self.device = name, log, torch.device("cuda", 0)

    def wait_stream(self, other):
        self.log.append(f"{self.name} waits for {other.name}")


def test_capture_orders_its_work_on_the_streams(monkeypatch):
    """Warm-up, capture and restore run on the run's stream after the caller's work, and the
    caller's stream waits for the restored state (CUDA's stream calls, recorded on a CPU)."""
    log, current = [], []
    caller, stream = _Stream("caller", log), _Stream("run", log)

    @contextlib.contextmanager
    def on(s):
        current.append(s.name)
        yield
        current.pop()

    class Graph:
        def register_generator_state(self, rng):
            pass

    @contextlib.contextmanager
    def graph_capture(graph, stream):
        current.append(stream.name + " (capturing)")
        yield
        current.pop()

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: caller)
    monkeypatch.setattr(torch.cuda, "stream", on)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(torch.cuda, "graph", graph_capture)
    run = TinyRun()
    step, state = run.step, run.state_tensors
    run_step = lambda: log.append(f"step on {current[-1] if current else 'caller'}") or step()  # noqa: E731
    touched = lambda: log.append(f"state on {current[-1] if current else 'caller'}") or state()  # noqa: E731
    capture(run_step, touched, run.rng, stream, warmup=2)
    waits = [entry for entry in log if "waits" in entry]
    assert waits == ["run waits for caller", "caller waits for run"]
    first_step = next(i for i, entry in enumerate(log) if entry.startswith("step"))
    assert log.index("run waits for caller") < first_step and log[-1] == "caller waits for run"
    assert [entry for entry in log if entry.startswith("step")] == ["step on run", "step on run",
                                                                     "step on run (capturing)"]
    assert log[-2] == "state on run"  # the restore, on the run's stream, then the caller waits for it
