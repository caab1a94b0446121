"""GET /v1/models, /health, /ready and /metrics."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient


def test_models_list_holds_engines_and_aliases(make_app, scripted, spec):
    first, second = scripted("org/model-a"), scripted("model-b")
    app = make_app(first, second, model_aliases={"gpt-4o-mini": "org/model-a", "dangling": "missing"})
    with TestClient(app) as client:
        body = client.get("/v1/models").json()
        spec.check("ListModelsResponse", body)
        assert [m["id"] for m in body["data"]] == ["org/model-a", "model-b", "gpt-4o-mini"]
        for model_id in ("org/model-a", "gpt-4o-mini"):
            response = client.get(f"/v1/models/{model_id}")
            assert response.status_code == 200
            spec.check("Model", response.json())
            assert response.json()["id"] == model_id
        missing = client.get("/v1/models/rag/nothing:prod")
        assert missing.status_code == 404
        spec.check("ErrorResponse", missing.json())
        assert missing.json()["error"]["code"] == "model_not_found"
        assert client.get("/v1/models/dangling").status_code == 404


def test_lifespan_starts_and_closes_engines_and_ready_follows(make_app, engine):
    app = make_app(engine)
    with TestClient(app) as client:
        assert engine.started == 1
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").status_code == 200
    assert engine.closed == 1


async def test_ready_is_503_before_the_engines_start(make_app, engine):
    app = make_app(engine)  # ASGITransport does not run the lifespan
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/health")).status_code == 200
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "starting"
    assert engine.started == 0


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
            if got == wanted:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_errors_tokens_and_latency(client):
    before = client.get("/metrics")
    assert before.headers["content-type"].startswith("text/plain")
    chat = {"model": "scripted-double", "messages": [{"role": "user", "content": "one two"}]}
    assert client.post("/v1/chat/completions", json=chat).status_code == 200
    assert client.post("/v1/chat/completions", json={**chat, "stream": True}).status_code == 200
    assert client.post("/v1/chat/completions", json={**chat, "model": "nope"}).status_code == 404
    assert client.post("/v1/chat/completions", json={**chat, "n": 3}).status_code == 400
    text = client.get("/metrics").text
    ok = {"model": "scripted-double", "endpoint": "chat.completions"}
    assert _sample(text, "aihub_requests_total", status="200", **ok) == 2
    assert _sample(text, "aihub_requests_total", model="", endpoint="chat.completions", status="404") == 1
    assert (
        _sample(text, "aihub_errors_total", model="", endpoint="chat.completions", code="model_not_found")
        == 1
    )
    assert _sample(text, "aihub_errors_total", code="unsupported_value", **ok) == 1
    assert _sample(text, "aihub_prompt_tokens_total", model="scripted-double") == 10
    assert _sample(text, "aihub_completion_tokens_total", model="scripted-double") == 6
    assert _sample(text, "aihub_request_duration_seconds_count", **ok) == 3  # the n=3 one too
    assert _sample(text, "aihub_time_to_first_token_seconds_count", **ok) == 2
    assert _sample(before.text, "aihub_prompt_tokens_total", model="scripted-double") == 0


def test_two_apps_in_one_process_keep_separate_metrics(make_app, scripted):
    with TestClient(make_app(scripted())) as one, TestClient(make_app(scripted())) as two:
        one.get("/v1/models")
        assert 'endpoint="models"' in one.get("/metrics").text
        assert 'endpoint="models"' not in two.get("/metrics").text


def test_openapi_document_describes_the_request_bodies(client):
    document = client.get("/openapi.json").json()
    body = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletionRequest")
    assert "messages" in document["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert "ChatMessageIn" in document["components"]["schemas"]


def test_every_reference_in_the_openapi_document_resolves(client):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                found.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert len(found) > 20
    dangling = sorted({ref for ref in found if ref.removeprefix("#/components/schemas/") not in schemas})
    assert dangling == []


class DyingEngineHealthDouble:
    """Test double for a local engine's health (the real one: vLLM's engine core process, in
    tests/aihub/test_serve_e2e.py): it reports a failure once told it died."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def failure(self) -> str | None:
        return self.reason


def test_ready_is_503_and_names_the_engine_that_died(engine):
    from gateway.app import create_app
    from gateway.services import GatewayServices
    from gateway.settings import GatewaySettings

    health = DyingEngineHealthDouble()
    services = GatewayServices(engines={engine.info.id: engine}, health={engine.info.id: health})
    with TestClient(create_app(GatewaySettings(), services)) as client:
        assert client.get("/ready").status_code == 200
        health.reason = "the vLLM engine of scripted died"
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "engines": {engine.info.id: "the vLLM engine of scripted died"},
        }
        assert client.get("/health").status_code == 200  # the process answers; the engine shows on /ready
