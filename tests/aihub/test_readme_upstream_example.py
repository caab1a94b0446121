"""The README's upstream config example, as written, loads and builds a gateway that reports its pools."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from aihub.compose import build_services, open_store
from gateway.app import create_app
from ray_cluster.config import load_config
from tests.support.server_thread import ServerThread

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    section = README.read_text().split("## Remote upstreams", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_upstream_example_builds_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "site-b.key"
    secret.write_text("sk-site-b\n")
    text = (
        _example()
        .replace("/run/secrets/site-b", str(secret))
        .replace("/scratch/fleet/members", str(tmp_path / "m"))
    )
    path = tmp_path / "aihub.yaml"
    path.write_text(text)
    monkeypatch.setenv("NODE2_KEY", "sk-node-2")
    config = load_config(path, {"app": {"home": tmp_path / "home", "prepare_defaults": False, "demo": False}})
    store = open_store(config)
    weights = tmp_path / "model.safetensors"  # the example's `ref` names a hub model: stand-in bytes
    weights.write_bytes(b"not really weights")
    store.push(
        "model",
        "models/smollm2-135m-instruct",
        {"files": ["model.safetensors"], "context_length": 2048},
        files={"model.safetensors": weights},
    )
    services = build_services(config, store)
    assert sorted(p.name for p in services.pools) == ["e5-large", "site-b/*", "smollm2"]
    app = create_app(config.gateway_settings(), services)
    with ServerThread(app) as url:
        ready = httpx.get(f"{url}/ready")
        assert ready.status_code == 503  # nothing listens on those ports here: honest
        pools = httpx.get(f"{url}/admin/upstreams", headers={"authorization": "Bearer sk-admin-1"}).json()
        assert [u["url"] for u in pools["smollm2"]["upstreams"]] == [
            "http://127.0.0.1:8001/v1",
            "http://127.0.0.1:8002/v1",
        ]
        assert "sk-node-2" not in ready.text and "sk-site-b" not in ready.text
