"""Portable CPU numerics (hydramix_core/runtime.py): the same bits whatever instruction set
MKL and ATen would pick and whatever thread count the environment asks for."""

import os
import subprocess
import sys

import pytest

from hydramix_core.runtime import PORTABLE_CPU_ENV, apply_portable_cpu_numerics

# Five WRN-16-2 training steps on fixed data; prints the final loss's exact bits.
STEPS = """
import torch
import hydramix_core
from hydramix_core.classifier import build_classifier
g = torch.Generator().manual_seed(0)
x, y = torch.rand(10, 3, 32, 32, generator=g), torch.randint(0, 10, (10,), generator=g)
torch.manual_seed(0)
model = build_classifier("wrn16_2", 10)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
for _ in range(5):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
print(torch.get_num_threads(), loss.item().hex())
"""


def _final_loss(**environ) -> str:
    env = {**os.environ, **environ, **PORTABLE_CPU_ENV}
    return subprocess.run([sys.executable, "-c", STEPS], env=env, capture_output=True, text=True, check=True).stdout


def test_portable_numerics_do_not_depend_on_instruction_set_or_threads():
    reference = _final_loss()
    assert reference.startswith("1 ")
    # MKL_ENABLE_INSTRUCTIONS makes MKL take another CPU generation's code path (on any x86-64
    # CPU); the thread and ATen settings are what a user's environment may hold and are overridden.
    for variant in ({"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}, {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
                    {"OMP_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "SSE41"}):
        assert _final_loss(**variant) == reference, variant


def test_portable_numerics_refuse_a_half_set_environment(monkeypatch):
    monkeypatch.delenv("MKL_CBWR", raising=False)
    with pytest.raises(RuntimeError, match="MKL_CBWR"):
        apply_portable_cpu_numerics()
