"""Evaluating core.retrieval filters on chunk attributes (OpenAI vector store filter semantics)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import InvalidRequestError
from core.retrieval import ComparisonFilter, CompoundFilter, Filter

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (isinstance(a, str) and isinstance(b, str))


def _compare(f: ComparisonFilter, attributes: Mapping[str, Any]) -> bool:
    present = f.key in attributes
    value = attributes.get(f.key)
    # A list-valued attribute matches eq/in when any of its values does (as Qdrant does).
    values = value if isinstance(value, list) else [value]
    if f.op == "eq":
        return present and f.value in values
    if f.op == "ne":
        return not (present and f.value in values)
    if f.op in ("in", "nin"):
        if not isinstance(f.value, list | tuple):
            raise InvalidRequestError(f"filter {f.op!r} on {f.key!r} needs a list value", param="filters")
        hit = present and any(v in f.value for v in values)
        return hit if f.op == "in" else not hit
    compare = _ORDER.get(f.op)
    if compare is None:
        raise InvalidRequestError(f"unknown filter operator {f.op!r}", param="filters")
    return present and any(_comparable(v, f.value) and compare(v, f.value) for v in values)


def matches(flt: Filter, attributes: Mapping[str, Any]) -> bool:
    if isinstance(flt, ComparisonFilter):
        return _compare(flt, attributes)
    if isinstance(flt, CompoundFilter):
        results = (matches(sub, attributes) for sub in flt.filters)
        return all(results) if flt.op == "and" else any(results)
    raise InvalidRequestError(f"unsupported filter {flt!r}", param="filters")


def mask(flt: Filter, attributes: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.bool_]:
    """Which rows pass the filter."""
    return np.fromiter((matches(flt, a) for a in attributes), dtype=np.bool_, count=len(attributes))
