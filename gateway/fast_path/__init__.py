"""The gateway's measured fast paths, one unit that ``gateway.fast_paths: false`` turns off.

- ``hot_routes``: the hottest endpoints (chat, completions, vector store search) are called directly,
  past FastAPI's routing and dependency resolution;
- ``http_protocol``: uvicorn's HTTP protocol with the writes of one event-loop step sent together (a
  response's head and first event in one segment).

Off, the same handlers answer through FastAPI's router on uvicorn's own protocol: a way to tell whether
a problem lies in the fast paths.
"""

from __future__ import annotations

from typing import Any

from gateway.settings import GatewaySettings


def http_protocol(settings: GatewaySettings) -> Any:
    """The ``http=`` argument for uvicorn: the coalescing protocol, or uvicorn's default."""
    if not settings.fast_paths:
        return "auto"
    from gateway.fast_path.http_protocol import CoalescingHttpToolsProtocol

    return CoalescingHttpToolsProtocol
