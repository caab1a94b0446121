"""Fitting retrieved documents into a model's context by a token budget: trim, never fail.

Without the engine's tokenizer the count is a conservative estimate (one token per three characters,
rounded up: subword tokenizers average nearer four characters per token on prose), so an estimated
prompt fits when the real one would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.engine import Engine, TokenCounter

CountTokens = Callable[[str], int]

CHARS_PER_TOKEN = 3
PER_DOCUMENT_OVERHEAD = 8  # numbering, title line, separators the template adds around a document
PER_MESSAGE_OVERHEAD = 8  # role markers the chat template adds around each turn
MIN_TRUNCATED_TOKENS = 32  # a shorter tail of a document is noise: leave it out instead
MAX_CHARS_PER_TOKEN = 64  # generous: subword tokens average 3 to 5 characters
DEFAULT_MAX_PROMPT_CHARS = 4_000_000


def max_prompt_chars(context_length: int) -> int:
    """A bound no prompt that fits ``context_length`` tokens exceeds, checked before any tokenizing
    (MAX_CHARS_PER_TOKEN is far above what any tokenizer averages); an unknown context: the default."""
    if context_length <= 0:
        return DEFAULT_MAX_PROMPT_CHARS
    return context_length * MAX_CHARS_PER_TOKEN


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def token_counter(engine: Engine) -> CountTokens:
    """The engine's own count when it is a ``TokenCounter``, else the estimate."""
    if isinstance(engine, TokenCounter):
        return engine.count_tokens
    return estimate_tokens


@dataclass(frozen=True, slots=True)
class FittedDocument:
    index: int  # position in the ranked input
    text: str  # the text to put in the prompt, possibly cut short
    truncated: bool
    tokens: int


def available_for_documents(
    context_length: int,
    reserved_completion: int,
    prompt_without_documents_tokens: int,
    messages: int,
) -> int:
    """Tokens left for documents once the rest of the prompt and the answer are accounted for."""
    used = prompt_without_documents_tokens + reserved_completion + PER_MESSAGE_OVERHEAD * (messages + 1)
    return max(0, context_length - used)


def _cut(text: str, tokens: int, count: CountTokens) -> str:
    """The longest prefix (at a word boundary where possible) that counts at most ``tokens``."""
    if tokens <= 0:
        return ""
    ratio = max(1.0, len(text) / max(1, count(text)))
    size = int(tokens * ratio)
    cut = text[:size]
    while cut and count(cut) > tokens:
        size = int(size * 0.9)
        cut = text[:size]
    space = cut.rfind(" ")
    if space > len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip() + " …" if cut else ""


def fit_documents(
    texts: Sequence[str],
    budget: int,
    count: CountTokens = estimate_tokens,
    extra_tokens: Sequence[int] | None = None,
) -> list[FittedDocument]:
    """Take ranked documents in order while they fit ``budget``; cut the first one that does not.

    ``extra_tokens[i]`` is what document ``i`` costs besides its text (title, source line).
    """
    fitted: list[FittedDocument] = []
    remaining = budget
    for i, text in enumerate(texts):
        overhead = PER_DOCUMENT_OVERHEAD + (extra_tokens[i] if extra_tokens else 0)
        tokens = count(text)
        if tokens + overhead <= remaining:
            fitted.append(FittedDocument(i, text, False, tokens))
            remaining -= tokens + overhead
            continue
        room = remaining - overhead
        if room >= MIN_TRUNCATED_TOKENS:
            cut = _cut(text, room - 1, count)
            if cut:
                fitted.append(FittedDocument(i, cut, True, count(cut)))
        break
    return fitted
