import math
from typing import Any

import pytest

from evals.compare import paired_bootstrap, sign_test
from evals.gate import gate, same_conditions


def test_sign_test_is_the_exact_binomial() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0
    assert sign_test(10, 0) == pytest.approx(2 / 2**10)
    assert sign_test(8, 2) == pytest.approx(2 * sum(math.comb(10, i) for i in range(3)) / 2**10)


def test_bootstrap_is_seeded_and_separates_real_from_null_differences() -> None:
    shift = [0.2 + 0.01 * (i % 5) for i in range(60)]
    noise = [(-1) ** i * 0.3 for i in range(60)]
    assert paired_bootstrap(shift, 2000, seed=1) < 0.01
    assert paired_bootstrap([*noise, 0.01], 2000, seed=1) > 0.5
    assert paired_bootstrap(noise, 500, seed=3) == paired_bootstrap(noise, 500, seed=3)
    assert paired_bootstrap([], 100) == 1.0


def report(metrics: dict[str, float], **changes: Any) -> dict[str, Any]:
    base = {
        "metrics": metrics,
        "dataset": {"digest": "sha256:" + "a" * 64, "split": "test"},
        "engine": {"temperature": 0.0, "max_tokens": 64, "top_p": 1.0, "seed": 0},
        "search_limit": 100,
    }
    return {**base, **changes}


def test_gate_fails_a_drop_larger_than_allowed_and_a_missing_metric() -> None:
    baseline = report({"ndcg@10": 0.70, "recall@100": 0.90, "f1": 0.5})
    candidate = report({"ndcg@10": 0.69, "recall@100": 0.88})
    checks = {c.metric: c for c in gate(baseline, candidate, max_drop=0.01)}
    assert checks["ndcg@10"].passed  # a drop of exactly max_drop passes
    assert not checks["recall@100"].passed and checks["recall@100"].drop == pytest.approx(0.02)
    assert not checks["f1"].passed and checks["f1"].candidate is None
    assert all(c.passed for c in gate(baseline, report({"ndcg@10": 0.8, "recall@100": 0.9, "f1": 0.6}), 0.0))


def test_runs_under_other_conditions_are_not_comparable() -> None:
    baseline = report({})
    assert same_conditions(baseline, report({})) == []
    other = report({}, dataset={"digest": "sha256:" + "b" * 64, "split": "test"})
    assert same_conditions(baseline, other) == ["dataset digest"]
    hot = report({}, engine={"temperature": 0.7, "max_tokens": 64, "top_p": 1.0, "seed": 0})
    assert same_conditions(baseline, hot) == ["engine settings"]
