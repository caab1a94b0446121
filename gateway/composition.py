"""Model ids ``rag/<name>`` and ``agent/<name>`` (``:tag`` / ``@sha256:…``) resolved through the hub.

A resolved composition (its lock, compiled prompt, opened retrievers, engine) is cached by the root
artifact's manifest digest: references inside are pinned, so that digest fixes everything. Tags are
re-resolved after ``tag_ttl_s`` seconds, so moving a tag takes effect without a restart; a request
pinned to a digest keeps its composition whatever the tags do. ``CompositionResolver`` plugs into the
``ModelCatalog`` as one more resolver.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, cast

from opentelemetry import trace

from core.engine import Engine
from core.errors import ArtifactNotFoundError, EngineUnavailableError, InvalidSpecError
from core.refs import ArtifactRef
from core.retrieval import Retriever
from core.store import Artifact, ArtifactStore
from gateway import tracing
from gateway.agent import AgentEngine, AgentPlan, SearchTool
from gateway.catalog import CatalogEntry, Target
from gateway.pipeline import PipelineEngine, PipelinePlan
from gateway.prompts import PromptTemplate
from gateway.retrieval_step import RetrievalSettings
from gateway.services import GatewayServices
from hub.lock import Lock
from hub.specs import AgentSpec, PipelineSpec

logger = logging.getLogger(__name__)

COMPOSITION_HEADER = "x-aihub-composition"  # the composition digest of the answer's lock

CompositionKind = Literal["pipeline", "agent"]
PREFIXES: dict[str, CompositionKind] = {"rag/": "pipeline", "agent/": "agent"}
# Hub namespace of a bare name: ``rag/support`` is the artifact ``pipelines/support``.
NAMESPACES: dict[CompositionKind, str] = {"pipeline": "pipelines", "agent": "agents"}
SEARCH_TOOL_TYPES = ("search", "search_index")


def hub_ref(model_id: str) -> tuple[CompositionKind, ArtifactRef] | None:
    """``rag/support:prod`` → ("pipeline", pipelines/support:prod); None for ids of plain models."""
    for prefix, kind in PREFIXES.items():
        if model_id.startswith(prefix):
            rest = model_id[len(prefix) :]
            bare = rest.split("@", 1)[0].rsplit(":", 1)[0]
            return kind, ArtifactRef.parse(rest if "/" in bare else f"{NAMESPACES[kind]}/{rest}")
    return None


def model_id_for(kind: CompositionKind, name: str) -> str:
    prefix = next(p for p, k in PREFIXES.items() if k == kind)
    namespace = NAMESPACES[kind] + "/"
    short = (
        name[len(namespace) :] if name.startswith(namespace) and "/" not in name[len(namespace) :] else name
    )
    return prefix + short


@dataclass(frozen=True)
class Composition:
    kind: CompositionKind
    root: str  # manifest digest of the pipeline / agent artifact
    digest: str  # the composition digest: sha256 of the canonical lock
    lock: Lock
    engine: PipelineEngine | AgentEngine


class CompositionResolver:
    def __init__(
        self,
        services: GatewayServices,
        tracer: trace.Tracer | None = None,
        tag_ttl_s: float = 1.0,
        max_cached: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if services.store is None:
            raise InvalidSpecError("pipelines and agents need a hub store in GatewayServices")
        self.store: ArtifactStore = services.store
        self.services = services
        self.tracer = tracer or trace.get_tracer(tracing.TRACER_NAME)
        self.tag_ttl_s = tag_ttl_s
        self.max_cached = max_cached
        self._clock = clock
        self._tags: dict[str, tuple[str, float]] = {}  # "name:tag" → (manifest digest, expiry)
        self._compositions: OrderedDict[str, Composition] = OrderedDict()
        self._building: dict[str, asyncio.Future[Composition]] = {}

    # --- catalog Resolver ------------------------------------------------------------------------

    async def resolve(self, model_id: str) -> Target | None:
        parsed = hub_ref(model_id)
        if parsed is None:
            return None
        composition = await self.composition(model_id)
        return Target(
            model_id=model_id, engine=composition.engine, headers={COMPOSITION_HEADER: composition.digest}
        )

    def entries(self) -> Sequence[CatalogEntry]:
        """``rag/<name>`` per pipeline with a ``latest`` tag, ``rag/<name>:<tag>`` for its other tags."""
        found: dict[str, CatalogEntry] = {}
        for kind in ("pipeline", "agent"):
            for artifact in self.store.list(kind):
                base = model_id_for(kind, artifact.name)
                for tag in artifact.tags:
                    model_id = base if tag == "latest" else f"{base}:{tag}"
                    found.setdefault(model_id, CatalogEntry(model_id, _epoch(artifact.created), "aihub"))
        return sorted(found.values(), key=lambda e: e.id)

    # --- resolution ------------------------------------------------------------------------------

    async def composition(self, model_id: str) -> Composition:
        parsed = hub_ref(model_id)
        if parsed is None:
            raise ArtifactNotFoundError(f"{model_id!r} is not a pipeline or agent id", param="model")
        kind, ref = parsed
        with tracing.stage(self.tracer, "resolve", **{tracing.ARTIFACT_REF: str(ref)}) as span:
            root = ref.digest or await self._tag_digest(ref)
            composition = self._compositions.get(root)
            cached = composition is not None
            if composition is None:
                composition = await self._build_once(kind, ref.name, root, model_id)
            else:
                self._compositions.move_to_end(root)
            tracing.set_attributes(
                span,
                {
                    tracing.ARTIFACT_DIGEST: root,
                    tracing.COMPOSITION_DIGEST: composition.digest,
                    "aihub.resolve.cached": cached,
                },
            )
            return composition

    async def _tag_digest(self, ref: ArtifactRef) -> str:
        key = str(ref)
        now = self._clock()
        hit = self._tags.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        digest = await asyncio.to_thread(self._lookup, ref)
        self._tags[key] = (digest, now + self.tag_ttl_s)
        return digest

    def _lookup(self, ref: ArtifactRef) -> str:
        return self.store.resolve_digest(ref)[1]

    async def _build_once(self, kind: CompositionKind, name: str, root: str, model_id: str) -> Composition:
        # Concurrent first requests for one digest share a single build.
        pending = self._building.get(root)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Composition] = asyncio.get_running_loop().create_future()
        self._building[root] = future
        try:
            composition = await self._build(kind, name, root, model_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved when nobody else waits
            raise
        finally:
            del self._building[root]
        future.set_result(composition)
        self._compositions[root] = composition
        while len(self._compositions) > self.max_cached:
            self._compositions.popitem(last=False)
        return composition

    async def _build(self, kind: CompositionKind, name: str, root: str, model_id: str) -> Composition:
        from hub.lock import resolve_lock
        from hub.specs import validate_spec

        pinned = f"{name}@{root}"
        artifact = await asyncio.to_thread(self.store.resolve, pinned)
        if artifact.kind != kind:
            raise ArtifactNotFoundError(f"{name} is a {artifact.kind}, not a {kind}", param="model")
        lock = await asyncio.to_thread(resolve_lock, cast(Any, self.store), pinned)
        spec = validate_spec(kind, artifact.spec)
        base_id = model_id_for(kind, name)  # one engine per digest, whichever tag reached it
        if isinstance(spec, PipelineSpec):
            engine: PipelineEngine | AgentEngine = await self._pipeline(
                spec, base_id, lock.composition_digest
            )
        else:
            engine = await self._agent(cast(AgentSpec, spec), base_id, lock.composition_digest)
        logger.info("composed %s %s: composition %s", kind, pinned, lock.composition_digest)
        return Composition(kind, root, lock.composition_digest, lock, engine)

    async def _pipeline(self, spec: PipelineSpec, model_id: str, digest: str) -> PipelineEngine:
        if spec.agent is not None:
            raise InvalidSpecError(
                "a pipeline with an agent is served as agent/<name>; not supported as rag/"
            )
        prompt_artifact = await asyncio.to_thread(self.store.resolve, spec.prompt)
        plan = PipelinePlan(
            model_id=model_id,
            composition_digest=digest,
            engine=await self._engine(spec.model),
            prompt=PromptTemplate.from_spec(prompt_artifact.spec, prompt_artifact.digest),
            retrievers=tuple([await self._open_index(ref) for ref in spec.indices]),
            retrieval=RetrievalSettings.from_spec(spec.retrieval),
            generation=spec.generation.model_dump(),
        )
        return PipelineEngine(plan, self.tracer)

    async def _agent(self, spec: AgentSpec, model_id: str, digest: str) -> AgentEngine:
        engine = await self._engine(spec.model)
        if spec.tool_choice == "required" and not engine.info.structured_output:
            raise InvalidSpecError(
                f"{model_id} has tool_choice required, which needs constrained decoding; its model "
                f"{engine.info.id} runs on an engine without structured output (serve it on vLLM)"
            )
        search: list[SearchTool] = []
        client: list[dict[str, Any]] = []
        for tool in spec.tools:
            if tool.type in SEARCH_TOOL_TYPES and tool.index is not None:
                retriever = await self._open_index(tool.index)
                found = SearchTool(tool.name, tool.description, retriever)
                if tool.parameters.get("type") == "object":  # the agent's own schema of the arguments
                    found = replace(found, parameters=tool.parameters)
                search.append(found)
            else:
                function: dict[str, Any] = {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters or {"type": "object", "properties": {}},
                }
                client.append({"type": "function", "function": function})
        plan = AgentPlan(
            model_id=model_id,
            composition_digest=digest,
            engine=engine,
            system_prompt=spec.system_prompt,
            search_tools=tuple(search),
            max_steps=spec.max_steps,
            client_tools=tuple(client),
            tool_choice=spec.tool_choice,
        )
        return AgentEngine(plan, self.tracer)

    async def _open_index(self, ref: str) -> Retriever:
        if self.services.indexes is None:
            raise EngineUnavailableError("this gateway has no index provider (no embedder configured)")
        return await self.services.indexes.open(ref)

    async def _engine(self, ref: str) -> Engine:
        """The served engine of a pinned model reference: by digest, else by name when it knows none."""
        model: Artifact = await asyncio.to_thread(self.store.resolve, ref)
        short = model.name.rsplit("/", 1)[-1]
        by_name = None
        for model_id, engine in self.services.engines.items():
            if engine.info.digest == model.digest:
                return engine
            if engine.info.digest is None and model_id in (short, model.name):
                by_name = engine
        if by_name is not None:
            return by_name
        raise EngineUnavailableError(
            f"model {model.name}@{model.digest} is not served by this gateway; add it to the served models"
        )


def _epoch(created: str | None) -> int:
    if not created:
        return 0
    try:
        return int(datetime.fromisoformat(created).timestamp())
    except ValueError:
        return 0
