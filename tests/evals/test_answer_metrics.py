from evals.answer_metrics import citation_recall, exact_match, is_refusal, normalize_answer, token_f1


def test_squad_normalization_drops_case_punctuation_and_articles() -> None:
    assert normalize_answer("The  Eiffel Tower, in Paris!") == "eiffel tower in paris"
    assert normalize_answer("An apple a day") == "apple day"


def test_exact_match_takes_the_best_reference() -> None:
    assert exact_match("the Bologna.", ["Kajaani", "Bologna"]) == 1.0
    assert exact_match("Bologna, Italy", ["Bologna"]) == 0.0
    assert exact_match("anything", []) == 0.0


def test_token_f1_counts_overlap_with_multiplicity() -> None:
    # prediction: hosted in bologna italy (4 tokens); reference: bologna (1): P=1/4, R=1 → F1=0.4
    assert token_f1("hosted in Bologna, Italy", ["Bologna"]) == 0.4
    assert token_f1("a a b", ["a b b"]) == 2 * (2 / 3) * (2 / 3) / (4 / 3)
    assert token_f1("x", ["y", "x"]) == 1.0
    assert token_f1("", [""]) == 1.0


def test_citation_recall_is_the_share_of_gold_documents_cited() -> None:
    assert citation_recall(["d1", "d3", "d1"], ["d1", "d2"]) == 0.5
    assert citation_recall([], ["d1"]) == 0.0
    assert citation_recall(["d1"], []) == 0.0


def test_refusals_are_recognised_and_answers_are_not() -> None:
    for text in (
        "I don't know.",
        "I cannot answer that from the documents.",
        "There is not enough information in the context.",
        "The documents do not mention it.",
        "",
    ):
        assert is_refusal(text), text
    for text in ("Leonardo is in Bologna.", "The answer is known: 42."):
        assert not is_refusal(text), text
