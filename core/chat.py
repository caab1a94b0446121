"""Internal values for chat messages and generation: transport-neutral dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI carries it


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Decoding settings. ``temperature == 0`` means greedy. ``max_tokens=None``: up to the context."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # OpenAI's penalties over the tokens generated so far (presence: once per token seen; frequency:
    # per occurrence) and additive logit biases by token id.
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()

    @property
    def adjusts_logits(self) -> bool:
        return bool(self.presence_penalty or self.frequency_penalty or self.logit_bias)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation: either chat ``messages`` (the engine applies its chat template) or a raw ``prompt``."""

    request_id: str
    params: SamplingParams
    messages: tuple[ChatMessage, ...] | None = None
    prompt: str | None = None
    tools: tuple[Mapping[str, Any], ...] = ()  # OpenAI function tool schemas, for the chat template
    # The caller wants the whole result, not a token stream (vLLM's FINAL_ONLY output kind). Engines
    # still yield chunks; one in another process may then send them all in one message.
    final_only: bool = False
    # The output must be JSON valid against this schema (OpenAI's ``response_format``). Only engines
    # whose ``ModelInfo.structured_output`` is true take it; the others refuse the request.
    json_schema: Mapping[str, Any] | None = None
    # Request-level options of pipelines and agents (the body's ``aihub`` object); engines ignore them.
    options: Mapping[str, Any] = field(default_factory=dict)
    # Who the request belongs to for session affinity (the ``x-aihub-session`` header, else the body's
    # ``user``): engines that balance over replicas may send one session to one replica (prefix cache).
    session: str | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """A source a composed answer (RAG pipeline, agent search) drew on."""

    doc_id: str
    chunk_id: str
    source: str
    title: str
    score: float
    snippet: str


@dataclass(frozen=True, slots=True)
class GenerationChunk:
    """A piece of a generation stream.

    ``text`` is the newly decoded text (possibly empty). The last chunk of a stream carries
    ``finish_reason``. Token counts are cumulative, so the last chunk holds the usage. Pipelines put
    their ``citations`` on the first chunk; agents put citations and the ``tool_calls`` they hand back
    to the client on their one chunk.
    """

    text: str
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    citations: tuple[Citation, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    context_length: int
    created: int = 0
    owned_by: str = "aihub"
    digest: str | None = None  # hub digest of the model artifact the engine serves, when known
    # Whether generate honours ``GenerationRequest.json_schema`` (constrained decoding). The gateway
    # refuses a request with a schema before generating when it is false (``core.engine``).
    structured_output: bool = False
    engine: str | None = None  # the kind of engine serving it (vllm, transformers, …), for messages
    metadata: Mapping[str, Any] = field(default_factory=dict)
