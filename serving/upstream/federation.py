"""A federated site: every model its upstreams list, served under a prefix (``site-b/<their id>``)."""

from __future__ import annotations

from collections.abc import Sequence

from core.chat import ModelInfo
from core.engine import Engine
from serving.upstream.engine import UpstreamEngine
from serving.upstream.pool import UpstreamPool


class UpstreamFederation:
    """The models of the pool's members, as their last health check listed them (``/v1/models``)."""

    def __init__(self, prefix: str, pool: UpstreamPool) -> None:
        self._prefix = prefix
        self.pool = pool
        self._engines: dict[str, UpstreamEngine] = {}

    @property
    def prefix(self) -> str:
        return self._prefix

    def _listed(self) -> dict[str, int]:
        """Remote model id -> its ``created``, over the members that are up now."""
        up = {state.url for state in self.pool.states() if state.state == "up"}
        listed: dict[str, int] = {}
        for member in self.pool.members():
            if member.url not in up:
                continue
            for entry in member.listed:
                model_id = entry.get("id")
                if isinstance(model_id, str) and model_id:
                    created = entry.get("created")
                    listed.setdefault(model_id, created if isinstance(created, int) else 0)
        return listed

    def models(self) -> Sequence[ModelInfo]:
        return [
            ModelInfo(id=self._prefix + name, context_length=0, created=created, owned_by="upstream")
            for name, created in sorted(self._listed().items())
        ]

    def engine(self, model_id: str) -> Engine | None:
        if not model_id.startswith(self._prefix):
            return None
        name = model_id[len(self._prefix) :]
        if name not in self._listed():
            return None
        engine = self._engines.get(name)
        if engine is None:
            engine = self._engines[name] = UpstreamEngine(model_id, self.pool, upstream_model=name)
        return engine
