"""`aihub cluster slurm --mode fleet --submit` on the real one-node Slurm cluster (slurm-wlm + munge).

Two replica steps, each `aihub serve` with the fixed-latency engine (a test double standing in for
vLLM's OpenAI server, named as one), behind the job's gateway (engine ``openai``, ``upstreams_from`` the
job's members folder). A replica whose server dies leaves; one started later with `srun --jobid` joins;
the gateway keeps answering. Every wait is bounded.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ray_cluster.fleet import member_files
from tests.ray_cluster import slurm_cluster as helper
from tests.ray_cluster.test_slurm_e2e import _cancel, _wait_for_url

pytestmark = pytest.mark.slurm

MODEL = "fixed-latency-model"
CHANGE_S = 60.0  # a member joining or leaving: file watch (1 s) plus a replica's start (~3-10 s here)


def _configs(work: Path) -> tuple[Path, Path]:
    """The replicas' config (the fixed-latency double) and the user's config the CLI merges the fleet into."""
    app = {"prepare_defaults": False, "embedders": [], "default_embedder": None}
    double = {
        "id": MODEL,
        "engine": "fixed-latency",
        "options": {"ttft_s": 0.01, "itl_s": 0.001, "tokens": 8},
    }
    replica = work / "replica.yaml"
    replica.write_text(
        yaml.safe_dump({"app": {**app, "home": str(work / "replica-home"), "models": [double]}})
    )
    gateway = work / "gateway.yaml"
    # Options of the fleet's model entry are kept by the merge: quick checks for a quick test.
    fleet_model = {"id": MODEL, "options": {"health_interval_s": 1.0, "watch_interval_s": 0.5}}
    gateway.write_text(yaml.safe_dump({"app": {**app, "home": str(work / "home"), "models": [fleet_model]}}))
    return replica, gateway


def _server_command(replica_config: Path) -> list[str]:
    return [sys.executable, "-m", "aihub.cli", "serve", "--config", str(replica_config),
            "--host", "{host}", "--port", "{port}"]  # fmt: skip


def _upstreams(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """The gateway's view of the fleet, from /ready: upstream URL -> its entry."""
    body = client.get("/ready").json()
    entries = body.get("models", {}).get(MODEL, {}).get("upstreams", [])
    return {entry["url"]: entry for entry in entries}


def _member_urls(members: Path) -> set[str]:
    urls = set()
    for path in member_files(members):
        with_url = yaml.safe_load(path.read_text())
        urls.add(with_url["url"])
    return urls


def _until(check: Callable[[], bool], timeout_s: float, what: str, cluster: helper.LocalSlurmCluster,
           work: Path) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    logs = "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(work.glob("*.log")))
    pytest.fail(f"{what}: not within {timeout_s} s\n{logs}\n{cluster.logs()}")


def _chat(client: httpx.Client) -> None:
    reply = client.post(
        "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "tok0 tok1 tok2 tok3"


def _server_pid(url: str) -> int:
    """The replica's server process (not its wrapper, whose command line still says {port})."""
    port = url.rsplit(":", 1)[1].removesuffix("/v1")
    (line,) = [p for p in helper.processes_mentioning(f"--port {port}") if "aihub.cli serve" in p]
    return int(line.split(":")[0])


def test_fleet_replicas_join_and_leave_behind_one_gateway(
    slurm: helper.LocalSlurmCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aihub.gateway_process import free_port

    work = tmp_path
    replica_config, gateway_config = _configs(work)
    port = free_port()
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable, "-m", "aihub.cluster_cli", "slurm",
            "--mode", "fleet", "--replicas", "2", "--ready-replicas", "2",
            "--replica-command", shlex.join(_server_command(replica_config)),
            "--served-model-name", MODEL, "--replica-host", "127.0.0.1",
            "--config", str(gateway_config),
            "--host", "127.0.0.1", "--head-address", "127.0.0.1", "--port", str(port),
            "--workdir", str(work), "--output", str(work / "job.sbatch"),
            "--ready-timeout", "300", "--job-name", "aihub-fleet-test", "--submit",
        ],
        env=slurm.env, cwd=work, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    late: subprocess.Popen[bytes] | None = None
    try:
        url = _wait_for_url(slurm, job_id, work / "aihub-gateway.url", work, timeout_s=360)
        ready_s = time.monotonic() - started
        assert url == f"http://127.0.0.1:{port}"
        members = work / f"aihub-members-{job_id}"
        with httpx.Client(base_url=url, timeout=30) as client:
            # Both replicas joined (the script waited for --ready-replicas 2) and the gateway sees them up.
            first = _member_urls(members)
            assert len(first) == 2
            _until(lambda: {u for u, e in _upstreams(client).items() if e["state"] == "up"} == first,
                   CHANGE_S, "both members up in /ready", slurm, work)  # fmt: skip
            for _ in range(8):
                _chat(client)
            served = {u: e.get("requests") for u, e in _upstreams(client).items()}
            assert all(count for count in served.values()), served  # balanced over both

            # One replica's server dies: its member leaves, requests keep succeeding on the other.
            dead = sorted(first)[0]
            os.kill(_server_pid(dead), signal.SIGKILL)
            _until(
                lambda: _member_urls(members) == first - {dead}, CHANGE_S, "member file removed", slurm, work
            )
            _until(lambda: dead not in _upstreams(client), CHANGE_S, "dead member out of /ready", slurm, work)
            for _ in range(5):
                _chat(client)

            # A replica started later, as one more step of the job, joins.
            late_log = (work / "late-replica.log").open("wb")
            late = subprocess.Popen(
                [
                    "srun", f"--jobid={job_id}", "--overlap", "--nodes=1", "--ntasks=1",
                    sys.executable, "-m", "ray_cluster.fleet_replica", "--members", str(members),
                    "--model-id", MODEL, "--host", "127.0.0.1", "--", *_server_command(replica_config),
                ],
                env=slurm.env, cwd=work, stdout=late_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            late_log.close()
            _until(
                lambda: len(_member_urls(members)) == 2, CHANGE_S, "late replica's member file", slurm, work
            )
            (joined,) = _member_urls(members) - first
            _until(lambda: _upstreams(client).get(joined, {}).get("state") == "up", CHANGE_S,
                   "late member up in /ready", slurm, work)  # fmt: skip
            assert set(_upstreams(client)) == (first - {dead}) | {joined}
            for _ in range(8):
                _chat(client)
            assert _upstreams(client)[joined]["requests"], _upstreams(client)
    finally:
        # scancel ends every step, the late one included; the job's folder and URL go with it.
        _cancel(slurm, job_id, work, str(work))
        if late is not None:
            late.wait(timeout=60)
    assert not (work / f"aihub-members-{job_id}").exists()
    with capsys.disabled():
        print(f"\nslurm fleet: submit -> gateway with 2 replicas ready in {ready_s:.1f} s")
