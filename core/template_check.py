"""Prompt templates: the sandboxed Jinja2 environment and the push-time check of declared variables.

Lives in ``core`` so that ``hub`` (which validates specs at push time) and ``gateway`` (which renders)
use exactly the same environment. Jinja2 is a light, pure-Python dependency.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core.errors import InvalidSpecError

# Prompt text is not HTML: no autoescaping. Templates come from the hub, values from requests; the
# immutable sandbox keeps a template from reaching Python internals or mutating request values.


@lru_cache(maxsize=1)
def template_environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def undeclared_variables(text: str, variables: Iterable[str]) -> set[str]:
    """Names the template reads that are neither declared nor Jinja globals (``range``, ``dict``, …)."""
    env = template_environment()
    try:
        ast = env.parse(text)
    except TemplateSyntaxError as exc:
        raise InvalidSpecError(f"prompt template does not parse (line {exc.lineno}): {exc.message}") from None
    used = meta.find_undeclared_variables(ast)
    return used - set(variables) - set(env.globals)


def validate_template(text: str, variables: Iterable[str]) -> None:
    """Refuse a template that does not parse or reads an undeclared variable. Raises InvalidSpecError."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSpecError("prompt template is empty")
    declared = list(variables)
    for name in declared:
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidSpecError(f"prompt variable {name!r} is not a valid identifier")
    unknown = undeclared_variables(text, declared)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise InvalidSpecError(
            f"prompt template uses undeclared variable(s): {names}; declare them in `variables`",
            param="variables",
        )
