"""GatewaySettings from the environment (JSON lists and objects), frozen."""

from __future__ import annotations

import pydantic
import pytest

from gateway.settings import GatewaySettings


def test_settings_read_json_from_the_environment(monkeypatch):
    monkeypatch.setenv("AIHUB_API_KEYS", '["k1", "k2"]')
    monkeypatch.setenv("AIHUB_MODEL_ALIASES", '{"gpt-4o-mini": "smollm2-135m-instruct"}')
    monkeypatch.setenv("AIHUB_MAX_REQUEST_BYTES", "65536")
    settings = GatewaySettings()
    assert settings.api_keys == ["k1", "k2"]
    assert settings.model_aliases == {"gpt-4o-mini": "smollm2-135m-instruct"}
    assert settings.max_request_bytes == 65536
    with pytest.raises(pydantic.ValidationError):
        settings.max_request_bytes = 1  # type: ignore[misc]


def test_defaults_are_open_and_bounded(monkeypatch):
    for name in ("AIHUB_API_KEYS", "AIHUB_MODEL_ALIASES", "AIHUB_MAX_REQUEST_BYTES"):
        monkeypatch.delenv(name, raising=False)
    settings = GatewaySettings()
    assert settings.api_keys == [] and settings.model_aliases == {}
    assert settings.max_request_bytes == 2 * 1024 * 1024
