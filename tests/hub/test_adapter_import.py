"""LoRA adapters in the hub: model artifacts of ``type: adapter`` whose ``base`` is pinned to a digest."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aihub.hub_cli import hub_app
from core.errors import InvalidSpecError
from hub.adapter_import import adapter_base_digest, import_adapter_folder
from hub.media_types import MODEL_WEIGHT, MODEL_WEIGHT_CONFIG
from hub.model_import import import_model_folder
from hub.store import LocalStore


def _base(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\x01" * 3000)
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    return folder


def _adapter(folder: Path, peft_type: str = "LORA", weights: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": peft_type, "r": 8}))
    if weights:
        (folder / "adapter_model.safetensors").write_bytes(b"\x02" * 1000)
    (folder / "README.md").write_text("a pirate voice")
    return folder


@pytest.fixture
def base_digest(store: LocalStore, tmp_path: Path) -> str:
    return import_model_folder(store, "models/tiny", _base(tmp_path / "base"), context_length=2048).digest


def test_adapter_is_pinned_to_its_base_digest(store: LocalStore, tmp_path: Path, base_digest: str) -> None:
    adapter = import_adapter_folder(
        store, "adapters/pirate", _adapter(tmp_path / "pirate"), base="models/tiny:latest", tags=("v1",)
    )
    assert adapter.kind == "model" and adapter.tags == ("v1",)
    assert adapter.spec["type"] == "adapter"
    assert adapter.spec["base"] == f"models/tiny@{base_digest}"
    assert adapter.spec["context_length"] == 2048  # inherited from the base
    assert adapter.spec["architecture"] == "LlamaForCausalLM"
    assert adapter_base_digest(adapter) == base_digest
    layers = {layer.path: layer.media_type for layer in store.manifest(adapter.digest).layers}
    assert layers["adapter_model.safetensors"] == MODEL_WEIGHT
    assert layers["adapter_config.json"] == MODEL_WEIGHT_CONFIG
    unpacked = store.materialize("adapters/pirate:v1")
    assert (unpacked / "adapter_model.safetensors").read_bytes() == b"\x02" * 1000
    # moving the base's tag later does not move the adapter's binding
    other = tmp_path / "other"
    _base(other)
    (other / "model.safetensors").write_bytes(b"\x03" * 3000)
    moved = import_model_folder(store, "models/tiny", other, context_length=2048)
    assert moved.digest != base_digest
    assert adapter_base_digest(store.resolve("adapters/pirate:v1")) == base_digest


@pytest.mark.usefixtures("base_digest")
def test_broken_adapter_folders_are_refused(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError, match="does not exist"):
        import_adapter_folder(store, "adapters/x", tmp_path / "missing", base="models/tiny")
    no_weights = _adapter(tmp_path / "no-weights", weights=False)
    with pytest.raises(InvalidSpecError, match=r"holds no adapter_model\.safetensors"):
        import_adapter_folder(store, "adapters/x", no_weights, base="models/tiny")
    with pytest.raises(InvalidSpecError, match="only LoRA adapters"):
        import_adapter_folder(store, "adapters/x", _adapter(tmp_path / "ia3", "IA3"), base="models/tiny")
    no_config = tmp_path / "no-config"
    no_config.mkdir()
    (no_config / "adapter_model.safetensors").write_bytes(b"\x00")
    with pytest.raises(InvalidSpecError, match=r"has no adapter_config\.json"):
        import_adapter_folder(store, "adapters/x", no_config, base="models/tiny")


@pytest.mark.usefixtures("base_digest")
def test_adapter_of_an_adapter_is_refused(store: LocalStore, tmp_path: Path) -> None:
    import_adapter_folder(store, "adapters/pirate", _adapter(tmp_path / "pirate"), base="models/tiny")
    with pytest.raises(InvalidSpecError, match="must be a model of type model"):
        import_adapter_folder(store, "adapters/x", _adapter(tmp_path / "x"), base="adapters/pirate")


@pytest.mark.usefixtures("base_digest")
def test_spec_rules_for_base(store: LocalStore, tmp_path: Path) -> None:
    weights = {"w.safetensors": tmp_path / "w.safetensors"}
    weights["w.safetensors"].write_bytes(b"\x04" * 10)
    spec = {"files": ["w.safetensors"], "context_length": 16}
    with pytest.raises(InvalidSpecError, match="an adapter needs `base`"):
        store.push("model", "adapters/y", {**spec, "type": "adapter"}, weights)
    with pytest.raises(InvalidSpecError, match="only for `type: adapter`"):
        store.push("model", "models/y", {**spec, "base": "models/tiny"}, weights)
    with pytest.raises(InvalidSpecError, match="does not resolve"):
        store.push("model", "adapters/y", {**spec, "type": "adapter", "base": "models/nope"}, weights)
    plain = store.resolve("models/tiny")
    with pytest.raises(InvalidSpecError, match="is not an adapter"):
        adapter_base_digest(plain)


def test_cli_imports_an_adapter(tmp_path: Path) -> None:
    runner = CliRunner()
    home = tmp_path / "home"

    def hub(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(hub_app, ["--home", str(home), *args])
        return result.exit_code, result.stdout, result.stderr

    code, base, err = hub(
        "import-model", "models/tiny", str(_base(tmp_path / "base")), "--context-length", "64"
    )
    assert code == 0, err
    code, _, err = hub("import-model", "models/x", str(tmp_path / "base"))
    assert code == 1 and "--context-length is required" in err
    pirate = str(_adapter(tmp_path / "pirate"))
    code, out, err = hub("import-model", "adapters/pirate", pirate, "--adapter-of", "models/tiny", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["name"] == "adapters/pirate"
    code, out, _ = hub("show", "adapters/pirate", "--json")
    assert json.loads(out)["spec"]["base"] == f"models/tiny@{base.strip()}"
    code, _, err = hub("import-model", "adapters/x", pirate, "--adapter-of", "models/nope")
    assert code == 1 and "models/nope" in err
