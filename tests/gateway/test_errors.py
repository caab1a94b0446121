"""Every failure answers in OpenAI's error format with the right status."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from core.errors import ContextLengthExceededError, EngineError, EngineUnavailableError

CHAT = "/v1/chat/completions"


def _chat(**extra):
    return {"model": "scripted-double", "messages": [{"role": "user", "content": "hi"}], **extra}


def _error(response, spec, status, *, code=None, param=None, error_type=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    spec.check("ErrorResponse", body)
    error = body["error"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    if error_type is not None:
        assert error["type"] == error_type
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "scripted-double"}, "messages"),
        ({"model": "scripted-double", "messages": []}, "messages"),
        ({"model": "scripted-double", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"model": "scripted-double", "messages": [{"role": "user"}]}, "messages[0]"),
        ({"model": "scripted-double", "messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
        ({"model": "scripted-double", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {
                "model": "scripted-double",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            },
            "messages[0].content[0].type",
        ),
        (_chat(temperature=3), "temperature"),
        (_chat(top_p=-1), "top_p"),
        (_chat(max_tokens=0), "max_tokens"),
        (_chat(stream="yes please"), "stream"),
        (_chat(n=2), "n"),
        (_chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (_chat(logprobs=True), "logprobs"),
        (_chat(tools=[{"type": "function", "function": {}}]), "tools[0].function.name"),
    ],
)
def test_invalid_chat_bodies_are_400_naming_the_param(client, spec, body, param):
    error = _error(client.post(CHAT, json=body), spec, 400, param=param, error_type="invalid_request_error")
    assert param in error["message"] or error["code"] == "unsupported_value"


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"null", b'{"model": "x",}'])
def test_malformed_json_is_400_not_422(client, spec, raw):
    response = client.post(CHAT, content=raw, headers={"content-type": "application/json"})
    _error(response, spec, 400, error_type="invalid_request_error")


def test_unknown_model_is_404_model_not_found(client, spec):
    error = _error(
        client.post(CHAT, json=_chat(model="nope")), spec, 404, code="model_not_found", param="model"
    )
    assert "nope" in error["message"]
    _error(client.post(CHAT, json=_chat(model="nope", stream=True)), spec, 404, code="model_not_found")


def test_unknown_route_and_wrong_method(client, spec):
    _error(client.get("/v1/nothing-here"), spec, 404, code="unknown_url")
    _error(client.post("/nothing"), spec, 404)
    response = client.get(CHAT)
    _error(response, spec, 405, code="method_not_allowed")
    assert "POST" in response.headers["allow"]
    _error(client.delete("/v1/models"), spec, 405)


def test_body_too_large_by_content_length_and_when_chunked(make_app, engine, spec):
    app = make_app(engine, max_request_bytes=4096)
    with TestClient(app, raise_server_exceptions=False) as client:
        big = _chat(messages=[{"role": "user", "content": "x" * 10_000}])
        _error(client.post(CHAT, json=big), spec, 413, code="payload_too_large")

        def chunked():  # a generator body goes out without content-length
            for _ in range(10):
                yield b"x" * 1000

        response = client.post(CHAT, content=chunked(), headers={"content-type": "application/json"})
        assert "content-length" not in response.request.headers
        _error(response, spec, 413, code="payload_too_large")
        assert client.post(CHAT, json=_chat()).status_code == 200
    assert engine.requests and all(len(r.messages[0].content) < 100 for r in engine.requests)


@pytest.mark.parametrize("stream", [False, True])
def test_context_overflow_is_400_even_when_streaming(make_app, scripted, spec, stream):
    engine = scripted(fail_on_first=ContextLengthExceededError("prompt has 9000 tokens, context is 2048"))
    with TestClient(make_app(engine), raise_server_exceptions=False) as client:
        response = client.post(CHAT, json=_chat(stream=stream))
        error = _error(response, spec, 400, code="context_length_exceeded")
        assert "9000" in error["message"]


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (EngineError("CUDA kernel exploded at 0xdeadbeef"), 500, "engine_error"),
        (RuntimeError("secret internal detail"), 500, "internal_error"),
        (EngineUnavailableError("engine is restarting"), 503, "engine_unavailable"),
    ],
)
def test_engine_failures_are_500_or_503_without_leaking(
    make_app, scripted, spec, caplog, failure, status, code
):
    engine = scripted(fail_on_first=failure)
    with TestClient(make_app(engine), raise_server_exceptions=False) as client:
        for stream in (False, True):
            error = _error(client.post(CHAT, json=_chat(stream=stream)), spec, status, code=code)
            if status == 500:
                assert "0xdeadbeef" not in error["message"] and "secret" not in error["message"]
                assert "Traceback" not in error["message"]
                assert error["type"] == "server_error"
    if status == 500:
        assert any(record.levelname == "ERROR" for record in caplog.records)


def test_failure_mid_stream_sends_an_error_event(make_app, scripted, spec, parse_sse):
    engine = scripted(fail_mid=EngineError("boom"), fail_after=2)
    with TestClient(make_app(engine), raise_server_exceptions=False) as client:
        response = client.post(CHAT, json=_chat(stream=True, messages=[{"role": "user", "content": "a b c"}]))
        assert response.status_code == 200
        raw = parse_sse(response.text)
        assert raw[-1] == "[DONE]"  # the error event ends the stream, [DONE] closes it (gateway.sse)
        payloads = [json.loads(p) for p in raw[:-1]]
        spec.check("ErrorResponse", payloads[-1])
        assert payloads[-1]["error"]["code"] == "engine_error"
        assert len(payloads) == 3  # two content chunks, then the error


def test_api_keys(make_app, engine, spec):
    app = make_app(engine, api_keys=["k-one", "k-two"])
    with TestClient(app, raise_server_exceptions=False) as client:
        _error(client.post(CHAT, json=_chat()), spec, 401, code="invalid_api_key")
        _error(client.get("/v1/models", headers={"Authorization": "Bearer wrong"}), spec, 401)
        _error(client.get("/v1/models", headers={"Authorization": "Basic k-one"}), spec, 401)
        _error(client.get("/v1/nope"), spec, 401)
        ok = client.post(CHAT, json=_chat(), headers={"Authorization": "Bearer k-two"})
        assert ok.status_code == 200
        assert client.get("/v1/models", headers={"authorization": "bearer k-one"}).status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
