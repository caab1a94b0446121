"""The one exception tree of aihub.

Every layer raises these; vendor exceptions are mapped to them at the edge where they occur.
Only the gateway turns them into HTTP responses (status from ``kind``, body in OpenAI's format).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ErrorKind(StrEnum):
    """What went wrong, independent of transport. The gateway maps each kind to an HTTP status."""

    INVALID_REQUEST = "invalid_request"  # 400
    AUTHENTICATION = "authentication"  # 401
    PERMISSION = "permission"  # 403
    NOT_FOUND = "not_found"  # 404
    CONFLICT = "conflict"  # 409
    PAYLOAD_TOO_LARGE = "payload_too_large"  # 413
    RATE_LIMIT = "rate_limit"  # 429
    INTERNAL = "internal"  # 500
    BAD_GATEWAY = "bad_gateway"  # 502
    UNAVAILABLE = "unavailable"  # 503
    GATEWAY_TIMEOUT = "gateway_timeout"  # 504


class AihubError(Exception):
    """Base of every error aihub raises on purpose.

    ``param`` names the offending request field where there is one; ``code`` is a short machine
    readable string (OpenAI's ``error.code``), for example ``model_not_found``.
    """

    kind: ErrorKind = ErrorKind.INTERNAL
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code


class InvalidRequestError(AihubError):
    kind = ErrorKind.INVALID_REQUEST


class ContextLengthExceededError(InvalidRequestError):
    default_code = "context_length_exceeded"


class AuthenticationError(AihubError):
    kind = ErrorKind.AUTHENTICATION
    default_code = "invalid_api_key"


class PermissionDeniedError(AihubError):
    kind = ErrorKind.PERMISSION
    default_code = "permission_denied"


class NotFoundError(AihubError):
    kind = ErrorKind.NOT_FOUND


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"


class ConflictError(AihubError):
    kind = ErrorKind.CONFLICT


class PayloadTooLargeError(AihubError):
    kind = ErrorKind.PAYLOAD_TOO_LARGE
    default_code = "payload_too_large"


class EngineError(AihubError):
    """An engine failed while serving a request (a bug or a broken model)."""

    kind = ErrorKind.INTERNAL
    default_code = "engine_error"


class EngineUnavailableError(AihubError):
    """An engine cannot take the request now (not loaded, restarting, overloaded, upstream down)."""

    kind = ErrorKind.UNAVAILABLE
    default_code = "engine_unavailable"


class UpstreamError(AihubError):
    """A remote OpenAI-compatible upstream failed or answered something that is not a valid reply."""

    kind = ErrorKind.BAD_GATEWAY
    default_code = "upstream_error"


class UpstreamTimeoutError(UpstreamError):
    """An upstream did not answer (or stopped sending) within the configured timeouts."""

    kind = ErrorKind.GATEWAY_TIMEOUT
    default_code = "upstream_timeout"


class RequestTimeoutError(AihubError):
    """A request ran past the server's per-request deadline; its work was stopped."""

    kind = ErrorKind.GATEWAY_TIMEOUT
    default_code = "request_timeout"


class RateLimitError(AihubError):
    """Too many requests or tokens for now (``rate_limit_exceeded``), or a spent budget
    (``insufficient_quota``). ``headers``: ``Retry-After`` and OpenAI's ``x-ratelimit-*``."""

    kind = ErrorKind.RATE_LIMIT
    default_code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.headers = dict(headers or {})


# --- hub -----------------------------------------------------------------------------------------


class HubError(AihubError):
    """Base of artifact-store errors."""

    kind = ErrorKind.INVALID_REQUEST


class InvalidReferenceError(HubError):
    default_code = "invalid_reference"


class ArtifactNotFoundError(NotFoundError):
    default_code = "artifact_not_found"


class InvalidSpecError(HubError):
    default_code = "invalid_spec"


class IntegrityError(HubError):
    """Stored content does not match its digest. Never served."""

    kind = ErrorKind.INTERNAL
    default_code = "integrity_error"


class RegistryError(HubError):
    """A remote OCI registry refused, failed or could not be reached."""

    kind = ErrorKind.UNAVAILABLE
    default_code = "registry_error"


class StorageError(HubError):
    """The local store could not be written (disk full, permissions)."""

    kind = ErrorKind.INTERNAL
    default_code = "storage_error"


class EmbedderMismatchError(InvalidRequestError):
    default_code = "embedder_mismatch"
