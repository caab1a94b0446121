"""`aihub serve --ray`: the same settings as embedded mode, deployed as a Ray Serve application."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from aihub.compose import load_all_settings, open_store
from aihub.config_file import build_settings, load_config
from aihub.default_models import ensure_default_models


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
    from ray_cluster.config import ClusterConfig
    from ray_cluster.settings import RaySettings

    settings = load_all_settings(config_path)
    if settings.app.prepare_defaults:
        ensure_default_models(open_store(settings), settings.app, console)
    ray_section = dict(load_config(config_path).get("ray") or {})
    if ingress is not None:
        ray_section["ingress"] = ingress
    cluster = ClusterConfig(
        ray=build_settings(RaySettings, ray_section),
        gateway=settings.gateway,
        serving=settings.serving,
        hub=settings.hub,
        retrievers=settings.retrievers,
        models=settings.app.models,
        embedders=settings.app.embedders,
        default_embedder=settings.app.default_embedder,
    )
    # Serve reads its knobs when it is imported: the driver's own handles (ingress: driver) get the
    # same ones as the Ray processes.
    for key, value in cluster.ray.serve_env.items():
        os.environ.setdefault(key, value)
    from ray_cluster.launch import serve_ray

    console.print(f"[bold green]aihub[/] on Ray Serve at http://{host}:{port}/v1")
    serve_ray(cluster, address=address, host=host, port=port)
