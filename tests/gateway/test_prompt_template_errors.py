"""A stored template that fails because of the template itself is a server error (500), not a 400:
the client did nothing wrong. The body stays in OpenAI's error format."""

from core.errors import AihubError, ErrorKind
from gateway.errors import describe
from gateway.prompts import BROKEN_TEMPLATE_CODE, PromptTemplate


def _error(call: object) -> AihubError:
    try:
        call()  # type: ignore[operator]
    except AihubError as exc:
        return exc
    raise AssertionError("no error raised")


def test_a_sandbox_violation_at_render_is_a_500() -> None:
    escape = PromptTemplate.compile("{{ question.__class__.__mro__ }}", ["question"])
    error = _error(lambda: escape.render({"question": "q"}))
    assert error.kind is ErrorKind.INTERNAL and error.code == BROKEN_TEMPLATE_CODE
    status, body = describe(error)
    assert status == 500
    assert body["error"]["type"] == "server_error" and body["error"]["code"] == BROKEN_TEMPLATE_CODE
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_a_stored_spec_that_does_not_compile_is_a_500() -> None:
    error = _error(lambda: PromptTemplate.from_spec({"template": "{% for %}"}, "sha256:" + "0" * 64))
    assert describe(error)[0] == 500 and error.code == BROKEN_TEMPLATE_CODE


def test_a_missing_value_stays_the_clients_fault() -> None:
    prompt = PromptTemplate.compile("{{ question }} {{ tone }}", ["question", "tone"])
    assert describe(_error(lambda: prompt.render({"question": "q"})))[0] == 400
