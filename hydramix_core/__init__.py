"""HydraMix: multi-image feature mixing for small-data image classification."""

from .runtime import apply_portable_cpu_numerics, portable_cpu_requested

__version__ = "0.1.0"

if portable_cpu_requested():  # a process started with runtime.PORTABLE_CPU_ENV (profile nbcheck, its tests)
    apply_portable_cpu_numerics()
