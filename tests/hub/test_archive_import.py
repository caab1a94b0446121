"""`hub import` of hostile or broken archives: refused before anything is written, in one line."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hub.blobs
from aihub.hub_cli import hub_app
from core.errors import AihubError, ConflictError, InvalidReferenceError, InvalidSpecError
from hub.archive import export_archive, import_archive
from hub.archive_import import MAX_INDEX_BYTES
from hub.digests import digest_bytes
from hub.manifest import Layer, build_config, build_manifest
from hub.media_types import ANNOTATION_REF_NAME, FILE_LAYER, OCI_MANIFEST
from hub.store import LocalStore
from tests.hub.tar_builder import member, rewrite, sparse_member, write_tar

GIB = 1024**3
WRITE_LIMIT = 1024 * 1024


def snapshot(store: LocalStore) -> dict[str, int]:
    """Every file of the store (temp files included) with its size; lock files aside."""
    return {
        str(path.relative_to(store.root)): path.stat().st_size
        for path in store.root.rglob("*")
        if path.is_file() and not path.name.endswith(".lock")
    }


@pytest.fixture
def site_b(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "site-b", cache_dir=tmp_path / "site-b-cache")


@pytest.fixture
def write_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blob write past 1 MiB fails the test: a lying archive must be refused before its bytes land."""
    real = hub.blobs.copy_and_hash
    written = [0]

    class Counting:
        def __init__(self, dest: Any) -> None:
            self.dest = dest

        def write(self, data: bytes) -> Any:
            written[0] += len(data)
            assert written[0] <= WRITE_LIMIT, f"{written[0]:,} bytes written before any check"
            return self.dest.write(data)

    def bounded(source: Any, dest: Any, progress: Any = None) -> tuple[str, int]:
        return real(source, Counting(dest) if dest is not None else None, progress)

    monkeypatch.setattr(hub.blobs, "copy_and_hash", bounded)


def dataset_layout(layer_digest: str, layer_size: int) -> list[bytes]:
    """oci-layout, index.json, config and manifest of a dataset whose one layer is described as given."""
    layer = Layer("data.jsonl", FILE_LAYER, layer_digest, layer_size)
    config = build_config("dataset", {"files": ["data.jsonl"]}, [layer])
    manifest = build_manifest("dataset", digest_bytes(config), len(config), [layer])
    descriptor = {"mediaType": OCI_MANIFEST, "digest": digest_bytes(manifest), "size": len(manifest)}
    index = {
        "schemaVersion": 2,
        "manifests": [{**descriptor, "annotations": {ANNOTATION_REF_NAME: "datasets/big:v1"}}],
    }
    return [
        member("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        member("index.json", json.dumps(index).encode()),
        member(f"blobs/sha256/{digest_bytes(config)[7:]}", config),
        member(f"blobs/sha256/{digest_bytes(manifest)[7:]}", manifest),
    ]


def test_a_sparse_member_declaring_4_gib_is_refused_before_writing(
    site_b: LocalStore, tmp_path: Path, write_budget: None
) -> None:
    digest = "sha256:" + "ab" * 32
    members = [
        *dataset_layout(digest, 4 * GIB),
        sparse_member(f"blobs/sha256/{digest[7:]}", b"x" * 10_000, 4 * GIB),
    ]
    archive = write_tar(tmp_path / "sparse.tar", members)
    assert archive.stat().st_size < 20_000
    before = snapshot(site_b)
    with pytest.raises(InvalidSpecError, match="sparse"):
        import_archive(site_b, archive)
    assert snapshot(site_b) == before


def test_a_member_larger_than_its_descriptor_is_refused_before_writing(
    site_b: LocalStore, tmp_path: Path, write_budget: None
) -> None:
    data = b'{"q": 1}\n' * 100
    digest = digest_bytes(data)
    layout = dataset_layout(digest, len(data))  # the manifest says 900 bytes
    blob = f"blobs/sha256/{digest[7:]}"
    larger = write_tar(tmp_path / "larger.tar", [*layout, member(blob, b"\0" * 2 * WRITE_LIMIT)])
    # A header claiming 4 GiB whose data stops short: a truncated archive.
    truncated = write_tar(tmp_path / "cut.tar", [*layout, member(blob, data * 10, 4 * GIB)], end=False)
    before = snapshot(site_b)
    with pytest.raises(InvalidSpecError, match="its descriptor says 900"):
        import_archive(site_b, larger)
    with pytest.raises(InvalidSpecError, match="truncated"):
        import_archive(site_b, truncated)
    assert snapshot(site_b) == before


def test_index_json_is_capped(site_b: LocalStore, tmp_path: Path) -> None:
    sparse = write_tar(tmp_path / "sparse-index.tar", [sparse_member("index.json", b"{}", 64 * 1024 * 1024)])
    huge = {"manifests": [], "padding": " " * (MAX_INDEX_BYTES + 1)}
    big = write_tar(tmp_path / "big-index.tar", [member("index.json", json.dumps(huge).encode())])
    before = snapshot(site_b)
    with pytest.raises(InvalidSpecError, match="sparse"):
        import_archive(site_b, sparse)
    with pytest.raises(InvalidSpecError, match=f"more than {MAX_INDEX_BYTES:,}"):
        import_archive(site_b, big)
    assert snapshot(site_b) == before


@pytest.fixture
def exported(store: LocalStore, composed: dict[str, str], tmp_path: Path) -> Path:
    export_archive(store, "rag/docs-qa:prod", tmp_path / "rag.tar")
    return tmp_path / "rag.tar"


def _retag(ref_name: str, kind_of: str) -> Callable[[dict[str, Any]], None]:
    def change(index: dict[str, Any]) -> None:
        for entry in index["manifests"]:
            if entry["digest"] == kind_of:
                entry.setdefault("annotations", {})[ANNOTATION_REF_NAME] = ref_name

    return change


def test_import_keeps_names_to_their_kind(
    exported: Path, composed: dict[str, str], site_b: LocalStore, tmp_path: Path
) -> None:
    prompt_as_model = rewrite(
        exported,
        tmp_path / "a.tar",
        index=_retag("models/smollm2-135m-instruct:latest", composed["prompt"]),
    )
    before = snapshot(site_b)
    with pytest.raises(InvalidReferenceError, match="models/ namespace"):
        import_archive(site_b, prompt_as_model)
    assert snapshot(site_b) == before
    # A name outside the well-known namespaces keeps the kind its tags already point at.
    (tmp_path / "a.txt").write_text("a")
    site_b.push("dataset", "team/thing", {"files": ["a.txt"]}, {"a.txt": tmp_path / "a.txt"})
    before = snapshot(site_b)
    with pytest.raises(ConflictError, match="team/thing already tags dataset"):
        import_archive(
            site_b, rewrite(exported, tmp_path / "b.tar", index=_retag("team/thing:v2", composed["prompt"]))
        )
    assert snapshot(site_b) == before


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{digest[7:]}"


def test_import_refuses_incomplete_artifacts(
    store: LocalStore, exported: Path, composed: dict[str, str], site_b: LocalStore, tmp_path: Path
) -> None:
    model = store.manifest(composed["model"])
    prompt = composed["prompt"]

    def unlist_prompt(index: dict[str, Any]) -> None:
        index["manifests"] = [entry for entry in index["manifests"] if entry["digest"] != prompt]

    before = snapshot(site_b)
    for drop, index, message in [
        (model.layers[0].digest, None, "incomplete: layer model/model.safetensors is missing"),
        (model.config_digest, None, "config .* is missing: the artifact is incomplete"),
        (prompt, None, "manifest .* is missing: the artifact is incomplete"),
        (prompt, unlist_prompt, f"prompts/rag-answer@{prompt} is not in the archive"),
    ]:
        cut = rewrite(exported, tmp_path / "cut.tar", drop=[_blob_name(drop)], index=index)
        with pytest.raises(AihubError, match=message):
            import_archive(site_b, cut)
        assert snapshot(site_b) == before
    import_archive(site_b, exported)  # the whole archive goes in
    assert site_b.resolve("rag/docs-qa:prod").digest == composed["pipeline"]


# --- the CLI: one line, exit 1, nothing written (row 8) -------------------------------------------

runner = CliRunner()


def _truncated(exported: Path, target: Path) -> Path:
    data = exported.read_bytes()
    target.write_bytes(data[: len(data) - 30_000])  # cuts into the last blob
    return target


BAD_INDEXES: dict[str, bytes] = {
    "not-json": b"{not json",
    "a-list": b"[]",
    "no-digest": b'{"manifests": [{"size": 3}]}',
    "bad-digest": b'{"manifests": [{"digest": "../../etc/passwd", "size": 3}]}',
    "bad-ref": json.dumps(
        {
            "manifests": [
                {"digest": "sha256:" + "0" * 64, "size": 3, "annotations": {ANNOTATION_REF_NAME: "Bad Ref"}}
            ]
        }
    ).encode(),
}


@pytest.mark.parametrize("case", [*BAD_INDEXES, "truncated"])
def test_cli_import_of_a_broken_archive_is_one_line(case: str, exported: Path, tmp_path: Path) -> None:
    if case == "truncated":
        archive = _truncated(exported, tmp_path / "cut.tar")
    else:
        archive = write_tar(tmp_path / f"{case}.tar", [member("index.json", BAD_INDEXES[case])])
    home = tmp_path / "home"
    assert runner.invoke(hub_app, ["--home", str(home), "ls"]).exit_code == 0
    store = LocalStore(home / "hub", cache_dir=tmp_path / "unused")
    before = snapshot(store)
    result = runner.invoke(hub_app, ["--home", str(home), "import", str(archive)])
    assert isinstance(result.exception, SystemExit), result.exception  # no uncaught exception
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: archive"), result.stderr
    assert snapshot(store) == before


def test_cli_import_prints_no_traceback(exported: Path, tmp_path: Path) -> None:
    archive = _truncated(exported, tmp_path / "cut.tar")
    command = [
        sys.executable,
        "-m",
        "aihub.cli",
        "hub",
        "--home",
        str(tmp_path / "home"),
        "import",
        str(archive),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: archive"), done.stderr
