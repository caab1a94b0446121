"""`aihub cluster slurm --submit` on a real one-node Slurm cluster (slurm-wlm + munge on 127.0.0.1).

The generated script runs unchanged under real sbatch/srun; the gateway inside the job serves a
fixed-latency model (a test double for a GPU engine) so the job is ready in seconds.
"""

import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.ray_cluster import slurm_cluster as helper

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
MODEL = "fixed-latency-model"
READY_TARGET_S = 120.0


# The `slurm` fixture (one cluster for the session) is in conftest.py, shared with test_slurm_fleet.py.


def _config(work: Path) -> Path:
    config = {
        "app": {
            "home": str(work / "home"),
            "prepare_defaults": False,
            "embedders": [],
            "default_embedder": None,
            "models": [
                {
                    "id": MODEL,
                    "engine": "fixed-latency",
                    "options": {"ttft_s": 0.01, "itl_s": 0.001, "tokens": 8},
                }
            ],
        },
    }
    path = work / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _wait_for_url(cluster, job_id: str, url_file: Path, work: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if url_file.exists():
            return url_file.read_text().strip()
        if not cluster.job_state(job_id):
            break
        time.sleep(0.25)
    logs = "\n".join(p.read_text(errors="replace")[-4000:] for p in work.glob("aihub-*.log"))
    pytest.fail(
        f"job {job_id} published no gateway URL in {timeout_s} s (state {cluster.job_state(job_id)!r}):\n"
        f"{logs}\n{cluster.logs()}"
    )


def _launch(cluster, work: Path, *extra: str) -> tuple[str, str, float]:
    """Submit with the CLI; returns the job id, the published URL and seconds from submit to ready."""
    import subprocess

    from aihub.gateway_process import free_port

    port = free_port()
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aihub.cluster_cli",
            "slurm",
            "--nodes",
            "1",
            "--gpus-per-node",
            "0",
            "--config",
            str(_config(work)),
            "--host",
            "127.0.0.1",
            "--head-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--workdir",
            str(work),
            "--output",
            str(work / "job.sbatch"),
            "--ready-timeout",
            "300",
            "--job-name",
            "aihub-test",
            "--submit",
            *extra,
        ],
        env=cluster.env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert job_id.isdigit(), done.stdout
    url = _wait_for_url(cluster, job_id, work / "aihub-gateway.url", work, timeout_s=360)
    ready_s = time.monotonic() - started
    assert url == f"http://127.0.0.1:{port}"
    return job_id, url, ready_s


def _check_gateway(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/health").status_code == 200
        models = client.get("/v1/models")
        assert models.status_code == 200
        assert MODEL in [entry["id"] for entry in models.json()["data"]]
        reply = client.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"]


def _cancel(cluster, job_id: str, work: Path, *markers: str) -> None:
    cluster.run(["scancel", job_id])
    deadline = time.monotonic() + 60
    while cluster.job_state(job_id) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert cluster.job_state(job_id) == ""
    # The script's exit trap removes the URL so it never points at a gateway that is gone.
    assert not (work / "aihub-gateway.url").exists()
    # Slurm's proctrack ends every process of the job: the gateway, Ray's daemons and workers.
    deadline = time.monotonic() + 30
    while (left := [p for marker in markers for p in helper.processes_mentioning(marker)]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert left == []


def test_embedded_gateway_in_a_slurm_job(slurm, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job_id, url, ready_s = _launch(slurm, tmp_path, "--mode", "embedded")
    try:
        _check_gateway(url)
    finally:
        _cancel(slurm, job_id, tmp_path, str(tmp_path))
    with capsys.disabled():
        print(f"\nslurm embedded: submit -> ready gateway in {ready_s:.1f} s")
    assert ready_s < READY_TARGET_S


def test_ray_gateway_in_a_slurm_job(slurm, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (REPO / "ray_cluster" / "launch.py").exists():
        pytest.fail("ray_cluster/launch.py does not exist yet: `aihub serve --ray` cannot run in the job")
    import subprocess

    from aihub.gateway_process import free_port

    serve_help = subprocess.run(
        [sys.executable, "-m", "aihub.cli", "serve", "--help"], capture_output=True, text=True, check=False
    )
    if "--ray" not in serve_help.stdout:
        pytest.fail("`aihub serve --ray` is not wired in aihub/cli.py yet: the job's gateway cannot start")
    ray_port = free_port()
    job_id, url, ready_s = _launch(
        slurm,
        tmp_path,
        "--mode", "ray", "--ray-port", str(ray_port), "--no-dashboard",
        # Ray swaps a loopback --node-ip-address for the machine's address unless it believes it is a
        # single-machine install; that keeps the test's traffic on 127.0.0.1 (one node, no workers).
        "--env", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0",
    )  # fmt: skip
    try:
        _check_gateway(url)
    finally:
        _cancel(slurm, job_id, tmp_path, str(tmp_path), f"127.0.0.1:{ray_port}", f"port={ray_port}")
    with capsys.disabled():
        print(f"\nslurm ray: submit -> ready gateway in {ready_s:.1f} s")
    assert ready_s < READY_TARGET_S
