"""Fitting documents into a token budget: in rank order, the first misfit cut short, never an error."""

from core.retrieval import SearchHit
from gateway.context_budget import (
    MIN_TRUNCATED_TOKENS,
    available_for_documents,
    estimate_tokens,
    fit_documents,
    token_counter,
)
from gateway.retrieval_step import fuse


def test_estimate_is_conservative() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 2  # 4 chars / 3, rounded up


def test_documents_fit_in_rank_order_and_the_misfit_is_cut() -> None:
    texts = ["a " * 30, "b " * 300, "c " * 10]  # 20, 200, 7 estimated tokens
    fitted = fit_documents(texts, budget=120)
    assert [f.index for f in fitted] == [0, 1]
    assert not fitted[0].truncated and fitted[1].truncated
    assert sum(f.tokens + 8 for f in fitted) <= 120
    assert fitted[1].text.endswith("…")


def test_too_small_a_tail_is_left_out_and_zero_budget_is_empty() -> None:
    fitted = fit_documents(["x" * 60, "y" * 3000], budget=20 + 8 + 8 + MIN_TRUNCATED_TOKENS - 1)
    assert [f.index for f in fitted] == [0]
    assert fit_documents(["x" * 300], budget=0) == []


def test_available_budget_accounts_for_answer_and_turns() -> None:
    assert available_for_documents(2048, 256, 100, 1) == 2048 - 256 - 100 - 16
    assert available_for_documents(512, 600, 100, 1) == 0


def test_engine_token_count_is_used_when_offered() -> None:
    class CountingEngine:
        def count_tokens(self, text: str) -> int:
            return len(text.split())

    assert token_counter(CountingEngine())("one two three") == 3
    assert token_counter(object())("one two three") == 5


def test_fusion_ranks_across_indices() -> None:
    def hit(doc: str, score: float) -> SearchHit:
        return SearchHit(doc_id=doc, chunk_id=doc, text=doc, score=score)

    fused = fuse([[hit("a", 0.9), hit("b", 0.8)], [hit("b", 12.0), hit("c", 11.0)]], top_k=3)
    assert [h.doc_id for h in fused] == ["b", "a", "c"]
    assert fused[0].score == 0.8  # the citation keeps its own index's score
