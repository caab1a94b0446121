"""Everything tenancy hands the gateway, built from its settings: the authenticator (API keys from the
database and the plain lists, then OIDC issuers), the usage ledger, and the key manager."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.responses import ResponseStore
from core.tenancy import Authenticator, KeyManager, Principal, RateLimiter, UsageReader, UsageSink
from tenancy.build import load_secret, open_database
from tenancy.database import Database
from tenancy.key_authenticator import KeyAuthenticator
from tenancy.keys import KeyStore
from tenancy.response_store import SqlResponseStore
from tenancy.settings import TenancySettings
from tenancy.usage_report import LedgerReader


class AuthenticatorChain:
    """Asks each authenticator in turn; the first that knows the token decides."""

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        self._authenticators = tuple(authenticators)

    async def authenticate(self, token: str) -> Principal | None:
        for authenticator in self._authenticators:
            principal = await authenticator.authenticate(token)
            if principal is not None:
                return principal
        return None


@dataclass(frozen=True)
class TenancyServices:
    authenticator: Authenticator
    usage: UsageSink | None
    key_manager: KeyManager
    usage_reader: UsageReader
    limiter: RateLimiter | None
    responses: ResponseStore | None = None  # stored /v1/responses, in the same database
    database: Database | None = None  # the gateway database: files and vector stores keep rows there too


def build_tenancy(
    settings: TenancySettings, home: Path, *, static_keys: Sequence[str] = (), admin_keys: Sequence[str] = ()
) -> TenancyServices:
    """``static_keys`` / ``admin_keys``: the gateway's plain lists, kept working as the default project."""
    database = open_database(settings, home)
    store = KeyStore(database, load_secret(settings, home))
    authenticators: list[Authenticator] = [
        KeyAuthenticator(store, static_keys=static_keys, admin_keys=admin_keys, cache_s=settings.key_cache_s)
    ]
    if settings.oidc:
        from tenancy.oidc import OidcAuthenticator

        authenticators.append(OidcAuthenticator(settings.oidc))
    usage: UsageSink | None = None
    if settings.ledger.enabled:
        from tenancy.ledger import UsageLedger

        spill = settings.ledger.spill_file or home / "usage-spill.jsonl"
        usage = UsageLedger(database, settings.ledger, spill)
    from tenancy.limits import build_rate_limiter

    limiter = build_rate_limiter(database, settings.limits)
    chain = authenticators[0] if len(authenticators) == 1 else AuthenticatorChain(authenticators)
    return TenancyServices(
        authenticator=chain,
        usage=usage,
        key_manager=store,
        usage_reader=LedgerReader(database),
        limiter=limiter,
        responses=SqlResponseStore(database, settings.response_row_max_bytes),
        database=database,
    )
