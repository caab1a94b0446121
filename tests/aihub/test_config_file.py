"""The one config shape: precedence command line > environment > file > default, and strict keys."""

from pathlib import Path

import pytest
import yaml

from core.errors import InvalidSpecError
from ray_cluster.config import load_config


def _write(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "aihub.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def test_file_values_are_defaults_and_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write(
        tmp_path,
        {"app": {"home": "/tmp/from-file"}, "gateway": {"model_aliases": {"a": "smollm2-135m-instruct"}}},
    )
    monkeypatch.setenv("AIHUB_MODEL_ALIASES", '{"gpt-4o-mini": "smollm2-135m-instruct"}')
    settings = load_config(config)
    assert settings.app.home == Path("/tmp/from-file")
    assert settings.gateway.model_aliases == {"gpt-4o-mini": "smollm2-135m-instruct"}
    assert settings.hub.home == Path("/tmp/from-file")


@pytest.mark.parametrize(
    ("file", "env", "cli", "expected"),
    [
        (None, None, None, "serve"),  # default
        ("driver", None, None, "driver"),  # file over default
        ("driver", "serve", None, "serve"),  # environment over file
        ("serve", "serve", "driver", "driver"),  # command line over environment
    ],
)
def test_precedence_is_cli_then_env_then_file_then_default(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file: str | None,
    env: str | None,
    cli: str | None,
    expected: str,
) -> None:
    path = _write(tmp_path, {"ray": {"ingress": file}} if file else {})
    if env:
        monkeypatch.setenv("AIHUB_RAY_INGRESS", env)
    overrides = {"ray": {"ingress": cli}} if cli else None
    assert load_config(path, overrides).ray.ingress == expected


def test_nested_environment_and_file_values_meet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, {"serving": {"max_batch_size": 4, "vllm": {"kv_cache_gib": 3}}})
    monkeypatch.setenv("AIHUB_SERVING_MAX_BATCH_SIZE", "6")
    settings = load_config(path).serving
    assert (settings.max_batch_size, settings.vllm.kv_cache_gib) == (6, 3)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"gatway": {}}, "unknown sections"),
        ({"serving": {"max_batch": 4}}, r"unknown key\(s\) \['max_batch'\] in section 'serving'"),
        ({"app": {"models": [{"id": "m", "adapter": ["a"]}]}}, "adapter"),  # ModelConfig forbids extras
        ({"serving": {"vllm": {"kv_cache_gb": 2}}}, "kv_cache_gb"),
        ({"ray": {"models": {"m": {"num_cpu": 1}}}}, "num_cpu"),
        ({"ray": {"ingres": "driver"}}, "ingres"),
        ({"serving": ["not", "a", "mapping"]}, "must be a mapping"),
    ],
)
def test_unknown_keys_are_errors_that_name_them(tmp_path: Path, content: dict, named: str) -> None:
    with pytest.raises(InvalidSpecError, match=named):
        load_config(_write(tmp_path, content))


def test_home_defaults_to_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIHUB_HOME", str(tmp_path))
    assert load_config(None).app.home == tmp_path


def test_adapters_survive_in_ray_mode(tmp_path: Path) -> None:
    path = _write(
        tmp_path, {"app": {"models": [{"id": "m", "ref": "models/m:latest", "adapters": ["adapters/a"]}]}}
    )
    config = load_config(path)
    assert config.models[0].served_ids() == ("m", "m+adapters/a")
    assert config.gateway_settings().model_aliases == {"models/m+adapters/a:latest": "m+adapters/a"}
