import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aihub.gateway_process import GatewayProcess

REPO = Path(__file__).resolve().parents[2]
OPENAPI_DIR = REPO.parent / "shared" / "openai-openapi"

SchemaErrors = Callable[[str, Any], list[str]]


@pytest.fixture(scope="session")
def openapi_errors() -> SchemaErrors:
    """``errors(schema_name, instance)`` from the OpenAI spec's own validator in ../shared."""
    spec = importlib.util.spec_from_file_location("openai_openapi_validate", OPENAPI_DIR / "validate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    errors: SchemaErrors = module.errors
    return errors


@pytest.fixture(scope="session")
def aihub_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aihub-home")


@pytest.fixture(scope="module")
def served(aihub_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """`aihub serve` with the embedded defaults, in a child process on 127.0.0.1."""
    config = {
        "app": {"home": str(aihub_home)},
        "gateway": {"model_aliases": {"gpt-4o-mini": "smollm2-135m-instruct"}},
    }
    with GatewayProcess(config, tmp_path_factory.mktemp("served"), ready_timeout_s=600) as process:
        yield process
