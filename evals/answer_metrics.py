"""Answer metrics: exact match and token F1 (SQuAD normalization), citation recall, refusals."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)

# Phrasings of "the documents do not say": matched on the normalized answer.
REFUSAL_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        r"\bi (?:do not|dont|don t) know\b",
        r"\b(?:cannot|can not|cant|can t|unable to) (?:answer|find|determine|tell|say)\b",
        r"\b(?:no|not enough|insufficient) (?:relevant )?(?:information|context|evidence)\b",
        r"\bnot (?:mentioned|stated|provided|covered) in\b",
        r"\b(?:does not|doesnt|doesn t|do not|dont|don t) (?:say|mention|contain|provide)\b",
        r"^unanswerable\b",
    )
)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (as the SQuAD evaluation script does)."""
    lowered = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", lowered).split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    if not references:
        return 0.0
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(ref) for ref in references))


def _f1(prediction_tokens: list[str], reference_tokens: list[str]) -> float:
    if not prediction_tokens or not reference_tokens:
        return float(prediction_tokens == reference_tokens)
    common = Counter(prediction_tokens) & Counter(reference_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """Best token-overlap F1 over the references."""
    if not references:
        return 0.0
    tokens = normalize_answer(prediction).split()
    return max(_f1(tokens, normalize_answer(ref).split()) for ref in references)


def citation_recall(cited_doc_ids: Iterable[str], gold_doc_ids: Iterable[str]) -> float:
    """Share of the gold documents the answer cites."""
    gold = set(gold_doc_ids)
    if not gold:
        return 0.0
    return len(gold & set(cited_doc_ids)) / len(gold)


def is_refusal(answer: str) -> bool:
    normalized = normalize_answer(answer)
    if not normalized:
        return True  # an empty answer answers nothing
    return any(pattern.search(normalized) for pattern in REFUSAL_PATTERNS)
