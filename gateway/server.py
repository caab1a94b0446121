"""The gateway on uvicorn, draining on SIGTERM before uvicorn's own shutdown (``gateway.drain``).

uvicorn alone closes its sockets, waits ``timeout_graceful_shutdown`` and then cancels whatever still
runs: open streams are cut mid-body, with tracebacks. Here the drain runs first, with the listener still
open (``/ready`` answers 503 ``draining``, new requests 503): requests in flight get ``grace_s`` to
finish, and those left are ended cleanly, so uvicorn's shutdown finds nothing left to cancel.
A second Ctrl-C (SIGINT) still forces the exit at once.
"""

from __future__ import annotations

import socket
import sys

import uvicorn
from fastapi import FastAPI

from gateway.drain import Drain
from gateway.state import GatewayState

# After the cut: how long the ended streams get to send their last events, and then how long uvicorn
# waits for connections to close before cancelling what is left.
CUT_WAIT_S = 2.0
UVICORN_GRACE_S = 2


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain, grace_s: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.grace_s = grace_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if not self.force_exit:
            await self.drain.run(self.grace_s, CUT_WAIT_S, stop=lambda: self.force_exit)
        await super().shutdown(sockets)


def serve_app(app: FastAPI, grace_s: float, **config: object) -> None:
    """``uvicorn.run(app, **config)`` with the drain of ``app``'s gateway; exits 3 if startup failed."""
    state: GatewayState = app.state.gateway
    uvicorn_config = uvicorn.Config(app, timeout_graceful_shutdown=UVICORN_GRACE_S, **config)  # type: ignore[arg-type]
    server = DrainingServer(uvicorn_config, state.drain, grace_s)
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE
