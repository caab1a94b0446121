"""The OpenAI OpenAPI spec's schemas, through the shared ``validate.py`` beside the checkout (it rewrites
the spec's OpenAPI-3.0 ``nullable`` for JSON Schema)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "openai-openapi"


def _validate_module() -> ModuleType:
    path = SPEC_DIR / "validate.py"
    module_spec = importlib.util.spec_from_file_location("openai_spec_validate", path)
    assert module_spec is not None and module_spec.loader is not None, f"missing {path}"
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


class SpecValidator:
    def __init__(self) -> None:
        self._module = _validate_module()
        self._validators: dict[str, Any] = {}

    def errors(self, schema: str, instance: Any) -> list[str]:
        if schema not in self._validators:
            self._validators[schema] = self._module.validator_for(schema)
        validator = self._validators[schema]
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)
        ]

    def check(self, schema: str, instance: Any) -> None:
        problems = self.errors(schema, instance)
        assert not problems, f"{schema} violations: {problems}\n{instance}"
