from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aihub.gateway_process import GatewayProcess
from tests.support.openai_spec import SpecValidator

SchemaErrors = Callable[[str, Any], list[str]]


@pytest.fixture(scope="session")
def openapi_errors(spec: SpecValidator) -> SchemaErrors:
    """``errors(schema_name, instance)`` from the OpenAI spec's own validator in ../shared."""
    return spec.errors


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
