"""Who is calling and what they may do, and what their requests used: the seams between the gateway
and ``tenancy/`` (keys, OIDC, the usage ledger). The gateway sees tenancy only through these."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

# Endpoint families a key can be scoped to (``--endpoints chat,embeddings``).
ENDPOINT_FAMILIES = (
    "chat",
    "completions",
    "embeddings",
    "models",
    "vector_stores",
    "responses",
    "files",
    "console",
)
DEFAULT_PROJECT = "default"


@dataclass(frozen=True, slots=True)
class Scopes:
    """Which model ids (globs: ``rag/p-*``, ``smollm2-*``) and endpoint families a caller reaches."""

    models: tuple[str, ...] = ("*",)
    endpoints: tuple[str, ...] = ("*",)

    def allows_model(self, model_id: str) -> bool:
        return any(fnmatch.fnmatchcase(model_id, pattern) for pattern in self.models)

    def allows_endpoint(self, family: str) -> bool:
        return "*" in self.endpoints or family in self.endpoints


@dataclass(frozen=True, slots=True)
class Limits:
    """Per key or per project; None: no limit of that kind."""

    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # prompt + completion tokens per minute
    max_concurrency: int | None = None
    token_budget: int | None = None  # tokens per budget period
    budget_period: Literal["day", "month"] = "day"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``key_id`` is public, never the secret (``oidc:<issuer>#<sub>`` for JWTs)."""

    project: str
    key_id: str
    scopes: Scopes = field(default_factory=Scopes)
    limits: Limits = field(default_factory=Limits)
    admin: bool = False


@runtime_checkable
class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None:
        """The caller a bearer token stands for; None when the token is unknown, revoked, expired or
        malformed (the gateway answers 401 without saying which)."""
        ...


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One request, as the ledger keeps it."""

    request_id: str
    started_at: float  # unix time
    project: str
    key_id: str
    endpoint: str
    model: str
    status: int
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    composition: str | None = None  # composition digest of a rag/ or agent/ answer
    streamed: bool = False
    interrupted: bool = False  # the client left before the end: tokens are those actually generated


@runtime_checkable
class UsageSink(Protocol):
    def record(self, row: UsageRecord) -> None:
        """Queues the row (never blocks the request path); the policy decides what a full queue does."""
        ...

    def accepting(self) -> bool:
        """False while rows cannot be kept (a fail-closed ledger whose database is down): the gateway
        then refuses metered requests with a 503 rather than serve them unrecorded."""
        ...

    async def aclose(self) -> None:
        """Writes what is queued."""
        ...


def parse_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` → ``("a", "b")``; empty or None → ``("*",)`` (everything)."""
    if value is None:
        return ("*",)
    items = value.split(",") if isinstance(value, str) else list(value)
    cleaned = tuple(item.strip() for item in items if item.strip())
    return cleaned or ("*",)


# --- Key management: what the admin HTTP API and the CLI see of the key store (never a secret). ---


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One API key as listed and shown: its public id and what it may do; the secret is never kept."""

    key_id: str
    project: str
    scopes: Scopes = field(default_factory=Scopes)
    limits: Limits = field(default_factory=Limits)
    admin: bool = False
    label: str = ""
    created_at: float = 0.0  # unix time
    expires_at: float | None = None
    revoked_at: float | None = None

    def status(self, now: float) -> Literal["active", "revoked", "expired"]:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def principal(self) -> Principal:
        return Principal(
            project=self.project, key_id=self.key_id, scopes=self.scopes, limits=self.limits, admin=self.admin
        )


@runtime_checkable
class KeyManager(Protocol):
    """Creates, lists and revokes a tenancy database's keys. Synchronous (a database round trip):
    callers on the event loop go through ``asyncio.to_thread``. Invalid input raises
    ``InvalidRequestError``."""

    def create(
        self,
        project: str,
        *,
        scopes: Scopes = ...,
        limits: Limits = ...,
        admin: bool = False,
        label: str = "",
        expires_at: float | None = None,
    ) -> tuple[str, KeyInfo]:
        """A new key: its token (shown to the caller once, stored only as a keyed hash) and its info."""
        ...

    def list(self, project: str | None = None) -> list[KeyInfo]:
        """Every key (of ``project``), revoked and expired ones included, oldest first."""
        ...

    def get(self, key_id: str) -> KeyInfo | None: ...

    def revoke(self, key_id: str) -> KeyInfo | None:
        """Revokes the key (a second revoke keeps the first time); None when there is no such key."""
        ...


# --- Limits: requests, tokens, concurrency and budgets, held across gateway processes. ---


@runtime_checkable
class Permit(Protocol):
    """An admitted request. ``headers``: OpenAI's ``x-ratelimit-*`` for the response. ``finish`` is
    called exactly once, when the request has ended, with the tokens it used (0 for a failure)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def finish(self, prompt_tokens: int, completion_tokens: int) -> None: ...


@runtime_checkable
class RateLimiter(Protocol):
    async def admit(self, principal: Principal) -> Permit:
        """Admits a request of ``principal`` against its key's and its project's limits, or raises
        ``core.errors.RateLimitError`` (with ``Retry-After`` and ``x-ratelimit-*`` headers)."""
        ...

    async def aclose(self) -> None:
        """Gives unused leases back and stops background work (before the database is closed)."""
        ...


@runtime_checkable
class UsageReader(Protocol):
    """Sums of the ledger's rows per ``by`` group (model, key, day) in ``[since, until)`` (unix times);
    ``project`` None: every project (admins only; the gateway passes the caller's own otherwise)."""

    def report(
        self, project: str | None, since: float | None, until: float | None, by: str
    ) -> list[Mapping[str, object]]: ...
