"""Driving an engine for one request: the first chunk before any header, then collect or stream."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from core.chat import GenerationChunk, GenerationRequest, ToolCall
from core.engine import Engine
from core.errors import AihubError, ErrorKind
from gateway.errors import describe, error_body
from gateway.metrics import START_SCOPE_KEY, GatewayMetrics
from gateway.sse import DONE_EVENT, sse_event

logger = logging.getLogger(__name__)


def new_id(prefix: str) -> str:
    return f"{prefix}-{os.urandom(12).hex()}"


async def close_stream(stream: AsyncIterator[GenerationChunk]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


@dataclass(slots=True)
class OpenGeneration:
    """An engine stream whose first chunk (None: the stream was empty) has been pulled already."""

    first: GenerationChunk | None
    rest: AsyncIterator[GenerationChunk]
    model: str
    metrics: GatewayMetrics

    async def chunks(self) -> AsyncGenerator[GenerationChunk, None]:
        chunk = self.first
        while chunk is not None:
            yield chunk
            if chunk.finish_reason is not None:
                return
            chunk = await anext(self.rest, None)

    async def close(self) -> None:
        await close_stream(self.rest)


async def open_generation(
    engine: Engine,
    request: GenerationRequest,
    model: str,
    endpoint: str,
    metrics: GatewayMetrics,
    scope: Scope,
) -> OpenGeneration:
    """Pulls the first chunk, so input errors raised by the engine still become a proper error status."""
    stream = engine.generate(request)
    try:
        first = await anext(stream, None)
    except BaseException:
        with suppress(Exception):
            await close_stream(stream)
        raise
    started = scope.get(START_SCOPE_KEY)
    if started is not None:
        metrics.record_ttft(model, endpoint, time.perf_counter() - started)
    return OpenGeneration(first=first, rest=stream, model=model, metrics=metrics)


@dataclass(slots=True)
class Outcome:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    # Pipelines and agents yield chunks with these extras (``gateway.composed_chunk.ComposedChunk``).
    citations: tuple[Mapping[str, Any], ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def citations_of(chunk: GenerationChunk | None) -> tuple[Mapping[str, Any], ...]:
    return tuple(getattr(chunk, "citations", ()) or ())


def tool_calls_of(chunk: GenerationChunk | None) -> tuple[ToolCall, ...]:
    return tuple(getattr(chunk, "tool_calls", ()) or ())


def _outcome(text: str, last: GenerationChunk | None, citations: tuple[Mapping[str, Any], ...]) -> Outcome:
    tool_calls = tool_calls_of(last)
    finish = (last.finish_reason if last else None) or "stop"
    return Outcome(
        text=text,
        finish_reason="tool_calls" if tool_calls else finish,
        prompt_tokens=last.prompt_tokens if last else 0,
        completion_tokens=last.completion_tokens if last else 0,
        citations=citations,
        tool_calls=tool_calls,
    )


async def collect(generation: OpenGeneration) -> Outcome:
    """The whole answer of a non-streamed request."""
    parts: list[str] = []
    last: GenerationChunk | None = None
    citations: tuple[Mapping[str, Any], ...] = ()
    try:
        async with aclosing(generation.chunks()) as chunks:
            async for chunk in chunks:
                parts.append(chunk.text)
                citations = citations or citations_of(chunk)
                last = chunk
    finally:
        await generation.close()
    outcome = _outcome("".join(parts), last, citations)
    generation.metrics.record_usage(generation.model, outcome.prompt_tokens, outcome.completion_tokens)
    return outcome


# Builds one SSE payload from (text, engine chunk) or, for the final chunk, from (None, outcome).
ChunkBuilder = Callable[[str | None, "GenerationChunk | Outcome | None"], Mapping[str, Any]]


async def stream_events(
    generation: OpenGeneration,
    build: ChunkBuilder,
    usage_chunk: Callable[[Outcome], Mapping[str, Any]] | None,
    endpoint: str,
    leading_text: str = "",
) -> AsyncGenerator[bytes, None]:
    """SSE events of a streamed request: text chunks, one chunk with the finish reason, usage, [DONE].

    Errors after the headers went out are sent as an OpenAI-style error event (clients raise on it).
    """
    last: GenerationChunk | None = None
    try:
        if leading_text:
            yield sse_event(build(leading_text, None))
        async with aclosing(generation.chunks()) as chunks:
            async for chunk in chunks:
                last = chunk
                # A text-less chunk matters only for the citations a pipeline puts on its first chunk.
                if chunk.text or (chunk.finish_reason is None and citations_of(chunk)):
                    yield sse_event(build(chunk.text, chunk))
        outcome = _outcome("", last, citations_of(last))
        yield sse_event(build(None, outcome))
        if usage_chunk is not None:
            yield sse_event(usage_chunk(outcome))
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
        if last is not None:
            generation.metrics.record_usage(generation.model, last.prompt_tokens, last.completion_tokens)
