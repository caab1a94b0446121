"""``/v1/responses`` through the real app and uvicorn, driven by the official OpenAI client: stored
responses (the real SQLite store), previous_response_id, file_search over a hub index, function tools,
rag/ models, streaming, and OpenAI's errors. Every body is checked against OpenAI's own schemas."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from core.chat import GenerationChunk, GenerationRequest, ModelInfo, ToolCall
from core.errors import ArtifactNotFoundError, EngineError
from core.refs import ArtifactRef
from core.tenancy import Principal
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tenancy.database import Database
from tenancy.response_store import SqlResponseStore
from tests.gateway import composition_doubles as D
from tests.support.openai_spec import SpecValidator
from tests.support.server_thread import ServerThread

ANSWER = "Leonardo is hosted in Bologna [1]."
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


class ToolCallingDouble:
    """Calls ``get_weather`` when offered tools and no tool result is in the conversation yet; then
    answers with the tool result it read."""

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []
        self._info = ModelInfo(id="tooler", context_length=4096)

    @property
    def info(self) -> ModelInfo:
        return self._info

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.requests.append(request)
        results = [m.content for m in request.messages or () if m.role == "tool"]
        if request.tools and not results:
            call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Bologna"}')
            yield GenerationChunk(text="", finish_reason="stop", prompt_tokens=7, tool_calls=(call,))
            return
        yield GenerationChunk(
            text=f"It is {results[-1] if results else 'unknown'}.",
            finish_reason="stop",
            prompt_tokens=9,
            completion_tokens=3,
        )


class ProviderWithMisses(D.IndexProviderDouble):
    async def open(self, ref: str) -> D.KeywordRetrieverDouble:
        digest = ArtifactRef.parse(ref).digest
        if digest not in self.by_digest:
            raise ArtifactNotFoundError(f"no index {ref}")
        return await super().open(ref)


class ProjectKeys:
    """Tokens ``key-<project>`` are callers of that project (the real tenancy middleware asks it)."""

    async def authenticate(self, token: str) -> Principal | None:
        return Principal(project=token[4:], key_id=token) if token.startswith("key-") else None


@dataclass
class Served:
    url: str
    hub: D.Hub
    tooler: ToolCallingDouble
    store_ref: str

    def client(self, key: str = "key-alpha") -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, scripted: Any) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("responses")
    hub = D.make_hub(root, [ANSWER])
    D.push_pipeline(hub)
    tooler = ToolCallingDouble()
    flaky = scripted("flaky", ["It ", "was ", "cut"], fail_mid=EngineError("the engine died"), fail_after=1)
    hub.services.engines = {**hub.services.engines, "tooler": tooler, "flaky": flaky}
    hub.services.indexes = ProviderWithMisses(hub.provider.by_digest)
    hub.services.responses = SqlResponseStore(
        Database(f"sqlite:///{root / 'gateway.db'}"), max_row_bytes=64_000
    )
    hub.services.authenticator = ProjectKeys()
    app = create_app(GatewaySettings(), hub.services)
    with ServerThread(app) as url:
        yield Served(url, hub, tooler, f"indexes/kb@{hub.index_digest}")


def test_create_retrieve_list_input_items_delete(served: Served, spec: SpecValidator) -> None:
    client = served.client()
    response = client.responses.create(
        model="tiny",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Where is Leonardo?"}]}],
        instructions="Answer briefly.",
        metadata={"ticket": "42"},
        max_output_tokens=64,
    )
    body = response.model_dump(mode="json", exclude_unset=True)
    spec.check("Response", body)
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.output_text == ANSWER
    assert response.metadata == {"ticket": "42"} and response.instructions == "Answer briefly."
    assert response.store is True and response.max_output_tokens == 64
    assert response.usage is not None and response.usage.output_tokens == 2
    assert response.usage.total_tokens == response.usage.input_tokens + 2
    request = served.hub.engine.requests[-1]
    assert [m.role for m in request.messages or ()] == ["system", "user"]
    assert request.messages is not None and request.messages[0].content == "Answer briefly."
    assert request.params.max_tokens == 64

    again = client.responses.retrieve(response.id)
    assert again.model_dump(mode="json", exclude_unset=True) == body
    items = client.responses.input_items.list(response.id)
    spec.check("ResponseItemList", {"object": "list", **items.model_dump(mode="json", exclude_unset=True)})
    (item,) = items.data
    assert item.type == "message" and item.role == "user"
    assert item.content[0].text == "Where is Leonardo?"  # type: ignore[union-attr]

    with pytest.raises(openai.NotFoundError):  # another project's response does not exist for it
        served.client("key-beta").responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        served.client("key-beta").responses.delete(response.id)
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(response.id)
    assert gone.value.code == "response_not_found"


def test_previous_response_id_continues_the_conversation(served: Served) -> None:
    client = served.client()
    first = client.responses.create(model="tiny", input="Where is Leonardo?", instructions="Be brief.")
    second = client.responses.create(model="tiny", input="And LUMI?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    messages = served.hub.engine.requests[-1].messages or ()
    # Instructions are not carried over; the earlier turn and its answer are.
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Where is Leonardo?"),
        ("assistant", ANSWER),
        ("user", "And LUMI?"),
    ]
    unstored = client.responses.create(model="tiny", input="hi", store=False)
    assert unstored.store is False
    for missing in ("resp_nope", unstored.id):
        with pytest.raises(openai.NotFoundError) as not_found:
            client.responses.create(model="tiny", input="x", previous_response_id=missing)
        assert not_found.value.param == "previous_response_id"
    with pytest.raises(openai.NotFoundError):  # scoped to the project
        served.client("key-beta").responses.create(model="tiny", input="x", previous_response_id=first.id)


def test_file_search_results_and_citations(served: Served, spec: SpecValidator) -> None:
    client = served.client()
    response = client.responses.create(
        model="tiny",
        input="Where is the Leonardo supercomputer hosted?",
        tools=[{"type": "file_search", "vector_store_ids": [served.store_ref], "max_num_results": 2}],
        include=["file_search_call.results"],
    )
    spec.check("Response", response.model_dump(mode="json", exclude_unset=True))
    search, message = response.output
    assert search.type == "file_search_call" and search.status == "completed"
    assert search.queries == ["Where is the Leonardo supercomputer hosted?"]
    assert search.results is not None and search.results[0].file_id == "d1"
    assert search.results[0].filename == "Leonardo" and len(search.results) <= 2
    assert message.type == "message"
    (citation,) = message.content[0].annotations  # type: ignore[union-attr]
    assert citation.type == "file_citation" and citation.file_id == "d1" and citation.filename == "Leonardo"
    assert citation.index == ANSWER.index("[1]") + 3  # type: ignore[union-attr]
    system = (served.hub.engine.requests[-1].messages or ())[0]
    assert system.role == "system" and "[1] Leonardo\nLeonardo is the EuroHPC" in system.content

    without = client.responses.create(
        model="tiny",
        input="Leonardo?",
        tools=[{"type": "file_search", "vector_store_ids": [served.store_ref]}],
    )
    assert without.output[0].results is None  # type: ignore[union-attr]  # not asked for with include


def test_streaming_events_in_order(served: Served, spec: SpecValidator) -> None:
    client = served.client()
    tools: Any = [{"type": "file_search", "vector_store_ids": [served.store_ref]}]
    with client.responses.stream(model="tiny", input="Where is Leonardo hosted?", tools=tools) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text == ANSWER and final.status == "completed"
    stored = client.responses.retrieve(final.id)
    assert stored.output_text == ANSWER and stored.usage == final.usage

    # The wire itself: every event valid against OpenAI's schema, numbered from 0 without gaps.
    raw = httpx.post(
        f"{served.url}/v1/responses",
        json={"model": "tiny", "input": "Leonardo?", "tools": tools, "stream": True},
        headers={"authorization": "Bearer key-alpha"},
        timeout=30,
    )
    events = [json.loads(line[6:]) for line in raw.text.splitlines() if line.startswith("data: ")]
    names = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert names == [e["type"] for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        spec.check("ResponseStreamEvent", event)


async def test_async_client_create_with_stream_true(served: Served) -> None:
    async with openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="key-alpha", max_retries=0) as client:
        stream = await client.responses.create(model="tiny", input="Where is Leonardo?", stream=True)
        events = [event async for event in stream]
        assert [e.type for e in events][:2] == ["response.created", "response.in_progress"]
        done = events[-1]
        assert done.type == "response.completed" and done.response.output_text == ANSWER
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == ANSWER
        stored = await client.responses.retrieve(done.response.id)
        assert stored.output_text == ANSWER


def test_function_tools_round_trip(served: Served, spec: SpecValidator) -> None:
    client = served.client()
    response = client.responses.create(model="tooler", input="Weather in Bologna?", tools=[WEATHER])
    spec.check("Response", response.model_dump(mode="json", exclude_unset=True))
    (call,) = response.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Bologna"} and call.call_id == "call_1"
    offered = served.tooler.requests[-1].tools
    assert offered[0]["function"]["name"] == "get_weather"  # the chat shape engines read

    follow = client.responses.create(
        model="tooler",
        previous_response_id=response.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],
    )
    assert follow.output_text == "It is sunny."
    listed = client.responses.input_items.list(follow.id).model_dump(mode="json", exclude_unset=True)
    spec.check("ResponseItemList", {"object": "list", **listed})
    assert [(i["type"], i["call_id"], i["output"]) for i in listed["data"]] == [
        ("function_call_output", "call_1", "sunny")
    ]
    messages = served.tooler.requests[-1].messages or ()
    assert [m.role for m in messages] == ["user", "assistant", "tool"]
    assert messages[1].tool_calls[0].name == "get_weather" and messages[2].tool_call_id == "call_1"

    with client.responses.stream(model="tooler", input="Weather?", tools=[WEATHER]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[2:6] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert final.output[0].type == "function_call" and final.output[0].arguments == '{"city": "Bologna"}'


def test_rag_model_reports_its_composition(served: Served, spec: SpecValidator) -> None:
    raw = served.client().responses.with_raw_response.create(model="rag/support", input="Where is LUMI?")
    response = raw.parse()
    spec.check("Response", response.model_dump(mode="json", exclude_unset=True))
    digest = raw.headers["x-aihub-composition"]
    assert digest.startswith("sha256:") and response.model_extra is not None
    assert response.model_extra["composition"] == digest and response.model == "rag/support"
    assert response.output_text == ANSWER


def test_a_failure_mid_stream_is_an_error_event_then_response_failed(
    served: Served, spec: SpecValidator
) -> None:
    raw = httpx.post(
        f"{served.url}/v1/responses",
        json={"model": "flaky", "input": "go", "stream": True},
        headers={"authorization": "Bearer key-alpha"},
        timeout=30,
    )
    events = [json.loads(line[6:]) for line in raw.text.splitlines() if line.startswith("data: {")]
    assert [e["type"] for e in events][-4:] == [
        "response.content_part.added",
        "response.output_text.delta",
        "error",
        "response.failed",
    ]
    for event in events:
        spec.check("ResponseStreamEvent", event)
    assert events[-2]["message"] == "the engine died"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    with pytest.raises(openai.NotFoundError):  # a failed response is not stored
        served.client().responses.retrieve(failed["id"])
    with served.client().responses.stream(model="flaky", input="go") as stream:
        kinds = [event.type for event in stream]
    assert kinds[-2:] == ["error", "response.failed"]


def _error(served: Served, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    reply = httpx.post(
        f"{served.url}/v1/responses", json=body, headers={"authorization": "Bearer key-alpha"}, timeout=30
    )
    return reply.status_code, reply.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (
            {"tools": [{"type": "file_search", "vector_store_ids": ["indexes/none@sha256:" + "1" * 64]}]},
            404,
            "tools",
        ),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_unknown"]}]}, 404, "tools"),
        ({"tools": [{"type": "function"}]}, 400, "tools[0].name"),
        (
            {"tools": [{"type": "function", "name": "f", "parameters": {"type": "array"}}]},
            400,
            "tools[0].parameters",
        ),
        ({"tools": [{"type": "web_search"}]}, 400, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["a"]}] * 2}, 400, "tools"),
        ({"tool_choice": {"type": "function", "name": "f"}}, 400, "tool_choice"),
        ({"background": True}, 400, "background"),
        ({"include": ["message.output_text.logprobs"]}, 400, "include[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            400,
            "input[0].content[0].type",
        ),
        ({"input": [{"type": "item_reference", "id": "x"}]}, 400, "input[0].type"),
        ({"max_output_tokens": 4}, 400, "max_output_tokens"),
        ({"model": "nope"}, 404, "model"),
        ({"text": {"format": {"type": "json_object"}}}, 400, "text.format"),
        ({"truncation": "auto"}, 400, "truncation"),
        ({"metadata": {str(i): "v" for i in range(17)}}, 400, "metadata"),
    ],
)
def test_bad_input_gets_openai_errors(
    served: Served, spec: SpecValidator, body: dict[str, Any], status: int, param: str
) -> None:
    code, error = _error(served, {"model": "tiny", "input": "Leonardo?", **body})
    assert (code, error["param"]) == (status, param), error
    spec.check("Error", error)


def test_unsupported_content_through_the_client(served: Served) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        served.client().responses.create(
            model="tiny", input="x", tools=[{"type": "file_search", "vector_store_ids": ["vs_gone"]}]
        )
    assert missing.value.code == "vector_store_not_found"


def test_a_row_over_the_cap_is_not_stored(served: Served) -> None:
    client = served.client()
    response = client.responses.create(model="tooler", input="word " * 14_000)  # 70 kB > the 64 kB cap
    assert response.output_text == "It is unknown." and response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_without_a_store_nothing_is_stored(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["ok"])
    with ServerThread(create_app(GatewaySettings(), hub.services)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        response = client.responses.create(model="tiny", input="hi")
        assert response.output_text == "ok" and response.store is False
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(response.id)
