"""OpenTelemetry tracing: provider setup from settings, span helpers, and a per-request root span.

Components take a ``Tracer`` (tests pass one from a provider with an in-memory exporter); the app's
tracer comes from ``setup_tracing``. Spans are named ``aihub.<stage>`` and carry artifact digests,
document ids and token counts as attributes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from starlette.types import ASGIApp, Receive, Scope, Send

    from core.chat import GenerationChunk

logger = logging.getLogger(__name__)

TRACER_NAME = "aihub.gateway"

# Attribute keys. gen_ai.* follow OpenTelemetry's GenAI semantic conventions.
COMPOSITION_DIGEST = "aihub.composition.digest"
ARTIFACT_REF = "aihub.artifact.ref"
ARTIFACT_DIGEST = "aihub.artifact.digest"
PROMPT_DIGEST = "aihub.prompt.digest"
INDEX_DIGESTS = "aihub.index.digests"
DOC_IDS = "aihub.retrieval.doc_ids"
REQUEST_MODEL = "gen_ai.request.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASON = "gen_ai.response.finish_reasons"


class TracingSettings(BaseModel):
    """Where spans go. The gateway's settings class embeds this as its ``tracing`` field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str | None = None  # default: the exporter's own (OTEL_EXPORTER_OTLP_* / localhost:4318)
    service_name: str = "aihub"
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


def build_tracer_provider(
    settings: TracingSettings, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """An SDK provider for the configured exporter (or the one given), or None for ``exporter=none``."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if exporter is None and settings.exporter == "none":
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:  # the `otlp` extra is not installed
            from core.errors import InvalidSpecError

            raise InvalidSpecError("tracing exporter 'otlp' needs `pip install aihub[otlp]`") from exc
        endpoint = settings.otlp_endpoint
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter())
        )
    return provider


def setup_tracing(settings: TracingSettings) -> tuple[trace.Tracer, TracerProvider | None]:
    """The app's tracer; installs the provider process-wide so library spans join the same traces.

    OpenTelemetry allows one global provider per process; a second app in the same process keeps its
    own provider (its spans still export) and logs why.
    """
    provider = build_tracer_provider(settings)
    if provider is None:
        return trace.get_tracer(TRACER_NAME), None
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    else:
        logger.info("a global tracer provider is already set; this app exports through its own")
    return provider.get_tracer(TRACER_NAME), provider


def _attribute(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Sequence):
        return [v if isinstance(v, str | bool | int | float) else str(v) for v in value]
    return str(value)


def set_attributes(span: trace.Span, attributes: Mapping[str, Any]) -> None:
    """Set what is known; ``None`` values are skipped (OpenTelemetry refuses them)."""
    if not span.is_recording():
        return
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, _attribute(value))


@contextmanager
def stage(tracer: trace.Tracer, name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A child span of the current one for one stage of a request (``aihub.<name>``)."""
    with tracer.start_as_current_span(f"aihub.{name}") as span:
        set_attributes(span, {k.replace("__", "."): v for k, v in attributes.items()})
        yield span


async def traced_generation(
    tracer: trace.Tracer,
    chunks: AsyncGenerator[GenerationChunk, None],
    attributes: Mapping[str, Any],
    parent: otel_context.Context | None = None,
) -> AsyncGenerator[GenerationChunk, None]:
    """Pass a generation stream through, inside an ``aihub.generate`` span ended with the token counts.

    The span is not made current: a streamed response is consumed by another task, and attaching a
    context there and detaching it here would cross contexts.
    """
    span = tracer.start_span("aihub.generate", context=parent or otel_context.get_current())
    set_attributes(span, attributes)
    last: GenerationChunk | None = None
    try:
        async for chunk in chunks:
            last = chunk
            yield chunk
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)))
        raise
    finally:
        if last is not None:
            set_attributes(
                span,
                {
                    INPUT_TOKENS: last.prompt_tokens,
                    OUTPUT_TOKENS: last.completion_tokens,
                    FINISH_REASON: [last.finish_reason] if last.finish_reason else None,
                },
            )
        span.end()


class TracingMiddleware:
    """Makes every HTTP request a trace: a server span around the whole exchange, streaming included."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = f"{scope.get('method', 'HTTP')} {scope.get('path', '')}"
        with self.tracer.start_as_current_span(name, kind=SpanKind.SERVER) as span:
            set_attributes(span, {"http.request.method": scope.get("method"), "url.path": scope.get("path")})

            async def send_with_status(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_with_status)
