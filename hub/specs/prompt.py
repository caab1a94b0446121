"""A prompt template (Jinja2) with its declared variables and their defaults."""

from __future__ import annotations

import jinja2
import jinja2.meta
from pydantic import Field, model_validator

from hub.specs.base import SpecBase


class PromptSpec(SpecBase):
    template: str
    variables: list[str] = Field(default_factory=list)
    defaults: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _variables_declared(self) -> PromptSpec:
        try:
            parsed = jinja2.Environment(autoescape=False).parse(self.template)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"template does not parse (line {exc.lineno}): {exc.message}") from None
        used = jinja2.meta.find_undeclared_variables(parsed)
        undeclared = sorted(used - set(self.variables))
        if undeclared:
            raise ValueError(f"template uses undeclared variables {undeclared}; declare them in `variables`")
        unknown = sorted(set(self.defaults) - set(self.variables))
        if unknown:
            raise ValueError(f"defaults for undeclared variables {unknown}")
        return self
