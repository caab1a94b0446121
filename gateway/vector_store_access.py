"""Who owns what: the caller's project, and the files and vector stores it may reach.

A ``vs_…`` store belongs to one project; another project's caller gets the 404 an unknown id gets.
``open_vector_store`` is how a route (search, the ``file_search`` tool) opens a store or hub index."""

from __future__ import annotations

import asyncio

from fastapi import Request

from core.errors import NotFoundError
from core.files import FileStore
from core.retrieval import Retriever
from core.tenancy import DEFAULT_PROJECT
from core.vector_stores import STORE_NAMESPACE, VectorStoreService, is_store_id
from gateway.services import GatewayServices
from gateway.state import gateway_state
from gateway.tenant_auth import principal_of


class FilesUnavailableError(NotFoundError):
    default_code = "files_unavailable"


def caller_project(request: Request) -> str:
    principal = principal_of(request.scope)
    return principal.project if principal is not None else DEFAULT_PROJECT


def file_store(request: Request) -> FileStore:
    files = gateway_state(request).services.files
    if files is None:
        raise FilesUnavailableError("this gateway keeps no files (it has no hub or database)")
    return files


def vector_store_service(request: Request) -> VectorStoreService:
    stores = gateway_state(request).services.vector_stores
    if stores is None:
        raise FilesUnavailableError("this gateway makes no vector stores (it has no hub or database)")
    return stores


async def open_vector_store(services: GatewayServices, project: str, vector_store_id: str) -> Retriever:
    """A retriever over ``vector_store_id``: a ``vs_…`` store of ``project`` or a hub index reference.
    Raises ``NotFoundError`` (unknown, or another project's) and what ``IndexProvider.open`` raises."""
    if services.indexes is None:
        raise NotFoundError(
            "no vector stores are served: this gateway has no embedder or hub",
            code="vector_stores_unavailable",
        )
    if vector_store_id.startswith(f"{STORE_NAMESPACE}/"):
        # A store's own index artifact is reached through its vs_ id, where its project is checked.
        raise NotFoundError(
            f"No vector store found with id '{vector_store_id}'.", code="vector_store_not_found"
        )
    if is_store_id(vector_store_id):
        if services.vector_stores is None:
            raise NotFoundError(
                f"No vector store found with id '{vector_store_id}'.", code="vector_store_not_found"
            )
        await asyncio.to_thread(services.vector_stores.get, project, vector_store_id)
    return await services.indexes.open(vector_store_id)
