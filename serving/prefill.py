"""One prompt being prefilled in chunks (``serving.batch_scheduler``): its own cache until it joins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.batch_scheduler import Sequence


@dataclass(eq=False, slots=True)
class Prefill:
    seq: Sequence
    cache: Any  # a DynamicCache holding the first ``done`` prompt tokens
    done: int = 0

    @property
    def left(self) -> int:
        return len(self.seq.prompt_ids) - self.done
