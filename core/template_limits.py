"""Bounds on what a prompt template may spend: the sandbox ``core.template_check`` renders in.

Jinja's sandbox keeps a template away from Python internals but not from spending unbounded time or
memory: a pushed ``{{ 'x' * 10**8 }}`` or loops nested over ``range``. Here range() is bounded, values
built by ``*``, ``+`` and ``**`` are bounded, and every loop looks at the render's deadline as it goes
(``render_deadline``, set by whoever renders; the gateway also caps the output while it streams).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RANGE = 10_000  # items one range() may produce
MAX_VALUE_LENGTH = 4_000_000  # longest string or list `*` or `+` may build (above any request body)
MAX_POWER_BITS = 4096  # the largest integer `**` may build
LOOP_CHECK_EVERY = 256  # loop iterations between two looks at the clock
LOOP_GUARD = "__aihub_loop_guard__"  # wraps the iterable of every `for` (added at parse time)

# When the render running in this context must end (time.monotonic()); None: no limit.
render_deadline: ContextVar[float | None] = ContextVar("render_deadline", default=None)


class TemplateLimitError(SecurityError):
    """A template went past a bound on its time or work (too slow, too large a range())."""


class TemplateTooLongError(TemplateLimitError):
    """A template built (or would build) text or a list longer than allowed."""


def check_deadline() -> None:
    deadline = render_deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimitError("rendering took longer than its time limit")


def bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateLimitError(f"range() may produce at most {MAX_RANGE} items, not {len(numbers)}")
    return numbers


def loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every loop of a template iterates through this: nested loops look at the clock as they go."""
    check_deadline()
    for index, item in enumerate(iterable):
        if index % LOOP_CHECK_EVERY == LOOP_CHECK_EVERY - 1:
            check_deadline()
        yield item


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


def _too_many_bits(base: int, exponent: int) -> bool:
    """Whether ``base ** exponent`` would have more than MAX_POWER_BITS bits."""
    return exponent > 0 and abs(base) > 1 and abs(base).bit_length() * exponent > MAX_POWER_BITS


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        size, times = (_length(left), right) if _length(left) is not None else (_length(right), left)
        if size is not None and isinstance(times, int) and size * times > MAX_VALUE_LENGTH:
            raise TemplateTooLongError(f"`*` would build a value longer than {MAX_VALUE_LENGTH}")
    elif operator == "+":
        left_size, right_size = _length(left), _length(right)
        if left_size is not None and right_size is not None and left_size + right_size > MAX_VALUE_LENGTH:
            raise TemplateTooLongError(f"`+` would build a value longer than {MAX_VALUE_LENGTH}")
    elif (
        operator == "**" and isinstance(left, int) and isinstance(right, int) and _too_many_bits(left, right)
    ):
        raise TemplateLimitError(f"`**` would build a number above {MAX_POWER_BITS} bits")


class BoundedSandboxedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with bounded range(), bounded `*` / `+` / `**`, and loops that check the
    render's deadline."""

    # Intercepted operators are also never folded into constants when a template compiles.
    intercepted_binops = frozenset({"*", "+", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = bounded_range
        self.globals[LOOP_GUARD] = loop_guard

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in list(tree.find_all(nodes.For)):
            guard = nodes.Call(nodes.Name(LOOP_GUARD, "load"), [loop.iter], [], None, None)
            loop.iter = guard.set_lineno(loop.lineno).set_environment(self)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)
