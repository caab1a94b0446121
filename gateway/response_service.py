"""One ``/v1/responses`` request from its body to an open engine stream, and from the finished
generation to the stored response object. The route (``gateway.routers.responses``) answers with JSON
or events (``gateway.response_events``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from opentelemetry import trace

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from core.engine import check_capabilities
from core.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from core.responses import ResponseStore, StoredResponse
from core.tenancy import DEFAULT_PROJECT
from gateway import file_search, tracing
from gateway.completion_service import SESSION_HEADER, bounded
from gateway.composition import COMPOSITION_HEADER
from gateway.generation import Deadline, OpenGeneration, open_generation
from gateway.metrics import ENDPOINT_SCOPE_KEY, MODEL_SCOPE_KEY
from gateway.outcome import Outcome
from gateway.protocol.response_tools import FileSearchTool, FunctionTool, NamedTool
from gateway.protocol.responses import CreateResponseRequest
from gateway.request_body import parse_body
from gateway.response_items import input_resource, last_user_text, new_item_id, to_messages
from gateway.response_objects import (
    Draft,
    SearchCall,
    final_status,
    function_call_item,
    message_item,
    usage_wire,
)
from gateway.state import gateway_state
from gateway.tenant_auth import COMPOSITION_SCOPE_KEY, REQUEST_ID_SCOPE_KEY, check_model_scope, principal_of

logger = logging.getLogger(__name__)
ENDPOINT = "responses"


class ResponseNotFoundError(NotFoundError):
    default_code = "response_not_found"


def not_found(response_id: str) -> ResponseNotFoundError:
    return ResponseNotFoundError(f"Response with id '{response_id}' not found.")


@dataclass(slots=True)
class Prepared:
    draft: Draft
    project: str
    input_items: list[dict[str, Any]]
    history: list[Mapping[str, Any]]
    generation: OpenGeneration
    headers: dict[str, str]
    message_id: str
    buffered: bool  # function tools offered: the answer is parsed whole before it is streamed
    store: ResponseStore | None


def project_of(request: Request) -> str:
    principal = principal_of(request.scope)
    return principal.project if principal is not None else DEFAULT_PROJECT


def response_store(request: Request) -> ResponseStore | None:
    return gateway_state(request).services.responses


async def prepare(request: Request) -> Prepared:
    """Parse, continue the conversation, search, resolve the model, and pull the first chunk (input
    errors, an unknown previous response or vector store, get their status before anything is sent)."""
    scope = request.scope
    scope[ENDPOINT_SCOPE_KEY] = ENDPOINT
    body = await parse_body(request, CreateResponseRequest)
    body.check_supported()
    tools = body.parsed_tools()
    items = [input_resource(item) for item in body.parsed_input()]
    state = gateway_state(request)
    store = state.services.responses
    project = project_of(request)
    history: list[Mapping[str, Any]] = []
    if body.previous_response_id is not None:
        previous = (
            None if store is None else await asyncio.to_thread(store.get, project, body.previous_response_id)
        )
        if previous is None:
            raise ResponseNotFoundError(
                f"Previous response with id '{body.previous_response_id}' not found.",
                param="previous_response_id",
            )
        history = [*previous.history, *previous.input_items, *previous.response.get("output", ())]
    deadline = Deadline.after(state.settings.request_timeout_s)
    principal = principal_of(scope)
    if principal is not None:
        check_model_scope(principal, *state.catalog.names_for_scope(body.model))
    target = await state.catalog.resolve(body.model)
    composition = target.headers.get(COMPOSITION_HEADER)
    if principal is not None:
        scope[COMPOSITION_SCOPE_KEY] = composition
    scope[MODEL_SCOPE_KEY] = target.model_id
    draft = Draft(
        new_item_id("resp"),
        target.model_id,
        body,
        tools,
        store=body.stores and store is not None,
        composition=composition,
    )
    scope[REQUEST_ID_SCOPE_KEY] = draft.id
    system = [body.instructions] if body.instructions else []
    search_tool = next((t for t in tools if isinstance(t, FileSearchTool)), None)
    if search_tool is not None and body.tool_choice != "none":
        query = last_user_text(items) or last_user_text(history)
        if not query:
            raise InvalidRequestError("file_search needs a user message to search for.", param="input")
        tracer = trace.get_tracer(tracing.TRACER_NAME)
        results = await file_search.search(state, project, search_tool, query, tracer)
        include = "file_search_call.results" in (body.include or ())
        draft.search = SearchCall(new_item_id("fs"), query, results, include)
        system.append(file_search.context_text(results))
    messages = [ChatMessage(role="system", content="\n\n".join(system))] if system else []
    messages += to_messages([*history, *items])
    offered = _function_tools(body, tools)
    generation_request = GenerationRequest(
        draft.id,
        SamplingParams(
            max_tokens=body.max_output_tokens,
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
        ),
        messages=tuple(messages),
        tools=tuple(offered),
        final_only=not body.stream,
        json_schema=body.json_schema(),
        options=body.aihub or {},
        session=request.headers.get(SESSION_HEADER) or body.user,
    )
    bounds = state.settings.max_tokens.get(target.model_id)
    if bounds is not None:
        try:
            generation_request = bounded(generation_request, bounds)
        except InvalidRequestError as exc:
            exc.param = "max_output_tokens"
            raise
    try:
        check_capabilities(target.engine.info, generation_request)
    except InvalidRequestError as exc:  # named as this endpoint names it
        exc.param = "text.format" if exc.param == "response_format" else exc.param
        raise
    generation = await open_generation(
        target.engine, generation_request, target.model_id, ENDPOINT, state.metrics, scope, deadline
    )
    return Prepared(
        draft=draft,
        project=project,
        input_items=items,
        history=history,
        generation=generation,
        headers=dict(target.headers),
        message_id=new_item_id("msg"),
        buffered=bool(offered),
        store=store,
    )


def _function_tools(body: CreateResponseRequest, tools: list[Any]) -> list[dict[str, Any]]:
    if body.tool_choice == "none":
        return []
    functions = [t for t in tools if isinstance(t, FunctionTool)]
    choice = body.tool_choice
    if isinstance(choice, NamedTool) and choice.type == "function":
        functions = [t for t in functions if t.name == choice.name]
    return [t.as_chat_tool() for t in functions]


def output_items(prepared: Prepared, outcome: Outcome) -> list[dict[str, Any]]:
    draft = prepared.draft
    status, _ = final_status(outcome)
    output: list[dict[str, Any]] = []
    if draft.search is not None:
        output.append(draft.search.item())
    if outcome.text or not outcome.tool_calls:
        cited = file_search.file_citations(outcome.text, draft.search.results) if draft.search else []
        output.append(message_item(prepared.message_id, outcome.text, cited, status))
    output.extend(function_call_item(new_item_id("fc"), call) for call in outcome.tool_calls)
    return output


async def finish(
    prepared: Prepared, outcome: Outcome, output: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The final response object; stored when asked (a row over the size cap is not stored, and the
    object says ``store: false``)."""
    draft = prepared.draft
    status, incomplete = final_status(outcome)
    items = output if output is not None else output_items(prepared, outcome)
    payload = draft.object(
        status, items, usage_wire(outcome.prompt_tokens, outcome.completion_tokens), incomplete=incomplete
    )
    if draft.store and prepared.store is not None:
        row = StoredResponse(
            id=draft.id,
            project=prepared.project,
            created_at=float(draft.created_at),
            response=payload,
            input_items=prepared.input_items,
            history=prepared.history,
        )
        try:
            await asyncio.to_thread(prepared.store.put, row)
        except PayloadTooLargeError as exc:
            logger.warning("response %s not stored: %s", draft.id, exc.message)
            payload["store"] = False
    return payload
