from pathlib import Path

import pytest

from aihub.compose import load_all_settings
from core.errors import InvalidSpecError


def test_file_values_are_defaults_and_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "aihub.yaml"
    config.write_text("app:\n  home: /tmp/from-file\ngateway:\n  model_aliases: {a: smollm2-135m-instruct}\n")
    monkeypatch.setenv("AIHUB_MODEL_ALIASES", '{"gpt-4o-mini": "smollm2-135m-instruct"}')
    settings = load_all_settings(config)
    assert settings.app.home == Path("/tmp/from-file")
    assert settings.gateway.model_aliases == {"gpt-4o-mini": "smollm2-135m-instruct"}
    assert settings.hub.home == Path("/tmp/from-file")


def test_unknown_sections_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "aihub.yaml"
    config.write_text("gatway: {}\n")
    with pytest.raises(InvalidSpecError, match="unknown sections"):
        load_all_settings(config)


def test_home_defaults_to_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIHUB_HOME", str(tmp_path))
    assert load_all_settings(None).app.home == tmp_path
