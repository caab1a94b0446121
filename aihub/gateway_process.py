"""Start `aihub serve` in a child process on loopback, for benchmarks and end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GatewayProcess:
    """A real gateway server in a subprocess; ``config`` is the YAML config's content."""

    def __init__(
        self,
        config: dict[str, Any],
        work_dir: Path,
        *,
        ready_timeout_s: float = 300.0,
        serve_args: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.serve_args = serve_args  # e.g. ("--ray", "--ingress", "driver")
        self.work_dir = work_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = work_dir / f"gateway-{self.port}.log"

    def __enter__(self) -> GatewayProcess:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.work_dir / f"gateway-{self.port}.yaml"
        config_path.write_text(yaml.safe_dump(self.config))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aihub.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--config",
                    str(config_path),
                    *self.serve_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: everything it started stops with it
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        try:
            wait_until_answering(f"{self.base_url}/ready", self.process, self.log_path, self.ready_timeout_s)
        except TimeoutError:
            self.__exit__(None, None, None)
            raise

    def rss_bytes(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process_group(self.process)


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Until ``url`` answers 200; a child that exits or a timeout raises with the end of its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.name}: exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s:\n{log.read_text()[-4000:]}")


def stop_process_group(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM to the child (it shuts down what it started), then SIGKILL to whatever of its process
    group is left: engine processes it spawned, a Ray it started."""
    import signal

    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
