"""Ray mode settings, cluster YAML loading and the mapping of Ray's errors (no Ray cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.errors import ContextLengthExceededError, EngineError, EngineUnavailableError, InvalidSpecError
from ray_cluster.config import load_config
from ray_cluster.ray_errors import map_ray_error
from ray_cluster.settings import RaySettings, ReplicaSettings


def test_fixed_replica_count_has_no_autoscaling() -> None:
    options = ReplicaSettings(num_cpus=0.5, num_gpus=1, min_replicas=2, max_replicas=2).deployment_options()
    assert options["num_replicas"] == 2
    assert "autoscaling_config" not in options
    assert options["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 1}


def test_replica_range_autoscales_from_the_minimum() -> None:
    replicas = ReplicaSettings(min_replicas=1, max_replicas=4, target_ongoing_requests=3, upscale_delay_s=1)
    scaling = replicas.deployment_options()["autoscaling_config"]
    assert scaling["min_replicas"] == scaling["initial_replicas"] == 1
    assert scaling["max_replicas"] == 4
    assert scaling["target_ongoing_requests"] == 3
    assert scaling["upscale_delay_s"] == 1


def test_max_below_min_is_refused() -> None:
    with pytest.raises(ValueError, match="max_replicas"):
        ReplicaSettings(min_replicas=3, max_replicas=2)


def test_per_model_replicas_fall_back_to_the_default() -> None:
    settings = RaySettings(models={"big": ReplicaSettings(num_gpus=1, max_replicas=8)})
    assert settings.model_replicas("big").num_gpus == 1
    assert settings.model_replicas("other") == settings.default_model


def test_environment_overrides_the_ray_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "app": {
                    "home": str(tmp_path / "home"),
                    "models": [
                        {"id": "m1", "ref": "models/m1:latest"},
                        {"id": "m2", "engine": "fixed-latency"},
                    ],
                },
                "gateway": {"model_aliases": {"gpt-4o-mini": "m1"}},
                "ray": {"address": "10.0.0.1:6379", "port": 9000, "models": {"m1": {"max_replicas": 4}}},
            }
        )
    )
    monkeypatch.setenv("AIHUB_RAY_PORT", "9100")
    config = load_config(path)
    assert [spec.id for spec in config.models] == ["m1", "m2"]
    assert config.models[1].engine == "fixed-latency"
    assert config.ray.address == "10.0.0.1:6379"
    assert config.ray.port == 9100
    assert config.ray.model_replicas("m1").max_replicas == 4
    assert config.gateway.model_aliases == {"gpt-4o-mini": "m1"}
    assert config.hub.home == tmp_path / "home"


def test_unknown_section_and_duplicate_models_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"rayy": {}}))
    with pytest.raises(InvalidSpecError):
        load_config(path)
    path.write_text(yaml.safe_dump({"app": {"models": [{"id": "m"}, {"id": "m"}]}}))
    with pytest.raises(InvalidSpecError, match="unique"):
        load_config(path)


def test_dead_actor_maps_to_unavailable() -> None:
    from ray.exceptions import ActorDiedError, RayTaskError
    from ray.serve.exceptions import BackPressureError

    assert isinstance(map_ray_error(ActorDiedError(), "model m"), EngineUnavailableError)
    assert isinstance(
        map_ray_error(BackPressureError(num_queued_requests=3, max_queued_requests=2), "m"),
        EngineUnavailableError,
    )
    wrapped = RayTaskError("generate", "traceback", ActorDiedError())
    assert isinstance(map_ray_error(wrapped, "model m"), EngineUnavailableError)


def test_our_own_error_from_a_replica_is_raised_as_is() -> None:
    from ray.exceptions import RayTaskError

    original = ContextLengthExceededError("too long", param="messages")
    wrapped = RayTaskError("generate", "traceback", original).as_instanceof_cause()
    assert map_ray_error(wrapped, "model m") is original
    crashed = RayTaskError("generate", "traceback", ZeroDivisionError("boom"))
    mapped = map_ray_error(crashed, "model m")
    assert isinstance(mapped, EngineError) and "ZeroDivisionError" in mapped.message


def test_other_errors_pass_through() -> None:
    error = ValueError("not ours")
    assert map_ray_error(error, "model m") is error


def test_serve_import_path_builds_the_application_from_a_cluster_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray import serve

    from ray_cluster.app import app

    path = tmp_path / "cluster.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "app": {
                    "home": str(tmp_path),
                    "models": [
                        {"id": "org/model:v1", "engine": "fixed-latency"},
                        {"id": "m2", "ref": "models/m2"},
                    ],
                },
                "ray": {"models": {"m2": {"min_replicas": 1, "max_replicas": 3}}},
            }
        )
    )
    built = app({"config": str(path)})
    assert isinstance(built, serve.Application)
    monkeypatch.setenv("AIHUB_RAY_CONFIG", str(path))
    assert isinstance(app({}), serve.Application)  # Serve's builder args may be empty: the env names the file


def test_model_ids_become_valid_deployment_names() -> None:
    from ray_cluster.builder import model_deployment_name

    assert model_deployment_name("org/model:v1") == "model-org_model_v1"


@pytest.mark.parametrize(
    "app",
    [
        {"models": [{"id": "site-b/*", "engine": "openai", "upstreams": [{"url": "http://127.0.0.1:9/v1"}]}]},
        {
            "models": [],
            "embedders": [{"id": "e", "engine": "openai", "upstreams": [{"url": "http://127.0.0.1:9/v1"}]}],
        },
    ],
)
def test_what_ray_mode_cannot_build_yet_is_refused_by_name(tmp_path: Path, app: dict[str, object]) -> None:
    from ray_cluster.builder import build_backends

    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"app": {"home": str(tmp_path), **app}}))
    with pytest.raises(InvalidSpecError, match="embedded mode"):
        build_backends(load_config(path))
