"""`python -m ray_cluster.fleet_replica` with a real HTTP server as the replica, and the gateway-side
helpers of `ray_cluster.fleet` (the generated config, the wait for members).

The server is Python's own ``http.server`` serving a folder that holds ``v1/models``: the smallest real
server that answers the replica's readiness probe, so these tests take seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from core.errors import InvalidSpecError
from ray_cluster.fleet import fleet_config, member_files, wait_members, write_fleet_config
from ray_cluster.fleet_replica import base_url, exit_status, expand, free_port, write_member
from tests.ray_cluster.slurm_cluster import processes_mentioning

WAIT_S = 30.0


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "v1").mkdir(parents=True)
    (site / "v1" / "models").write_text('{"object": "list", "data": [{"id": "m"}]}')
    return site


def _start(tmp_path: Path, *server: str, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], Path]:
    members = tmp_path / "members"
    log = (tmp_path / "replica.log").open("wb")
    replica = subprocess.Popen(
        [
            sys.executable, "-m", "ray_cluster.fleet_replica",
            "--members", str(members), "--model-id", "served", "--upstream-model", "m",
            "--host", "127.0.0.1", *extra, "--", *server,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    return replica, members


def _http_server(site: Path) -> tuple[str, ...]:
    return (sys.executable, "-m", "http.server", "{port}", "--bind", "{host}", "--directory", str(site))


def _wait(condition: object, what: str, replica: subprocess.Popen[bytes]) -> None:
    assert callable(condition)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    replica.kill()
    replica.wait()
    log = Path(str(replica.args[replica.args.index("--members") + 1])).parent / "replica.log"
    pytest.fail(f"no {what} in {WAIT_S} s:\n{log.read_text(errors='replace')}")


def _joined(replica: subprocess.Popen[bytes], members: Path) -> dict[str, str]:
    _wait(lambda: member_files(members), "member file", replica)
    (member,) = member_files(members)
    entry = yaml.safe_load(member.read_text())
    assert isinstance(entry, dict)
    return entry


def _server_pids(site: Path) -> list[int]:
    """The server's process, not the replica's (whose command line holds the server's, with {port})."""
    lines = processes_mentioning(f"--directory {site}")
    return [int(line.split(":")[0]) for line in lines if "fleet_replica" not in line]


def test_replica_joins_when_ready_and_leaves_when_its_server_dies(tmp_path: Path) -> None:
    site = _site(tmp_path)
    replica, members = _start(tmp_path, *_http_server(site))
    try:
        entry = _joined(replica, members)
        port = entry["url"].rsplit(":", 1)[1].removesuffix("/v1")
        assert entry == {"url": f"http://127.0.0.1:{port}/v1", "model": "m"}
        (member,) = member_files(members)
        assert member.name.endswith(f"-{port}")
        assert not [p for p in members.iterdir() if p.name.startswith(".")]  # the temp file was renamed
        import urllib.request

        with urllib.request.urlopen(f"{entry['url']}/models", timeout=5) as reply:
            assert reply.status == 200
        (server,) = _server_pids(site)
        os.kill(server, signal.SIGKILL)
        _wait(lambda: not member_files(members), "member removal", replica)
        assert replica.wait(timeout=WAIT_S) == 128 + signal.SIGKILL  # the server's status, as a shell says it
    finally:
        replica.kill()
        replica.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_replica_removes_its_member_and_ends_its_server(tmp_path: Path, signum: int) -> None:
    site = _site(tmp_path)
    replica, members = _start(tmp_path, *_http_server(site))
    try:
        _joined(replica, members)
        assert len(_server_pids(site)) == 1
        replica.send_signal(signum)
        status = replica.wait(timeout=WAIT_S)
        assert status == 128 + signal.SIGTERM  # the server was asked to stop with SIGTERM
        assert member_files(members) == []
        assert _server_pids(site) == []
    finally:
        replica.kill()
        replica.wait()


def test_a_server_that_never_answers_never_joins(tmp_path: Path) -> None:
    sleeper = (sys.executable, "-c", "import sys, time; time.sleep(60)", "{port}")
    replica, members = _start(tmp_path, *sleeper, extra=("--ready-timeout", "1"))
    try:
        assert replica.wait(timeout=WAIT_S) == 1
        assert member_files(members) == []
        assert processes_mentioning("time.sleep(60)") == []
    finally:
        replica.kill()
        replica.wait()


def test_a_server_that_exits_at_once_passes_on_its_status(tmp_path: Path) -> None:
    replica, members = _start(tmp_path, sys.executable, "-c", "raise SystemExit(3)", "{port}")
    assert replica.wait(timeout=WAIT_S) == 3
    assert member_files(members) == []


def test_usage_without_a_server_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ray_cluster.fleet_replica", "--members", "x", "--model-id", "m"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert done.returncode == 2 and "-- SERVER COMMAND" in done.stderr


def test_expand_fills_host_and_port_and_leaves_other_braces() -> None:
    words = ["--port", "{port}", "--host={host}", '{"a": {"b": 1}}']
    assert expand(words, "10.0.0.1", 8123) == ["--port", "8123", "--host=10.0.0.1", '{"a": {"b": 1}}']
    assert exit_status(-9) == 137 and exit_status(0) == 0 and exit_status(3) == 3


def test_member_file_is_replaced_whole(tmp_path: Path) -> None:
    write_member(tmp_path, "n1-1", "http://a:1/v1", "m")
    path = write_member(tmp_path, "n1-1", "http://a:2/v1", "m")
    assert yaml.safe_load(path.read_text()) == {"url": "http://a:2/v1", "model": "m"}
    assert [p.name for p in tmp_path.iterdir()] == ["n1-1"]


def test_fleet_config_serves_the_members_folder(tmp_path: Path) -> None:
    members = tmp_path / "members"
    assert fleet_config(None, "smol", members) == {
        "app": {
            "models": [
                {
                    "id": "smol",
                    "upstreams": [],
                    "options": {},
                    "engine": "openai",
                    "upstreams_from": str(members),
                }
            ],
            "prepare_defaults": False,
            "demo": False,
            "embedders": [],
            "default_embedder": None,
        }
    }


def test_fleet_config_merges_a_users_config(tmp_path: Path) -> None:
    base = {
        "gateway": {"max_body_bytes": 1},
        "app": {
            "home": "/shared/aihub",
            "prepare_defaults": True,
            "embedders": [{"id": "e", "ref": "models/e:1"}],
            "default_embedder": "e",
            "models": [
                {"id": "other", "engine": "fixed-latency"},
                {"id": "smol", "engine": "auto", "options": {"health_interval_s": 1.0},
                 "upstreams": [{"url": "http://static:1/v1"}]},
            ],
        },
    }  # fmt: skip
    merged = fleet_config(base, "smol", tmp_path)
    assert base["app"]["models"][1]["engine"] == "auto"  # the user's mapping is not changed
    app = merged["app"]
    assert merged["gateway"] == {"max_body_bytes": 1}
    assert (app["home"], app["prepare_defaults"], app["default_embedder"]) == ("/shared/aihub", True, "e")
    assert app["embedders"] == [{"id": "e", "ref": "models/e:1"}]
    assert app["models"][0] == {"id": "other", "engine": "fixed-latency"}
    assert app["models"][1] == {
        "id": "smol",
        "upstreams": [{"url": "http://static:1/v1"}],
        "options": {"health_interval_s": 1.0},
        "engine": "openai",
        "upstreams_from": str(tmp_path),
    }
    # Another id is added next to the user's models.
    assert [m["id"] for m in fleet_config(base, "new", tmp_path)["app"]["models"]] == ["other", "smol", "new"]


def test_write_fleet_config_cli_and_errors(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"app": {"home": str(tmp_path / "home")}}))
    out = tmp_path / "fleet.yaml"
    done = subprocess.run(
        [
            sys.executable, "-m", "ray_cluster.fleet", "config", "--model-id", "smol",
            "--members", "members", "--out", str(out), "--base", str(base),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=WAIT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = yaml.safe_load(out.read_text())
    assert written["app"]["home"] == str(tmp_path / "home")
    assert written["app"]["models"][0]["upstreams_from"] == str(tmp_path / "members")  # made absolute
    base.write_text("- not a mapping\n")
    with pytest.raises(InvalidSpecError, match="mapping"):
        write_fleet_config(base, "smol", tmp_path, out)


def test_the_fleet_config_is_a_valid_aihub_config(tmp_path: Path) -> None:
    from core.model_config import ModelConfig

    if "upstreams_from" not in ModelConfig.model_fields:
        pytest.skip("engine openai (serving/upstream) has not landed: upstreams_from is unknown")
    from ray_cluster.config import load_config

    path = write_fleet_config(None, "smol", tmp_path / "members", tmp_path / "fleet.yaml")
    config = load_config(path)
    (model,) = config.models
    assert model.engine == "openai" and model.upstreams_from == tmp_path / "members"
    assert config.embedders == () and not config.app.prepare_defaults and not config.app.demo


def test_wait_members_counts_visible_files_and_gives_up_when_every_replica_exited(tmp_path: Path) -> None:
    (tmp_path / ".n1-1.tmp").write_text("url: http://a:1/v1")  # a write in progress is not a member
    assert not wait_members(tmp_path, 1, timeout_s=0.3)
    (tmp_path / "n1-1").write_text("url: http://a:1/v1")
    assert wait_members(tmp_path, 1, timeout_s=5)
    gone = subprocess.Popen(["true"])
    gone.wait()
    started = time.monotonic()
    assert not wait_members(tmp_path, 2, timeout_s=30, pids=[gone.pid])
    assert time.monotonic() - started < 5


def test_ipv6_replicas_get_a_bracketed_url_and_a_port_of_their_family() -> None:
    assert base_url("10.0.0.7", 8001) == "http://10.0.0.7:8001/v1"
    assert base_url("fd00::7", 8001) == "http://[fd00::7]:8001/v1"
    for host in ("127.0.0.1", "::1", "0.0.0.0", "::"):
        assert 0 < free_port(host) < 65536
