"""Tracing: stage spans of a pipeline request with digests, document ids and token counts."""

from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from gateway import tracing
from gateway.composition import CompositionResolver
from gateway.tracing import TracingMiddleware, TracingSettings, build_tracer_provider
from tests.gateway import composition_doubles as D


def test_exporter_none_builds_no_provider() -> None:
    assert build_tracer_provider(TracingSettings()) is None
    assert build_tracer_provider(TracingSettings(exporter="console")) is not None


async def test_a_pipeline_request_is_one_trace_with_stage_spans(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(TracingSettings(), exporter=exporter)
    tracer = provider.get_tracer("test")
    hub = D.make_hub(tmp_path, ["Bologna."])
    D.push_pipeline(hub)
    resolver = CompositionResolver(hub.services, tracer=tracer)
    request = GenerationRequest(
        request_id="t",
        params=SamplingParams(),
        messages=(ChatMessage(role="user", content="Leonardo hosted where?"),),
    )
    with tracer.start_as_current_span("POST /v1/chat/completions"):
        target = await resolver.resolve("rag/support")
        chunks: list[Any] = [c async for c in target.engine.generate(request)]
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) >= {"aihub.resolve", "aihub.retrieve", "aihub.render", "aihub.generate"}
    root = spans["POST /v1/chat/completions"]
    for name in ("aihub.resolve", "aihub.retrieve", "aihub.render", "aihub.generate"):
        assert spans[name].context.trace_id == root.context.trace_id
        assert spans[name].parent.span_id == root.context.span_id
    digest = target.headers["x-aihub-composition"]
    assert spans["aihub.resolve"].attributes[tracing.COMPOSITION_DIGEST] == digest
    assert spans["aihub.retrieve"].attributes[tracing.INDEX_DIGESTS] == (hub.index_digest,)
    assert spans["aihub.retrieve"].attributes[tracing.DOC_IDS][0] == "d1"
    assert spans["aihub.render"].attributes[tracing.PROMPT_DIGEST].startswith("sha256:")
    generate = spans["aihub.generate"].attributes
    assert generate[tracing.ARTIFACT_DIGEST] == hub.model_digest
    assert generate[tracing.INPUT_TOKENS] == chunks[-1].prompt_tokens > 0
    assert generate[tracing.OUTPUT_TOKENS] == 2


async def test_middleware_makes_each_http_request_a_server_span() -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(TracingSettings(), exporter=exporter)

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi", status_code=503)

    app = Starlette(routes=[Route("/v1/x", hello)])
    app.add_middleware(TracingMiddleware, tracer=provider.get_tracer("test"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        assert (await client.get("/v1/x")).status_code == 503
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /v1/x"
    assert span.attributes["http.response.status_code"] == 503
    assert not span.status.is_ok
