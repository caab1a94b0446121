"""Builds the engine for a model folder; the composition roots call this, never the engine classes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.engine import Engine
from core.errors import InvalidSpecError
from serving.settings import ServingSettings, VllmSettings
from serving.vllm_support import vllm_support

logger = logging.getLogger(__name__)

KINDS = ("auto", "transformers", "vllm")


@dataclass(frozen=True, slots=True)
class AdapterSource:
    """A LoRA adapter to serve on a base model: the model id it is served as, its folder and digest."""

    model_id: str
    path: Path
    digest: str | None = None


def pick_kind(kind: str, settings: ServingSettings) -> str:
    """``auto``: vLLM where an installed vLLM build runs on this device (``serving.vllm_support``), else
    transformers, which runs anywhere torch does."""
    if kind != "auto":
        return kind
    support = vllm_support(settings.device)
    logger.info("engine auto: %s", support.reason)
    return "vllm" if support.usable else "transformers"


def vllm_settings(model_id: str, settings: ServingSettings, options: Mapping[str, Any]) -> VllmSettings:
    """``serving.vllm`` with one model's ``options`` on top; an unknown option is an error."""
    try:
        return VllmSettings.model_validate({**settings.vllm.model_dump(), **options})
    except ValidationError as exc:
        raise InvalidSpecError(f"model {model_id!r}: bad vLLM options: {exc}") from None


def build_engine(
    model_id: str,
    model_path: Path,
    settings: ServingSettings,
    *,
    kind: str = "transformers",
    digest: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Engine:
    return build_engines(model_id, model_path, settings, kind=kind, digest=digest, options=options)[model_id]


def build_engines(
    model_id: str,
    model_path: Path,
    settings: ServingSettings,
    *,
    kind: str = "transformers",
    digest: str | None = None,
    adapters: Sequence[AdapterSource] = (),
    options: Mapping[str, Any] | None = None,
) -> dict[str, Engine]:
    """The base model's engine and one engine per adapter, keyed by model id.

    vLLM serves every adapter on one base engine (multi-LoRA, chosen per request). The transformers
    engine merges each adapter into its own copy of the base weights: one engine per adapter, so that
    continuous batching never mixes adapters within a batch.
    """
    kind = pick_kind(kind, settings)
    if kind == "transformers":
        if options:
            raise InvalidSpecError(
                f"model {model_id!r}: the transformers engine takes no per-model options "
                f"(got {sorted(options)}); set them in the `serving` section"
            )
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
            model_id,
            model_path,
            settings=vllm_settings(model_id, settings, options or {}),
            device=settings.device,
            digest=digest,
            adapters={a.model_id: a.path for a in adapters},
        )
        engines = {model_id: base}
        for adapter in adapters:
            engines[adapter.model_id] = LoraAdapterView(
                base, adapter.model_id, adapter.model_id, digest=adapter.digest
            )
        return engines
    raise InvalidSpecError(f"model {model_id!r}: unknown engine kind {kind!r}; known: {', '.join(KINDS)}")
