"""Choosing the next token from logits: greedy, or temperature + nucleus (top-p) sampling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.chat import SamplingParams

if TYPE_CHECKING:
    import torch


class TokenSampler:
    """One request's sampler. A request with a ``seed`` owns a seeded generator, so its output does not
    depend on what else is in the batch."""

    def __init__(self, params: SamplingParams) -> None:
        import torch

        self.greedy = params.temperature <= 0.0
        self._temperature = params.temperature
        self._top_p = params.top_p
        self._generator = torch.Generator(device="cpu")
        if params.seed is not None:
            self._generator.manual_seed(params.seed)
        else:
            self._generator.seed()

    def sample(self, logits: torch.Tensor) -> int:
        """Next token id from one row of logits (shape ``[vocab]``)."""
        import torch

        if self.greedy:
            return int(torch.argmax(logits).item())
        probs = torch.softmax(logits.float() / self._temperature, dim=-1)
        if self._top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            # Keep the smallest set whose mass reaches top_p (always at least the best token).
            outside = cumulative - sorted_probs >= self._top_p
            sorted_probs = sorted_probs.masked_fill(outside, 0.0)
            choice = torch.multinomial(sorted_probs, 1, generator=self._generator)
            return int(order[choice].item())
        return int(torch.multinomial(probs, 1, generator=self._generator).item())
