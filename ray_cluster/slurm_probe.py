"""Readiness checks the sbatch script runs: `python -m ray_cluster.slurm_probe wait-ray|wait-http …`.

Python rather than curl or `ray status` parsing: the interpreter is the one thing every image and
every node running aihub has, and ``ray.nodes()`` is Ray's public view of the cluster.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

logger = logging.getLogger(__name__)

POLL_S = 1.0


def alive_nodes() -> int:
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


def wait_ray(address: str, nodes: int, timeout_s: float, pids: Sequence[int] = ()) -> bool:
    """True once ``nodes`` Ray nodes are alive at ``address``; False at the deadline or once one of
    ``pids`` (the srun steps running Ray) has exited."""
    awaited = f"{nodes} Ray node(s) at {address}"
    if not _running(pids, awaited):
        return False
    import ray

    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not _running(pids, awaited):
                return False
            if not ray.is_initialized():
                try:
                    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
                except (ConnectionError, RuntimeError) as exc:  # the head is still starting
                    logger.debug("Ray at %s not reachable yet: %s", address, exc)
                    time.sleep(POLL_S)
                    continue
            count = alive_nodes()
            if count >= nodes:
                print(f"slurm_probe: {count} Ray node(s) alive at {address}", flush=True)
                return True
            time.sleep(POLL_S)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    print(f"slurm_probe: fewer than {nodes} Ray node(s) at {address} after {timeout_s} s", file=sys.stderr)
    return False


def _running(pids: Sequence[int], awaited: str) -> bool:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"slurm_probe: process {pid} exited while waiting for {awaited}", file=sys.stderr)
            return False
        except PermissionError:
            continue  # alive, someone else's
    return True


def wait_http(url: str, timeout_s: float, pids: Sequence[int] = ()) -> bool:
    """True once ``url`` answers 200; False at the deadline or once one of ``pids`` has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _running(pids, url):
            return False
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return True
        except (urllib.error.URLError, OSError) as exc:
            logger.debug("%s not ready: %s", url, exc)
        time.sleep(POLL_S / 2)
    print(f"slurm_probe: {url} did not answer 200 within {timeout_s} s", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ray_cluster.slurm_probe")
    commands = parser.add_subparsers(dest="command", required=True)
    ray_parser = commands.add_parser("wait-ray", help="wait until N Ray nodes are alive")
    ray_parser.add_argument("--address", required=True)
    ray_parser.add_argument("--nodes", type=int, required=True)
    ray_parser.add_argument("--timeout", type=float, default=600.0)
    ray_parser.add_argument("--pid", type=int, action="append", default=[], help="give up when it exits")
    http_parser = commands.add_parser("wait-http", help="wait until a URL answers 200")
    http_parser.add_argument("url")
    http_parser.add_argument("--pid", type=int, action="append", default=[], help="give up when it exits")
    http_parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.command == "wait-ray":
        ok = wait_ray(args.address, args.nodes, args.timeout, args.pid)
    else:
        ok = wait_http(args.url, args.timeout, args.pid)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
