"""`aihub serve --ray`: the same settings as embedded mode, deployed as a Ray Serve application."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from aihub.compose import open_store
from aihub.default_models import ensure_default_models
from ray_cluster.config import load_config


def serve_on_ray(
    config_path: Path | None,
    *,
    address: str | None,
    host: str,
    port: int,
    console: Console,
    ingress: str | None = None,
) -> None:
    """Blocks until SIGINT/SIGTERM, then shuts Serve (and a Ray it started) down."""
    # Ray reads these from the process environment; this is the composition root, so it may set them.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # The --ingress flag is the command-line layer: above AIHUB_RAY_INGRESS and the file.
    overrides = {"ray": {"ingress": ingress}} if ingress is not None else None
    cluster = load_config(config_path, overrides)
    if cluster.app.prepare_defaults:
        ensure_default_models(open_store(cluster), cluster.app, console)
    # Serve reads its knobs when it is imported: the driver's own handles (ingress: driver) get the
    # same ones as the Ray processes.
    for key, value in cluster.ray.serve_env.items():
        os.environ.setdefault(key, value)
    from ray_cluster.launch import serve_ray

    console.print(f"[bold green]aihub[/] on Ray Serve at http://{host}:{port}/v1")
    serve_ray(cluster, address=address, host=host, port=port)
