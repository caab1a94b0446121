"""Tenancy backends from settings: where the database and the secret live when the config does not say."""

from __future__ import annotations

from pathlib import Path

from tenancy.database import Database
from tenancy.secret import load_or_create_secret
from tenancy.settings import TenancySettings


def database_url(settings: TenancySettings, home: Path) -> str:
    """``settings.database_url``, else SQLite under ``<home>/tenancy.db``."""
    return settings.database_url or f"sqlite:///{(home / 'tenancy.db').expanduser().absolute()}"


def open_database(settings: TenancySettings, home: Path) -> Database:
    return Database(database_url(settings, home))


def secret_path(settings: TenancySettings, home: Path) -> Path:
    return settings.secret_file or home / "tenancy.secret"


def load_secret(settings: TenancySettings, home: Path) -> bytes:
    """The HMAC key of API key hashes (created, mode 0600, on first use)."""
    return load_or_create_secret(secret_path(settings, home))
