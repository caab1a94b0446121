"""aihub's extensions to the chat protocol: citations, tool calls from compositions, the `aihub` options."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

from fastapi.testclient import TestClient

from core.chat import Citation, GenerationChunk, GenerationRequest, ModelInfo, ToolCall
from gateway.app import create_app
from gateway.catalog import CatalogEntry, Target
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings

SOURCE = Citation(doc_id="d1", chunk_id="d1#0", source="a.txt", title="Doc", score=0.9, snippet="Bologna")
CITATION = {
    "doc_id": "d1",
    "chunk_id": "d1#0",
    "source": "a.txt",
    "title": "Doc",
    "score": 0.9,
    "snippet": "Bologna",
}


class CompositionEngineDouble:
    """Stands in for a pipeline/agent engine: citations on the first chunk, tool calls on the last."""

    def __init__(self, *, call_tool: bool) -> None:
        self.call_tool = call_tool
        self.requests: list[GenerationRequest] = []

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(id="rag/support", context_length=2048)

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.requests.append(request)
        return self._run()

    async def _run(self) -> AsyncGenerator[GenerationChunk, None]:
        yield GenerationChunk(text="" if self.call_tool else "Bologna", citations=(SOURCE,))
        calls = (ToolCall(id="call_1", name="lookup", arguments='{"q": "x"}'),) if self.call_tool else ()
        yield GenerationChunk(
            text="", finish_reason="stop", prompt_tokens=4, completion_tokens=2, tool_calls=calls
        )


def _client(make_app, engine):
    return TestClient(make_app(engine), raise_server_exceptions=False)


BODY = {"model": "rag/support", "messages": [{"role": "user", "content": "where?"}], "aihub": {"top_k": 3}}


def test_citations_ride_on_the_answer_and_the_first_stream_chunk(make_app, spec, parse_sse):
    engine = CompositionEngineDouble(call_tool=False)
    with _client(make_app, engine) as client:
        body = client.post("/v1/chat/completions", json=BODY).json()
        spec.check("CreateChatCompletionResponse", body)
        assert body["citations"] == [CITATION]
        assert body["choices"][0]["message"]["content"] == "Bologna"
        assert engine.requests[-1].options == {"top_k": 3}  # type: ignore[attr-defined]
        response = client.post("/v1/chat/completions", json={**BODY, "stream": True})
        chunks = [json.loads(p) for p in parse_sse(response.text)[:-1]]
        for chunk in chunks:
            spec.check("CreateChatCompletionStreamResponse", chunk)
        assert chunks[0]["citations"] == [CITATION]
        assert sum("citations" in c for c in chunks) == 1


def test_tool_calls_come_back_in_openai_shape(make_app, spec, parse_sse):
    with _client(make_app, CompositionEngineDouble(call_tool=True)) as client:
        body = client.post("/v1/chat/completions", json=BODY).json()
        spec.check("CreateChatCompletionResponse", body)
        choice = body["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"]["content"] is None
        assert choice["message"]["tool_calls"] == [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
        ]
        response = client.post("/v1/chat/completions", json={**BODY, "stream": True})
        chunks = [json.loads(p) for p in parse_sse(response.text)[:-1]]
        for chunk in chunks:
            spec.check("CreateChatCompletionStreamResponse", chunk)
        finals = [c for c in chunks if c["choices"][0]["finish_reason"]]
        assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "tool_calls"
        assert finals[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
        assert finals[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "lookup"


def test_aihub_options_must_be_an_object(make_app, spec):
    with _client(make_app, CompositionEngineDouble(call_tool=False)) as client:
        response = client.post("/v1/chat/completions", json={**BODY, "aihub": [1]})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "aihub"


class PrefixResolverDouble:
    """A catalog resolver for ``rag/…`` ids, like the hub's composition resolver."""

    def __init__(self, engine: CompositionEngineDouble) -> None:
        self.engine = engine

    async def resolve(self, model_id: str) -> Target | None:
        if not model_id.startswith("rag/"):
            return None
        return Target(
            model_id=model_id, engine=self.engine, headers={"x-aihub-composition": "sha256:" + "a" * 64}
        )

    def entries(self) -> list[CatalogEntry]:
        return [CatalogEntry("rag/support", 0, "aihub")]


def test_extra_resolvers_serve_and_list_their_ids(spec):
    engine = CompositionEngineDouble(call_tool=False)
    services = GatewayServices(resolvers=[PrefixResolverDouble(engine)])
    with TestClient(create_app(GatewaySettings(), services)) as client:
        response = client.post("/v1/chat/completions", json={**BODY, "model": "rag/support:prod"})
        assert response.status_code == 200
        assert response.headers["x-aihub-composition"] == "sha256:" + "a" * 64
        assert response.json()["model"] == "rag/support:prod"
        streamed = client.post("/v1/chat/completions", json={**BODY, "model": "rag/other", "stream": True})
        assert streamed.headers["x-aihub-composition"].startswith("sha256:")
        models = client.get("/v1/models").json()
        spec.check("ListModelsResponse", models)
        assert [m["id"] for m in models["data"]] == ["rag/support"]
        assert client.get("/v1/models/rag/support").status_code == 200
        assert client.post("/v1/chat/completions", json={**BODY, "model": "plain"}).status_code == 404
