"""Portable CPU numerics: the same floating-point results on any x86-64 CPU and core count.

A CPU training run's numbers depend on the machine: the thread count changes how reductions
are split, ATen picks AVX-512, AVX2 or scalar kernels by CPU, MKL picks its code path by CPU,
and oneDNN and NNPACK convolutions choose algorithms by ISA and cache size. Training amplifies
the last-bit differences, so a reference made on one machine fails on another. With
``PORTABLE_CPU_ENV`` in the environment of a fresh process (it must be there before torch's
first kernel runs) and ``apply_portable_cpu_numerics()`` called in it, everything runs on one
thread, ATen's scalar kernels, MKL's conditional numerical reproducibility mode and torch's
own convolutions: about twice as slow, and the same bits everywhere.

A profile opts in with ``cpu_numerics: portable`` (profile ``nbcheck``, whose executed
notebooks are the test suite's nbval reference); importing ``hydramix_core`` in a process
whose environment has ``HYDRAMIX_PORTABLE_CPU=1`` applies it.
"""

from __future__ import annotations

import os

PORTABLE_CPU_ENV = {
    "ATEN_CPU_CAPABILITY": "default",  # ATen's scalar kernels, not the CPU's AVX-512/AVX2 ones
    "MKL_CBWR": "COMPATIBLE",  # MKL: one code path on every CPU (conditional numerical reproducibility)
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "HYDRAMIX_PORTABLE_CPU": "1",
}


def portable_cpu_requested(environ=os.environ) -> bool:
    return environ.get("HYDRAMIX_PORTABLE_CPU") == "1"


def apply_portable_cpu_numerics() -> None:
    """The in-process half: one thread, and convolutions without oneDNN or NNPACK (whose
    algorithm choice depends on the CPU). The environment half must already be set."""
    import torch

    missing = {k: v for k, v in PORTABLE_CPU_ENV.items() if os.environ.get(k) != v}
    if missing:
        raise RuntimeError(f"portable CPU numerics need {missing} in the environment before the process starts")
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)


def cpu_numerics() -> str:
    """'portable' or 'native': recorded with results."""
    return "portable" if portable_cpu_requested() else "native"
