"""``serve_ray``: start (or join) Ray, deploy the aihub application, serve HTTP until told to stop."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType

from ray_cluster.config import AihubConfig, load_config

logger = logging.getLogger(__name__)


def start_ray(config: AihubConfig, address: str | None = None) -> None:
    """Join ``address`` (or ``config.ray.address``), or start a local Ray when neither is set."""
    import ray

    target = address or config.ray.address
    runtime_env = {"env_vars": dict(config.ray.serve_env)}
    if target is None:
        # "local": a new instance even when another Ray runs on this machine (None would join that one).
        ray.init(
            address="local",
            num_cpus=config.ray.num_cpus,
            include_dashboard=config.ray.include_dashboard,
            runtime_env=runtime_env,
        )
    else:
        ray.init(address=target, runtime_env=runtime_env)


def deploy(config: AihubConfig, *, host: str, port: int) -> str:
    """Start Serve's HTTP proxy on ``host:port`` and deploy; returns the base URL once running."""
    from ray import serve

    from ray_cluster.builder import build_app

    # One HTTP proxy, on the head node: the gateway is reached at one address (as in embedded mode).
    # Per-request access lines cost every hop a file write and a trip to the driver's log monitor.
    logging_config = {"log_level": config.ray.log_level, "enable_access_log": config.ray.access_log}
    serve.start(
        http_options={"host": host, "port": port},
        proxy_location="HeadOnly",
        logging_config=logging_config,
    )
    serve.run(
        build_app(config),
        name=config.ray.app_name,
        route_prefix="/",
        blocking=False,
        logging_config=logging_config,
    )
    return f"http://{host}:{port}"


def stop() -> None:
    import ray
    from ray import serve

    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()


def serve_ray(
    config: AihubConfig | None = None,
    *,
    config_path: Path | None = None,
    address: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Deploy and block serving HTTP until SIGINT/SIGTERM, then shut Serve (and a local Ray) down.

    ``config`` wins over ``config_path``; ``host``/``port``/``address`` override the ``ray`` section.
    """
    if config is None:
        config = load_config(config_path)
    settings = config.ray.model_copy(
        update={key: value for key, value in (("host", host), ("port", port)) if value is not None}
    )
    config = replace(config, ray=settings)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: shutting down", signum)
        stopping.set()

    if settings.ingress == "driver":
        _serve_from_driver(config, address)
        return
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    start_ray(config, address)
    try:
        url = deploy(config, host=settings.host, port=settings.port)
        logger.info("aihub on Ray Serve at %s/v1 (%d model(s))", url, len(config.models))
        stopping.wait()
    finally:
        stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_from_driver(config: AihubConfig, address: str | None) -> None:
    """The gateway on uvicorn in this process; uvicorn's own SIGINT/SIGTERM handling ends it."""
    import asyncio

    from ray_cluster.driver_gateway import deploy_backends, serve_gateway

    start_ray(config, address)
    try:
        handles = deploy_backends(config)
        logger.info(
            "aihub gateway (driver) at http://%s:%d/v1 (%d model(s))",
            config.ray.host,
            config.ray.port,
            len(config.models),
        )
        asyncio.run(serve_gateway(config, handles, host=config.ray.host, port=config.ray.port))
    except SystemExit as exc:
        # uvicorn re-raises the signal that stopped it once it has shut down, and the handler Ray
        # installed in this driver turns that into sys.exit(signum): a requested stop, not a failure.
        if exc.code not in (signal.SIGINT, signal.SIGTERM):
            raise
        logger.info("signal %s: shut down", exc.code)
    finally:
        stop()
