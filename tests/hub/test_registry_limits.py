"""A hostile registry cannot make the hub read an unbounded manifest, referrers index or tag page.

The registry here is a test double for a malicious server (a real HTTP server on loopback that answers
``/v2/`` like a registry and then streams without end); the honest paths are covered against Debian's
real ``docker-registry`` in ``test_registry.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import RegistryError
from hub.registry import RegistryClient
from hub.registry_body import MAX_METADATA_BYTES

CHUNK = b"x" * 65536


class _EndlessRegistry(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if "announce" in self.path:  # a declared size over the cap: refused before the body is read
            self.send_header("Content-Length", str(10 * MAX_METADATA_BYTES))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        try:
            while sent < 50 * MAX_METADATA_BYTES:
                if "announce" in self.path:
                    self.wfile.write(CHUNK)
                else:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
                sent += len(CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what the test wants


@pytest.fixture
def endless_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EndlessRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_endless_manifest_is_refused_at_the_cap(endless_registry: str) -> None:
    client = RegistryClient(endless_registry, timeout_s=10)
    with pytest.raises(RegistryError, match="more than the"):
        client.get_manifest("models/x", "latest")


def test_a_manifest_announced_over_the_cap_is_refused_unread(endless_registry: str) -> None:
    client = RegistryClient(endless_registry, timeout_s=10)
    with pytest.raises(RegistryError, match="announced"):
        client.get_manifest("announce/x", "latest")


def test_endless_referrers_and_tag_pages_are_refused(endless_registry: str) -> None:
    client = RegistryClient(endless_registry, timeout_s=10)
    with pytest.raises(RegistryError, match="more than the"):
        client.referrers("models/x", "sha256:" + "0" * 64)
    with pytest.raises(RegistryError, match="more than the"):
        client.tags("models/x")
