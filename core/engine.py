"""The Engine protocol: what the gateway needs from anything that generates text."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from core.errors import InvalidRequestError


@runtime_checkable
class Engine(Protocol):
    """A text generator serving one model.

    ``generate`` returns an async generator of chunks. Input problems (prompt longer than the context,
    bad parameters) are raised as ``core.errors`` exceptions no later than the first ``__anext__``,
    before any text is produced, so the gateway can still answer with a proper status. Closing the
    iterator early (``aclose()``, or cancelling the task consuming it) cancels the generation and
    frees its batch slot.
    """

    @property
    def info(self) -> ModelInfo: ...

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]: ...

    async def start(self) -> None:
        """Load weights and start background work. Idempotent."""

    async def aclose(self) -> None:
        """Stop background work and release resources."""


@runtime_checkable
class HealthReporting(Protocol):
    """An engine that knows when it can no longer serve (its engine process or thread died): /ready
    says so instead of claiming a dead model is up."""

    def failure(self) -> str | None:
        """None while the engine can serve (or has not started yet); else why it cannot."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """An engine that counts tokens with its model's own tokenizer, in-process and cheaply.

    Pipelines fit retrieved documents into the context with it; without one they estimate.
    """

    def count_tokens(self, text: str) -> int: ...


def check_capabilities(info: ModelInfo, request: GenerationRequest) -> None:
    """Refuse, before anything is generated, an option the engine declares it cannot honour (never
    answer free text to a request for JSON). Raises InvalidRequestError."""
    if request.json_schema is not None and not info.structured_output:
        engine = f"the {info.engine} engine" if info.engine else "an engine"
        raise InvalidRequestError(
            f"model {info.id!r} is served by {engine}, which cannot constrain its output to JSON; "
            "response_format json_object / json_schema needs an engine with structured output (vLLM, "
            "or an OpenAI-compatible upstream).",
            param="response_format",
            code="unsupported_value",
        )


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """One replica (upstream server) of a pool, as ``/ready`` and ``/metrics`` report it."""

    url: str
    model: str  # the model name at the replica
    state: Literal["up", "down", "ejected"]  # down: failing health checks; ejected: too many failures
    source: str  # where it came from: config, file or admin
    outstanding: int
    requests: int
    errors: int
    ejections: int
    last_error: str | None = None


@runtime_checkable
class ReplicaPool(Protocol):
    """Replicas behind one or more engines (the upstreams of an ``openai`` model), with membership."""

    @property
    def name(self) -> str:
        """The configured id the pool serves (``site-b/*`` for a federation)."""
        ...

    def states(self) -> Sequence[ReplicaState]: ...

    def ready(self) -> bool:
        """At least one replica can take requests."""
        ...

    def add(self, url: str, model: str | None = None) -> None:
        """A member added by an operator (admin API); replaces one with the same URL."""
        ...

    def remove(self, url: str) -> bool:
        """Drops every member with this URL; in-flight requests finish. False: there was none."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class EngineDirectory(Protocol):
    """Engines for a family of model ids under one prefix, known only at run time (a federated site)."""

    @property
    def prefix(self) -> str: ...

    def models(self) -> Sequence[ModelInfo]:
        """What it serves now, ids with the prefix."""
        ...

    def engine(self, model_id: str) -> Engine | None:
        """The engine for a prefixed id it serves now, else None."""
        ...
