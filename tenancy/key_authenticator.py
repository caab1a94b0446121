"""Bearer tokens → principals: project keys from the tenancy database, plus the config's plain lists.

Checks run in constant time with respect to the token's content: every token is hashed in full and
compared, whole digest against whole digest, with ``hmac.compare_digest`` against every listed key and
against the stored hash of its key id (a random stand-in when the id is unknown). How many leading
characters of a guess were right therefore never changes how long the answer takes.

Looked-up keys are cached for ``cache_s`` (``tenancy.key_cache_s``, 1 s by default): a revocation is
seen within that time by every gateway sharing the database. Unknown ids are cached as well, in a
bounded table of their own, so a flood of made-up ids neither reaches the database every time nor
pushes real keys out of the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from core.tenancy import DEFAULT_PROJECT, Principal
from tenancy.keys import MAX_TOKEN_CHARS, KeyStore, StoredKey, parse_token

V = TypeVar("V")


class _TtlCache(Generic[V]):
    """A small LRU with per-entry deadlines (monotonic seconds)."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._max = max_entries

    def get(self, key: str, now: float) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= now:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    def put(self, key: str, value: V, deadline: float) -> None:
        self._entries[key] = (deadline, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class KeyAuthenticator:
    """``core.tenancy.Authenticator`` over a ``KeyStore`` (or none) and the plain key lists.

    ``static_keys`` (the gateway's ``api_keys``) stand for the default project, as ``static:<index>``;
    ``admin_keys`` for admins, as ``admin:<index>``. Database errors propagate (``DatabaseError``, a
    503): an outage is not an unknown key.
    """

    def __init__(
        self,
        store: KeyStore | None,
        *,
        static_keys: Sequence[str] = (),
        admin_keys: Sequence[str] = (),
        cache_s: float = 1.0,
        max_cache_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache_s = cache_s
        self._clock = clock
        self._monotonic = monotonic
        self._found: _TtlCache[StoredKey] = _TtlCache(max_cache_entries)
        self._missing: _TtlCache[None] = _TtlCache(max_cache_entries)
        self._pending: dict[str, asyncio.Future[StoredKey | None]] = {}
        # The listed keys are compared as digests under a key of this process: fixed-length compares,
        # and the plain keys are not kept in this object.
        self._list_key = secrets.token_bytes(32)
        listed = [
            (key, Principal(project=DEFAULT_PROJECT, key_id=f"static:{i}"))
            for i, key in enumerate(static_keys)
        ]
        listed += [
            (key, Principal(project=DEFAULT_PROJECT, key_id=f"admin:{i}", admin=True))
            for i, key in enumerate(admin_keys)
        ]
        self._listed = [(self._list_digest(key), principal) for key, principal in listed if key]
        # Compared with when a key id is unknown, so that an unknown id costs the same as a wrong secret.
        self._stand_in = secrets.token_bytes(32)

    def __repr__(self) -> str:  # never a key
        return f"KeyAuthenticator(store={self._store!r}, listed={len(self._listed)})"

    def _list_digest(self, token: str) -> bytes:
        return hmac.new(self._list_key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    async def authenticate(self, token: str) -> Principal | None:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return None
        listed = self._match_listed(token)
        if listed is not None:
            return listed
        if self._store is None:
            return None
        key_id = parse_token(token)
        if key_id is None:
            return None
        stored = await self._lookup(key_id)
        expected = stored.digest if stored is not None else self._stand_in
        matches = hmac.compare_digest(self._store.digest(token), expected)
        if not matches or stored is None or stored.info.status(self._clock()) != "active":
            return None
        return stored.info.principal()

    def _match_listed(self, token: str) -> Principal | None:
        digest = self._list_digest(token)
        found: Principal | None = None
        for expected, principal in self._listed:  # every entry, even after a match
            if hmac.compare_digest(digest, expected) and found is None:
                found = principal
        return found

    async def _lookup(self, key_id: str) -> StoredKey | None:
        now = self._monotonic()
        hit, stored = self._found.get(key_id, now)
        if hit:
            return stored
        hit, _ = self._missing.get(key_id, now)
        if hit:
            return None
        # One database query per key id at a time: requests arriving meanwhile wait for its answer.
        loop = asyncio.get_running_loop()
        pending = self._pending.get(key_id)
        if pending is None or pending.get_loop() is not loop:
            assert self._store is not None
            pending = loop.create_task(asyncio.to_thread(self._store.lookup, key_id))
            self._pending[key_id] = pending
            pending.add_done_callback(lambda done: self._settle(key_id, done))
        # shield: a caller that goes away does not cancel the query the others wait for.
        return await asyncio.shield(pending)

    def _settle(self, key_id: str, done: asyncio.Future[StoredKey | None]) -> None:
        if self._pending.get(key_id) is done:
            del self._pending[key_id]
        if done.cancelled() or done.exception() is not None:  # retrieved here: logged by the awaiters
            return
        stored = done.result()
        if self._cache_s <= 0:
            return
        deadline = self._monotonic() + self._cache_s
        if stored is None:
            self._missing.put(key_id, None, deadline)
        else:
            self._found.put(key_id, stored, deadline)
