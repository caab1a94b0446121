"""Incremental detokenization: turn a growing list of token ids into text pieces, token by token.

Decoding each token alone breaks multi-byte characters split across tokens and loses the spaces some
tokenizers attach to the following token, so each step decodes a short window ending at the newest token
and emits only what that window adds; while the window ends in an incomplete character (decoded as
U+FFFD), nothing is emitted until a later token completes it.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT_CHAR = "\ufffd"
CONTEXT_TOKENS = 5  # prompt tokens decoded ahead of the first generated one, for its leading space


class IncrementalDetokenizer:
    def __init__(self, tokenizer: Any, prompt_ids: list[int] | None = None) -> None:
        self._tokenizer = tokenizer
        # Starting with the prompt's last tokens keeps the first generated token's leading space right.
        self._ids: list[int] = list((prompt_ids or [])[-CONTEXT_TOKENS:])
        self._prefix_offset = 0  # start of the window decoded for context
        self._read_offset = len(self._ids)  # tokens before this are already emitted

    def _decode(self, ids: list[int]) -> str:
        text: str = self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return text

    def push(self, token_id: int) -> str:
        """Add one token; return the text it completes (possibly empty)."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full_text = self._decode(self._ids[self._prefix_offset :])
        if full_text.endswith(REPLACEMENT_CHAR) or len(full_text) <= len(prefix_text):
            return ""  # an incomplete character (or a special token): wait for more
        new_text = full_text[len(prefix_text) :]
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return new_text

    def flush(self) -> str:
        """Whatever is still held at the end (an incomplete character is emitted as U+FFFD)."""
        if self._read_offset >= len(self._ids):
            return ""
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full_text = self._decode(self._ids[self._prefix_offset :])
        self._read_offset = len(self._ids)
        return full_text[len(prefix_text) :] if full_text.startswith(prefix_text) else ""
