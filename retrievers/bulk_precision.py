"""Which device and dtype bulk embedding (ingestion) uses, detected at run time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

BulkDtype = Literal["auto", "bf16", "fp32"]
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True, slots=True)
class BulkPlan:
    device: str  # "cpu" or "cuda"
    dtype: str  # "float32" or "bfloat16"

    @property
    def runtime(self) -> str:
        return f"torch-{self.device}"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as the kernel lists them (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_fast_bf16(flags: set[str] | None = None, capability: str | None = None) -> bool:
    """True where the CPU computes bf16 matmuls natively (AMX-BF16 or AVX512-BF16)."""
    if capability is None:
        import torch

        capability = str(torch.backends.cpu.get_cpu_capability())
    if "AMX" in capability.upper():
        return True
    found = cpu_flags() if flags is None else flags
    return any(flag in found for flag in BF16_CPU_FLAGS)


def cpu_has_amx(flags: set[str] | None = None, capability: str | None = None) -> bool:
    """True where bf16 matmuls run on AMX tiles (torch's kernels use them; the bulk path's own CPU
    kernels were measured only on AVX512-BF16 without AMX, so they are used only there)."""
    if capability is None:
        import torch

        capability = str(torch.backends.cpu.get_cpu_capability())
    found = cpu_flags() if flags is None else flags
    return "AMX" in capability.upper() or "amx_bf16" in found


def choose_bulk_plan(
    setting: BulkDtype, *, cuda: bool | None = None, fast_bf16: bool | None = None
) -> BulkPlan:
    """``auto``: CUDA (bf16) where a GPU is visible, bf16 on CPUs with AMX/AVX512-BF16, else fp32."""
    if cuda is None:
        import torch

        cuda = bool(torch.cuda.is_available())
    if cuda:
        return BulkPlan("cuda", "float32" if setting == "fp32" else "bfloat16")
    if setting == "fp32":
        return BulkPlan("cpu", "float32")
    if setting == "bf16":
        return BulkPlan("cpu", "bfloat16")
    fast = cpu_has_fast_bf16() if fast_bf16 is None else fast_bf16
    return BulkPlan("cpu", "bfloat16" if fast else "float32")
