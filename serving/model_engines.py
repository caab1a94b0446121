"""The engines of one configured model, built from the hub: shared by both composition roots.

``aihub serve`` builds them in its own process; the Ray builder builds them inside each model replica.
"""

from __future__ import annotations

from core.engine import Engine
from core.errors import InvalidSpecError
from core.model_config import ModelConfig
from core.store import Artifact, ArtifactStore
from serving.factory import AdapterSource, build_engines
from serving.settings import ServingSettings


def resolve_adapters(config: ModelConfig, base: Artifact, store: ArtifactStore) -> list[AdapterSource]:
    """Each configured adapter, checked to be an adapter bound to exactly ``base``'s digest."""
    from hub.adapter_import import adapter_base_digest

    sources: list[AdapterSource] = []
    for ref, served_id in config.adapter_ids().items():
        adapter = store.resolve(ref)
        if adapter.kind != "model" or adapter.spec.get("type") != "adapter":
            raise InvalidSpecError(f"model {config.id!r}: {ref!r} is not an adapter artifact")
        if adapter_base_digest(adapter) != base.digest:
            raise InvalidSpecError(
                f"model {config.id!r}: adapter {adapter.pinned_ref} was built for base "
                f"{adapter.spec['base']}, but {config.ref!r} is {base.pinned_ref}; "
                "import the adapter against this base or pin the base to the adapter's digest"
            )
        sources.append(AdapterSource(served_id, store.materialize(adapter.pinned_ref), adapter.digest))
    return sources


def build_model_engines(
    config: ModelConfig, settings: ServingSettings, store: ArtifactStore
) -> dict[str, Engine]:
    """The model's engine and one per adapter, keyed by served model id."""
    if config.engine == "fixed-latency":
        from serving.fixed_latency_engine import FixedLatencyEngineDouble

        if config.adapters:
            raise InvalidSpecError(f"model {config.id!r}: the fixed-latency double takes no adapters")
        return {config.id: FixedLatencyEngineDouble(model_id=config.id, **config.options)}
    if config.engine == "openai":
        from serving.upstream.build import build_upstream_engine

        digest = store.resolve(config.ref).digest if config.ref is not None else None
        return {config.id: build_upstream_engine(config, settings, digest)}
    if config.ref is None:
        raise InvalidSpecError(f"model {config.id!r}: engine {config.engine!r} needs a hub reference `ref`")
    artifact = store.resolve(config.ref)
    if artifact.spec.get("type", "model") != "model":
        raise InvalidSpecError(
            f"model {config.id!r}: {artifact.pinned_ref} is an adapter; "
            "list it under a base model's `adapters`"
        )
    return build_engines(
        config.id,
        store.materialize(artifact.pinned_ref),
        settings,
        kind=config.engine,
        digest=artifact.digest,
        adapters=resolve_adapters(config, artifact, store),
        options=config.options,
    )
