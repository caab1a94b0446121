"""Projects, API keys, OIDC, limits and the usage ledger (SQLite embedded, PostgreSQL shared)."""
