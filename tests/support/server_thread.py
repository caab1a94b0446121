"""A real uvicorn server on 127.0.0.1 in a thread, on the protocol ``aihub serve`` runs."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from gateway.fast_path.http_protocol import CoalescingHttpToolsProtocol


class ServerThread:
    def __init__(self, app: Any, start_timeout_s: float = 30.0) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            http=CoalescingHttpToolsProtocol,
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self._start_timeout_s = start_timeout_s

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self._start_timeout_s
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert self.thread.is_alive(), "uvicorn exited"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
