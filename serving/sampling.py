"""Choosing the next token from logits: greedy, or temperature + nucleus (top-p) sampling, after
OpenAI's logit adjustments (logit bias, presence and frequency penalties) where a request asks for them."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from core.chat import SamplingParams
from core.errors import InvalidRequestError

if TYPE_CHECKING:
    import torch


class TokenSampler:
    """One request's sampler. A request with a ``seed`` owns a seeded generator, so its output does not
    depend on what else is in the batch."""

    def __init__(self, params: SamplingParams, vocab_size: int | None = None) -> None:
        import torch

        self.greedy = params.temperature <= 0.0
        self._temperature = params.temperature
        self._top_p = params.top_p
        self._generator = torch.Generator(device="cpu")
        if params.seed is not None:
            self._generator.manual_seed(params.seed)
        else:
            self._generator.seed()
        # Rows that adjust their logits cannot take the batch's shared argmax: see ``plain_greedy``.
        self.adjusts = params.adjusts_logits
        self._presence = params.presence_penalty
        self._frequency = params.frequency_penalty
        self._generated: Counter[int] = Counter()
        self._bias_ids: torch.Tensor | None = None
        self._bias_values: torch.Tensor | None = None
        if params.logit_bias:
            ids = [token for token, _ in params.logit_bias]
            if vocab_size is not None and max(ids) >= vocab_size:
                raise InvalidRequestError(
                    f"logit_bias names token {max(ids)}, beyond the vocabulary of {vocab_size} tokens.",
                    param="logit_bias",
                    code="invalid_value",
                )
            self._bias_ids = torch.tensor(ids, dtype=torch.long)
            self._bias_values = torch.tensor([bias for _, bias in params.logit_bias], dtype=torch.float32)

    @property
    def plain_greedy(self) -> bool:
        """Greedy on the raw logits: the batch's one argmax serves this row."""
        return self.greedy and not self.adjusts

    def _adjusted(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        logits = logits.float().clone()
        if self._bias_ids is not None and self._bias_values is not None:
            logits.index_add_(0, self._bias_ids, self._bias_values)
        if self._generated and (self._presence or self._frequency):
            ids = torch.tensor(list(self._generated), dtype=torch.long)
            counts = torch.tensor(list(self._generated.values()), dtype=torch.float32)
            logits.index_add_(0, ids, -(self._presence + self._frequency * counts))
        return logits

    def sample(self, logits: torch.Tensor) -> int:
        """Next token id from one row of logits (shape ``[vocab]``)."""
        token = self._choose(self._adjusted(logits) if self.adjusts else logits)
        if self._presence or self._frequency:
            self._generated[token] += 1
        return token

    def _choose(self, logits: torch.Tensor) -> int:
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
