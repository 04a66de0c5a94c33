"""What machine a run was made on: CPU model and flags, cores, torch version, accelerator.

A run's figures depend on the machine (speed always; bf16 numerics too), and runs of one
experiment are often made on different machines, so each run records its own.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from .cpu import cpu_flags, cpu_name

# The CPU flags that change what a run can do or how fast: bf16 and int8 matrix units.
_NOTABLE_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8",
                  "amx_tile")


def describe_machine(device: str = "cpu", precision: str = "fp32") -> dict[str, Any]:
    """A JSON-ready description of this machine, as a run's ``summary.json`` records it."""
    import torch

    present = cpu_flags()
    model, flags = cpu_name(), [f for f in _NOTABLE_FLAGS if f in present]
    info: dict[str, Any] = {
        "cpu": model, "cpu_flags": flags,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch": str(torch.__version__),
        "python": platform.python_version(), "device": device, "precision": precision,
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info
