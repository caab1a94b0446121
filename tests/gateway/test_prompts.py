"""Prompt templates: push-time check of declared variables, sandboxed rendering, request errors."""

import pytest

from core.errors import AihubError, InvalidRequestError, InvalidSpecError
from core.template_check import validate_template
from gateway.prompts import PromptTemplate


def test_undeclared_variables_are_refused() -> None:
    with pytest.raises(InvalidSpecError, match="secret"):
        validate_template("{{ question }} {{ secret }}", ["question"])
    validate_template("{% for i in range(3) %}{{ question }}{% endfor %}", ["question"])  # globals are fine


def test_syntax_errors_and_bad_names_are_refused() -> None:
    with pytest.raises(InvalidSpecError, match="does not parse"):
        validate_template("{% for x in %}", ["x"])
    with pytest.raises(InvalidSpecError, match="identifier"):
        validate_template("{{ a }}", ["not valid"])


def test_render_fills_defaults_and_documents() -> None:
    prompt = PromptTemplate.from_spec(
        {
            "template": "{{ tone }}: {% for d in documents %}<{{ d.title }}>{% endfor %} {{ question }}",
            "variables": ["question", "documents", "tone"],
            "defaults": {"tone": "Briefly"},
        }
    )
    text = prompt.render({"question": "Why?", "documents": [{"title": "A"}, {"title": "B"}]})
    assert text == "Briefly: <A><B> Why?"


def test_missing_values_are_request_errors_naming_the_variable() -> None:
    prompt = PromptTemplate.compile("{{ question }} in {{ language }}", ["question", "language"])
    with pytest.raises(InvalidRequestError) as info:
        prompt.render({"question": "q"})
    assert info.value.param == "language"
    assert "language" in info.value.message
    fields = PromptTemplate.compile("{{ documents[0].title }}", ["documents"])
    with pytest.raises(InvalidRequestError, match="title"):
        fields.render({"documents": [{"text": "no title"}]})


def test_the_sandbox_blocks_internals_and_mutation() -> None:
    escape = PromptTemplate.compile("{{ question.__class__.__mro__ }}", ["question"])
    with pytest.raises(AihubError):
        escape.render({"question": "q"})
    mutate = PromptTemplate.compile("{{ documents.append(1) }}", ["documents"])
    documents: list[int] = []
    with pytest.raises(AihubError):
        mutate.render({"documents": documents})
    assert documents == []
