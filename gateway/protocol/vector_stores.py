"""Wire models of vector store search and listing, in the shape of OpenAI's vector store API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import InvalidRequestError
from core.retrieval import ComparisonFilter, CompoundFilter, Filter, SearchMode
from gateway.protocol.vector_store_objects import VectorStoreObject

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
# OpenAI bounds max_num_results at 50; aihub allows deeper rankings (evaluation scores top 100
# documents, which takes a few hundred chunks).
MAX_RESULTS = 1000


class RankingOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    ranker: str | None = None  # "auto", "none", or aihub's "dense" / "bm25" / "hybrid"
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class VectorStoreSearchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    query: str | list[str]
    max_num_results: int = Field(default=10, ge=1, le=MAX_RESULTS)
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False  # accepted; queries are never rewritten

    def query_text(self) -> str:
        text = self.query if isinstance(self.query, str) else " ".join(self.query)
        if not text.strip():
            raise InvalidRequestError("'query' must not be empty", param="query")
        return text

    def mode(self) -> SearchMode | None:
        ranker = self.ranking_options.ranker if self.ranking_options else None
        if ranker in (None, "auto", "none", "default-2024-11-15", "default_2024_08_21"):
            return None
        if ranker in ("dense", "bm25", "hybrid"):
            return ranker  # type: ignore[return-value]
        raise InvalidRequestError(f"unknown ranker {ranker!r}", param="ranking_options.ranker")


def parse_filter(raw: Any, path: str = "filters") -> Filter:
    """OpenAI's ``{"type": "eq", "key", "value"}`` / ``{"type": "and", "filters": [...]}``."""
    if not isinstance(raw, dict):
        raise InvalidRequestError(f"'{path}' must be an object", param=path)
    kind = raw.get("type")
    if kind in ("and", "or"):
        subs = raw.get("filters")
        if not isinstance(subs, list) or not subs:
            raise InvalidRequestError(f"'{path}.filters' must be a non-empty list", param=path)
        parsed = tuple(parse_filter(sub, f"{path}.filters[{i}]") for i, sub in enumerate(subs))
        return CompoundFilter(op=kind, filters=parsed)
    if kind in COMPARISONS:
        key, value = raw.get("key"), raw.get("value")
        if not isinstance(key, str) or not key:
            raise InvalidRequestError(f"'{path}.key' must be a non-empty string", param=path)
        if kind in ("in", "nin") and not isinstance(value, list):
            raise InvalidRequestError(f"'{path}.value' must be a list for {kind!r}", param=path)
        if not isinstance(value, str | int | float | bool | list):
            raise InvalidRequestError(f"'{path}.value' must be a string, number, boolean or list", param=path)
        return ComparisonFilter(key=key, op=kind, value=value)
    raise InvalidRequestError(
        f"'{path}.type' must be one of {[*COMPARISONS, 'and', 'or']}, not {kind!r}", param=path
    )


class ContentPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class SearchResult(BaseModel):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, Any]
    content: list[ContentPart]


class SearchResultsPage(BaseModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None


class VectorStore(BaseModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    usage_bytes: int = 0
    file_counts: dict[str, int]
    status: Literal["completed"] = "completed"
    last_active_at: int  # a hub index is not touched by searches: its creation time
    metadata: dict[str, str] = {}


class VectorStoreList(BaseModel):
    object: Literal["list"] = "list"
    data: list[VectorStore | VectorStoreObject]  # hub indices, and the caller's stores made over the API
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
