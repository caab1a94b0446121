import numpy as np
import pytest

from core.retrieval import ComparisonFilter, CompoundFilter
from retrievers.filters import mask, matches
from retrievers.qdrant_index import to_qdrant

ROWS = [
    {"topic": "animals", "year": 2020, "tags": ["pets", "mammals"]},
    {"topic": "animals", "year": 2018, "tags": ["pets"]},
    {"topic": "finance", "year": 2022},
    {"year": "unknown"},
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (ComparisonFilter("topic", "eq", "animals"), [True, True, False, False]),
        (ComparisonFilter("topic", "ne", "animals"), [False, False, True, True]),
        (ComparisonFilter("year", "gt", 2018), [True, False, True, False]),
        (ComparisonFilter("year", "gte", 2018), [True, True, True, False]),
        (ComparisonFilter("year", "lt", 2020), [False, True, False, False]),
        (ComparisonFilter("year", "lte", 2020), [True, True, False, False]),
        (ComparisonFilter("topic", "in", ["finance", "x"]), [False, False, True, False]),
        (ComparisonFilter("topic", "nin", ["finance"]), [True, True, False, True]),
        (ComparisonFilter("tags", "eq", "mammals"), [True, False, False, False]),
        (
            CompoundFilter(
                "and", (ComparisonFilter("topic", "eq", "animals"), ComparisonFilter("year", "gt", 2019))
            ),
            [True, False, False, False],
        ),
        (
            CompoundFilter(
                "or", (ComparisonFilter("topic", "eq", "finance"), ComparisonFilter("year", "lt", 2019))
            ),
            [False, True, True, False],
        ),
    ],
)
def test_filter_semantics(flt, expected):
    assert mask(flt, ROWS).tolist() == expected
    assert [matches(flt, r) for r in ROWS] == expected


def test_qdrant_translation_or_fallback():
    assert to_qdrant(ComparisonFilter("topic", "eq", "animals")) is not None
    assert to_qdrant(ComparisonFilter("year", "gt", 2018)) is not None
    # strings have no native range in Qdrant: the caller falls back to an id list
    assert to_qdrant(ComparisonFilter("topic", "gt", "a")) is None
    assert to_qdrant(CompoundFilter("and", (ComparisonFilter("topic", "gt", "a"),))) is None
    assert np.array_equal(mask(ComparisonFilter("topic", "gt", "b"), ROWS), [False, False, True, False])
