"""What the CPU says it is (``/proc/cpuinfo``): its feature flags and model name. No torch, so
that tools that only ask the CPU (benchmarks/avx2_only.py) start at once."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def _cpuinfo(field: str) -> str:
    """The first ``field`` line of ``/proc/cpuinfo`` ("" where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith(field):
            return line.split(":", 1)[1].strip()
    return ""


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    return frozenset(_cpuinfo("flags").split())


def cpu_name() -> str:
    """The CPU's model name, for reports and benchmarks."""
    import platform

    return _cpuinfo("model name") or platform.processor() or platform.machine()
