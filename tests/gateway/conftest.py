"""Fixtures for the gateway tests: a scripted engine double and app builders."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from tests.support.server_thread import ServerThread


class ScriptedEngineDouble:
    """A deterministic stand-in for a GPU/CPU engine: replies with scripted pieces of text.

    The reply is ``pieces`` (default: "Echo:" and the words of the last message), cut to
    ``params.max_tokens`` pieces with finish reason ``length``. ``fail_on_first`` is raised at the
    first ``__anext__`` (as real engines raise input errors); ``fail_after`` pieces, ``fail_mid`` is
    raised. It records requests, and whether a stream was closed or cancelled before it ended.
    """

    def __init__(
        self,
        model_id: str = "scripted-double",
        pieces: Sequence[str] | None = None,
        *,
        delay_s: float = 0.0,
        fail_on_first: BaseException | None = None,
        fail_mid: BaseException | None = None,
        fail_after: int = 1,
        context_length: int = 2048,
    ) -> None:
        self._info = ModelInfo(id=model_id, context_length=context_length, created=1_700_000_000)
        self.pieces = list(pieces) if pieces is not None else None
        self.delay_s = delay_s
        self.fail_on_first = fail_on_first
        self.fail_mid = fail_mid
        self.fail_after = fail_after
        self.requests: list[GenerationRequest] = []
        self.closed_early: list[str] = []  # request ids whose stream was closed/cancelled mid-way
        self.finished: list[str] = []
        self.early_close = threading.Event()
        self.started = 0
        self.closed = 0

    @property
    def info(self) -> ModelInfo:
        return self._info

    async def start(self) -> None:
        self.started += 1

    async def aclose(self) -> None:
        self.closed += 1

    def _script(self, request: GenerationRequest) -> list[str]:
        if self.pieces is not None:
            return list(self.pieces)
        last = request.messages[-1].content if request.messages else (request.prompt or "")
        return ["Echo:"] + [f" {word}" for word in last.split()]

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.requests.append(request)
        return self._run(request)

    async def _run(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        if self.fail_on_first is not None:
            raise self.fail_on_first
        script = self._script(request)
        limit = request.params.max_tokens
        finish = "stop"
        if limit is not None and limit < len(script):
            script, finish = script[:limit], "length"
        source = request.prompt or " ".join(m.content for m in request.messages or ())
        prompt_tokens = len(source.split()) + 3
        done = False
        try:
            for index, piece in enumerate(script):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if self.fail_mid is not None and index == self.fail_after:
                    raise self.fail_mid
                last = index == len(script) - 1
                yield GenerationChunk(
                    text=piece,
                    finish_reason=finish if last else None,  # type: ignore[arg-type]
                    prompt_tokens=prompt_tokens,
                    completion_tokens=index + 1,
                )
            if not script:
                yield GenerationChunk(text="", finish_reason="stop", prompt_tokens=prompt_tokens)
            done = True
        finally:
            if done:
                self.finished.append(request.request_id)
            else:
                self.closed_early.append(request.request_id)
                self.early_close.set()


AppFactory = Callable[..., FastAPI]


@pytest.fixture(scope="session")
def make_app() -> AppFactory:
    def build(*engines: ScriptedEngineDouble, **settings: Any) -> FastAPI:
        services = GatewayServices(engines={engine.info.id: engine for engine in engines})
        return create_app(GatewaySettings(**settings), services)

    return build


@pytest.fixture
def engine() -> ScriptedEngineDouble:
    return ScriptedEngineDouble()


@pytest.fixture
def client(make_app: AppFactory, engine: ScriptedEngineDouble) -> Iterator[TestClient]:
    app = make_app(engine, model_aliases={"gpt-4o-mini": engine.info.id})
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def serve() -> Callable[[FastAPI], ServerThread]:
    return ServerThread


def sse_payloads(raw: str) -> list[str]:
    """The ``data:`` payloads of an event stream, in order."""
    return [line[len("data: ") :] for line in raw.split("\n") if line.startswith("data: ")]


@pytest.fixture
def parse_sse() -> Callable[[str], list[str]]:
    return sse_payloads


@pytest.fixture(scope="session")
def scripted() -> type[ScriptedEngineDouble]:
    """The double's class, for tests that need a differently scripted engine."""
    return ScriptedEngineDouble
