"""Driving an engine for one request: the first chunk before any header, then collect or stream."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import Scope

from core.chat import Citation, GenerationChunk, GenerationRequest
from core.engine import Engine
from core.errors import AihubError, ErrorKind, RequestTimeoutError
from gateway.errors import describe, error_body
from gateway.metrics import START_SCOPE_KEY, GatewayMetrics
from gateway.outcome import Outcome
from gateway.sse import DONE_EVENT, sse_event
from gateway.tenant_auth import INTERRUPTED_SCOPE_KEY, STREAMED_SCOPE_KEY, USAGE_SCOPE_KEY

logger = logging.getLogger(__name__)


def new_id(prefix: str) -> str:
    return f"{prefix}-{os.urandom(12).hex()}"


class StreamBuilder(Protocol):
    """The payloads of one endpoint's event stream (``gateway.protocol``'s chunk builders)."""

    def text(self, text: str, chunk: GenerationChunk | None) -> Mapping[str, Any]: ...

    def final(self, outcome: Outcome) -> Mapping[str, Any]: ...

    def usage(self, outcome: Outcome) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a request must be done (the event loop's clock), and the setting it came from."""

    at: float
    timeout_s: float

    @classmethod
    def after(cls, timeout_s: float | None) -> Deadline | None:
        if timeout_s is None:
            return None
        return cls(asyncio.get_running_loop().time() + timeout_s, timeout_s)


async def next_chunk(
    stream: AsyncGenerator[GenerationChunk, None], deadline: Deadline | None
) -> GenerationChunk | None:
    """The stream's next chunk (None at its end). Past the deadline the wait is cancelled, which ends
    the engine stream and frees its batch slot, and ``RequestTimeoutError`` is raised."""
    if deadline is None:
        return await anext(stream, None)
    try:
        async with asyncio.timeout_at(deadline.at) as timeout:
            return await anext(stream, None)
    except TimeoutError:
        if not timeout.expired():
            raise
        raise RequestTimeoutError(
            f"The request did not finish within the server's limit of {deadline.timeout_s:g} seconds; "
            "its generation was stopped. Ask for fewer tokens (max_tokens), or stream the response."
        ) from None


@dataclass(slots=True)
class OpenGeneration:
    """An engine stream whose first chunk (None: the stream was empty) has been pulled already."""

    first: GenerationChunk | None
    rest: AsyncGenerator[GenerationChunk, None]
    model: str
    metrics: GatewayMetrics
    scope: Scope  # the request's: usage goes there for the ledger (gateway.tenant_auth)
    deadline: Deadline | None = None

    def account(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.metrics.record_usage(self.model, prompt_tokens, completion_tokens)
        self.scope[USAGE_SCOPE_KEY] = (prompt_tokens, completion_tokens)

    async def chunks(self) -> AsyncGenerator[GenerationChunk, None]:
        chunk = self.first
        while chunk is not None:
            yield chunk
            if chunk.finish_reason is not None:
                return
            chunk = await next_chunk(self.rest, self.deadline)

    async def close(self) -> None:
        await self.rest.aclose()


async def open_generation(
    engine: Engine,
    request: GenerationRequest,
    model: str,
    endpoint: str,
    metrics: GatewayMetrics,
    scope: Scope,
    deadline: Deadline | None = None,
) -> OpenGeneration:
    """Pulls the first chunk, so input errors raised by the engine still become a proper error status."""
    stream = engine.generate(request)
    try:
        first = await next_chunk(stream, deadline)
    except BaseException:
        with suppress(Exception):
            await stream.aclose()
        raise
    started = scope.get(START_SCOPE_KEY)
    if started is not None:
        metrics.record_ttft(model, endpoint, time.perf_counter() - started)
    return OpenGeneration(
        first=first, rest=stream, model=model, metrics=metrics, scope=scope, deadline=deadline
    )


async def collect(generation: OpenGeneration) -> Outcome:
    """The whole answer of a non-streamed request (cancelled: the client left; see gateway.disconnect)."""
    parts: list[str] = []
    last: GenerationChunk | None = None
    citations: tuple[Citation, ...] = ()
    finished = False
    try:
        async with aclosing(generation.chunks()) as chunks:
            async for chunk in chunks:
                parts.append(chunk.text)
                citations = citations or chunk.citations
                last = chunk
        finished = True
    finally:
        await generation.close()
        if not finished:  # timed out, failed or cancelled: the tokens made until then count
            generation.scope[INTERRUPTED_SCOPE_KEY] = True
            if last is not None:
                generation.account(last.prompt_tokens, last.completion_tokens)
    outcome = Outcome.of("".join(parts), last, citations)
    generation.account(outcome.prompt_tokens, outcome.completion_tokens)
    return outcome


async def stream_events(
    generation: OpenGeneration, build: StreamBuilder, endpoint: str, leading_text: str = ""
) -> AsyncGenerator[bytes, None]:
    """SSE events of a streamed request: text chunks, one chunk with the finish reason, usage, [DONE].

    Errors after the headers went out are sent as an OpenAI-style error event (clients raise on it).
    """
    last: GenerationChunk | None = None
    finished = False
    generation.scope[STREAMED_SCOPE_KEY] = True
    try:
        if leading_text:
            yield sse_event(build.text(leading_text, None))
        async with aclosing(generation.chunks()) as chunks:
            async for chunk in chunks:
                last = chunk
                # A text-less chunk matters only for the citations a pipeline puts on its first chunk.
                if chunk.text or (chunk.finish_reason is None and chunk.citations):
                    yield sse_event(build.text(chunk.text, chunk))
        outcome = Outcome.of("", last, last.citations if last is not None else ())
        yield sse_event(build.final(outcome))
        usage = build.usage(outcome)
        if usage is not None:
            yield sse_event(usage)
        finished = True
        yield DONE_EVENT
    except AihubError as exc:
        _, body = describe(exc)
        logger.error("generation failed mid-stream: %s: %s", type(exc).__name__, exc.message)
        generation.metrics.errors.labels(generation.model, endpoint, exc.code or "error").inc()
        yield sse_event(body)
    except Exception:
        logger.exception("generation failed mid-stream")
        generation.metrics.errors.labels(generation.model, endpoint, "internal_error").inc()
        yield sse_event(
            error_body(ErrorKind.INTERNAL, "The server had an error while streaming.", None, "internal_error")
        )
    finally:
        await generation.close()
        if not finished:  # the client left, or the engine failed: the tokens made until then count
            generation.scope[INTERRUPTED_SCOPE_KEY] = True
        if last is not None:
            generation.account(last.prompt_tokens, last.completion_tokens)
