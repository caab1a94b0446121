"""The readiness probe the sbatch script runs, against a real HTTP server on loopback."""

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ray_cluster.slurm_probe import main, wait_http, wait_ray


class _Handler(BaseHTTPRequestHandler):
    ready_after = 0.0  # seconds after start when /ready turns 200
    started = 0.0

    def do_GET(self) -> None:
        ok = self.path == "/ready" and time.monotonic() - self.started >= self.ready_after
        self.send_response(200 if ok else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.started = time.monotonic()
    _Handler.ready_after = 0.6
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_wait_http_waits_for_200(server: str) -> None:
    started = time.monotonic()
    assert wait_http(f"{server}/ready", timeout_s=10)
    assert time.monotonic() - started >= 0.5  # the 503s before were not taken for ready


def test_wait_http_gives_up_at_the_deadline(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert not wait_http(f"{server}/missing", timeout_s=1)
    assert "did not answer 200" in capsys.readouterr().err


def test_probes_give_up_when_the_awaited_process_exits(server: str) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(gone.stdout)
    started = time.monotonic()
    assert not wait_http(f"{server}/missing", timeout_s=30, pids=[pid])
    # Before any connection to Ray is tried: a head whose srun died ends the job at once.
    assert not wait_ray("127.0.0.1:1", nodes=1, timeout_s=30, pids=[pid])
    assert time.monotonic() - started < 5


def test_command_line_exit_status(server: str) -> None:
    assert main(["wait-http", f"{server}/ready", "--timeout", "10"]) == 0
    assert main(["wait-http", f"{server}/missing", "--timeout", "0.5"]) == 1
