"""The evaluation's view of a gateway: chat answers and vector-store searches.

The CLI hands in how to reach it: over HTTP (``--url``; aiohttp) or in-process (httpx with
``httpx.ASGITransport`` over the app the composition root builds). HTTP errors are mapped to
``core.errors`` here, at the edge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson

from core.errors import (
    AihubError,
    AuthenticationError,
    ConflictError,
    EngineError,
    EngineUnavailableError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)

logger = logging.getLogger(__name__)

COMPOSITION_HEADER = "x-aihub-composition"
_STATUS_ERRORS: dict[int, type[AihubError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: EngineUnavailableError,
    503: EngineUnavailableError,
}
_RETRIED = (EngineUnavailableError,)
_JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class ChatResult:
    text: str
    citations: tuple[Mapping[str, Any], ...]
    composition: str | None  # the x-aihub-composition header, when a composition served it
    latency_s: float
    usage: Mapping[str, int] = field(default_factory=dict)

    @property
    def cited_doc_ids(self) -> list[str]:
        return [str(c["doc_id"]) for c in self.citations if c.get("doc_id") is not None]


@dataclass(frozen=True)
class SearchResult:
    hits: list[tuple[str, float]]  # (doc id, chunk score), best first; a document may come several times
    latency_s: float


def _error(response: RawResponse) -> AihubError:
    try:
        body = orjson.loads(response.content)
        message = str(body["error"]["message"])
        code = body["error"].get("code")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message, code = response.content[:300].decode(errors="replace"), None
    kind = _STATUS_ERRORS.get(response.status, EngineError)
    return kind(f"gateway answered {response.status}: {message}", code=code)


def hits_of(results: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    """(document id, chunk score) of each search result, in the order the gateway ranked them."""
    hits = []
    for result in results:
        doc_id = result.get("file_id") or (result.get("attributes") or {}).get("doc_id")
        if doc_id is not None:
            hits.append((str(doc_id), float(result.get("score", 0.0))))
    return hits


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]  # lower-case names
    content: bytes


class Poster(Protocol):
    """POSTs a JSON body to a path of the gateway; transport failures raise EngineUnavailableError."""

    async def post(self, path: str, payload: bytes) -> RawResponse: ...


class HttpxPoster:
    """Over an ``httpx.AsyncClient``: in-process through ``httpx.ASGITransport``, or over HTTP."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(self, path: str, payload: bytes) -> RawResponse:
        try:
            response = await self.http.post(path, content=payload, headers=_JSON)
        except httpx.TransportError as exc:
            raise EngineUnavailableError(f"gateway unreachable: {exc!r}") from None
        return RawResponse(response.status_code, response.headers, response.content)


class AiohttpPoster:
    """Over HTTP with aiohttp: its connection pool keeps up with high concurrency where httpx's lags."""

    def __init__(self, session: Any, base_url: str, headers: Mapping[str, str] | None = None) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = {**_JSON, **(headers or {})}

    async def post(self, path: str, payload: bytes) -> RawResponse:
        import aiohttp

        try:
            async with self.session.post(
                self.base_url + path, data=payload, headers=self.headers
            ) as response:
                content = await response.read()
                headers = {k.lower(): v for k, v in response.headers.items()}
                return RawResponse(response.status, headers, content)
        except aiohttp.ClientError as exc:
            raise EngineUnavailableError(f"gateway unreachable: {exc!r}") from None


class GatewayClient:
    def __init__(
        self, poster: Poster | httpx.AsyncClient, *, retries: int = 2, backoff_s: float = 0.5
    ) -> None:
        self.poster: Poster = HttpxPoster(poster) if isinstance(poster, httpx.AsyncClient) else poster
        self.retries = retries
        self.backoff_s = backoff_s

    async def _post(self, path: str, body: Mapping[str, Any]) -> tuple[RawResponse, float]:
        payload = orjson.dumps(body)
        for attempt in range(self.retries + 1):
            started = time.perf_counter()
            try:
                response = await self.poster.post(path, payload)
            except EngineUnavailableError as exc:
                error: AihubError = exc
            else:
                elapsed = time.perf_counter() - started
                if response.status == 200:
                    return response, elapsed
                error = _error(response)
            if not isinstance(error, _RETRIED) or attempt == self.retries:
                raise error
            logger.warning("%s (retrying)", error.message)
            await asyncio.sleep(self.backoff_s * (2**attempt))
        raise AssertionError("unreachable")

    async def chat(self, model: str, question: str, params: Mapping[str, Any]) -> ChatResult:
        body = {"model": model, "messages": [{"role": "user", "content": question}], **params}
        response, elapsed = await self._post("/v1/chat/completions", body)
        data = orjson.loads(response.content)
        message = (data.get("choices") or [{}])[0].get("message") or {}
        return ChatResult(
            text=message.get("content") or "",
            citations=tuple(data.get("citations") or ()),
            composition=response.headers.get(COMPOSITION_HEADER),
            latency_s=elapsed,
            usage=data.get("usage") or {},
        )

    async def search(self, vector_store_id: str, query: str, limit: int) -> SearchResult:
        path = f"/v1/vector_stores/{quote(vector_store_id, safe='/@:')}/search"
        response, elapsed = await self._post(path, {"query": query, "max_num_results": limit})
        data = orjson.loads(response.content)
        return SearchResult(hits=hits_of(data.get("data") or ()), latency_s=elapsed)
