"""Prometheus metrics of one app, in a registry of its own (several apps may live in one process)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.tenancy import UsageRecord
from gateway.errors import ERROR_CODE_SCOPE_KEY

MODEL_SCOPE_KEY = "aihub.model"
ENDPOINT_SCOPE_KEY = "aihub.endpoint"
START_SCOPE_KEY = "aihub.start"  # perf_counter() at arrival, for time to first token


class GatewayMetrics:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "aihub_requests", "HTTP requests served", ["model", "endpoint", "status"], registry=r
        )
        self.errors = Counter(
            "aihub_errors", "Failed requests by error code", ["model", "endpoint", "code"], registry=r
        )
        self.latency = Histogram(
            "aihub_request_duration_seconds",
            "Time from request to the end of the response",
            ["model", "endpoint"],
            buckets=buckets,
            registry=r,
        )
        self.ttft = Histogram(
            "aihub_time_to_first_token_seconds",
            "Time from request to the engine's first chunk",
            ["model", "endpoint"],
            buckets=buckets,
            registry=r,
        )
        self.prompt_tokens = Counter("aihub_prompt_tokens", "Prompt tokens processed", ["model"], registry=r)
        self.completion_tokens = Counter(
            "aihub_completion_tokens", "Completion tokens generated", ["model"], registry=r
        )

        # `labels()` costs microseconds per call; the label sets are few, so their children are kept.
        self._served: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._usage: dict[str, tuple[Any, Any]] = {}
        self._ttft: dict[tuple[str, str], Any] = {}

    def record_request(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        key = (model, endpoint, status)
        children = self._served.get(key)
        if children is None:
            children = (
                self.requests.labels(model, endpoint, str(status)),
                self.latency.labels(model, endpoint),
            )
            self._served[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def record_ttft(self, model: str, endpoint: str, seconds: float) -> None:
        child = self._ttft.get((model, endpoint))
        if child is None:
            child = self._ttft[(model, endpoint)] = self.ttft.labels(model, endpoint)
        child.observe(seconds)

    def record_usage(self, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        children = self._usage.get(model)
        if children is None:
            children = (self.prompt_tokens.labels(model), self.completion_tokens.labels(model))
            self._usage[model] = children
        if prompt_tokens:
            children[0].inc(prompt_tokens)
        if completion_tokens:
            children[1].inc(completion_tokens)


class ProjectCounters:
    """Requests and tokens per project and model: as many series as projects × models, both bounded by
    configuration (keys, issuers, served models), never by request content."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "aihub_project_requests",
            "Requests per project and model",
            ["project", "model"],
            registry=registry,
        )
        self.tokens = Counter(
            "aihub_project_tokens",
            "Prompt and completion tokens per project and model",
            ["project", "model", "kind"],
            registry=registry,
        )

    def observe(self, row: UsageRecord) -> None:
        self.requests.labels(row.project, row.model).inc()
        if row.prompt_tokens:
            self.tokens.labels(row.project, row.model, "prompt").inc(row.prompt_tokens)
        if row.completion_tokens:
            self.tokens.labels(row.project, row.model, "completion").inc(row.completion_tokens)


class MetricsMiddleware:
    """Counts every HTTP request and times it to the end of its (possibly streamed) response.

    Routes label the request by writing ``aihub.model`` / ``aihub.endpoint`` into the ASGI scope; the
    model label is only set after resolution, so unknown ids cannot blow up label cardinality.
    """

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = scope[START_SCOPE_KEY] = time.perf_counter()
        status = 500

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, status_send)
        finally:
            model = scope.get(MODEL_SCOPE_KEY, "")
            endpoint = scope.get(ENDPOINT_SCOPE_KEY, "other")
            self.metrics.record_request(model, endpoint, status, time.perf_counter() - start)
            if status >= 400:
                self.metrics.errors.labels(
                    model, endpoint, scope.get(ERROR_CODE_SCOPE_KEY, str(status))
                ).inc()
