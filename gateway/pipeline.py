"""The RAG pipeline executor: retrieve → fit documents into the context → render → generate.

A ``PipelineEngine`` is engine-like (``core.engine.Engine``): the chat router drives it as it drives a
model, and yields its chunks, the first one carrying the citations.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry import trace

from core.chat import ChatMessage, GenerationChunk, GenerationRequest, ModelInfo, SamplingParams
from core.engine import Engine
from core.errors import InvalidRequestError
from core.retrieval import Retriever, SearchHit
from gateway import tracing
from gateway.context_budget import available_for_documents, fit_documents, max_prompt_chars, token_counter
from gateway.prompts import PromptTemplate
from gateway.retrieval_step import RetrievalSettings, citation, document_value, retrieve

logger = logging.getLogger(__name__)

DEFAULT_COMPLETION_RESERVE = 256  # tokens kept free for the answer when the request sets no max_tokens
_DEFAULTS = SamplingParams()


@dataclass(frozen=True)
class PipelinePlan:
    """Everything a pipeline needs per request, resolved once per composition digest."""

    model_id: str  # e.g. "rag/support"
    composition_digest: str
    engine: Engine
    prompt: PromptTemplate
    retrievers: tuple[Retriever, ...]
    retrieval: RetrievalSettings
    generation: Mapping[str, Any]  # defaults: temperature, top_p, max_tokens, stop


def request_options(request: GenerationRequest) -> Mapping[str, Any]:
    """The body's ``aihub`` object (request-level overrides)."""
    options = request.options
    if not isinstance(options, Mapping):
        raise InvalidRequestError("`aihub` must be an object", param="aihub")
    return options


def merge_params(params: SamplingParams, defaults: Mapping[str, Any]) -> SamplingParams:
    """Pipeline defaults fill what the request left at the protocol default."""
    changes: dict[str, Any] = {}
    for name in ("temperature", "top_p", "max_tokens"):
        value = defaults.get(name)
        if value is not None and getattr(params, name) == getattr(_DEFAULTS, name):
            changes[name] = value
    if defaults.get("stop") and not params.stop:
        changes["stop"] = tuple(defaults["stop"])
    return replace(params, **changes) if changes else params


def split_question(messages: Sequence[ChatMessage]) -> tuple[str, list[ChatMessage], list[ChatMessage]]:
    """(question, system turns, earlier turns): the question is the last user turn."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            system = [m for m in messages[:i] if m.role in ("system", "developer")]
            history = [m for m in messages[:i] if m.role in ("user", "assistant") and m.content]
            return messages[i].content, system, history
    raise InvalidRequestError("a pipeline needs a user message with the question", param="messages")


class PipelineEngine:
    def __init__(self, plan: PipelinePlan, tracer: trace.Tracer) -> None:
        self.plan = plan
        self.tracer = tracer
        inner = plan.engine.info
        self._info = ModelInfo(
            id=plan.model_id,
            context_length=inner.context_length,
            digest=plan.composition_digest,
            structured_output=inner.structured_output,
            metadata={"model": inner.id},
        )
        self._count = token_counter(plan.engine)

    @property
    def info(self) -> ModelInfo:
        return self._info

    async def start(self) -> None:
        """The model's engine is started by whoever built it."""

    async def aclose(self) -> None:
        """Nothing of its own to release: engines and retrievers are shared."""

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        return self._run(request)

    def _prompt(
        self,
        question: str,
        history: list[ChatMessage],
        hits: list[SearchHit],
        reserve: int,
        turns: int,
        extra: Mapping[str, Any],
    ) -> tuple[str, list[SearchHit]]:
        """Render with as many documents as fit the token budget (trimmed, never an error)."""
        count, prompt = self._count, self.plan.prompt
        values: dict[str, Any] = {
            **extra,
            "question": question,
            "documents": [],
            "history": _history(history),
        }
        limit = max_prompt_chars(self.info.context_length)
        base = prompt.render(values, limit)
        history_tokens = 0 if "history" in prompt.variables else sum(count(m.content) for m in history)
        budget = available_for_documents(
            self.info.context_length, reserve, count(base) + history_tokens, turns
        )
        fitted = fit_documents(
            [h.text for h in hits], budget, count, [count(h.title) + count(h.source) for h in hits]
        )
        ceiling = count(base) + budget
        while True:
            values["documents"] = [document_value(hits[f.index], f.text) for f in fitted]
            text = prompt.render(values, limit)
            # A template may repeat documents; then drop the lowest ranked until the whole fits.
            if not fitted or count(text) <= ceiling:
                return text, [hits[f.index] for f in fitted]
            fitted = fitted[:-1]

    async def _run(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        plan = self.plan
        messages = list(request.messages or ())
        if request.prompt is not None:
            messages.append(ChatMessage(role="user", content=request.prompt))
        question, system, history = split_question(messages)
        options = request_options(request)
        settings = plan.retrieval.with_overrides(options)
        variables = options.get("variables") or {}
        if not isinstance(variables, Mapping):
            raise InvalidRequestError("aihub.variables must be an object", param="aihub.variables")
        hits = await retrieve(self.tracer, plan.retrievers, question, settings) if plan.retrievers else []
        params = merge_params(request.params, plan.generation)
        reserve = params.max_tokens or min(DEFAULT_COMPLETION_RESERVE, self.info.context_length // 4)
        with tracing.stage(self.tracer, "render", **{tracing.PROMPT_DIGEST: plan.prompt.digest}) as span:
            # Rendering and token counting are CPU work (a long prompt, a slow template): off the loop.
            rendered, shown = await asyncio.to_thread(
                self._prompt, question, history, hits, reserve, len(messages), variables
            )
            tracing.set_attributes(
                span,
                {
                    tracing.DOC_IDS: [h.doc_id for h in shown],
                    "aihub.render.documents_dropped": len(hits) - len(shown),
                    "aihub.render.estimated_tokens": self._count(rendered),
                },
            )
        turns = [*system] if "history" in plan.prompt.variables else [*system, *history]
        generation = GenerationRequest(
            request_id=request.request_id,
            params=params,
            messages=(*turns, ChatMessage(role="user", content=rendered)),
            final_only=request.final_only,
            json_schema=request.json_schema,
        )
        stream = tracing.traced_generation(
            self.tracer,
            plan.engine.generate(generation),
            {
                tracing.REQUEST_MODEL: plan.engine.info.id,
                tracing.ARTIFACT_DIGEST: plan.engine.info.digest,
                tracing.COMPOSITION_DIGEST: plan.composition_digest,
            },
        )
        async with aclosing(stream):
            first = await anext(stream, None)
            citations = tuple(citation(h) for h in shown)
            yield replace(first or GenerationChunk(text="", finish_reason="stop"), citations=citations)
            if first is None or first.finish_reason is not None:
                return
            async for chunk in stream:
                yield chunk


def _history(messages: list[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]
