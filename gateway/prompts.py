"""Prompt templates from the hub, compiled once per digest and rendered in the Jinja2 sandbox.

A prompt spec (kind ``prompt``, ``hub.specs.PromptSpec``) holds ``template`` (rendered as the user
turn), ``variables`` (the names the template may read) and ``defaults`` for some of them. Templates are
checked at push time; they are checked again here (``core.template_check``), in the same sandbox.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template, TemplateError, UndefinedError
from jinja2.exceptions import SecurityError

from core.errors import AihubError, ContextLengthExceededError, InvalidRequestError, InvalidSpecError
from core.template_check import template_environment, validate_template
from core.template_limits import TemplateTooLongError, check_deadline, render_deadline

# A stored template that cannot be used is the server's fault, not the client's: a 500 (OpenAI format,
# generic message; the details go to the log) with this code.
BROKEN_TEMPLATE_CODE = "prompt_template_error"

# Rendering bounds: a template runs in the sandbox of core.template_limits, and its output is capped
# (callers pass a bound from the model's context) and timed while it streams.
MAX_RENDERED_CHARS = 4_000_000
RENDER_TIME_LIMIT_S = 2.0

_UNDEFINED_NAME = re.compile(r"'([^']+)' is undefined|has no attribute '([^']+)'")

DEFAULT_RAG_TEMPLATE = (
    "Answer the question using only the documents below. Cite documents by their number.\n\n"
    "{% for doc in documents %}[{{ loop.index }}] {{ doc.title }}\n{{ doc.text }}\n\n{% endfor %}"
    "Question: {{ question }}"
)
DEFAULT_RAG_VARIABLES = ("question", "documents", "history")


@dataclass(frozen=True)
class PromptTemplate:
    variables: tuple[str, ...]
    template: Template
    defaults: Mapping[str, Any] = field(default_factory=dict)
    digest: str | None = None

    @classmethod
    def compile(
        cls,
        template: str,
        variables: Sequence[str],
        defaults: Mapping[str, Any] | None = None,
        digest: str | None = None,
    ) -> PromptTemplate:
        validate_template(template, variables)
        return cls(
            variables=tuple(variables),
            template=template_environment().from_string(template),
            defaults=dict(defaults or {}),
            digest=digest,
        )

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], digest: str | None = None) -> PromptTemplate:
        """A prompt from the hub; a spec that does not compile is a server error (see above)."""
        try:
            return cls._from_spec(spec, digest)
        except InvalidSpecError as exc:
            raise AihubError(f"prompt {digest}: {exc.message}", code=BROKEN_TEMPLATE_CODE) from None

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any], digest: str | None) -> PromptTemplate:
        template = spec.get("template")
        if not isinstance(template, str):
            raise InvalidSpecError("prompt spec needs a `template` string")
        variables = spec.get("variables", DEFAULT_RAG_VARIABLES)
        if not isinstance(variables, list | tuple):
            raise InvalidSpecError("prompt spec `variables` must be a list of names")
        defaults = spec.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise InvalidSpecError("prompt spec `defaults` must be an object")
        return cls.compile(template, [str(v) for v in variables], defaults, digest)

    def render(self, values: Mapping[str, Any], max_chars: int = MAX_RENDERED_CHARS) -> str:
        """The user turn. A missing or malformed value is the request's fault: InvalidRequestError;
        text longer than ``max_chars``: ContextLengthExceededError. CPU-bound (up to
        RENDER_TIME_LIMIT_S): call it off the event loop."""
        scope = {name: values.get(name, self.defaults.get(name)) for name in self.variables}
        return _render(self.template, {k: v for k, v in scope.items() if v is not None}, max_chars)


def _bounded_render(template: Template, scope: Mapping[str, Any], max_chars: int) -> str:
    """Streams the output, stopping past ``max_chars`` or the time limit (loops check it too)."""
    deadline = time.monotonic() + RENDER_TIME_LIMIT_S
    token = render_deadline.set(deadline)
    try:
        pieces: list[str] = []
        size = 0
        for piece in template.generate(scope):
            size += len(piece)
            if size > max_chars:
                raise TemplateTooLongError(f"the rendered prompt is longer than {max_chars} characters")
            check_deadline()
            pieces.append(piece)
        return "".join(pieces)
    finally:
        render_deadline.reset(token)


def _render(template: Template, scope: Mapping[str, Any], max_chars: int) -> str:
    try:
        return _bounded_render(template, scope, max_chars)
    except TemplateTooLongError as exc:  # the prompt cannot fit the model's context
        raise ContextLengthExceededError(
            f"the prompt does not fit the model's context: {exc}", param="messages"
        ) from None
    except UndefinedError as exc:
        match = _UNDEFINED_NAME.search(str(exc))
        name = next((g for g in match.groups() if g), None) if match else None
        raise InvalidRequestError(
            f"prompt template variable {name!r} is missing or has no such field: {exc}"
            if name
            else f"prompt template could not be rendered: {exc}",
            param=name,
            code="template_variable_missing",
        ) from None
    except SecurityError as exc:
        raise AihubError(
            f"prompt template tried an unsafe operation: {exc}", code=BROKEN_TEMPLATE_CODE
        ) from None
    except TemplateError as exc:
        raise InvalidRequestError(f"prompt template could not be rendered: {exc}") from None
    except (TypeError, ValueError) as exc:  # e.g. a filter given a value of the wrong type
        raise InvalidRequestError(f"prompt template could not be rendered: {exc}") from None
