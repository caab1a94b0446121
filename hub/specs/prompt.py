"""A prompt template (Jinja2) with its declared variables and their defaults."""

from __future__ import annotations

from pydantic import Field, model_validator

from core.errors import InvalidSpecError
from core.template_check import check_sandbox_safe, validate_template
from hub.specs.base import SpecBase


class PromptSpec(SpecBase):
    template: str
    variables: list[str] = Field(default_factory=list)
    defaults: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _variables_declared(self) -> PromptSpec:
        # The same sandboxed environment the gateway renders with, so push and serve agree.
        try:
            validate_template(self.template, self.variables)
            check_sandbox_safe(self.template)
        except InvalidSpecError as exc:
            raise ValueError(exc.message) from None
        unknown = sorted(set(self.defaults) - set(self.variables))
        if unknown:
            raise ValueError(f"defaults for undeclared variables {unknown}")
        return self
