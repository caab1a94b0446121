"""Prompt templates: the sandboxed Jinja2 environment and the push-time check of declared variables.

Lives in ``core`` so that ``hub`` (which validates specs at push time) and ``gateway`` (which renders)
use exactly the same environment. Jinja2 is a light, pure-Python dependency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
)

from core.errors import InvalidSpecError
from core.template_limits import BoundedSandboxedEnvironment

# Prompt text is not HTML: no autoescaping. Templates come from the hub, values from requests; the
# immutable sandbox keeps a template from reaching Python internals or mutating request values, and
# its bounds (``core.template_limits``) from spending unbounded time or memory.


@lru_cache(maxsize=1)
def template_environment() -> BoundedSandboxedEnvironment:
    return BoundedSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# What the sandbox refuses at render time, found in the template's syntax tree so a push is refused
# instead of every call failing: private and internal attributes, and methods that mutate a value.
_INTERNAL_ATTRIBUTES = frozenset(
    {"mro", *UNSAFE_GENERATOR_ATTRIBUTES, *UNSAFE_COROUTINE_ATTRIBUTES, *UNSAFE_ASYNC_GENERATOR_ATTRIBUTES}
)
_MUTATING_METHODS = frozenset(
    {"append", "appendleft", "extend", "extendleft", "insert", "pop", "popleft", "popitem", "remove"}
    | {"clear", "sort", "reverse", "rotate", "update", "setdefault", "add", "discard"}
    | {"difference_update", "symmetric_difference_update", "intersection_update"}
)
# A str.format field reaching an attribute or item that starts with "_": "{0.__class__}", "{x[_y]}".
_PRIVATE_FORMAT_FIELD = re.compile(r"\{[^{}]*[.\[]_")


def _is_unsafe_attribute(name: object) -> bool:
    return isinstance(name, str) and (name.startswith("_") or name in _INTERNAL_ATTRIBUTES)


def _unsafe_operations(ast: nodes.Template) -> list[str]:
    found: list[str] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Filter)):
        if isinstance(node, nodes.Getattr) and _is_unsafe_attribute(node.attr):
            found.append(f"attribute {node.attr!r}")
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if _is_unsafe_attribute(node.arg.value):
                found.append(f"item {node.arg.value!r}")
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            if any(isinstance(a, nodes.Const) and _is_unsafe_attribute(a.value) for a in node.args):
                found.append("the attr filter on an internal attribute")
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            method = node.node.attr
            if method in _MUTATING_METHODS:
                found.append(f"the mutating method {method!r}")
            elif (
                method in ("format", "format_map")
                and isinstance(node.node.node, nodes.Const)
                and _PRIVATE_FORMAT_FIELD.search(str(node.node.node.value))
            ):
                found.append("a format field reaching an internal attribute")
    return found


def check_sandbox_safe(text: str) -> None:
    """Refuse a template that uses what the sandbox forbids (it would fail on every render)."""
    try:
        ast = template_environment().parse(text)
    except TemplateSyntaxError as exc:
        raise InvalidSpecError(f"prompt template does not parse (line {exc.lineno}): {exc.message}") from None
    unsafe = _unsafe_operations(ast)
    if unsafe:
        raise InvalidSpecError(
            f"prompt template uses {', '.join(dict.fromkeys(unsafe))}, which the template sandbox forbids",
            param="template",
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
