"""Builds the engine for a model folder; the composition roots call this, never the engine classes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from core.engine import Engine
from core.errors import InvalidSpecError
from serving.settings import ServingSettings

KINDS = ("auto", "transformers", "vllm")


def build_engine(
    model_id: str,
    model_path: Path,
    settings: ServingSettings,
    *,
    kind: str = "transformers",
    digest: str | None = None,
) -> Engine:
    """``auto`` picks vLLM where it is installed and the device is a GPU, else transformers."""
    if kind == "auto":
        kind = (
            "vllm"
            if settings.device.startswith("cuda") and importlib.util.find_spec("vllm")
            else "transformers"
        )
    if kind == "transformers":
        from serving.transformers_engine import TransformersEngine

        return TransformersEngine(model_id, model_path, settings, digest=digest)
    if kind == "vllm":
        from serving.vllm_engine import VllmEngine

        return VllmEngine(model_id, model_path, digest=digest)
    raise InvalidSpecError(f"model {model_id!r}: unknown engine kind {kind!r}; known: {', '.join(KINDS)}")
