"""Settings of the tenancy package (``tenancy`` section of the config file, ``AIHUB_TENANCY__*`` env)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OidcIssuerSettings(BaseModel):
    """One identity provider whose bearer JWTs the gateway accepts (Keycloak, MyAccessID, …)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str  # the exact `iss` value
    audience: str  # the `aud` the token must carry
    jwks_url: str | None = None  # fetched and cached; refreshed when a token names an unknown `kid`
    jwks_file: Path | None = None  # or a file (air-gapped sites)
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    project_claim: str = (
        "project"  # the claim that names the project; a list claim (groups) takes the first match
    )
    project_prefix: str = ""  # e.g. "/aihub/" for Keycloak groups like /aihub/climate → climate
    models: tuple[str, ...] = ("*",)  # scopes of every caller from this issuer
    endpoints: tuple[str, ...] = ("*",)
    jwks_cache_s: float = Field(default=300.0, gt=0)
    # An unknown `kid` refetches the JWKS (key rotation), at most once per this many seconds: a flood of
    # made-up kids must not turn the gateway into a load generator against the IdP.
    jwks_min_refresh_s: float = Field(default=10.0, ge=0)
    leeway_s: float = Field(default=30.0, ge=0)  # clock skew allowed on exp / nbf

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        # `none` accepts unsigned tokens; HS* with a public JWKS lets anyone sign with the public key.
        refused = [alg for alg in algorithms if alg.lower() == "none" or alg.upper().startswith("HS")]
        if refused or not algorithms:
            raise ValueError(
                f"algorithms must be asymmetric (RS*, PS*, ES*, EdDSA), not {refused or 'empty'}"
            )
        return algorithms

    @model_validator(mode="after")
    def _one_jwks_source(self) -> OidcIssuerSettings:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError(f"issuer {self.issuer!r}: set exactly one of jwks_url and jwks_file")
        return self


class LedgerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    queue_size: int = Field(default=10_000, ge=1)
    batch_size: int = Field(default=500, ge=1)
    flush_interval_s: float = Field(default=0.5, gt=0)
    # When the queue is full or the database is down: `spill` serves and writes rows to a local file
    # replayed later; `fail_closed` refuses new requests (503) until rows can be written again.
    on_failure: Literal["spill", "fail_closed"] = "spill"
    spill_file: Path | None = None  # None: <home>/usage-spill.jsonl
    # While the database fails: how often the writer tries it again (spilled rows are replayed then).
    retry_interval_s: float = Field(default=1.0, gt=0)
    # aclose() waits this long for the writer; what it has not written by then goes to the spill file.
    close_timeout_s: float = Field(default=10.0, gt=0)


class LimitSettings(BaseModel):
    """How requests, tokens, concurrency and budgets are counted across gateway processes
    (``tenancy/limits.py``). The limits themselves are the keys' and the projects'."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # Each process leases this share of a window's allowance at a time from the shared counter. A lease
    # never overshoots the counter; what a process leased and did not use is lost when the window ends,
    # so the limit is under-used by at most one lease per process (1% with the default).
    lease_fraction: float = Field(default=0.01, gt=0, le=1)
    # Tokens spent beyond a process's lease (a request larger than expected) reach the shared counter
    # this often, or at once when they pass `flush_fraction` of the limit; idle concurrency slots go back
    # to the other processes at this pace too.
    flush_interval_s: float = Field(default=0.1, gt=0)
    flush_fraction: float = Field(default=0.01, gt=0, le=1)
    # A process's concurrency slots expire this long after its last heartbeat (a crashed gateway's slots
    # come back); heartbeats go every third of it.
    concurrency_ttl_s: float = Field(default=15.0, gt=0)
    project_cache_s: float = Field(default=1.0, ge=0)  # project limit changes are seen within this time
    database_timeout_s: float = Field(default=2.0, gt=0)  # an admit waits no longer on the database
    retry_interval_s: float = Field(default=1.0, gt=0)  # after a failure, no query for this long
    # When the database fails: `fail_closed` answers 503 to requests that need it (those still within
    # their process's lease are served); `fail_open` serves them and charges them once it works again.
    on_database_error: Literal["fail_open", "fail_closed"] = "fail_closed"
    # rpm and tpm: `sliding` counts the trailing minute (the previous UTC minute's count weighted by how
    # much of it is still inside, plus this minute's), so no burst passes a limit across a minute's
    # boundary; `fixed` counts each UTC minute alone (up to twice a limit across a boundary).
    # Token budgets always count whole UTC days or months.
    window: Literal["sliding", "fixed"] = "sliding"


class TenancySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AIHUB_TENANCY_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    # Off: the gateway's plain `api_keys` list (or no auth), nothing counted. On: keys and projects from
    # the database, OIDC issuers, the usage ledger.
    enabled: bool = False
    # sqlite:///abs/path.db or postgresql://user@host:port/db. None: SQLite under <home>/tenancy.db.
    database_url: str | None = None
    # The key that hashes API key secrets (HMAC-SHA256); created on first use, mode 0600.
    # None: <home>/tenancy.secret. Every gateway sharing a database needs the same file.
    secret_file: Path | None = None
    key_cache_s: float = Field(default=1.0, ge=0)  # revocations are seen within this time
    oidc: tuple[OidcIssuerSettings, ...] = ()
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    # The size cap of one stored /v1/responses row (the response, its input and its conversation).
    response_row_max_bytes: int = Field(default=1 << 20, ge=1024)
