"""API keys of projects, in the tenancy database: created, listed, revoked; stored as keyed hashes only.

A token reads ``sk-aihub-<key_id>-<secret>``. The key id (``key_`` and 12 base32 characters) is public:
it is what logs, the usage ledger and ``aihub keys ls`` show. The secret (32 random bytes, URL-safe
base64) is shown once by ``create`` and never stored: the row holds HMAC-SHA256 of the whole token under
the site's tenancy secret (``tenancy.secret``), so a copy of the database alone neither yields keys nor
lets anyone test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidRequestError
from core.tenancy import ENDPOINT_FAMILIES, KeyInfo, Limits, Scopes
from tenancy.database import Database, DatabaseError

TOKEN_PREFIX = "sk-aihub-"
KEY_ID_PREFIX = "key_"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32: 12 characters are 60 random bits
_ID_CHARS = 12
_SECRET_BYTES = 32
_TOKEN = re.compile(r"sk-aihub-(key_[a-z2-7]{12})-([A-Za-z0-9_-]{43})", re.ASCII)
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_PATTERN = re.compile(r"[!-~]{1,256}", re.ASCII)  # printable ASCII, no spaces
MAX_TOKEN_CHARS = 512  # longer Authorization values are not hashed at all

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_keys (
        key_id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        label TEXT NOT NULL,
        models TEXT NOT NULL,
        endpoints TEXT NOT NULL,
        rpm BIGINT,
        tpm BIGINT,
        max_concurrency INTEGER,
        token_budget BIGINT,
        budget_period TEXT NOT NULL,
        admin INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        revoked_at DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS api_keys_project ON api_keys (project)",
)
_COLUMNS = (
    "key_id, project, key_hash, label, models, endpoints, rpm, tpm, max_concurrency, token_budget, "
    "budget_period, admin, created_at, expires_at, revoked_at"
)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as the authenticator needs it: its info and the keyed hash to compare with."""

    info: KeyInfo
    digest: bytes


def parse_token(token: str) -> str | None:
    """The key id of a well-formed ``sk-aihub-…`` token; None for anything else."""
    if len(token) > MAX_TOKEN_CHARS:
        return None
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


def token_digest(secret: bytes, token: str) -> bytes:
    """HMAC-SHA256 of the whole token: every token, well-formed or not, costs the same to check."""
    # surrogatepass: a str from anywhere (a fuzzer, a mis-decoded header) hashes instead of raising.
    return hmac.new(secret, token.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


class KeyStore:
    """The ``api_keys`` table (SQLite or PostgreSQL). Satisfies ``core.tenancy.KeyManager``."""

    def __init__(self, database: Database, secret: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 32:
            raise ValueError("the tenancy secret must hold at least 32 bytes")
        self.database = database
        self._secret = secret
        self._clock = clock
        try:
            database.apply_schema(SCHEMA)
        except DatabaseError:
            # Gateways starting together race on CREATE … IF NOT EXISTS, and PostgreSQL fails the
            # losers; the winner's table is there now, so a second go succeeds (or says why it cannot).
            time.sleep(0.2)
            database.apply_schema(SCHEMA)

    def __repr__(self) -> str:  # never the secret
        return f"KeyStore({self.database!r})"

    def digest(self, token: str) -> bytes:
        return token_digest(self._secret, token)

    def create(
        self,
        project: str,
        *,
        scopes: Scopes = Scopes(),
        limits: Limits = Limits(),
        admin: bool = False,
        label: str = "",
        expires_at: float | None = None,
    ) -> tuple[str, KeyInfo]:
        now = self._clock()
        _validate(project, scopes, limits, label, expires_at, now)
        # A clash of 60 random bits is not expected; were one to happen, the next id is drawn.
        for _ in range(5):
            key_id = KEY_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_CHARS))
            token = f"{TOKEN_PREFIX}{key_id}-{secrets.token_urlsafe(_SECRET_BYTES)}"
            info = KeyInfo(
                key_id=key_id,
                project=project,
                scopes=scopes,
                limits=limits,
                admin=admin,
                label=label,
                created_at=now,
                expires_at=expires_at,
            )
            with self.database.transaction() as cursor:
                cursor.execute(
                    self.database.sql(
                        f"INSERT INTO api_keys ({_COLUMNS}) VALUES ({', '.join('?' * 15)}) "
                        "ON CONFLICT (key_id) DO NOTHING"
                    ),
                    _row(info, self.digest(token)),
                )
                if cursor.rowcount == 1:
                    return token, info
        raise RuntimeError("could not draw an unused key id")  # pragma: no cover

    def list(self, project: str | None = None) -> list[KeyInfo]:
        if project is None:
            rows = self.database.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
        else:
            rows = self.database.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE project = ? ORDER BY created_at, key_id", (project,)
            )
        return [_stored(row).info for row in rows]

    def lookup(self, key_id: str) -> StoredKey | None:
        rows = self.database.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
        return _stored(rows[0]) if rows else None

    def get(self, key_id: str) -> KeyInfo | None:
        stored = self.lookup(key_id)
        return stored.info if stored else None

    def revoke(self, key_id: str) -> KeyInfo | None:
        with self.database.transaction() as cursor:
            # COALESCE: revoking twice keeps the first time.
            cursor.execute(
                self.database.sql(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?"
                ),
                (self._clock(), key_id),
            )
            cursor.execute(self.database.sql(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?"), (key_id,))
            rows = cursor.fetchall()
        return _stored(rows[0]).info if rows else None


def _validate(
    project: str, scopes: Scopes, limits: Limits, label: str, expires_at: float | None, now: float
) -> None:
    if not _PROJECT.fullmatch(project):
        raise InvalidRequestError(
            f"{project!r}: a project name is 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            param="project",
        )
    _check_patterns(scopes.models, "models")
    unknown = set(scopes.endpoints) - {"*", *ENDPOINT_FAMILIES}
    if not scopes.endpoints or unknown:
        raise InvalidRequestError(
            f"unknown endpoint families {sorted(unknown)}; known: {', '.join(ENDPOINT_FAMILIES)} (or *)",
            param="endpoints",
        )
    for name in ("rpm", "tpm", "max_concurrency", "token_budget"):
        value = getattr(limits, name)
        if value is not None and not (isinstance(value, int) and 1 <= value < 2**62):
            raise InvalidRequestError(f"{name} must be a positive integer, got {value!r}", param=name)
    if limits.budget_period not in ("day", "month"):
        raise InvalidRequestError("budget_period must be 'day' or 'month'", param="budget_period")
    if len(label) > 200 or not label.isprintable():
        raise InvalidRequestError("a label is at most 200 printable characters", param="label")
    if expires_at is not None and expires_at <= now:
        raise InvalidRequestError("expires_at must lie in the future", param="expires_at")


def _check_patterns(patterns: Sequence[str], param: str) -> None:
    if not patterns or len(patterns) > 64 or not all(_PATTERN.fullmatch(p) for p in patterns):
        raise InvalidRequestError(
            f"{param}: 1-64 patterns of printable characters without spaces (e.g. 'rag/p-*,smollm2-*')",
            param=param,
        )


def _row(info: KeyInfo, digest: bytes) -> tuple[Any, ...]:
    limits = info.limits
    return (
        info.key_id,
        info.project,
        digest.hex(),
        info.label,
        json.dumps(list(info.scopes.models)),
        json.dumps(list(info.scopes.endpoints)),
        limits.rpm,
        limits.tpm,
        limits.max_concurrency,
        limits.token_budget,
        limits.budget_period,
        int(info.admin),  # INTEGER on both databases (PostgreSQL will not cast a bool into it)
        info.created_at,
        info.expires_at,
        info.revoked_at,
    )


def _stored(row: Sequence[Any]) -> StoredKey:
    (key_id, project, key_hash, label, models, endpoints, rpm, tpm, concurrency, budget, period, admin) = row[
        :12
    ]
    created_at, expires_at, revoked_at = row[12:]
    info = KeyInfo(
        key_id=key_id,
        project=project,
        scopes=Scopes(models=tuple(json.loads(models)), endpoints=tuple(json.loads(endpoints))),
        limits=Limits(
            rpm=rpm, tpm=tpm, max_concurrency=concurrency, token_budget=budget, budget_period=period
        ),
        admin=bool(admin),
        label=label,
        created_at=float(created_at),
        expires_at=None if expires_at is None else float(expires_at),
        revoked_at=None if revoked_at is None else float(revoked_at),
    )
    return StoredKey(info=info, digest=bytes.fromhex(key_hash))
