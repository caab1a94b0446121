"""LoRA adapters of a served model: their served ids, and the check that binds each to its base.

A model entry's ``adapters`` are hub references of adapter artifacts. Adapter ``adapters/pirate`` on
model ``smollm2-135m-instruct`` (hub ``models/smollm2-135m-instruct``) is served as
``smollm2-135m-instruct+adapters/pirate``. Its hub form, the base artifact name, ``+`` and the adapter
reference as configured (``models/smollm2-135m-instruct+adapters/pirate:latest``), is an alias of it;
operators may add their own aliases in the gateway settings.
"""

from __future__ import annotations

from collections.abc import Iterable

from aihub.settings import ModelConfig
from core.errors import InvalidSpecError
from core.refs import ArtifactRef
from core.store import Artifact, ArtifactStore
from hub.adapter_import import adapter_base_digest
from serving.factory import AdapterSource


def adapter_model_id(model_id: str, adapter_ref: str) -> str:
    return f"{model_id}+{ArtifactRef.parse(adapter_ref).name}"


def adapter_aliases(models: Iterable[ModelConfig]) -> dict[str, str]:
    """``<base artifact name>+<adapter ref>`` → served adapter id, for every configured adapter."""
    aliases: dict[str, str] = {}
    for config in models:
        if config.ref is None:
            continue
        base_name = ArtifactRef.parse(config.ref).name
        for ref in config.adapters:
            aliases[f"{base_name}+{ArtifactRef.parse(ref)}"] = adapter_model_id(config.id, ref)
    return aliases


def resolve_adapters(config: ModelConfig, base: Artifact, store: ArtifactStore) -> list[AdapterSource]:
    """Each configured adapter, checked to be an adapter bound to exactly ``base``'s digest."""
    sources: list[AdapterSource] = []
    for ref in config.adapters:
        adapter = store.resolve(ref)
        if adapter.kind != "model" or adapter.spec.get("type") != "adapter":
            raise InvalidSpecError(f"model {config.id!r}: {ref!r} is not an adapter artifact")
        bound_to = adapter_base_digest(adapter)
        if bound_to != base.digest:
            raise InvalidSpecError(
                f"model {config.id!r}: adapter {adapter.pinned_ref} was built for base "
                f"{adapter.spec['base']}, but {config.ref!r} is {base.pinned_ref}; "
                "import the adapter against this base or pin the base to the adapter's digest"
            )
        sources.append(
            AdapterSource(
                model_id=adapter_model_id(config.id, ref),
                path=store.materialize(adapter.pinned_ref),
                digest=adapter.digest,
            )
        )
    return sources
