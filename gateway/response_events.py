"""The event stream of ``POST /v1/responses`` with ``stream: true`` (OpenAI's ResponseStreamEvent types,
in OpenAI's order, each with its ``sequence_number``).

``response.created`` and ``response.in_progress``; the ``file_search_call`` item (searched already, so
its in_progress / searching / completed events come at once); the message item with its text deltas;
then ``response.completed`` (``response.incomplete`` when cut at max_output_tokens). With function
tools offered, the answer is parsed whole first (a tool call is only known at its end) and then sent
as the same events, arguments in one delta. A failure after the head went out is an ``error`` event,
then ``response.failed``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson

from core.chat import GenerationChunk
from core.errors import AihubError
from gateway.generation import collect
from gateway.outcome import Outcome
from gateway.response_items import output_text_part
from gateway.response_objects import message_item
from gateway.response_service import Prepared, finish, output_items
from gateway.tenant_auth import INTERRUPTED_SCOPE_KEY, STREAMED_SCOPE_KEY

logger = logging.getLogger(__name__)


class Sequencer:
    def __init__(self) -> None:
        self.number = 0

    def __call__(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, **fields, "sequence_number": self.number}
        self.number += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _text_events(event: Sequencer, item: dict[str, Any], index: int, text: str, started: bool) -> list[bytes]:
    """The events of a message item's text (from its first when not ``started``) to its done."""
    item_id = item["id"]
    part = item["content"][0]
    out = []
    if not started:
        out += _message_start(event, item_id, index)
        if text:
            out.append(_delta(event, item_id, index, text))
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    for number, annotation in enumerate(part["annotations"]):
        out.append(
            event(
                "response.output_text.annotation.added",
                **where,
                annotation_index=number,
                annotation=annotation,
            )
        )
    out.append(event("response.output_text.done", **where, text=text, logprobs=[]))
    out.append(event("response.content_part.done", **where, part=part))
    out.append(event("response.output_item.done", output_index=index, item=item))
    return out


def _message_start(event: Sequencer, item_id: str, index: int) -> list[bytes]:
    return [
        event(
            "response.output_item.added",
            output_index=index,
            item=message_item(item_id, "", [], "in_progress"),
        ),
        event(
            "response.content_part.added",
            item_id=item_id,
            output_index=index,
            content_index=0,
            part=output_text_part(""),
        ),
    ]


def _delta(event: Sequencer, item_id: str, index: int, text: str) -> bytes:
    return event(
        "response.output_text.delta",
        item_id=item_id,
        output_index=index,
        content_index=0,
        delta=text,
        logprobs=[],
    )


def _item_events(event: Sequencer, item: dict[str, Any], index: int) -> list[bytes]:
    if item["type"] == "message":
        return _text_events(event, item, index, item["content"][0]["text"], started=False)
    assert item["type"] == "function_call"
    item_id = item["id"]
    pending = {**item, "arguments": "", "status": "in_progress"}
    where = {"item_id": item_id, "output_index": index}
    return [
        event("response.output_item.added", output_index=index, item=pending),
        event("response.function_call_arguments.delta", **where, delta=item["arguments"]),
        event(
            "response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]
        ),
        event("response.output_item.done", output_index=index, item=item),
    ]


async def response_events(prepared: Prepared) -> AsyncGenerator[bytes, None]:
    event = Sequencer()
    draft = prepared.draft
    generation = prepared.generation
    generation.scope[STREAMED_SCOPE_KEY] = True
    started = draft.object("in_progress")
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    index = 0
    if draft.search is not None:
        where = {"output_index": 0, "item_id": draft.search.id}
        yield event("response.output_item.added", output_index=0, item=draft.search.item("in_progress"))
        yield event("response.file_search_call.in_progress", **where)
        yield event("response.file_search_call.searching", **where)
        yield event("response.file_search_call.completed", **where)
        yield event("response.output_item.done", output_index=0, item=draft.search.item())
        index = 1
    last: GenerationChunk | None = None
    finished = accounted = False
    try:
        if prepared.buffered:
            outcome = await collect(generation)
            output = output_items(prepared, outcome)
            for offset, item in enumerate(output[index:]):
                for data in _item_events(event, item, index + offset):
                    yield data
        else:
            parts: list[str] = []
            for data in _message_start(event, prepared.message_id, index):
                yield data
            async with aclosing(generation.chunks()) as chunks:
                async for chunk in chunks:
                    last = chunk
                    if chunk.text:
                        parts.append(chunk.text)
                        yield _delta(event, prepared.message_id, index, chunk.text)
            outcome = Outcome.of("".join(parts), last, ())
            generation.account(outcome.prompt_tokens, outcome.completion_tokens)
            accounted = True
            output = output_items(prepared, outcome)
            for data in _text_events(event, output[index], index, outcome.text, started=True):
                yield data
        payload = await finish(prepared, outcome, output)
        finished = True
        kind = "response.completed" if payload["status"] == "completed" else "response.incomplete"
        yield event(kind, response=payload)
    except AihubError as exc:
        logger.error("response failed mid-stream: %s: %s", type(exc).__name__, exc.message)
        yield event("error", code=exc.code or "server_error", message=exc.message, param=exc.param)
        yield event("response.failed", response=_failed(prepared, exc.message))
    except Exception:
        logger.exception("response failed mid-stream")
        message = "The server had an error while streaming."
        yield event("error", code="server_error", message=message, param=None)
        yield event("response.failed", response=_failed(prepared, message))
    finally:
        await generation.close()
        if not finished:
            generation.scope[INTERRUPTED_SCOPE_KEY] = True
            if last is not None and not accounted:  # the tokens made until then count
                generation.account(last.prompt_tokens, last.completion_tokens)


def _failed(prepared: Prepared, message: str) -> dict[str, Any]:
    return prepared.draft.object("failed", error={"code": "server_error", "message": message})
