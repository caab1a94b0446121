"""The running batch's tensors: a left-padded KV cache, its attention mask and per-row positions.

transformers' ``DynamicCache`` keeps, per layer, ``keys``/``values`` of shape
``[batch, kv_heads, seq, head_dim]`` and grows ``seq`` by concatenation. Rows of different lengths share
it left-padded: padding columns are zeros that the attention mask hides, and each row carries its own
``position_ids`` so rotary embeddings see the row's true positions. A new sequence is prefilled alone,
then merged by padding whichever side is shorter on the left; leaving rows are sliced out and columns
that became padding in every row are trimmed.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from core.errors import EngineError


def _pad_left(tensor: torch.Tensor, columns: int, dim: int) -> torch.Tensor:
    if columns == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = columns
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _layers(cache: DynamicCache) -> list[DynamicLayer]:
    layers = [layer for layer in cache.layers if type(layer) is DynamicLayer]
    if len(layers) != len(cache.layers):
        raise EngineError("continuous batching supports full-attention models only (no sliding window)")
    return layers


def _kv(layer: DynamicLayer) -> tuple[torch.Tensor, torch.Tensor]:
    if layer.keys is None or layer.values is None:
        raise EngineError("a cache layer is empty after prefill")
    return layer.keys, layer.values


def cache_keyword(model: Any) -> str:
    """The name ``forward`` takes the KV cache by: transformers 5.24 renamed ``past_key_values`` to ``cache``
    (the old name still works there, with a deprecation warning)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class KVBatch:
    """Rows are in join order; ``row`` indices shift when earlier rows leave."""

    def __init__(self, config: Any, cache_keyword: str = "past_key_values") -> None:
        self._config = config
        self._cache_keyword = cache_keyword
        self.cache: DynamicCache | None = None
        self.mask = torch.zeros((0, 0), dtype=torch.long)  # [rows, columns]: 1 for a real token
        self.positions = torch.zeros((0,), dtype=torch.long)  # next position of each row
        self.last_tokens = torch.zeros((0,), dtype=torch.long)  # the token each row feeds next

    @property
    def size(self) -> int:
        return int(self.positions.shape[0])

    @property
    def columns(self) -> int:
        return int(self.mask.shape[1])

    def new_cache(self) -> DynamicCache:
        cache = DynamicCache(config=self._config)
        _layers(cache)  # checks the layer kinds before any work is done
        return cache

    def add(self, cache: DynamicCache, length: int, next_token: int) -> None:
        """Merge one prefilled sequence (its own cache of ``length`` columns) as the last row."""
        if self.cache is None or self.size == 0:
            self.cache = cache
            self.mask = torch.ones((1, length), dtype=torch.long)
            self.positions = torch.tensor([length], dtype=torch.long)
            self.last_tokens = torch.tensor([next_token], dtype=torch.long)
            return
        width = max(self.columns, length)
        pad_batch, pad_new = width - self.columns, width - length
        for mine, theirs in zip(_layers(self.cache), _layers(cache), strict=True):
            (my_keys, my_values), (their_keys, their_values) = _kv(mine), _kv(theirs)
            mine.keys = torch.cat([_pad_left(my_keys, pad_batch, 2), _pad_left(their_keys, pad_new, 2)])
            mine.values = torch.cat([_pad_left(my_values, pad_batch, 2), _pad_left(their_values, pad_new, 2)])
        new_mask = _pad_left(torch.ones((1, length), dtype=torch.long), pad_new, 1)
        self.mask = torch.cat([_pad_left(self.mask, pad_batch, 1), new_mask])
        self.positions = torch.cat([self.positions, torch.tensor([length], dtype=torch.long)])
        self.last_tokens = torch.cat([self.last_tokens, torch.tensor([next_token], dtype=torch.long)])

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in this order); drop columns that are padding in every kept row."""
        if not rows:
            self.cache = None
            self.mask = torch.zeros((0, 0), dtype=torch.long)
            self.positions = torch.zeros((0,), dtype=torch.long)
            self.last_tokens = torch.zeros((0,), dtype=torch.long)
            return
        assert self.cache is not None
        index = torch.tensor(rows, dtype=torch.long)
        mask = self.mask.index_select(0, index)
        first = int(torch.nonzero(mask.any(dim=0))[0].item())
        for layer in _layers(self.cache):
            keys, values = _kv(layer)
            layer.keys = keys.index_select(0, index)[:, :, first:]
            layer.values = values.index_select(0, index)[:, :, first:]
        self.mask = mask[:, first:]
        self.positions = self.positions.index_select(0, index)
        self.last_tokens = self.last_tokens.index_select(0, index)

    def step_inputs(self) -> dict[str, Any]:
        """Keyword arguments of one decode forward: every row feeds its last token."""
        assert self.cache is not None
        self.mask = torch.cat([self.mask, torch.ones((self.size, 1), dtype=torch.long)], dim=1)
        inputs = {
            "input_ids": self.last_tokens.unsqueeze(1),
            "attention_mask": self.mask,
            "position_ids": self.positions.unsqueeze(1),
            self._cache_keyword: self.cache,
            "use_cache": True,
        }
        self.positions = self.positions + 1
        return inputs
