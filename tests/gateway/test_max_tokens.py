"""A model's max_tokens bounds: a default for requests without one, and a limit answered with a 400."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.app_settings import AppSettings
from core.model_config import MaxTokens
from ray_cluster.config import AihubConfig


def test_a_request_without_max_tokens_gets_the_models_default(make_app, engine) -> None:
    app = make_app(engine, max_tokens={engine.info.id: MaxTokens(default=3, limit=10)})
    with TestClient(app) as client:
        body = {"model": engine.info.id, "messages": [{"role": "user", "content": "a b c d e f g"}]}
        reply = client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200
        assert engine.requests[-1].params.max_tokens == 3
        assert reply.json()["choices"][0]["finish_reason"] == "length"

        within = client.post("/v1/chat/completions", json={**body, "max_tokens": 10})
        assert within.status_code == 200 and engine.requests[-1].params.max_tokens == 10

        above = client.post("/v1/chat/completions", json={**body, "max_tokens": 11})
        assert above.status_code == 400
        assert above.json()["error"]["param"] == "max_tokens"
        assert "limit of 10" in above.json()["error"]["message"]
        also = client.post("/v1/completions", json={"model": engine.info.id, "prompt": "x", "max_tokens": 50})
        assert also.status_code == 400


def test_the_default_model_is_bounded_and_configs_pass_bounds_to_the_gateway(tmp_path) -> None:
    (default,) = AppSettings().models
    assert default.max_tokens.default is not None and default.max_tokens.default <= 256
    config = AihubConfig.build(tmp_path, (default,))
    assert config.gateway_settings().max_tokens[default.id] == default.max_tokens
