"""Bearer JWTs from the sites' identity providers (Keycloak, MyAccessID, …) → a Principal.

The token's own header and ``iss`` are read unverified only to pick the configured issuer and its key;
everything that decides is the issuer's settings: its algorithms (asymmetric only, the token's ``alg`` must
be one of them and fit the key type), its JWKS, its audience. Every failure is ``None`` (the gateway's
401, the same for every reason) and a debug log line with the reason, never the token.

Timing: nothing secret is compared here. The keys are public and signature checks are done by
``cryptography``; the paths differ in time only by what the caller already knows (its token's shape).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.utils import base64url_decode

from core.tenancy import Principal, Scopes
from tenancy.jwks import Jwk, JwksCache
from tenancy.settings import OidcIssuerSettings

logger = logging.getLogger(__name__)

# Keycloak tokens with many groups run to a few KB; far above that is not a token worth parsing.
MAX_TOKEN_CHARS = 16_384
# Three base64url segments, none empty: an unsigned (`alg: none`) token has an empty third one.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# A project name from an IdP lands in the ledger, metrics labels and logs: keep it to a plain name.
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# The algorithms accepted and the key each needs: (kty, crv or None for any). An RSA key can never verify
# an EC signature and the reverse; HS* is absent on purpose (see OidcIssuerSettings.algorithms).
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}
_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]


class _Rejected(Exception):
    """A token turned down, with the reason for the debug log (never the token itself)."""


@dataclass
class _Issuer:
    settings: OidcIssuerSettings
    jwks: JwksCache
    scopes: Scopes
    # (kid, alg) → the JWK dict it was built from and the key; the dict's identity changes on a refresh.
    _keys: dict[tuple[str | None, str], tuple[Jwk, jwt.PyJWK]] = field(default_factory=dict)

    def key(self, kid: str | None, alg: str, jwk: Jwk) -> jwt.PyJWK:
        cached = self._keys.get((kid, alg))
        if cached is not None and cached[0] is jwk:
            return cached[1]
        kty, crv = _KEY_TYPES[alg]
        if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
            raise _Rejected(f"a {alg} token names a key of another type or curve")
        if jwk.get("alg", alg) != alg:
            raise _Rejected(f"a {alg} token names a key for {jwk.get('alg')}")
        # Bound to `alg`: PyJWT then verifies with exactly this algorithm, whatever else the token says.
        key = jwt.PyJWK(jwk, algorithm=alg)
        self._keys[(kid, alg)] = (jwk, key)
        return key


class OidcAuthenticator:
    """``core.tenancy.Authenticator`` for bearer JWTs of the configured issuers."""

    def __init__(
        self, issuers: Sequence[OidcIssuerSettings], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``clock`` (monotonic seconds) paces the JWKS cache; token times (exp, nbf) use the wall clock."""
        self._issuers: dict[str, _Issuer] = {}
        for settings in issuers:
            if settings.issuer in self._issuers:
                raise ValueError(f"OIDC issuer {settings.issuer!r} is configured twice")
            unknown = [alg for alg in settings.algorithms if alg not in _KEY_TYPES]
            if unknown:
                raise ValueError(f"OIDC issuer {settings.issuer!r}: unsupported algorithms {unknown}")
            jwks = JwksCache(
                url=settings.jwks_url,
                file=settings.jwks_file,
                cache_s=settings.jwks_cache_s,
                min_refresh_s=settings.jwks_min_refresh_s,
                clock=clock,
            )
            scopes = Scopes(models=settings.models, endpoints=settings.endpoints)
            self._issuers[settings.issuer] = _Issuer(settings, jwks, scopes)

    def jwks(self, issuer: str) -> JwksCache:
        """The key cache of one issuer (its ``loads`` count is what tests and metrics look at)."""
        return self._issuers[issuer].jwks

    async def authenticate(self, token: str) -> Principal | None:
        # Cheap filter first: API keys (`sk-…`) and garbage never reach a JSON parser.
        if not self._issuers or len(token) > MAX_TOKEN_CHARS or not _JWT_SHAPE.fullmatch(token):
            return None
        issuer_name = "?"
        try:
            issuer, header = self._pick_issuer(token)
            issuer_name = issuer.settings.issuer
            return await self._verify(issuer, header, token)
        except _Rejected as exc:
            logger.debug("OIDC token rejected (issuer %s): %s", issuer_name, exc)
        except jwt.PyJWTError as exc:
            # The class says why (ExpiredSignatureError, InvalidAudienceError, …); messages may quote claims.
            logger.debug("OIDC token rejected (issuer %s): %s", issuer_name, type(exc).__name__)
        except Exception as exc:
            # An auth boundary: anything unforeseen is a 401, not a 500 whose message might quote the token.
            logger.warning(
                "OIDC token rejected by an unexpected %s (issuer %s)", type(exc).__name__, issuer_name
            )
        return None

    def _pick_issuer(self, token: str) -> tuple[_Issuer, dict[str, Any]]:
        header_segment, payload_segment, _ = token.split(".")
        try:
            header = json.loads(base64url_decode(header_segment))
            claims = json.loads(base64url_decode(payload_segment))
        except (ValueError, RecursionError):  # bad base64, bad UTF-8, bad or absurdly nested JSON
            raise _Rejected("not a JWT") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise _Rejected("not a JWT")
        iss = claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise _Rejected("unknown issuer")  # not echoed: the value is the caller's
        return issuer, header

    async def _verify(self, issuer: _Issuer, header: dict[str, Any], token: str) -> Principal:
        settings = issuer.settings
        alg = header.get("alg")
        # The token's `alg` only selects among the issuer's own algorithms: `none` and HS* are never there.
        if not isinstance(alg, str) or alg not in settings.algorithms:
            raise _Rejected("algorithm not allowed for this issuer")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _Rejected("kid is not a string")
        jwk = await issuer.jwks.get(kid)
        if jwk is None:
            raise _Rejected("unknown kid")
        claims = jwt.decode(
            token,
            key=issuer.key(kid, alg, jwk),
            algorithms=[alg],
            audience=settings.audience,  # `aud` a string or a list holding it
            issuer=settings.issuer,
            leeway=settings.leeway_s,
            options={"require": _REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise _Rejected("sub is not a non-empty string")
        project = _project(claims, settings.project_claim, settings.project_prefix)
        if project is None:
            raise _Rejected(f"no project in claim {settings.project_claim!r}")
        return Principal(project=project, key_id=f"oidc:{settings.issuer}#{subject}", scopes=issuer.scopes)


def _claim(claims: dict[str, Any], name: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (Keycloak's ``realm_access.roles``) when
    no claim has the name itself (claim names may contain dots: ``https://site/project``)."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _project(claims: dict[str, Any], claim: str, prefix: str) -> str | None:
    """A string claim is the project; in a list claim (groups) the first entry with the prefix is. The
    prefix is stripped; what remains must be a plain name (a subgroup ``/aihub/a/b`` is not one)."""
    value = _claim(claims, claim)
    candidates = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.startswith(prefix):
            project = candidate[len(prefix) :]
            if _PROJECT_NAME.fullmatch(project):
                return project
    return None
