"""The agent loop: generate with tools → run the gateway's own tools → … → answer or hand tool calls back.

Built-in tools (``search`` over a hub index) run here. Calls of the client's OpenAI ``tools`` (and of
any non-search tool the agent declares) end the turn with ``finish_reason="tool_calls"``; the client
runs them and continues the conversation with ``tool`` messages, which re-enter the loop. Tool calls
and results are written in the Hermes format (``gateway.tool_calls``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry import trace

from core.chat import (
    ChatMessage,
    Citation,
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    ModelInfo,
    ToolCall,
)
from core.engine import Engine
from core.errors import InvalidRequestError
from core.retrieval import Retriever
from gateway import tracing
from gateway.retrieval_step import RetrievalSettings, citation, retrieve
from gateway.tool_calls import (
    as_hermes_messages,
    decode_tool_call,
    format_tool_call,
    parse_tool_calls,
    tool_call_schema,
    tools_system_prompt,
)

logger = logging.getLogger(__name__)

TOOL_RESULT_CHARS = 600  # per document returned by a search tool: keeps the loop inside the context
SEARCH_PARAMETERS: Mapping[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "What to search for."}},
    "required": ["query"],
}


@dataclass(frozen=True)
class SearchTool:
    """A built-in tool that searches one hub index."""

    name: str
    description: str
    retriever: Retriever
    top_k: int = 4
    parameters: Mapping[str, Any] = field(default_factory=lambda: dict(SEARCH_PARAMETERS))

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description or "Search the document index; returns the best passages.",
                "parameters": dict(self.parameters),
            },
        }


@dataclass(frozen=True)
class AgentPlan:
    model_id: str  # e.g. "agent/helpdesk"
    composition_digest: str
    engine: Engine
    system_prompt: str
    search_tools: tuple[SearchTool, ...]
    max_steps: int
    client_tools: tuple[Mapping[str, Any], ...] = ()  # OpenAI tool schemas the agent declares, run by clients
    tool_choice: Literal["auto", "required"] = "auto"  # required: step 0 is held to a tool call


@dataclass
class _Turn:
    """What the loop has gathered so far."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    citations: list[Citation] = field(default_factory=list)


def _tool_name(schema: Mapping[str, Any]) -> str:
    return str((schema.get("function") or {}).get("name", ""))


class AgentEngine:
    def __init__(self, plan: AgentPlan, tracer: trace.Tracer) -> None:
        self.plan = plan
        self.tracer = tracer
        inner = plan.engine.info
        self._info = ModelInfo(
            id=plan.model_id,
            context_length=inner.context_length,
            digest=plan.composition_digest,
            metadata={"model": inner.id},
        )
        self._search = {tool.name: tool for tool in plan.search_tools}

    @property
    def info(self) -> ModelInfo:
        return self._info

    async def start(self) -> None:
        """The model's engine is started by whoever built it."""

    async def aclose(self) -> None:
        """Nothing of its own to release."""

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        return self._run(request)

    def _conversation(
        self, request: GenerationRequest, tools: Sequence[Mapping[str, Any]]
    ) -> list[ChatMessage]:
        messages = list(request.messages or ())
        if request.prompt is not None:
            messages.append(ChatMessage(role="user", content=request.prompt))
        system_parts = [self.plan.system_prompt] if self.plan.system_prompt else []
        system_parts += [m.content for m in messages if m.role in ("system", "developer") and m.content]
        if tools:
            system_parts.append(tools_system_prompt(tools))
        rest = [m for m in messages if m.role not in ("system", "developer")]
        head = [ChatMessage(role="system", content="\n\n".join(system_parts))] if system_parts else []
        return head + as_hermes_messages(rest)

    async def _generate(
        self,
        messages: list[ChatMessage],
        request: GenerationRequest,
        step: int,
        json_schema: Mapping[str, Any] | None,
    ) -> tuple[str, str | None, int, int]:
        # Each step's output is parsed whole (for tool calls), so it is asked for whole.
        generation = GenerationRequest(
            request_id=f"{request.request_id}-{step}",
            params=request.params,
            messages=tuple(messages),
            final_only=True,
            json_schema=json_schema,
        )
        attributes = {
            tracing.REQUEST_MODEL: self.plan.engine.info.id,
            tracing.ARTIFACT_DIGEST: self.plan.engine.info.digest,
            tracing.COMPOSITION_DIGEST: self.plan.composition_digest,
            "aihub.agent.step": step,
        }
        parts: list[str] = []
        last: GenerationChunk | None = None
        stream = tracing.traced_generation(self.tracer, self.plan.engine.generate(generation), attributes)
        async with aclosing(stream):
            async for chunk in stream:
                parts.append(chunk.text)
                last = chunk
        if last is None:
            return "", "stop", 0, 0
        return "".join(parts), last.finish_reason, last.prompt_tokens, last.completion_tokens

    async def _run_tool(self, call: ToolCall, turn: _Turn) -> str:
        with tracing.stage(self.tracer, "tool", **{"aihub.tool.name": call.name}) as span:
            tool = self._search.get(call.name)
            if tool is None:
                return json.dumps({"error": f"unknown tool {call.name!r}"})
            try:
                arguments = json.loads(call.arguments or "{}")
            except json.JSONDecodeError:
                arguments = None
            query = arguments.get("query") if isinstance(arguments, dict) else None
            if not isinstance(query, str) or not query.strip():
                return json.dumps({"error": "arguments must be an object with a non-empty 'query' string"})
            hits = await retrieve(self.tracer, [tool.retriever], query, RetrievalSettings(top_k=tool.top_k))
            tracing.set_attributes(span, {tracing.DOC_IDS: [h.doc_id for h in hits]})
            turn.citations.extend(citation(h) for h in hits)
            return json.dumps(
                [
                    {
                        "doc_id": h.doc_id,
                        "title": h.title,
                        "source": h.source,
                        "text": h.text[:TOOL_RESULT_CHARS],
                    }
                    for h in hits
                ],
                ensure_ascii=False,
            )

    def _final(
        self, turn: _Turn, text: str, finish: FinishReason, calls: tuple[ToolCall, ...] = ()
    ) -> GenerationChunk:
        unique = {(c.doc_id, c.chunk_id): c for c in turn.citations}
        return GenerationChunk(
            text=text,
            finish_reason=finish,
            prompt_tokens=turn.prompt_tokens,
            completion_tokens=turn.completion_tokens,
            citations=tuple(unique.values()),
            tool_calls=calls,
        )

    async def _run(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        plan = self.plan
        if request.json_schema is not None:
            raise InvalidRequestError(
                "agents answer in text and tool calls; response_format is not supported by agent/ models",
                param="response_format",
                code="unsupported_value",
            )
        client_tools = [*plan.client_tools, *(t for t in request.tools if t.get("type") == "function")]
        client_names = {_tool_name(t) for t in client_tools}
        schemas = [tool.schema() for tool in plan.search_tools] + client_tools
        conversation = self._conversation(request, schemas)
        turn = _Turn()
        content = ""
        for step in range(plan.max_steps):
            forced = tool_call_schema(schemas) if step == 0 and plan.tool_choice == "required" else None
            text, finish, prompt_tokens, completion_tokens = await self._generate(
                conversation, request, step, forced
            )
            turn.prompt_tokens += prompt_tokens
            turn.completion_tokens += completion_tokens
            call = decode_tool_call(text) if forced is not None else None
            if call is not None:  # constrained output is the bare call; the history keeps Hermes tags
                text = format_tool_call(call)
            parsed = parse_tool_calls(text)
            content = parsed.content
            if not parsed.tool_calls:
                yield self._final(turn, content, "length" if finish == "length" else "stop")
                return
            handed_back = tuple(c for c in parsed.tool_calls if c.name in client_names)
            if handed_back:
                # Calls of built-in tools in the same turn are dropped: the client's continuation
                # carries only the calls it was shown.
                yield self._final(turn, content, "tool_calls", handed_back)
                return
            if step == plan.max_steps - 1:
                break
            conversation.append(ChatMessage(role="assistant", content=text))
            results = [await self._run_tool(call, turn) for call in parsed.tool_calls]
            body = "\n".join(f"<tool_response>\n{r}\n</tool_response>" for r in results)
            conversation.append(ChatMessage(role="user", content=body))
        logger.info("agent %s stopped after max_steps=%d", plan.model_id, plan.max_steps)
        yield self._final(turn, content, "length")
