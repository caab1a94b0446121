"""On the real vLLM engine (the session's shared one): response_format is honoured, and megabyte
prompts are refused without stalling the server (issue 20, rows 13 and 3)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema
import openai
import pytest

from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from tests.support.served_models import SMOLLM2
from tests.support.server_thread import ServerThread
from tests.support.shared_engine import SessionOwnedEngine

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 30},
        "country": {"type": "string", "maxLength": 30},
    },
    "required": ["city", "country"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def base_url(vllm_engines) -> Iterator[str]:
    services = GatewayServices(engines={SMOLLM2: SessionOwnedEngine(vllm_engines[SMOLLM2])})
    with ServerThread(create_app(GatewaySettings(), services)) as url:
        yield url


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_json_schema_output_parses_and_validates(base_url: str) -> None:
    reply = _client(base_url).chat.completions.create(
        model=SMOLLM2,
        messages=[{"role": "user", "content": "Name the capital of France and its country as JSON."}],
        max_tokens=200,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}},
    )
    content = reply.choices[0].message.content or ""
    assert reply.choices[0].finish_reason == "stop", content
    jsonschema.validate(json.loads(content), SCHEMA)


def test_json_object_output_is_an_object(base_url: str) -> None:
    reply = _client(base_url).chat.completions.create(
        model=SMOLLM2,
        messages=[{"role": "user", "content": 'Answer with a JSON object like {"name": "Tom"}.'}],
        max_tokens=200,
        temperature=0,
        response_format={"type": "json_object"},
    )
    content = reply.choices[0].message.content or ""
    assert reply.choices[0].finish_reason == "stop", content  # else the object may be cut short
    assert isinstance(json.loads(content), dict)


def test_megabyte_prompts_are_refused_while_health_answers(base_url: str) -> None:
    body = {"model": SMOLLM2, "messages": [{"role": "user", "content": "lorem ipsum " * 160_000}]}
    assert len(json.dumps(body)) > 1_900_000
    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(httpx.post, f"{base_url}/v1/chat/completions", json=body, timeout=120)
            for _ in range(4)
        ]
        health: list[float] = []
        while not all(future.done() for future in futures):
            started = time.monotonic()
            assert httpx.get(f"{base_url}/health", timeout=30).status_code == 200
            health.append(time.monotonic() - started)
            time.sleep(0.02)
        responses = [future.result() for future in futures]
    for response in responses:
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "context_length_exceeded"
    assert max(health, default=0.0) < 1.0, health
