"""`aihub hub gc` keeps the blobs of uploaded files (no artifact references them; the gateway database
does) and still removes other unreferenced blobs."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aihub.hub_cli import hub_app
from hub.store import LocalStore
from retrievers.uploaded_files import UploadedFiles
from tenancy.database import Database


def test_gc_keeps_uploaded_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = LocalStore(home / "hub")
    database = Database(f"sqlite:///{home / 'gateway.db'}")
    uploaded = UploadedFiles(database, store.blobs, max_bytes=1 << 20).create(
        "default", "kept.txt", "assistants", b"an uploaded file"
    )
    database.close()
    stray = store.blobs.put_bytes(b"nothing references this")
    result = CliRunner().invoke(hub_app, ["--home", str(home), "gc", "--json"])
    assert result.exit_code == 0, result.output
    assert store.blobs.has(uploaded.digest)
    assert store.blobs.read_bytes(uploaded.digest) == b"an uploaded file"
    assert not store.blobs.has(stray)
