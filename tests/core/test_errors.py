from core.errors import (
    AihubError,
    ContextLengthExceededError,
    EngineUnavailableError,
    ErrorKind,
    ModelNotFoundError,
)


def test_codes_default_per_class_and_can_be_overridden() -> None:
    assert ModelNotFoundError("x").code == "model_not_found"
    assert ModelNotFoundError("x", code="other").code == "other"
    assert ContextLengthExceededError("long", param="messages").param == "messages"


def test_kinds_drive_the_status_mapping() -> None:
    assert ModelNotFoundError("x").kind is ErrorKind.NOT_FOUND
    assert ContextLengthExceededError("x").kind is ErrorKind.INVALID_REQUEST
    assert EngineUnavailableError("x").kind is ErrorKind.UNAVAILABLE
    assert isinstance(EngineUnavailableError("x"), AihubError)
