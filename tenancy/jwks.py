"""The signing keys of one OIDC issuer (a JWKS): read from a URL or a file, cached, refreshed on rotation.

Keys are public, so nothing here is secret; what matters is availability and not being abused: a refresh
triggered by a token's unknown ``kid`` happens at most once per ``min_refresh_s`` (callers are not yet
authenticated), and a failed fetch keeps the keys already known rather than locking every caller out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger(__name__)

Jwk = dict[str, Any]

MAX_JWKS_BYTES = 1 << 20  # real sets are a few KB; a bigger answer is a misconfigured URL or an attack
FETCH_TIMEOUT_S = 10.0  # the whole fetch: httpx's own timeouts are per read, a trickling server beats them
# Members of a private JWK: a set that (wrongly) publishes them must still only yield public keys.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JwksCache:
    """kid → JWK of one issuer. ``get`` refreshes when the cache is older than ``cache_s`` or the kid is
    unknown, never more than once per ``min_refresh_s``; concurrent callers share one fetch."""

    def __init__(
        self,
        *,
        url: str | None = None,
        file: Path | None = None,
        cache_s: float = 300.0,
        min_refresh_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (url is None) == (file is None):
            raise ValueError("a JWKS comes from exactly one of a URL and a file")
        self._url = url
        self._file = file
        self._cache_s = cache_s
        self._min_refresh_s = min_refresh_s
        self._clock = clock
        self._keys: dict[str | None, Jwk] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.loads = 0  # fetches or file reads attempted (tests, metrics)

    @property
    def source(self) -> str:
        return self._url if self._url is not None else str(self._file)

    async def get(self, kid: str | None) -> Jwk | None:
        """The key a token's ``kid`` names (no kid: the only key of the set, if there is exactly one)."""
        key = self._lookup(kid)
        fresh = self._loaded_at is not None and self._clock() - self._loaded_at < self._cache_s
        if key is not None and (fresh or self._lock.locked()):
            return key  # a known key is served (stale if need be) rather than waiting on another's fetch
        # A fetch in flight is waited for (the key may be in it); else refresh if the rate limit allows.
        if self._lock.locked() or self._may_refresh():
            async with self._lock:
                if self._may_refresh():  # checked again: the caller that held the lock may have refreshed
                    await self._refresh()
            key = self._lookup(kid)
        return key

    def _lookup(self, kid: str | None) -> Jwk | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _may_refresh(self) -> bool:
        return self._attempted_at is None or self._clock() - self._attempted_at >= self._min_refresh_s

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        self.loads += 1
        try:
            raw = await self._fetch() if self._url is not None else await asyncio.to_thread(self._read_file)
            keys = parse_jwks(raw)
        except (httpx.HTTPError, OSError, ValueError, TimeoutError) as exc:
            logger.warning(
                "JWKS %s could not be loaded (%s: %s); keeping the %d keys known",
                self.source,
                type(exc).__name__,
                str(exc)[:200],
                len(self._keys),
            )
            return
        added = keys.keys() - self._keys.keys()
        self._keys = keys
        self._loaded_at = self._clock()
        logger.info("JWKS %s loaded: %d keys (%d new)", self.source, len(keys), len(added))

    async def _fetch(self) -> bytes:
        assert self._url is not None
        async with (
            asyncio.timeout(FETCH_TIMEOUT_S),
            httpx.AsyncClient(timeout=5.0, follow_redirects=True, max_redirects=3) as client,
            client.stream("GET", self._url, headers={"accept": "application/json"}) as response,
        ):
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
            return bytes(body)

    def _read_file(self) -> bytes:
        assert self._file is not None
        with self._file.open("rb") as handle:
            raw = handle.read(MAX_JWKS_BYTES + 1)
        if len(raw) > MAX_JWKS_BYTES:
            raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        return raw


def parse_jwks(raw: bytes) -> dict[str | None, Jwk]:
    """The signing keys of a JWKS document by kid. Encryption keys and symmetric keys are dropped (a public
    set has no business holding an HMAC secret); a set without any usable key is an error, so that a
    broken answer never replaces good keys."""
    document = json.loads(raw)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS: no `keys` list")
    keys: dict[str | None, Jwk] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            continue
        keys.setdefault(kid, {name: value for name, value in jwk.items() if name not in _PRIVATE_MEMBERS})
    if not keys:
        raise ValueError("JWKS holds no signing key")
    return keys
