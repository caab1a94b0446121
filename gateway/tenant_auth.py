"""Tenancy at the edge: who is calling (an API key or an OIDC token → ``Principal``), which endpoint
families they may reach, and one usage row per request once its response has ended.

Only ``core.tenancy`` protocols are used here; the key store, the OIDC checks and the ledger live in
``tenancy/`` and are handed over by the composition root.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import (
    AihubError,
    AuthenticationError,
    EngineUnavailableError,
    ModelNotFoundError,
    PermissionDeniedError,
)
from core.tenancy import Authenticator, Permit, Principal, RateLimiter, UsageRecord, UsageSink
from gateway.errors import error_response
from gateway.metrics import ENDPOINT_SCOPE_KEY, MODEL_SCOPE_KEY, START_SCOPE_KEY

logger = logging.getLogger(__name__)

PRINCIPAL_SCOPE_KEY = "aihub.principal"
USAGE_SCOPE_KEY = "aihub.usage"  # (prompt_tokens, completion_tokens), set by the routes
STREAMED_SCOPE_KEY = "aihub.streamed"
INTERRUPTED_SCOPE_KEY = "aihub.interrupted"
COMPOSITION_SCOPE_KEY = "aihub.composition"
REQUEST_ID_SCOPE_KEY = "aihub.request_id"

# Path prefix → the endpoint family a key's scopes name (``--endpoints chat,embeddings``).
_FAMILIES = (
    ("/v1/chat/completions", "chat"),
    ("/v1/completions", "completions"),
    ("/v1/embeddings", "embeddings"),
    ("/v1/models", "models"),
    ("/v1/vector_stores", "vector_stores"),
    ("/v1/responses", "responses"),
    ("/v1/files", "files"),
    # The console's data (the hub's artifacts and files, eval reports): its pages themselves are open.
    ("/ui/api", "console"),
)


LEDGER_DOWN = EngineUnavailableError(
    "Usage cannot be recorded right now, and this gateway does not serve unrecorded requests.",
    code="usage_ledger_unavailable",
)


def endpoint_family(path: str) -> str | None:
    for prefix, family in _FAMILIES:
        if path.startswith(prefix):
            return family
    return None


def principal_of(scope: Scope) -> Principal | None:
    principal: Principal | None = scope.get(PRINCIPAL_SCOPE_KEY)
    return principal


def check_model_scope(principal: Principal, model_id: str, *other_names: str) -> None:
    """A model outside the caller's scopes does not exist for them: the same 404 as an unknown id.
    ``other_names``: further ids of the same model (an alias's canonical id); any one in scope is enough."""
    if not any(principal.scopes.allows_model(name) for name in (model_id, *other_names)):
        raise ModelNotFoundError(
            f"The model '{model_id}' does not exist or you do not have access to it.", param="model"
        )


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).partition(b" ")
            if scheme.lower() != b"bearer":
                return None
            text = token.strip(b" \t").decode("latin-1")  # HTTP's optional whitespace only
            return text or None
    return None


class TenancyMiddleware:
    """Authenticates every request outside ``open_paths``; records its usage when it has ended."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        usage: UsageSink | None,
        open_paths: Iterable[str],
        counters: Any | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.limiter = limiter
        self.usage = usage
        self.open_paths = frozenset(open_paths)
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        principal = await self.authenticator.authenticate(token) if token else None
        if principal is None:
            error = AuthenticationError(
                "Incorrect or missing API key. Pass it as 'Authorization: Bearer <key>'.",
                code="invalid_api_key",
            )
            await error_response(error, scope)(scope, receive, send)
            return
        family = endpoint_family(scope["path"])
        if family is not None and not principal.scopes.allows_endpoint(family):
            refused = PermissionDeniedError(
                f"This key may not call the {family} endpoints.", code="endpoint_not_allowed"
            )
            await error_response(refused, scope)(scope, receive, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        metered = family is not None and family != "models"
        if not metered or (self.usage is None and self.limiter is None):
            await self.app(scope, receive, send)
            return
        assert family is not None
        if self.usage is not None and not self.usage.accepting():
            await error_response(LEDGER_DOWN, scope)(scope, receive, send)
            return
        permit: Permit | None = None
        if self.limiter is not None:
            try:
                permit = await self.limiter.admit(principal)
            except AihubError as exc:  # a 429, or the limits database down (fail_closed: a 503)
                await error_response(exc, scope)(scope, receive, send)
                return
        extra = [(name.encode(), value.encode()) for name, value in permit.headers.items()] if permit else []
        status = 500

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if extra:  # x-ratelimit-* on every metered answer, as OpenAI sends them
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, status_send)
        finally:
            prompt_tokens, completion_tokens = scope.get(USAGE_SCOPE_KEY, (0, 0))
            if permit is not None:
                permit.finish(prompt_tokens, completion_tokens)
            if self.usage is not None:
                self._record(scope, principal, family, status)

    def _record(self, scope: Scope, principal: Principal, family: str, status: int) -> None:
        started = scope.get(START_SCOPE_KEY) or time.perf_counter()
        prompt_tokens, completion_tokens = scope.get(USAGE_SCOPE_KEY, (0, 0))
        model = scope.get(MODEL_SCOPE_KEY, "")
        row = UsageRecord(
            request_id=scope.get(REQUEST_ID_SCOPE_KEY) or "",
            started_at=time.time() - (time.perf_counter() - started),
            project=principal.project,
            key_id=principal.key_id,
            endpoint=scope.get(ENDPOINT_SCOPE_KEY, family),
            model=model,
            status=status,
            latency_s=time.perf_counter() - started,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            composition=scope.get(COMPOSITION_SCOPE_KEY),
            streamed=bool(scope.get(STREAMED_SCOPE_KEY)),
            interrupted=bool(scope.get(INTERRUPTED_SCOPE_KEY)),
        )
        assert self.usage is not None
        try:
            self.usage.record(row)
        except Exception:  # the ledger's policy failed too: say so loudly, never fail the answer sent
            logger.exception("usage of request %s could not be queued", row.request_id)
        if self.counters is not None:
            self.counters.observe(row)
