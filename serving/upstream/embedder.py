"""An ``Embedder`` served by OpenAI-compatible upstreams (``POST /v1/embeddings``), on the same pool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import orjson

from core.embedder import EmbedderInfo, EmbeddingInput, Embeddings
from core.errors import AihubError, InvalidSpecError, UpstreamError
from serving.upstream import wire
from serving.upstream.http_client import OriginClient, UpstreamConnectionError, UpstreamTimeout
from serving.upstream.pool import Member, UpstreamPool


class UpstreamEmbedder:
    def __init__(self, model_id: str, pool: UpstreamPool) -> None:
        if pool.settings.dimensions is None:
            raise InvalidSpecError(f"embedder {model_id!r}: engine openai needs options.dimensions")
        self._info = EmbedderInfo(model_id, pool.settings.dimensions, pool.settings.max_input_tokens)
        self.pool = pool

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    async def start(self) -> None:
        await self.pool.start()

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def embed(self, inputs: Sequence[EmbeddingInput]) -> Embeddings:
        return await self._embed(inputs, lambda member: member.client)

    async def _embed(
        self, inputs: Sequence[EmbeddingInput], client_for: Callable[[Member], OriginClient]
    ) -> Embeddings:
        settings = self.pool.settings
        deadline = time.monotonic() + settings.total_timeout_s
        tried: list[Member] = []
        last_error: AihubError | None = None
        while len(tried) <= settings.retries:
            try:
                member = self.pool.pick(None, tried)
            except AihubError:
                if last_error is not None:
                    raise last_error from None
                raise
            tried.append(member)
            body = orjson.dumps({"model": member.model, "input": [_plain(i) for i in inputs]})
            member.outstanding += 1
            try:
                timeout = max(0.001, min(settings.read_timeout_s, deadline - time.monotonic()))
                response = await client_for(member).request(
                    "POST", "/embeddings", body=body, headers=member.auth, read_timeout=timeout
                )
                try:
                    data = await response.read(timeout)
                finally:
                    response.release()
                if response.status != 200:
                    error = wire.error_for_status(response.status, data, member.url)
                    if not wire.is_failure(response.status):
                        self.pool.succeeded(member)
                        raise error
                    self.pool.failed(member, error.message, counts=response.status != 429)
                    last_error = error
                    continue
                result = self._parse(data, len(inputs))
                self.pool.succeeded(member)
                return result
            except (UpstreamConnectionError, UpstreamTimeout, UpstreamError) as exc:
                self.pool.failed(member, str(exc))
                last_error = exc if isinstance(exc, AihubError) else UpstreamError(f"{member.url}: {exc}")
            finally:
                member.outstanding -= 1
        assert last_error is not None
        raise last_error

    def _parse(self, data: bytes, count: int) -> Embeddings:
        try:
            payload = orjson.loads(data)
            items = sorted(payload["data"], key=lambda item: item.get("index", 0))
            vectors = np.asarray([item["embedding"] for item in items], dtype=np.float32)
            tokens = int((payload.get("usage") or {}).get("prompt_tokens") or 0)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise UpstreamError("The upstream's reply is not an OpenAI embedding list.") from None
        if vectors.shape != (count, self._info.dimensions):
            raise UpstreamError(
                f"The upstream sent vectors of shape {vectors.shape}, "
                f"expected ({count}, {self._info.dimensions})."
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return Embeddings(vectors / np.maximum(norms, 1e-12), tokens)

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Bulk embedding from synchronous code (ingestion): a private loop, since none runs here."""

        # Connections belong to the loop that opened them: this private loop gets its own.
        clients: dict[str, OriginClient] = {}

        def client_for(member: Member) -> OriginClient:
            if member.url not in clients:
                clients[member.url] = OriginClient(
                    member.url, connect_timeout=self.pool.settings.connect_timeout_s, max_idle=1
                )
            return clients[member.url]

        async def run() -> npt.NDArray[np.float32]:
            try:
                return (await self._embed(list(texts), client_for)).vectors
            finally:
                for client in clients.values():
                    await client.aclose()

        return asyncio.run(run())


def _plain(item: EmbeddingInput) -> str | list[int]:
    return item if isinstance(item, str) else list(item)
