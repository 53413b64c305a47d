"""The machine a run meets: which device it runs on, what it is called, the versions a result
records, and portable CPU numerics. Imports nothing of the package.

    device = resolve_device("auto")      # CUDA when a GPU is visible, else the CPU
    device_name(device), versions()      # for result records

Portable CPU numerics: the same floating-point results on any x86-64 CPU and core count.

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
import platform

import numpy
import torch
import torchvision

__version__ = "0.1.0"

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
    missing = {k: v for k, v in PORTABLE_CPU_ENV.items() if os.environ.get(k) != v}
    if missing:
        raise RuntimeError(f"portable CPU numerics need {missing} in the environment before the process starts")
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)


def cpu_numerics() -> str:
    """'portable' or 'native': recorded with results."""
    return "portable" if portable_cpu_requested() else "native"


class DeviceError(ValueError):
    """A device that this machine does not have; raised before any work."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` is CUDA when a GPU is visible, else the CPU; an explicit device must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"unknown device {device!r}: use auto, cpu or cuda") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise DeviceError(f"device {device!r} was asked for, but no CUDA GPU is visible here (torch "
                              f"{torch.__version__}, {built}); use --device cpu or --device auto.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s) are visible.")
    elif resolved.type != "cpu":
        raise DeviceError(f"device {device!r} is not supported: use auto, cpu or cuda")
    return resolved


def device_name(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3' or 'cpu (AMD EPYC 9R14, 2 threads)': what a timing was measured on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu ({model}, {torch.get_num_threads()} threads)"


def versions() -> dict:
    return {"hydramix": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "python": platform.python_version(), "cpu_numerics": cpu_numerics()}
