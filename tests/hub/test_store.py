import errno
import os
import re
import time
from pathlib import Path

import pytest

from core.errors import (
    ArtifactNotFoundError,
    IntegrityError,
    InvalidReferenceError,
    InvalidSpecError,
    StorageError,
)
from core.store import ArtifactStore
from hub.blobs import BlobStore
from hub.gc import collect
from hub.lock import resolve_lock
from hub.media_types import MODEL_ARTIFACT_TYPE, MODEL_CONFIG, MODEL_WEIGHT, MODEL_WEIGHT_CONFIG
from hub.store import LocalStore
from hub.verify import verify_store


def test_local_store_satisfies_the_core_protocol(store: LocalStore) -> None:
    assert isinstance(store, ArtifactStore)


def test_layout_and_modelpack_media_types(store: LocalStore, composed: dict[str, str]) -> None:
    assert (store.root / "oci-layout").is_file() and (store.root / "index.json").is_file()
    manifest = store.manifest(composed["model"])
    assert manifest.raw["artifactType"] == MODEL_ARTIFACT_TYPE
    assert manifest.raw["config"]["mediaType"] == MODEL_CONFIG
    types = {layer.path: layer.media_type for layer in manifest.layers}
    assert types == {
        "model/model.safetensors": MODEL_WEIGHT,
        "model/config.json": MODEL_WEIGHT_CONFIG,
        "model/tokenizer.json": MODEL_WEIGHT_CONFIG,
    }
    prompt = store.manifest(composed["prompt"])
    assert prompt.raw["artifactType"] == "application/vnd.aihub.prompt.v1+json"


def test_references_are_pinned_to_digests(store: LocalStore, composed: dict[str, str]) -> None:
    pipeline = store.resolve("rag/docs-qa:prod")
    assert pipeline.spec["model"] == f"models/tiny-chat@{composed['model']}"
    assert pipeline.spec["prompt"] == f"prompts/rag-answer@{composed['prompt']}"
    assert pipeline.spec["indices"] == [f"indices/docs@{composed['index']}"]
    assert store.resolve("indices/docs").spec["embedder"] == f"models/tiny-embedder@{composed['embedder']}"


def test_bare_name_is_latest_and_digest_refs_resolve(store: LocalStore, composed: dict[str, str]) -> None:
    assert store.resolve("prompts/rag-answer").digest == composed["prompt"]
    assert store.resolve(f"prompts/rag-answer@{composed['prompt']}").tags == ("latest", "v1")
    with pytest.raises(ArtifactNotFoundError):
        store.resolve("prompts/rag-answer:v2")


def test_tags_move_digests_do_not(store: LocalStore, composed: dict[str, str]) -> None:
    old = composed["prompt"]
    moved = store.push(
        "prompt", "prompts/rag-answer", {"template": "Q: {{ q }}", "variables": ["q"]}, tags=["v1"]
    )
    assert moved.digest != old
    assert store.resolve("prompts/rag-answer:v1").digest == moved.digest
    assert store.resolve("prompts/rag-answer:latest").digest == old
    assert store.resolve(f"prompts/rag-answer@{old}").spec["variables"] == ["context", "question"]
    # the pipeline still pins the old prompt: its lock does not move with the tag
    assert resolve_lock(store, "rag/docs-qa:prod").to_dict()["lock"]["artifacts"][old]["kind"] == "prompt"


def test_pushing_the_same_content_twice_gives_the_same_digest(store: LocalStore) -> None:
    spec = {"template": "{{ a }}", "variables": ["a"]}
    assert store.push("prompt", "p/a", spec).digest == store.push("prompt", "p/b", spec).digest


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        ("widget", {}, "unknown artifact kind 'widget'"),
        ("prompt", {"template": "{{ x }}"}, "undeclared variable(s): x"),
        ("prompt", {"template": "{% if %}"}, "does not parse"),
        ("model", {"files": ["a.safetensors"], "context_length": 0}, "context_length"),
        ("model", {"type": "adapter", "files": ["a"], "context_length": 8}, "needs `base`"),
        ("pipeline", {"model": "Bad Ref!", "prompt": "p/x"}, "model"),
        ("index", {"backend": "faiss"}, "needs `embedder`"),
        ("agent", {"model": "m/x", "max_steps": 0}, "max_steps"),
        ("dataset", {"files": ["../escape.jsonl"]}, "relative path inside"),
    ],
)
def test_invalid_specs_are_refused_in_one_line(
    store: LocalStore, kind: str, spec: dict, message: str
) -> None:
    with pytest.raises(InvalidSpecError, match=re.escape(message)) as info:
        store.push(kind, "x/y", spec)
    assert "\n" not in info.value.message


def test_dangling_and_wrong_kind_references_are_refused(store: LocalStore, composed: dict[str, str]) -> None:
    with pytest.raises(InvalidSpecError, match="does not resolve"):
        store.push("pipeline", "rag/x", {"model": "models/missing", "prompt": "prompts/rag-answer"})
    with pytest.raises(InvalidSpecError, match="is a prompt, expected model"):
        store.push("pipeline", "rag/x", {"model": "prompts/rag-answer", "prompt": "prompts/rag-answer"})
    with pytest.raises(ArtifactNotFoundError):
        store.resolve("rag/x")


@pytest.mark.parametrize(
    "ref", ["", "UPPER/case", "a/b:", "a/b@sha256:123", "a//b", "a/b:bad tag", "a/b@md5:00"]
)
def test_malformed_references(store: LocalStore, ref: str) -> None:
    with pytest.raises(InvalidReferenceError):
        store.resolve(ref)


def test_tampered_blob_is_never_served(store: LocalStore, composed: dict[str, str]) -> None:
    config_digest = store.manifest(composed["prompt"]).config_digest
    path = store.blobs.path(config_digest)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"Question", b"Qvestion"))
    with pytest.raises(IntegrityError, match=config_digest):
        store.resolve("prompts/rag-answer")
    report = verify_store(store)
    assert not report.ok and any(config_digest in p for p in report.problems)


def test_tampered_layer_fails_materialize_and_verify(store: LocalStore, composed: dict[str, str]) -> None:
    weights = store.manifest(composed["model"]).layers[0].digest
    path = store.blobs.path(weights)
    os.chmod(path, 0o644)
    with open(path, "r+b") as handle:
        handle.write(b"\0\0\0\0")
    with pytest.raises(IntegrityError, match=weights):
        store.materialize("models/tiny-chat")
    assert not list(store.cache_dir.glob("*/model/model.safetensors"))
    assert not verify_store(store, "rag/docs-qa:prod").ok


def test_materialize_unpacks_once_and_verify_catches_a_tampered_copy(
    store: LocalStore, composed: dict[str, str], tmp_path: Path
) -> None:
    folder = store.materialize("models/tiny-chat")
    original = (tmp_path / "specs" / "model" / "model.safetensors").read_bytes()
    assert (folder / "model" / "model.safetensors").read_bytes() == original
    assert store.materialize("models/tiny-chat") == folder
    assert verify_store(store).ok
    target = folder / "model" / "config.json"
    stat = target.stat()
    os.chmod(target, 0o644)
    target.write_text('{"architectures": ["Evil"]}   ')
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a careful tamperer keeps the mtime
    report = verify_store(store)
    assert not report.ok and any("config.json" in p for p in report.problems)
    # verify dropped the bad copy; the next materialize unpacks verified content again
    again = store.materialize("models/tiny-chat")
    assert (again / "model" / "config.json").read_text() == '{"architectures": ["LlamaForCausalLM"]}'


def test_lock_lists_the_whole_composition(store: LocalStore, composed: dict[str, str]) -> None:
    lock = resolve_lock(store, "rag/docs-qa:prod")
    kinds = {entry.digest: entry.kind for entry in lock.entries}
    assert kinds == {
        composed["pipeline"]: "pipeline",
        composed["model"]: "model",
        composed["prompt"]: "prompt",
        composed["index"]: "index",
        composed["embedder"]: "model",
    }
    import hashlib
    import json

    canonical = json.dumps(lock.canonical(), sort_keys=True, separators=(",", ":")).encode()
    assert lock.composition_digest == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert (
        resolve_lock(store, f"rag/docs-qa@{composed['pipeline']}").composition_digest
        == lock.composition_digest
    )


def test_eval_report_attaches_to_the_exact_digest(store: LocalStore, composed: dict[str, str]) -> None:
    report = store.manifest(composed["report"])
    assert report.subject == composed["pipeline"]
    assert report.raw["subject"]["digest"] == composed["pipeline"]
    assert [r.digest for r in store.referrers(composed["pipeline"])] == [composed["report"]]


def test_gc_keeps_everything_referenced_and_removes_the_rest(
    store: LocalStore, composed: dict[str, str]
) -> None:
    orphan = store.push("prompt", "tmp/orphan", {"template": "orphan {{ x }}", "variables": ["x"]})
    store.untag("tmp/orphan:latest")
    # untagging the embedder's tag must not collect it: the index pins it by digest
    store.untag("models/tiny-embedder:latest")
    store.untag("reports/docs-qa:latest")
    report = collect(store)
    assert report.removed_blobs == 2  # the orphan's manifest and config
    assert not store.blobs.has(orphan.digest)
    assert store.resolve(f"models/tiny-embedder@{composed['embedder']}").kind == "model"
    # the untagged eval report lives on as a referrer of the live pipeline
    assert store.blobs.has(composed["report"])
    store.untag("rag/docs-qa:prod")
    collect(store)
    assert not store.blobs.has(composed["pipeline"]) and not store.blobs.has(composed["report"])
    assert store.blobs.has(composed["model"])  # still tagged
    assert verify_store(store).ok


def test_disk_full_mid_push_is_a_clean_error_and_loses_nothing(
    store: LocalStore, composed: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.safetensors"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    calls = {"n": 0}
    real_put = BlobStore.put_stream

    def put_stream_then_full(self, source, expected=None, progress=None):  # type: ignore[no-untyped-def]
        class FullDisk:
            def __init__(self, inner):  # type: ignore[no-untyped-def]
                self.inner = inner

            def readinto(self, buffer):  # type: ignore[no-untyped-def]
                calls["n"] += 1
                if calls["n"] > 1:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return self.inner.readinto(buffer)

        return real_put(self, FullDisk(source), expected, progress)

    monkeypatch.setattr(BlobStore, "put_stream", put_stream_then_full)
    with pytest.raises(StorageError, match="no space left on device"):
        store.push(
            "model",
            "models/big",
            {"files": ["big.safetensors"], "context_length": 8},
            {"big.safetensors": big},
        )
    monkeypatch.undo()
    assert not list(store.blobs.temp_files())
    assert verify_store(store).ok
    assert store.resolve("rag/docs-qa:prod").digest == composed["pipeline"]
    with pytest.raises(ArtifactNotFoundError):
        store.resolve("models/big")


def test_resolving_a_tag_is_fast_when_warm(store: LocalStore, composed: dict[str, str]) -> None:
    store.resolve_digest("rag/docs-qa:prod")
    count = 2000
    start = time.perf_counter()
    for _ in range(count):
        store.resolve_digest("rag/docs-qa:prod")
    per_call_us = (time.perf_counter() - start) / count * 1e6
    assert per_call_us < 50, per_call_us


def test_index_cache_sees_writes_from_another_store_object(
    store: LocalStore, composed: dict[str, str]
) -> None:
    other = LocalStore(store.root, cache_dir=store.cache_dir)
    assert other.resolve_digest("rag/docs-qa:prod")[1] == composed["pipeline"]
    store.tag("rag/docs-qa:prod", "rag/docs-qa:canary")
    assert other.resolve_digest("rag/docs-qa:canary")[1] == composed["pipeline"]
