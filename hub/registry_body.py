"""Reading a registry's response bodies: blobs as a stream, metadata under a size cap.

A registry is a remote party: a manifest, a referrers index or a page of tags that never ends must not
be read into memory whole before its size is known to be sane.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests

from core.errors import RegistryError
from hub.digests import BUFFER_SIZE
from hub.manifest import MAX_MANIFEST_BYTES

# Manifests, referrers indices and catalog/tag pages: the hub's own metadata cap.
MAX_METADATA_BYTES = MAX_MANIFEST_BYTES


class ChunkReader:
    """A response body as a ``readinto`` source for hashing while writing."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readinto(self, buffer: memoryview) -> int:
        if not self._pending:
            self._pending = next(self._chunks, b"")
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def read_capped(response: requests.Response, what: str, limit: int = MAX_METADATA_BYTES) -> bytes:
    """The whole body of a streamed response, refused as soon as it passes ``limit`` bytes."""
    try:
        declared = int(response.headers.get("Content-Length", "0") or 0)
        if declared > limit:
            raise RegistryError(f"{what}: the registry announced {declared} bytes, over the {limit}-byte cap")
        received = bytearray()
        for chunk in response.iter_content(BUFFER_SIZE):
            received += chunk
            if len(received) > limit:
                raise RegistryError(f"{what}: the registry sent more than the {limit}-byte limit")
        return bytes(received)
    except requests.exceptions.RequestException as exc:
        raise RegistryError(f"{what}: reading the registry's reply failed: {exc}") from None
    except ValueError:  # a Content-Length that is not a number
        raise RegistryError(f"{what}: the registry sent an invalid Content-Length") from None
    finally:
        response.close()


def read_json_capped(response: requests.Response, what: str) -> dict[str, Any]:
    data = read_capped(response, what)
    try:
        document = json.loads(data)
    except ValueError:
        raise RegistryError(f"{what}: the registry's reply is not JSON") from None
    if not isinstance(document, dict):
        raise RegistryError(f"{what}: the registry's reply is not a JSON object")
    return document
