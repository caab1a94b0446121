import sys
from pathlib import Path

import pytest

from core.chat import ChatMessage
from core.engine import Engine
from core.errors import InvalidSpecError
from serving.chat_messages import template_messages
from serving.factory import build_engine
from serving.settings import ServingSettings
from serving.transformers_engine import TransformersEngine


def test_settings_read_their_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIHUB_SERVING_MAX_BATCH_SIZE", "3")
    monkeypatch.setenv("AIHUB_SERVING_TORCH_THREADS", "1")
    settings = ServingSettings()
    assert (settings.max_batch_size, settings.torch_threads, settings.dtype) == (3, 1, "float32")


def test_factory_builds_a_transformers_engine_without_loading(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"max_position_embeddings": 2048}')
    engine = build_engine("m", tmp_path, ServingSettings(), kind="transformers", digest="sha256:" + "0" * 64)
    assert isinstance(engine, TransformersEngine)
    assert isinstance(engine, Engine)
    assert engine.info.context_length == 2048
    assert engine.info.digest == "sha256:" + "0" * 64


def test_auto_builds_the_vllm_engine_here_without_loading(tmp_path: Path) -> None:
    from serving.vllm_engine import VllmEngine
    from serving.vllm_support import vllm_support

    engine = build_engine("m", tmp_path, ServingSettings(), kind="auto")
    expected = VllmEngine if vllm_support("cpu").usable else TransformersEngine
    assert isinstance(engine, expected) and isinstance(engine, Engine)


def test_factory_rejects_unknown_kinds(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError, match="unknown engine kind"):
        build_engine("m", tmp_path, ServingSettings(), kind="tgi")


def test_serving_package_import_stays_light() -> None:
    import subprocess

    code = (
        "import sys, serving, serving.factory, serving.transformers_engine, serving.fixed_latency_engine,"
        " serving.vllm_engine; print('torch' in sys.modules, 'transformers' in sys.modules,"
        " 'vllm' in sys.modules)"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.split() == ["False", "False", "False"]


def test_developer_role_maps_to_system_only_when_the_template_lacks_it() -> None:
    messages = (ChatMessage(role="developer", content="be brief"), ChatMessage(role="user", content="hi"))
    assert template_messages(messages, knows_developer=False)[0] == {"role": "system", "content": "be brief"}
    assert template_messages(messages, knows_developer=True)[0]["role"] == "developer"
