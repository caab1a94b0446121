"""A local Ray (2 CPUs) running the aihub Serve application, for the `ray` tests; torn down without leftovers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from aihub.gateway_process import free_port
from core.model_config import ModelConfig
from ray_cluster.config import AihubConfig
from ray_cluster.settings import RaySettings, ReplicaSettings

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
# Replicas of the doubles: a tenth of a CPU each, so several fit on this 2-core machine.
SMALL = ReplicaSettings(num_cpus=0.1, health_check_period_s=1.0)


def double_spec(model_id: str, **options: float) -> ModelConfig:
    """A `FixedLatencyEngineDouble` model (a stand-in for a GPU engine), by default 20 ms TTFT, 5 ms/token."""
    return ModelConfig(
        id=model_id,
        engine="fixed-latency",
        options={"ttft_s": 0.02, "itl_s": 0.005, "tokens": 16, **options},
    )


def cluster_config(
    home: str,
    models: Iterable[ModelConfig],
    replicas: dict[str, ReplicaSettings] | None = None,
    port: int | None = None,
) -> AihubConfig:
    ray_settings = RaySettings(
        num_cpus=2,
        port=port or free_port(),
        first_chunk_timeout_s=20.0,
        gateway=SMALL.model_copy(update={"max_ongoing_requests": 256}),
        default_model=SMALL,
        models=replicas or {},
    )
    return AihubConfig.build(Path(home), tuple(models), ray=ray_settings)


def _ray_processes() -> set[int]:
    """This session's Ray daemons and their descendants (workers, replicas, the dashboard agent)."""
    import ray

    session_dir = ray.get_runtime_context().worker.node.get_session_dir_path()
    pids: set[int] = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(session_dir in part for part in proc.info["cmdline"] or ()):
                pids.add(proc.pid)
                pids.update(child.pid for child in proc.children(recursive=True))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return pids


@dataclass
class RaySession:
    config: AihubConfig
    base_url: str = ""
    pids: set[int] = field(default_factory=set)
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    def start(self, ready_timeout_s: float = 60.0) -> RaySession:
        from ray_cluster.launch import deploy, start_ray

        for key, value in RAY_ENV.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        start_ray(self.config)
        try:
            self.pids = _ray_processes()
            self.base_url = deploy(self.config, host="127.0.0.1", port=self.config.ray.port)
            self.wait_ready(ready_timeout_s)
            self.pids |= _ray_processes()
        except BaseException:
            self.shutdown()
            raise
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/ready", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.base_url}/ready not 200 after {timeout_s} s")

    def shutdown(self) -> set[int]:
        """Stops Serve and Ray; returns the pids of this session still alive after a short grace."""
        from ray_cluster.launch import stop

        stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        deadline = time.monotonic() + 15.0
        alive = set(self.pids)
        while alive and time.monotonic() < deadline:
            alive = {pid for pid in alive if psutil.pid_exists(pid) and _not_zombie(pid)}
            time.sleep(0.2)
        return alive


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
