"""The ``openai`` engine: a model id served by remote OpenAI-compatible servers (a vLLM fleet, a site).

It is an ``Engine`` like the local ones, so pipelines, agents, aliases, metrics and tracing work over
it unchanged. Streams pass each upstream event on as it arrives; only the event carrying the finish
reason waits for the usage event right behind it (asked for with ``stream_options.include_usage``; the
gateway leaves usage out of the client's stream unless the client asked for it).

A request that fails before its first chunk reached the caller (connection refused or reset, a 5xx, a
429, a timeout before the reply) is tried on another upstream, up to ``retries`` more; once a chunk is
out it is never retried, and a failure ends the stream with an error the gateway sends as an event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from core.errors import AihubError, EngineUnavailableError, UpstreamError, UpstreamTimeoutError
from serving.upstream import wire
from serving.upstream.http_client import Response, UpstreamConnectionError, UpstreamTimeout
from serving.upstream.pool import Member, UpstreamPool

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT_LENGTH = 4096


class UpstreamEngine:
    def __init__(
        self,
        model_id: str,
        pool: UpstreamPool,
        *,
        upstream_model: str | None = None,
        digest: str | None = None,
    ) -> None:
        self._model_id = model_id
        self._digest = digest
        self._upstream_model = upstream_model  # None: each member's own model name
        self.pool = pool
        self._created = int(time.time())

    @property
    def info(self) -> ModelInfo:
        settings = self.pool.settings
        context = settings.context_length or self.pool.context_length() or DEFAULT_CONTEXT_LENGTH
        return ModelInfo(
            id=self._model_id,
            context_length=context,
            created=self._created,
            owned_by="upstream",
            digest=self._digest,
            structured_output=True,  # passed on as response_format; the upstream decides
        )

    async def start(self) -> None:
        await self.pool.start()

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        settings = self.pool.settings
        deadline = time.monotonic() + settings.total_timeout_s
        stream = not request.final_only
        tried: list[Member] = []
        last_error: AihubError | None = None
        while True:
            if len(tried) > settings.retries:
                assert last_error is not None
                raise last_error
            try:
                member = self.pool.pick(request.session, tried)
            except EngineUnavailableError:
                if last_error is not None:
                    raise last_error from None
                raise
            tried.append(member)
            member.outstanding += 1
            yielded = False
            try:
                if stream:
                    response = await self._send(
                        member, request, True, _left(deadline, settings.read_timeout_s)
                    )
                    try:
                        async for chunk in self._events(response, request, deadline):
                            yielded = True
                            if chunk.finish_reason is not None:  # the caller may stop reading here
                                self.pool.succeeded(member)
                            yield chunk
                    finally:
                        response.release()
                else:
                    chunk = await self._complete(member, request, deadline)
                    yielded = True
                    self.pool.succeeded(member)
                    yield chunk
                return
            except _Retry as retry:
                last_error = retry.error
            except (UpstreamConnectionError, UpstreamTimeout, UpstreamError) as exc:
                self.pool.failed(member, str(exc))
                if yielded:
                    logger.warning("%s: upstream %s failed mid-stream: %s", self._model_id, member.url, exc)
                    raise _mid_stream(exc, member) from None
                last_error = _mapped(exc, member)
            finally:
                member.outstanding -= 1

    async def _complete(self, member: Member, request: GenerationRequest, deadline: float) -> GenerationChunk:
        """A non-streamed request, under one timeout from sending to the end of the reply."""
        try:
            async with asyncio.timeout(_left(deadline, self.pool.settings.read_timeout_s)):
                response = await self._send(member, request, False, None)
                try:
                    data = await response.read(None)
                finally:
                    response.release()
        except TimeoutError:
            raise UpstreamTimeout("read") from None
        return wire.final_chunk(data, request.messages is not None)

    async def _send(
        self, member: Member, request: GenerationRequest, stream: bool, read_timeout: float | None
    ) -> Response:
        """The reply's head when it is a 200. A reply that blames the request is raised; one that blames
        the upstream is recorded and raised as ``_Retry`` (try another)."""
        body = wire.request_body(request, self._upstream_model or member.model, stream=stream)
        response = await member.client.request(
            "POST",
            wire.path_for(request),
            body=body,
            headers=member.auth,
            read_timeout=read_timeout,
        )
        if response.status == 200:
            return response
        try:
            data = await response.read(read_timeout, limit=256 * 1024)
        except (UpstreamConnectionError, UpstreamTimeout):
            data = b""
        finally:
            response.release()
        error = wire.error_for_status(response.status, data, member.url)
        if not wire.is_failure(response.status):
            self.pool.succeeded(member)  # the upstream works; the request was wrong
            raise error
        self.pool.failed(member, f"{response.status}: {error.message}", counts=response.status != 429)
        raise _Retry(error)

    async def _events(
        self, response: Response, request: GenerationRequest, deadline: float
    ) -> AsyncGenerator[GenerationChunk, None]:
        state = wire.StreamState(chat=request.messages is not None)
        pending = b""
        read_timeout = self.pool.settings.read_timeout_s
        async for data in response.chunks(_left(deadline, read_timeout)):
            pending += data
            while (end := pending.find(b"\n\n")) >= 0:
                event, pending = pending[:end], pending[end + 2 :]
                for line in event.split(b"\n"):
                    if not line.startswith(b"data:"):
                        continue  # comments (keep-alives), event names
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        # Read the body's end first, so the connection is kept for the next request.
                        async for _ in response.chunks(_left(deadline, read_timeout)):
                            pass
                        yield state.final()
                        return
                    chunk = state.event(payload)
                    if chunk is not None:
                        yield chunk
            if time.monotonic() > deadline:
                raise UpstreamTimeout("total")
        if state.finish is None:
            raise UpstreamConnectionError("the stream ended without a finish reason")
        yield state.final()


class _Retry(Exception):
    def __init__(self, error: AihubError) -> None:
        self.error = error


def _left(deadline: float, read_timeout: float) -> float:
    return max(0.001, min(read_timeout, deadline - time.monotonic()))


def _mapped(exc: Exception, member: Member) -> AihubError:
    if isinstance(exc, AihubError):
        return exc
    if isinstance(exc, UpstreamTimeout):
        return UpstreamTimeoutError(f"The upstream {member.url} did not answer in time ({exc}).")
    return EngineUnavailableError(f"The upstream {member.url} could not be reached: {exc}")


def _mid_stream(exc: Exception, member: Member) -> AihubError:
    if isinstance(exc, AihubError):
        return exc
    if isinstance(exc, UpstreamTimeout):
        return UpstreamTimeoutError(f"The upstream {member.url} stopped sending ({exc}).")
    return UpstreamError(f"The upstream {member.url} failed mid-stream: {exc}")
