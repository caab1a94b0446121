"""The push-time sandbox check: what the render-time sandbox would refuse is refused up front."""

import pytest

from core.errors import InvalidSpecError
from core.template_check import check_sandbox_safe


@pytest.mark.parametrize(
    ("template", "what"),
    [
        ("{{ question.__class__.__mro__ }}", "attribute '__class__'"),
        ("{{ question._private }}", "attribute '_private'"),
        ("{{ question['__class__'] }}", "item '__class__'"),
        ("{{ question|attr('__class__') }}", "attr filter"),
        ("{{ documents.append(1) }}", "mutating method 'append'"),
        ("{% set _ = documents.pop() %}{{ question }}", "mutating method 'pop'"),
        ("{{ '{0.__class__}'.format(question) }}", "format field"),
    ],
)
def test_sandbox_violations_are_refused(template: str, what: str) -> None:
    with pytest.raises(InvalidSpecError, match=what) as info:
        check_sandbox_safe(template)
    assert info.value.param == "template"


def test_ordinary_templates_pass() -> None:
    check_sandbox_safe(
        "{% for d in documents %}[{{ loop.index }}] {{ d.title|upper }} {{ d['text'][:200] }}{% endfor %}"
        "{{ question.strip() }} {{ '{0}: {1}'.format(question, history|length) }}"
    )
