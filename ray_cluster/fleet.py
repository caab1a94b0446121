"""The gateway side of a fleet job (`aihub cluster slurm --mode fleet`): its config and its wait for members.

``python -m ray_cluster.fleet config …`` writes the gateway's config inside the job, because the
members folder is named after the job id, known only there. The served model becomes an ``openai``
engine whose upstreams are whatever member files ``ray_cluster.fleet_replica`` keeps in that folder.
``python -m ray_cluster.fleet wait-members …`` holds the gateway URL back until enough replicas joined.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from core.errors import InvalidSpecError

POLL_S = 0.5


def fleet_config(base: Mapping[str, Any] | None, model_id: str, members: Path) -> dict[str, Any]:
    """``base`` (a user's config, or nothing) with ``model_id`` served from the replicas in ``members``.

    An entry of ``base`` for the same id keeps its options and static ``upstreams`` (health interval,
    timeouts, a member outside the job); its engine and ``upstreams_from`` are the fleet's. Without a
    base, nothing but the fleet is served: no default models are prepared, no demo pipeline is built.
    """
    config: dict[str, Any] = copy.deepcopy(dict(base or {}))
    app = config.get("app") or {}
    if not isinstance(app, dict):
        raise InvalidSpecError("config: section 'app' must be a mapping")
    config["app"] = app
    models = list(app.get("models") or [])
    own = next((m for m in models if isinstance(m, dict) and m.get("id") == model_id), None)
    entry: dict[str, Any] = {"id": model_id, "upstreams": [], "options": {}, **(own or {})}
    entry.update(engine="openai", upstreams_from=str(members))
    app["models"] = [entry if m is own else m for m in models] if own is not None else [*models, entry]
    # The defaults would import SmolLM2 and MiniLM into the hub and index the docs: not a fleet's job.
    app.setdefault("prepare_defaults", False)
    app.setdefault("demo", False)
    if "embedders" not in app:
        app["embedders"] = []
        app.setdefault("default_embedder", None)
    return config


def write_fleet_config(base: Path | None, model_id: str, members: Path, out: Path) -> Path:
    text = None
    if base is not None:
        try:
            text = yaml.safe_load(base.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidSpecError(f"cannot read config file {base}: {exc}") from exc
        if text is not None and not isinstance(text, dict):
            raise InvalidSpecError(f"config file {base} must hold a mapping of sections")
    config = fleet_config(text, model_id, members.resolve())
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(temporary, out)
    return out


def member_files(members: Path) -> list[Path]:
    """The members as the gateway counts them: regular files whose name does not start with '.'."""
    try:
        return sorted(p for p in members.iterdir() if not p.name.startswith(".") and p.is_file())
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_members(members: Path, count: int, timeout_s: float, pids: Sequence[int] = ()) -> bool:
    """True once ``members`` holds ``count`` members; False at the deadline, or once every one of
    ``pids`` (the replica steps) has exited: one replica failing is no reason to give up on the others."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = len(member_files(members))
        if found >= count:
            print(f"fleet: {found} replica(s) joined in {members}", flush=True)
            return True
        if pids and not any(_alive(pid) for pid in pids):
            print(f"fleet: every replica step exited with {found} of {count} joined", file=sys.stderr)
            return False
        time.sleep(POLL_S)
    print(f"fleet: {count} replica(s) did not join {members} in {timeout_s} s", file=sys.stderr)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ray_cluster.fleet")
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("config", help="write the fleet gateway's config")
    config.add_argument("--model-id", required=True)
    config.add_argument("--members", type=Path, required=True)
    config.add_argument("--out", type=Path, required=True)
    config.add_argument("--base", type=Path, help="a user's config to merge the fleet into")
    wait = commands.add_parser("wait-members", help="wait until N replicas joined")
    wait.add_argument("members", type=Path)
    wait.add_argument("--count", type=int, default=1)
    wait.add_argument("--timeout", type=float, default=900.0)
    wait.add_argument("--pid", type=int, action="append", default=[], help="a replica step")
    args = parser.parse_args(argv)
    if args.command == "config":
        try:
            write_fleet_config(args.base, args.model_id, args.members, args.out)
        except InvalidSpecError as exc:
            print(f"fleet: {exc.message}", file=sys.stderr)
            return 1
        return 0
    return 0 if wait_members(args.members, args.count, args.timeout, args.pid) else 1


if __name__ == "__main__":
    raise SystemExit(main())
