"""Ray's exceptions mapped to aihub's at the edge where handle calls return.

A replica that raised one of our own errors (a too-long prompt, an unknown index) arrives wrapped in a
``RayTaskError``: the original is raised again so the gateway renders its proper status. A replica that
died, restarts, or cannot be reached becomes ``EngineUnavailableError`` (503).
"""

from __future__ import annotations

from core.errors import AihubError, EngineError, EngineUnavailableError


def _unavailable_types() -> tuple[type[BaseException], ...]:
    from ray.exceptions import (
        NodeDiedError,
        ObjectLostError,
        RayActorError,
        TaskCancelledError,
        WorkerCrashedError,
    )
    from ray.serve.exceptions import (
        BackPressureError,
        DeploymentUnavailableError,
        ReplicaUnavailableError,
    )

    return (
        RayActorError,  # ActorDiedError, ActorUnavailableError
        WorkerCrashedError,
        NodeDiedError,
        ObjectLostError,
        BackPressureError,
        DeploymentUnavailableError,
        ReplicaUnavailableError,
        TaskCancelledError,  # the replica went away with the request (RequestCancelledError)
    )


def map_ray_error(exc: BaseException, what: str) -> BaseException:
    """The exception to raise instead of ``exc``; ``what`` names the component (e.g. ``model x``)."""
    from ray.exceptions import RayTaskError

    if isinstance(exc, AihubError) and not isinstance(exc, RayTaskError):
        return exc
    if isinstance(exc, RayTaskError):
        cause = exc.cause
        if isinstance(cause, AihubError):
            return cause
        if isinstance(cause, _unavailable_types()):
            return EngineUnavailableError(f"{what} is unavailable: {type(cause).__name__}")
        return EngineError(f"{what} failed: {type(cause).__name__}: {cause}")
    if isinstance(exc, _unavailable_types()):
        return EngineUnavailableError(f"{what} is unavailable (its replica died or is restarting)")
    return exc
