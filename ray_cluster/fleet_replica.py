"""One replica of a fleet: ``python -m ray_cluster.fleet_replica --members DIR --model-id ID -- CMD…``.

It starts an OpenAI-compatible server (``CMD``, whose words may hold ``{host}`` and ``{port}``) on a free
port, waits until ``GET /v1/models`` answers 200, then announces it with a member file in ``DIR``, which
the gateway of the fleet watches (``upstreams_from``). The file goes away when the server exits or when
this wrapper is stopped (SIGTERM from scancel, SIGINT), so a replica that comes up later joins and one
that dies leaves, without anyone editing the gateway's config. The exit status is the server's.

The member file is written atomically (a dot-file, then ``os.replace``): the gateway ignores dot-files,
so it never reads a half-written member.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import yaml

logger = logging.getLogger(__name__)

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
POLL_S = 0.25
STOP_GRACE_S = 20.0  # vLLM frees GPU memory on SIGTERM; give it time before SIGKILL


def node_address() -> str:
    """This node's address as other nodes reach it (the script's `hostname -i` rule, on this node)."""
    try:
        addresses = socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        addresses = []
    for address in addresses:
        if not address.startswith("127."):  # Debian maps the hostname to 127.0.1.1
            return address
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        words = subprocess.run(
            ["hostname", "-I"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.split()
        if words:
            return words[0]
    return "127.0.0.1"


def free_port(host: str) -> int:
    """A port free on ``host`` now. The server binds it a moment later; a clash makes it exit, and the
    replica with it (its step ends and nothing is announced), which is rare enough not to retry."""
    address = "0.0.0.0" if host in ("0.0.0.0", "") else host
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def base_url(host: str, port: int) -> str:
    """The replica's OpenAI base URL; an IPv6 address goes in brackets (RFC 3986)."""
    return f"http://[{host}]:{port}/v1" if ":" in host else f"http://{host}:{port}/v1"


def expand(command: Sequence[str], host: str, port: int) -> list[str]:
    # str.replace, not str.format: server arguments may hold JSON with braces of their own.
    return [word.replace("{host}", host).replace("{port}", str(port)) for word in command]


def write_member(members: Path, name: str, url: str, model: str) -> Path:
    """``members/name`` holding ``{url, model}``, replaced atomically."""
    path = members / name
    temporary = members / f".{name}.tmp"
    temporary.write_text(yaml.safe_dump({"url": url, "model": model}, sort_keys=False))
    os.replace(temporary, path)
    return path


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def exit_status(returncode: int) -> int:
    """A shell's view of a child's status: killed by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class Replica:
    """The server child and its member file, for one run."""

    def __init__(
        self,
        command: list[str],
        members: Path,
        name: str,
        base_url: str,
        model: str,
        ready_timeout_s: float,
    ) -> None:
        self.command = command
        self.members = members
        self.name = name
        self.base_url = base_url  # ends in /v1
        self.model = model
        self.ready_timeout_s = ready_timeout_s
        self.stop_signal: int | None = None
        self.member: Path | None = None
        self.child: subprocess.Popen[bytes] | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signal = signum

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        # Its own session: on stop, the whole group goes (vLLM's engine core and workers with the server).
        self.child = subprocess.Popen(self.command, start_new_session=True)
        print(f"fleet_replica: started pid {self.child.pid} for {self.base_url}", flush=True)
        try:
            if not self._wait_ready():
                return self._stop(failed=self.stop_signal is None)
            self.member = write_member(self.members, self.name, self.base_url, self.model)
            print(f"fleet_replica: joined as {self.member}", flush=True)
            while self.child.poll() is None and self.stop_signal is None:
                time.sleep(POLL_S)
            return self._stop(failed=False)
        finally:
            self._leave()
            self._kill_group()

    def _wait_ready(self) -> bool:
        assert self.child is not None
        deadline = time.monotonic() + self.ready_timeout_s
        probe = f"{self.base_url}/models"
        while time.monotonic() < deadline:
            if self.child.poll() is not None or self.stop_signal is not None:
                return False
            if answers(probe):
                return True
            time.sleep(POLL_S * 2)
        print(f"fleet_replica: {probe} did not answer 200 in {self.ready_timeout_s} s", file=sys.stderr)
        return False

    def _stop(self, *, failed: bool) -> int:
        """Leaves the fleet first (no request is sent to a server going down), then ends the server."""
        assert self.child is not None
        self._leave()
        ended_by_us = self.child.poll() is None
        if ended_by_us:
            self._signal_group(signal.SIGTERM)
            try:
                self.child.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.child.wait()
        status = exit_status(self.child.returncode)
        if failed and (ended_by_us or status == 0):
            status = 1  # it never became ready: not success, and not a signal anyone sent
        print(f"fleet_replica: server exited ({self.child.returncode}); leaving with {status}", flush=True)
        return status

    def _leave(self) -> None:
        if self.member is not None:
            self.member.unlink(missing_ok=True)
            print(f"fleet_replica: left ({self.member})", flush=True)
            self.member = None

    def _signal_group(self, signum: int) -> None:
        assert self.child is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.child.pid, signum)

    def _kill_group(self) -> None:
        # The server may have left children behind (a crashed vLLM's engine core): none may outlive us.
        if self.child is not None:
            if self.child.poll() is None:
                self._stop(failed=True)
            self._signal_group(signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m ray_cluster.fleet_replica [options] -- SERVER COMMAND", file=sys.stderr)
        return 2
    split = argv.index("--")
    own, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(prog="python -m ray_cluster.fleet_replica")
    parser.add_argument("--members", type=Path, required=True, help="folder the fleet's gateway watches")
    parser.add_argument("--model-id", required=True, help="the id the gateway serves")
    parser.add_argument("--upstream-model", help="the model's name at this server (default: --model-id)")
    parser.add_argument("--host", help="address the server binds (default: this node's address)")
    parser.add_argument("--advertise", help="address the gateway uses (default: --host, or this node's)")
    parser.add_argument("--name", help="member file name (default: <hostname>-<port>)")
    parser.add_argument("--ready-timeout", type=float, default=1800.0, help="seconds to answer /v1/models")
    args = parser.parse_args(own)
    if not command:
        parser.error("no server command after --")
    host = args.host or node_address()
    advertise = args.advertise or (node_address() if host in WILDCARD_HOSTS else host)
    port = free_port(host)
    name = args.name or f"{socket.gethostname()}-{port}"
    if name.startswith(".") or "/" in name:
        parser.error(f"--name {name!r}: a plain file name not starting with '.'")
    args.members.mkdir(parents=True, exist_ok=True)
    replica = Replica(
        expand(command, host, port),
        args.members,
        name,
        base_url(advertise, port),
        args.upstream_model or args.model_id,
        args.ready_timeout,
    )
    return replica.run()


if __name__ == "__main__":
    raise SystemExit(main())
