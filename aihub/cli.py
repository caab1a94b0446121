"""The `aihub` command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core.errors import AihubError

app = typer.Typer(
    name="aihub",
    help="RAG serving and inference gateway: one OpenAI-compatible endpoint over a hub of artifacts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


COMMAND_PLUGINS = "aihub.commands"


def _mount_plugins() -> None:
    """Command groups other packages register under the ``aihub.commands`` entry-point group.

    ``aihub bench`` comes from the ``bench`` package this way: the CLI never imports it (benchmarks may
    import every layer, so nothing may import them), yet stays their entry point.
    """
    from importlib.metadata import entry_points

    for entry in entry_points(group=COMMAND_PLUGINS):
        app.add_typer(entry.load(), name=entry.name)


def _mount_subcommands() -> None:
    # Each sub-app module is light at import time; heavy libraries load inside its commands.
    _mount_plugins()
    for module, attr, name in (
        ("aihub.hub_cli", "hub_app", "hub"),
        ("aihub.index_cli", "index_app", "index"),
        ("aihub.eval_cli", "eval_app", "eval"),
        ("aihub.cluster_cli", "cluster_app", "cluster"),
        ("aihub.usage_cli", "usage_app", "usage"),
        ("aihub.keys_cli", "keys_app", "keys"),
        ("aihub.projects_cli", "projects_app", "projects"),
    ):
        sub = getattr(__import__(module, fromlist=[attr]), attr)
        app.add_typer(sub, name=name)
    # Adds `eval run/compare/gate`, `eval dataset push` and `eval bench` to the mounted eval_app.
    import aihub.eval_run_cli  # noqa: F401


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    config: Annotated[
        Path | None, typer.Option(help="YAML file with app/gateway/serving/hub sections.")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="Run as a Ray Serve application.")] = False,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (with --ray); default: start one.")
    ] = None,
    ingress: Annotated[
        str | None,
        typer.Option(help="With --ray: serve (Serve's HTTP proxy) or driver (uvicorn in this process)."),
    ] = None,
    shutdown_grace_s: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="On SIGTERM, seconds requests in flight get to finish before open streams are ended "
            "with an error event (default: gateway.shutdown_grace_s, 20).",
        ),
    ] = None,
) -> None:
    """Serve the OpenAI-compatible API: embedded (one process) by default, or on Ray Serve with --ray."""
    if ray:
        from aihub.ray_launch import serve_on_ray

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        if ingress not in (None, "serve", "driver"):
            raise typer.BadParameter(f"{ingress!r}: choose serve or driver", param_hint="--ingress")
        serve_on_ray(config, address=address, host=host, port=port, console=console, ingress=ingress)
        return
    from aihub.compose import build_embedded_app
    from gateway.fast_path import http_protocol
    from gateway.server import serve_app
    from ray_cluster.config import load_config

    all_settings = load_config(config)
    logging.basicConfig(
        level=all_settings.app.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    web_app = build_embedded_app(all_settings, console=console)
    console.print(
        f"[bold green]aihub[/] serving on http://{host}:{port}/v1  (data in {all_settings.app.home})"
    )
    grace_s = all_settings.gateway.shutdown_grace_s if shutdown_grace_s is None else shutdown_grace_s
    serve_app(
        web_app,
        grace_s,
        host=host,
        port=port,
        http=http_protocol(all_settings.gateway),
        log_level=all_settings.app.log_level.lower(),
        access_log=access_log,
    )


def main() -> None:
    _mount_subcommands()
    try:
        app()
    except AihubError as exc:
        console.print(f"[red]error:[/] {exc.message}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
