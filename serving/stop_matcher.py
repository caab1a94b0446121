"""Stop strings over a text stream: never emit a stop string, hold back a possible start of one."""

from __future__ import annotations


class StopMatcher:
    """Feed decoded text with ``push``; it returns what may be emitted and whether a stop string ended it.

    Text that could be the beginning of a stop string is held back until the next pieces show whether
    it is one; ``flush`` releases it when the generation ends for another reason.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._pending = ""

    def push(self, text: str) -> tuple[str, bool]:
        if not self._stops:
            return text, False
        buffer = self._pending + text
        hits = [index for index in (buffer.find(stop) for stop in self._stops) if index >= 0]
        if hits:
            self._pending = ""
            return buffer[: min(hits)], True
        held = self._held_suffix_length(buffer)
        self._pending = buffer[len(buffer) - held :]
        return buffer[: len(buffer) - held], False

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return text

    def _held_suffix_length(self, buffer: str) -> int:
        """Length of the longest end of ``buffer`` that is a proper beginning of some stop string."""
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest
