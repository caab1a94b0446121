"""Resolving a requested model id to what serves it.

A ``ModelCatalog`` asks its resolvers in order. Engines and aliases are resolvers today; RAG pipelines
(``rag/<name>``) and agents (``agent/<name>``) plug in later as further resolvers whose targets wrap an
engine-like generator and carry extra response headers (e.g. the composition digest).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.chat import ModelInfo
from core.engine import Engine, EngineDirectory
from core.errors import ModelNotFoundError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    """What a model id resolved to."""

    model_id: str  # the canonical id, reported in responses and metrics
    engine: Engine
    headers: Mapping[str, str] = field(default_factory=dict)  # extra response headers


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One line of ``GET /v1/models``."""

    id: str
    created: int
    owned_by: str
    alias_of: str | None = None  # the canonical id an alias names; key scopes accept either

    def as_wire(self) -> dict[str, object]:
        return {"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by}


class Resolver(Protocol):
    async def resolve(self, model_id: str) -> Target | None:
        """The target for ``model_id``, or None when this resolver does not know it."""
        ...

    def entries(self) -> Sequence[CatalogEntry]: ...


def _entry(info: ModelInfo, model_id: str | None = None, alias_of: str | None = None) -> CatalogEntry:
    return CatalogEntry(
        id=model_id or info.id, created=info.created, owned_by=info.owned_by, alias_of=alias_of
    )


class EngineResolver:
    """Model ids served directly by an engine (the keys of ``GatewayServices.engines``)."""

    def __init__(self, engines: Mapping[str, Engine]) -> None:
        self._targets = {
            model_id: Target(model_id=model_id, engine=engine) for model_id, engine in engines.items()
        }

    async def resolve(self, model_id: str) -> Target | None:
        return self._targets.get(model_id)

    def target(self, model_id: str) -> Target | None:
        return self._targets.get(model_id)

    def entries(self) -> Sequence[CatalogEntry]:
        return [_entry(t.engine.info, model_id) for model_id, t in self._targets.items()]


class AliasResolver:
    """Extra names for engine-served models, e.g. ``gpt-4o-mini`` for clients with a hard-coded id."""

    def __init__(self, aliases: Mapping[str, str], engines: EngineResolver) -> None:
        self._targets: dict[str, Target] = {}
        for alias, model_id in aliases.items():
            target = engines.target(model_id)
            if target is None:
                logger.warning("model alias %r names %r, which no engine serves; ignored", alias, model_id)
            else:
                self._targets[alias] = target

    async def resolve(self, model_id: str) -> Target | None:
        return self._targets.get(model_id)

    def canonical(self, model_id: str) -> str | None:
        target = self._targets.get(model_id)
        return None if target is None else target.model_id

    def entries(self) -> Sequence[CatalogEntry]:
        return [_entry(t.engine.info, alias, t.model_id) for alias, t in self._targets.items()]


class DirectoryResolver:
    """Ids under a prefix that an engine directory serves now (a federated site's models)."""

    def __init__(self, directory: EngineDirectory) -> None:
        self._directory = directory

    async def resolve(self, model_id: str) -> Target | None:
        if not model_id.startswith(self._directory.prefix):
            return None
        engine = self._directory.engine(model_id)
        return None if engine is None else Target(model_id=model_id, engine=engine)

    def entries(self) -> Sequence[CatalogEntry]:
        return [_entry(info) for info in self._directory.models()]


class ModelCatalog:
    def __init__(
        self,
        resolvers: Iterable[Resolver],
        embedding_models: Iterable[str] = (),
        aliases: AliasResolver | None = None,
    ) -> None:
        self._resolvers = tuple(resolvers)
        self._embedding_models = frozenset(embedding_models)
        self._aliases = aliases

    @classmethod
    def for_engines(
        cls,
        engines: Mapping[str, Engine],
        aliases: Mapping[str, str],
        extra: Iterable[Resolver] = (),
        embedding_models: Iterable[str] = (),
    ) -> ModelCatalog:
        direct = EngineResolver(engines)
        alias_resolver = AliasResolver(aliases, direct)
        return cls([direct, alias_resolver, *extra], embedding_models, alias_resolver)

    def names_for_scope(self, model_id: str) -> tuple[str, ...]:
        """The ids a key scope is checked against, without resolving (no pipeline is built for a caller
        who may not call it): the requested id, and the canonical id when it is an alias."""
        canonical = None if self._aliases is None else self._aliases.canonical(model_id)
        return (model_id,) if canonical is None or canonical == model_id else (model_id, canonical)

    async def resolve(self, model_id: str) -> Target:
        for resolver in self._resolvers:
            target = await resolver.resolve(model_id)
            if target is not None:
                return target
        if model_id in self._embedding_models:
            raise ModelNotFoundError(
                f"'{model_id}' is an embedding model, not a generation model: use POST /v1/embeddings.",
                param="model",
            )
        raise ModelNotFoundError(
            f"The model '{model_id}' does not exist or you do not have access to it.", param="model"
        )

    def entries(self) -> list[CatalogEntry]:
        seen: dict[str, CatalogEntry] = {}
        for resolver in self._resolvers:
            for entry in resolver.entries():
                seen.setdefault(entry.id, entry)
        return list(seen.values())
