"""A name keeps its kind; incomplete artifacts are never tagged or copied; names fit registries."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aihub.hub_cli import hub_app
from core.errors import AihubError, ConflictError, InvalidReferenceError
from hub.copy_command import run_copy
from hub.settings import HubSettings
from hub.store import LocalStore

runner = CliRunner()


def index_of(store: LocalStore) -> bytes:
    return store.index.path.read_bytes()


def test_a_tag_in_a_kind_namespace_only_points_at_that_kind(
    store: LocalStore, composed: dict[str, str]
) -> None:
    before, blobs = index_of(store), sorted(store.blobs.digests())
    with pytest.raises(
        InvalidReferenceError, match="models/ namespace, which holds model artifacts, not a prompt"
    ):
        store.tag("prompts/rag-answer:v1", "models/smollm2-135m-instruct:latest")
    with pytest.raises(InvalidReferenceError, match="prompts/ namespace"):
        store.push("model", "prompts/weights", {"files": ["w"], "context_length": 8}, {"w": store.index.path})
    assert index_of(store) == before and sorted(store.blobs.digests()) == blobs


def test_a_tagged_name_keeps_its_kind(store: LocalStore, composed: dict[str, str]) -> None:
    before = index_of(store)
    # rag/ is no kind namespace, but rag/docs-qa is already a pipeline.
    with pytest.raises(ConflictError, match="rag/docs-qa already tags pipeline"):
        store.tag("prompts/rag-answer:v1", "rag/docs-qa:prompt")
    assert index_of(store) == before
    store.tag("rag/docs-qa:prod", "rag/docs-qa:stable")  # same kind: fine
    store.tag("prompts/rag-answer:v1", "team/anything:v1")  # a new name takes the kind it is given
    assert store.resolve("team/anything:v1").kind == "prompt"


def test_cli_tag_across_kinds_is_one_line(tmp_path: Path, spec_files: dict[str, Path]) -> None:
    home = tmp_path / "home"
    for key in ("model", "prompt"):
        assert runner.invoke(hub_app, ["--home", str(home), "push", str(spec_files[key])]).exit_code == 0
    result = runner.invoke(
        hub_app, ["--home", str(home), "tag", "prompts/rag-answer:v1", "models/tiny-chat:latest"]
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert (
        result.stderr.startswith("error: models/tiny-chat") and len(result.stderr.strip().splitlines()) == 1
    )
    shown = runner.invoke(hub_app, ["--home", str(home), "show", "models/tiny-chat:latest", "--json"])
    assert json.loads(shown.stdout)["kind"] == "model"


def test_an_incomplete_artifact_is_not_copied(
    store: LocalStore, composed: dict[str, str], tmp_path: Path
) -> None:
    layer = store.manifest(composed["model"]).layers[0]
    store.blobs.path(layer.digest).unlink()
    before = index_of(store)
    with pytest.raises(AihubError, match=r"layer model/model\.safetensors \(sha256:\w+\) is missing"):
        store.tag("models/tiny-chat:latest", "models/tiny-chat:copy")
    settings = HubSettings(home=tmp_path / "unused-home")
    with pytest.raises(AihubError, match="incomplete"):
        run_copy(store, settings, "models/tiny-chat:latest", "models/tiny-chat:copy2")
    assert index_of(store) == before


def test_names_longer_than_registries_allow_are_refused_at_push(store: LocalStore) -> None:
    spec = {"template": "{{ q }}", "variables": ["q"]}
    store.push("prompt", "prompts/" + "a" * 247, spec)  # 255 characters: the most registries take
    before = index_of(store)
    for name in ("prompts/" + "a" * 248, "prompts/" + "a" * 300):
        with pytest.raises(InvalidReferenceError, match="at most 255"):
            store.push("prompt", name, spec)
    with pytest.raises(InvalidReferenceError, match="bad tag"):
        store.push("prompt", "prompts/ok", spec, tags=["t" * 129])
    assert index_of(store) == before
