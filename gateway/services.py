"""What the gateway is given by a composition root: engines, embedders and indices behind core protocols.

The gateway never builds backends itself; `aihub/` (embedded) or `ray_cluster/` (Ray Serve) construct
these and pass them to ``gateway.app.create_app``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from core.embedder import Embedder
from core.engine import Engine, EngineDirectory, HealthReporting, ReplicaPool
from core.files import FileStore
from core.responses import ResponseStore
from core.retrieval import IndexInfo, Retriever
from core.store import ArtifactStore
from core.tenancy import Authenticator, KeyManager, RateLimiter, UsageReader, UsageSink
from core.vector_stores import VectorStoreService

if TYPE_CHECKING:
    from gateway.catalog import Resolver


class IndexProvider(Protocol):
    """Opens hub index artifacts as retrievers (cached), bound to the embedder at hand."""

    def list(self) -> Sequence[IndexInfo]:
        """Every index artifact in the hub (one entry per tag target)."""
        ...

    async def open(self, ref: str) -> Retriever:
        """A ready retriever for ``ref`` (``namespace/name:tag``, ``…@sha256:…``, a bare digest, or a
        ``vs_…`` store id: its current index version; a store still without one finds nothing).
        Callers check a ``vs_…`` id's project first (``gateway.vector_store_access.open_vector_store``).

        Raises ``ArtifactNotFoundError`` / ``InvalidReferenceError`` / ``EmbedderMismatchError``.
        """
        ...


@dataclass
class GatewayServices:
    engines: Mapping[str, Engine] = field(default_factory=dict)  # model id -> engine
    embedders: Mapping[str, Embedder] = field(default_factory=dict)  # model id -> embedder
    default_embedder: str | None = None
    indexes: IndexProvider | None = None
    store: ArtifactStore | None = None
    # Further model-id resolvers, asked after engines and aliases (e.g. ``rag/…`` and ``agent/…``
    # compositions). Empty: create_app adds ``gateway.composition.CompositionResolver`` when ``store`` is set.
    resolvers: Sequence[Resolver] = field(default_factory=list)
    # Replica pools (the upstreams of ``openai`` models and embedders): started and stopped with the
    # app, reported by /ready and /metrics, managed by the admin API.
    pools: Sequence[ReplicaPool] = field(default_factory=list)
    # Local engines that can tell when they died (vLLM's engine core process): model id -> engine.
    health: Mapping[str, HealthReporting] = field(default_factory=dict)
    # Families of model ids served under a prefix, known at run time (federated sites).
    directories: Sequence[EngineDirectory] = field(default_factory=list)
    # Tenancy (``tenancy/``, built by the composition root): who calls, and where usage rows go. None:
    # the plain ``api_keys`` list of the settings, nothing recorded.
    authenticator: Authenticator | None = None
    usage: UsageSink | None = None
    usage_reader: UsageReader | None = None  # GET /v1/usage: a caller's own project's sums
    limiter: RateLimiter | None = None  # requests, tokens, concurrency and budgets per key and project
    # The tenancy database's keys, managed over /admin/keys; None: tenancy is off.
    key_manager: KeyManager | None = None
    # Stored /v1/responses (the tenancy database, else a SQLite file); None: nothing is stored.
    responses: ResponseStore | None = None
    # /v1/files and vector stores made over the API (``retrievers``' implementations, over the gateway
    # database); None: those routes answer 404.
    files: FileStore | None = None
    vector_stores: VectorStoreService | None = None
