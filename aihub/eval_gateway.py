"""What `aihub eval` commands are built from: settings, the local hub, and a client of the gateway, over
HTTP (``--url``, aiohttp) or in this process (the embedded app behind ``httpx.ASGITransport``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aihub.cli_errors import err


def eval_settings(config: Path | None) -> Any:
    from ray_cluster.config import load_config

    return load_config(config)


def eval_store(settings: Any) -> Any:
    from hub.store import LocalStore

    return LocalStore(settings.hub)


@asynccontextmanager
async def gateway_client(
    settings: Any, url: str | None, api_key: str | None, concurrency: int
) -> AsyncIterator[Any]:
    """An ``evals.client.GatewayClient`` over HTTP, or over the embedded app (its lifespan running)."""
    import httpx

    from evals.client import GatewayClient

    if url:
        import aiohttp

        from evals.client import AiohttpPoster

        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        connector = aiohttp.TCPConnector(limit=concurrency * 2)
        client_timeout = aiohttp.ClientTimeout(total=600.0, connect=10.0)
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
            yield GatewayClient(AiohttpPoster(session, url, headers))
        return
    from aihub.compose import build_embedded_app

    app = build_embedded_app(settings, console=err)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        timeout = httpx.Timeout(600.0, connect=10.0)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://aihub.local", timeout=timeout
        ) as http:
            yield GatewayClient(http)
