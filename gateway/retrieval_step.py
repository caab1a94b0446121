"""Retrieval shared by pipelines and the agents' search tool: settings, filters, fusion, citations."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, get_args

from opentelemetry import trace

from core.chat import Citation
from core.errors import InvalidRequestError
from core.retrieval import ComparisonFilter, CompoundFilter, Filter, Retriever, SearchHit, SearchMode
from gateway import tracing
from hub.specs.pipeline import RetrievalSettings as PipelineRetrieval

SNIPPET_CHARS = 240
RRF_K = 60
MAX_TOP_K = 100
_COMPARISONS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"}


def parse_filter(data: Any, param: str = "aihub.filters") -> Filter:
    """OpenAI's vector-store filter JSON (``{"type": "eq", "key", "value"}`` / ``{"type": "and", ...}``)."""
    if not isinstance(data, Mapping):
        raise InvalidRequestError("a filter must be an object", param=param)
    kind = data.get("type")
    if kind in ("and", "or"):
        parts = data.get("filters")
        if not isinstance(parts, list) or not parts:
            raise InvalidRequestError(f"a {kind!r} filter needs a non-empty `filters` list", param=param)
        return CompoundFilter(op=kind, filters=tuple(parse_filter(p, param) for p in parts))
    if kind in _COMPARISONS and isinstance(data.get("key"), str) and "value" in data:
        return ComparisonFilter(key=data["key"], op=kind, value=data["value"])
    raise InvalidRequestError(
        "a filter is {type: eq|ne|gt|gte|lt|lte|in|nin, key, value} or {type: and|or, filters}", param=param
    )


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    top_k: int = 4
    mode: SearchMode | None = None
    filters: Filter | None = None
    min_score: float | None = None

    @classmethod
    def from_spec(cls, spec: PipelineRetrieval) -> RetrievalSettings:
        """From a hub pipeline's ``retrieval`` section (already validated by the spec model)."""
        return cls(
            top_k=spec.top_k,
            mode=spec.mode,
            filters=parse_filter(spec.filters, "retrieval.filters") if spec.filters else None,
            min_score=spec.min_score,
        )

    def with_overrides(self, options: Mapping[str, Any]) -> RetrievalSettings:
        """Request-level overrides from the body's ``aihub`` object."""
        changes: dict[str, Any] = {}
        if "top_k" in options:
            top_k = options["top_k"]
            if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
                raise InvalidRequestError(
                    f"top_k must be an integer from 1 to {MAX_TOP_K}", param="aihub.top_k"
                )
            changes["top_k"] = top_k
        if "mode" in options:
            if options["mode"] not in get_args(SearchMode):
                raise InvalidRequestError("mode must be dense, bm25 or hybrid", param="aihub.mode")
            changes["mode"] = options["mode"]
        if "filters" in options:
            changes["filters"] = parse_filter(options["filters"]) if options["filters"] else None
        for key in ("min_score", "score_threshold"):
            if key in options:
                value = options[key]
                if value is not None and not isinstance(value, int | float):
                    raise InvalidRequestError(f"{key} must be a number", param=f"aihub.{key}")
                changes["min_score"] = value
        return replace(self, **changes) if changes else self


def fuse(results: Sequence[Sequence[SearchHit]], top_k: int) -> list[SearchHit]:
    """One ranked list from several indices. Scores of different indices are not comparable, so ranks
    are fused (reciprocal rank fusion); a hit keeps its own index's score for the citation."""
    if len(results) == 1:
        return list(results[0][:top_k])
    scores: dict[tuple[str, str], float] = {}
    first: dict[tuple[str, str], SearchHit] = {}
    for hits in results:
        for rank, hit in enumerate(hits):
            key = (hit.doc_id, hit.chunk_id)
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
            first.setdefault(key, hit)
    ranked = sorted(scores, key=lambda key: scores[key], reverse=True)
    return [first[key] for key in ranked[:top_k]]


async def retrieve(
    tracer: trace.Tracer,
    retrievers: Sequence[Retriever],
    query: str,
    settings: RetrievalSettings,
) -> list[SearchHit]:
    """Search every index concurrently, drop hits under ``min_score``, fuse; one ``aihub.retrieve`` span."""
    with tracing.stage(
        tracer,
        "retrieve",
        **{
            tracing.INDEX_DIGESTS: [r.info.digest for r in retrievers],
            "aihub.retrieval.top_k": settings.top_k,
            "aihub.retrieval.mode": settings.mode,
        },
    ) as span:
        results = await asyncio.gather(
            *(
                r.search(query, top_k=settings.top_k, filters=settings.filters, mode=settings.mode)
                for r in retrievers
            )
        )
        if settings.min_score is not None:
            results = [[h for h in hits if h.score >= settings.min_score] for hits in results]
        hits = fuse(results, settings.top_k)
        tracing.set_attributes(span, {tracing.DOC_IDS: [h.doc_id for h in hits]})
        return hits


def citation(hit: SearchHit) -> Citation:
    snippet = hit.text if len(hit.text) <= SNIPPET_CHARS else hit.text[: SNIPPET_CHARS - 1].rstrip() + "…"
    return Citation(
        doc_id=hit.doc_id,
        chunk_id=hit.chunk_id,
        source=hit.source,
        title=hit.title,
        score=round(float(hit.score), 6),
        snippet=snippet,
    )


def document_value(hit: SearchHit, text: str) -> dict[str, Any]:
    """What a prompt template sees of one document."""
    return {
        "id": hit.doc_id,
        "doc_id": hit.doc_id,
        "chunk_id": hit.chunk_id,
        "title": hit.title,
        "source": hit.source,
        "text": text,
        "score": hit.score,
        "attributes": dict(hit.attributes),
    }
