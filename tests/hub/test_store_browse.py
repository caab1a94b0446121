"""LocalStore as a ``core.store.BrowsableStore``: the index listing, files, one file, referrers, locks."""

from pathlib import Path

import pytest

from core.errors import ArtifactNotFoundError, IntegrityError, InvalidRequestError
from core.store import BrowsableStore
from hub.store import LocalStore


def test_local_store_is_browsable(store: LocalStore) -> None:
    assert isinstance(store, BrowsableStore)


def test_tag_entries_come_from_the_index_with_kinds_and_times(
    store: LocalStore, composed: dict[str, str]
) -> None:
    entries = {(e.name, e.tag): e for e in store.tag_entries()}
    assert set(entries) == {
        ("models/tiny-chat", "latest"),
        ("models/tiny-embedder", "latest"),
        ("prompts/rag-answer", "v1"),
        ("prompts/rag-answer", "latest"),
        ("indices/docs", "latest"),
        ("rag/docs-qa", "prod"),
        ("reports/docs-qa", "latest"),
    }
    assert entries[("rag/docs-qa", "prod")].kind == "pipeline"
    assert entries[("rag/docs-qa", "prod")].digest == composed["pipeline"]
    assert all(e.created and e.created.startswith("20") for e in entries.values())
    store.untag("prompts/rag-answer:v1")
    assert ("prompts/rag-answer", "v1") not in {(e.name, e.tag) for e in store.tag_entries()}


def test_files_and_one_file_verified(store: LocalStore, composed: dict[str, str]) -> None:
    files = {f.path: f for f in store.files(composed["model"])}
    assert set(files) == {"model/model.safetensors", "model/config.json", "model/tokenizer.json"}
    assert files["model/model.safetensors"].size == 200_000
    assert (
        store.read_file(composed["model"], "model/config.json", 1024)
        == b'{"architectures": ["LlamaForCausalLM"]}'
    )
    with pytest.raises(InvalidRequestError):
        store.read_file(composed["model"], "model/model.safetensors", 1024)
    with pytest.raises(ArtifactNotFoundError):
        store.read_file(composed["model"], "model/missing.bin", 1024)
    blob = store.blobs.path(files["model/config.json"].digest)
    blob.chmod(0o644)
    blob.write_bytes(b'{"architectures": ["Evil"]}')
    with pytest.raises(IntegrityError):
        store.read_file(composed["model"], "model/config.json", 1024)


def test_lock_of_a_pipeline_names_every_artifact(store: LocalStore, composed: dict[str, str]) -> None:
    lock = store.lock_of("rag/docs-qa:prod")
    assert lock["lock"]["root"] == composed["pipeline"]
    names = lock["names"]
    assert {names[composed[k]] for k in ("model", "embedder", "prompt", "index", "pipeline")} == {
        "models/tiny-chat",
        "models/tiny-embedder",
        "prompts/rag-answer",
        "indices/docs",
        "rag/docs-qa",
    }
    assert lock["composition_digest"].startswith("sha256:")
    assert [r.digest for r in store.referrers(composed["pipeline"])] == [composed["report"]]


def test_tag_entries_skip_untagged_referrers(
    store: LocalStore, composed: dict[str, str], tmp_path: Path
) -> None:
    store.push("eval-report", "reports/untagged", {"target": "rag/docs-qa:prod", "metrics": {}}, tags=())
    assert "reports/untagged" not in {e.name for e in store.tag_entries()}
    assert len(store.referrers(composed["pipeline"])) == 2
