"""``response_format`` is honoured or refused before generating, never ignored (issue 20, row 13).

vLLM honouring it is tested in ``tests/serving/test_vllm_response_format.py`` (on the real engine)."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient

from serving.fixed_latency_engine import FixedLatencyEngineDouble

CHAT = "/v1/chat/completions"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
FORMATS = [
    {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}},
    {"type": "json_object"},
]


def _body(model: str, response_format: dict) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Where?"}],
        "response_format": response_format,
    }


def test_an_engine_without_structured_output_refuses_before_generating(client, engine) -> None:
    for response_format in FORMATS:
        response = client.post(CHAT, json=_body("scripted-double", response_format))
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("response_format", "unsupported_value")
    assert engine.requests == []  # refused before the engine saw it
    assert client.post(CHAT, json=_body("scripted-double", {"type": "text"})).status_code == 200


def test_the_refusal_names_the_engine(make_app, engine) -> None:
    engine._info = dataclasses.replace(engine.info, engine="transformers")
    fixed = FixedLatencyEngineDouble("fixed")
    with TestClient(make_app(engine, fixed), raise_server_exceptions=False) as client:
        for model, name in (("scripted-double", "transformers"), ("fixed", "fixed-latency double")):
            response = client.post(CHAT, json=_body(model, FORMATS[0]))
            assert response.status_code == 400
            assert f"the {name} engine" in response.json()["error"]["message"]


def test_an_engine_with_structured_output_gets_the_schema(make_app, engine) -> None:
    engine._info = dataclasses.replace(engine.info, structured_output=True)
    with TestClient(make_app(engine), raise_server_exceptions=False) as client:
        for response_format, schema in zip(FORMATS, (SCHEMA, {"type": "object"}), strict=True):
            response = client.post(CHAT, json=_body("scripted-double", response_format))
            assert response.status_code == 200, response.text
            assert engine.requests[-1].json_schema == schema
