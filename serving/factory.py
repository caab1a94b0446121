"""Builds the engine for a model folder; the composition roots call this, never the engine classes."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.engine import Engine
from core.errors import InvalidSpecError
from serving.settings import ServingSettings

KINDS = ("auto", "transformers", "vllm")


@dataclass(frozen=True, slots=True)
class AdapterSource:
    """A LoRA adapter to serve on a base model: the model id it is served as, its folder and digest."""

    model_id: str
    path: Path
    digest: str | None = None


def _pick_kind(kind: str, settings: ServingSettings) -> str:
    """``auto`` picks vLLM where it is installed and the device is a GPU, else transformers."""
    if kind == "auto":
        return (
            "vllm"
            if settings.device.startswith("cuda") and importlib.util.find_spec("vllm")
            else "transformers"
        )
    return kind


def build_engine(
    model_id: str,
    model_path: Path,
    settings: ServingSettings,
    *,
    kind: str = "transformers",
    digest: str | None = None,
) -> Engine:
    return build_engines(model_id, model_path, settings, kind=kind, digest=digest)[model_id]


def build_engines(
    model_id: str,
    model_path: Path,
    settings: ServingSettings,
    *,
    kind: str = "transformers",
    digest: str | None = None,
    adapters: Sequence[AdapterSource] = (),
) -> dict[str, Engine]:
    """The base model's engine and one engine per adapter, keyed by model id.

    vLLM serves every adapter on one base engine (multi-LoRA, chosen per request). The transformers
    engine merges each adapter into its own copy of the base weights: one engine per adapter, so that
    continuous batching never mixes adapters within a batch.
    """
    kind = _pick_kind(kind, settings)
    if kind == "transformers":
        from serving.transformers_engine import TransformersEngine

        engines: dict[str, Engine] = {
            model_id: TransformersEngine(model_id, model_path, settings, digest=digest)
        }
        for adapter in adapters:
            engines[adapter.model_id] = TransformersEngine(
                adapter.model_id, model_path, settings, digest=adapter.digest, adapter_path=adapter.path
            )
        return engines
    if kind == "vllm":
        from serving.lora_view import LoraAdapterView
        from serving.vllm_engine import VllmEngine

        base = VllmEngine(
            model_id, model_path, digest=digest, adapters={a.model_id: a.path for a in adapters}
        )
        engines = {model_id: base}
        for adapter in adapters:
            engines[adapter.model_id] = LoraAdapterView(
                base, adapter.model_id, adapter.model_id, digest=adapter.digest
            )
        return engines
    raise InvalidSpecError(f"model {model_id!r}: unknown engine kind {kind!r}; known: {', '.join(KINDS)}")
