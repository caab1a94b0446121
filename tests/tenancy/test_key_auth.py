"""The key authenticator: project keys, the plain lists, caching and revocation, constant-time checks."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.tenancy import DEFAULT_PROJECT, Authenticator, Limits, Principal, Scopes
from tenancy.database import Database
from tenancy.key_authenticator import KeyAuthenticator
from tenancy.keys import KeyStore, StoredKey

SECRET = b"k" * 32


class CountingStore(KeyStore):
    """The real store, counting its database lookups (to see the cache at work)."""

    lookups = 0

    def lookup(self, key_id: str) -> StoredKey | None:
        self.lookups += 1
        return super().lookup(key_id)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CountingStore]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'tenancy.db'}")
    else:
        database = Database(request.getfixturevalue("postgres").new_database())
    yield CountingStore(database, SECRET)
    database.close()


async def test_a_project_key_authenticates_with_its_scopes_and_limits(store: CountingStore) -> None:
    scopes = Scopes(models=("rag/p-*",), endpoints=("chat",))
    token, info = store.create("climate", scopes=scopes, limits=Limits(rpm=5))
    auth = KeyAuthenticator(store)
    assert isinstance(auth, Authenticator)
    principal = await auth.authenticate(token)
    assert principal == Principal(project="climate", key_id=info.key_id, scopes=scopes, limits=Limits(rpm=5))
    assert not principal.admin
    assert await auth.authenticate(token) == principal
    assert store.lookups == 1  # the second call came from the cache
    admin_token, _ = store.create("ops", admin=True)
    admin = await auth.authenticate(admin_token)
    assert admin is not None and admin.admin


async def test_wrong_secret_with_the_right_key_id_is_refused(store: CountingStore) -> None:
    token, _ = store.create("climate")
    auth = KeyAuthenticator(store)
    last = "A" if token[-1] != "A" else "B"
    for wrong in (token[:-1] + last, token[:-43] + "A" * 43):
        assert await auth.authenticate(wrong) is None
    assert await auth.authenticate(token) is not None


async def test_expired_keys_are_refused(store: CountingStore) -> None:
    token, _ = store.create("climate", expires_at=time.time() + 3600)
    assert await KeyAuthenticator(store).authenticate(token) is not None
    later = KeyAuthenticator(store, clock=lambda: time.time() + 7200)
    assert await later.authenticate(token) is None


async def test_revocation_is_seen_within_the_cache_time(store: CountingStore) -> None:
    token, info = store.create("climate")
    auth = KeyAuthenticator(store, cache_s=1.0)
    assert await auth.authenticate(token) is not None
    # Revoked through another connection, as another gateway or `aihub keys revoke` would.
    other = Database(store.database.url)
    KeyStore(other, SECRET).revoke(info.key_id)
    other.close()
    revoked_at = time.monotonic()
    assert await auth.authenticate(token) is not None  # still cached: no database round trip per request
    while await auth.authenticate(token) is not None:
        assert time.monotonic() - revoked_at < 1.2, "revocation not seen within a second"
        await asyncio.sleep(0.05)


async def test_unknown_ids_are_cached_briefly_and_the_cache_is_bounded(store: CountingStore) -> None:
    auth = KeyAuthenticator(store, max_cache_entries=3)
    made_up = [f"sk-aihub-key_{c * 12}-{'A' * 43}" for c in "abcde"]
    for token in made_up:
        assert await auth.authenticate(token) is None
    assert store.lookups == 5
    assert await auth.authenticate(made_up[-1]) is None
    assert store.lookups == 5  # cached as unknown
    assert len(auth._missing) == 3
    assert await auth.authenticate(made_up[0]) is None  # evicted: asked again
    assert store.lookups == 6


async def test_concurrent_requests_share_one_lookup(store: CountingStore) -> None:
    token, _ = store.create("climate")
    auth = KeyAuthenticator(store)
    results = await asyncio.gather(*(auth.authenticate(token) for _ in range(20)))
    assert all(result is not None for result in results)
    assert store.lookups == 1


async def test_plain_and_admin_lists_keep_working_without_a_store() -> None:
    auth = KeyAuthenticator(None, static_keys=["sk-local-1", "sk-local-2"], admin_keys=["sk-admin"])
    assert await auth.authenticate("sk-local-2") == Principal(project=DEFAULT_PROJECT, key_id="static:1")
    admin = await auth.authenticate("sk-admin")
    assert admin == Principal(project=DEFAULT_PROJECT, key_id="admin:0", admin=True)
    for wrong in (
        "sk-local-3",
        "sk-local-",
        "sk-local-22",
        "",
        "sk-admin ",
        "sk-aihub-key_aaaaaaaaaaaa-" + "A" * 43,
    ):
        assert await auth.authenticate(wrong) is None
    assert "sk-local" not in repr(auth)


async def test_every_check_is_a_full_digest_compare(
    store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guess right up to its last byte and one wrong from its first take the same steps: the same
    compares, each of a whole 32-byte digest, whatever the id or the plain lists hold."""
    token, _ = store.create("climate")
    auth = KeyAuthenticator(store, static_keys=[token[:-1]], admin_keys=["sk-admin"])
    await auth.authenticate(token)  # warm the cache: both guesses then take the same path
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    prefix = len("sk-aihub-key_abcdefghijkl-")
    near = token[:-1] + ("A" if token[-1] != "A" else "B")
    far = token[:prefix] + ("A" if token[prefix] != "A" else "B") + token[prefix + 1 :]
    unknown_id = "sk-aihub-key_zzzzzzzzzzzz-" + token[prefix:]
    traces = []
    for guess in (near, far, unknown_id):
        calls.clear()
        assert await auth.authenticate(guess) is None
        traces.append(list(calls))
    assert traces[0] == traces[1] == traces[2] == [(32, 32)] * 3  # two listed keys, then the stored hash


@pytest.fixture
def fuzz_target(store: CountingStore) -> Iterator[tuple[asyncio.AbstractEventLoop, KeyAuthenticator]]:
    """One loop and one authenticator for every example (its caches fill up as a gateway's would)."""
    loop = asyncio.new_event_loop()
    store.create("climate")
    yield loop, KeyAuthenticator(store, static_keys=["sk-local-1"], admin_keys=["sk-admin"])
    loop.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.one_of(
        st.text(),
        st.binary(max_size=600).map(lambda raw: raw.decode("latin-1")),
        st.from_regex(r"sk-aihub-key_[a-z2-7]{12}-[A-Za-z0-9_-]{43}", fullmatch=True),
        st.from_regex(r"sk-aihub-.{0,80}", fullmatch=True),
        st.text(min_size=500, max_size=2000),
    )
)
def test_fuzzed_tokens_never_raise_and_never_pass(
    fuzz_target: tuple[asyncio.AbstractEventLoop, KeyAuthenticator], token: str
) -> None:
    loop, auth = fuzz_target
    assert loop.run_until_complete(auth.authenticate(token)) is None
