"""Stored ``/v1/responses`` objects: the seam between the gateway and the database that keeps them
(``tenancy.response_store``). Rows belong to a project; another project's id does not exist for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored response.

    ``response`` is the object as the client got it; ``input_items`` the request's input items (with
    ids), as ``GET /v1/responses/{id}/input_items`` lists them; ``history`` the items of the earlier
    turns of its conversation (``previous_response_id`` chain), so that a follow-up reads one row.
    """

    id: str
    project: str
    created_at: float  # unix time
    response: Mapping[str, Any]
    input_items: Sequence[Mapping[str, Any]]
    history: Sequence[Mapping[str, Any]] = ()


@runtime_checkable
class ResponseStore(Protocol):
    """Synchronous (a database round trip): callers on the event loop use ``asyncio.to_thread``."""

    @property
    def max_row_bytes(self) -> int:
        """The size cap of one stored row (its JSON)."""
        ...

    def put(self, row: StoredResponse) -> None:
        """Stores a new row (ids are never reused); ``PayloadTooLargeError`` when it is over
        ``max_row_bytes``."""
        ...

    def get(self, project: str, response_id: str) -> StoredResponse | None: ...

    def delete(self, project: str, response_id: str) -> bool:
        """False: the project has no such response."""
        ...
