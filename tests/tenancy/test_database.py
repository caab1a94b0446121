"""The SQLite tenancy database is the owner's alone: key hashes and usage are not world-readable."""

from __future__ import annotations

import stat
from pathlib import Path

from tenancy.database import Database


def test_a_new_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/tenancy.db")
    try:
        database.connection().execute("CREATE TABLE t (x INTEGER)")
        database.connection().execute("INSERT INTO t VALUES (1)")
        files = [path for path in tmp_path.iterdir() if path.name.startswith("tenancy.db")]
        assert {path.name for path in files} >= {"tenancy.db", "tenancy.db-wal"}
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        database.close()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)  # the umask may have narrowed touch's mode
    database = Database(str(path))
    try:
        database.connection().execute("CREATE TABLE t (x INTEGER)")
    finally:
        database.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
