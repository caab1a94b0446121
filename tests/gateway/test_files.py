"""/v1/files through the official client: upload, list, retrieve, content, delete, and OpenAI's errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway.files_hub import FilesGateway, files_gateway
from tests.support.openai_spec import SpecValidator

MAX_FILE_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilesGateway]:
    with files_gateway(tmp_path_factory.mktemp("files"), max_file_bytes=MAX_FILE_BYTES) as served:
        yield served


@pytest.fixture(scope="module")
def client(gateway: FilesGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="unused", max_retries=0) as opened:
        yield opened


def test_upload_retrieve_content_list_and_delete(client: openai.OpenAI, spec: SpecValidator, gateway):
    body = b"# Cats\n\nCats purr and chase mice."
    uploaded = client.files.create(file=("notes/cats.md", body), purpose="assistants")
    raw = uploaded.model_dump(exclude_none=True)
    spec.check("OpenAIFile", raw)
    assert uploaded.id.startswith("file-") and uploaded.filename == "cats.md"
    assert uploaded.bytes == len(body) and uploaded.purpose == "assistants"
    assert client.files.retrieve(uploaded.id).model_dump() == uploaded.model_dump()
    assert client.files.content(uploaded.id).read() == body
    # The bytes are a content-addressed hub blob.
    record = gateway.services.files.get("default", uploaded.id)
    assert gateway.store.blobs.read_bytes(record.digest) == body

    other = client.files.create(file=("dogs.txt", b"Dogs bark."), purpose="user_data")
    listing = client.files.list()
    spec.check("ListFilesResponse", listing.model_dump(exclude_none=True))
    ids = [f.id for f in listing.data]
    assert ids.index(other.id) < ids.index(uploaded.id)  # newest first
    assert [f.id for f in client.files.list(purpose="user_data").data] == [other.id]
    page = httpx.get(f"{gateway.base_url}/v1/files", params={"limit": 1, "order": "asc"}).json()
    assert page["has_more"] is True and len(page["data"]) == 1
    after = httpx.get(
        f"{gateway.base_url}/v1/files", params={"limit": 100, "order": "asc", "after": page["last_id"]}
    ).json()
    assert page["last_id"] not in [f["id"] for f in after["data"]] and after["has_more"] is False

    deleted = client.files.delete(other.id)
    spec.check("DeleteFileResponse", deleted.model_dump())
    assert deleted.deleted is True and deleted.id == other.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(other.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(other.id)


def test_refused_uploads_get_openai_errors(client: openai.OpenAI, gateway: FilesGateway, tmp_path: Path):
    with pytest.raises(openai.BadRequestError) as wrong_purpose:
        client.files.create(file=("a.txt", b"text"), purpose="fine-tune")
    assert wrong_purpose.value.body["param"] == "purpose"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as wrong_type:
        client.files.create(file=("photo.png", b"\x89PNG...."), purpose="assistants")
    assert wrong_type.value.code == "unsupported_file"
    with pytest.raises(openai.APIStatusError) as too_large:
        client.files.create(file=("big.txt", b"x" * (MAX_FILE_BYTES + 1)), purpose="assistants")
    assert too_large.value.status_code == 413
    with pytest.raises(openai.APIStatusError) as far_too_large:  # refused by content-length, unread
        client.files.create(file=("huge.txt", b"x" * (MAX_FILE_BYTES * 4)), purpose="assistants")
    assert far_too_large.value.status_code == 413
    missing = httpx.post(
        f"{gateway.base_url}/v1/files", data={"purpose": "assistants"}, files={"x": ("a", b"1")}
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    not_multipart = httpx.post(f"{gateway.base_url}/v1/files", json={"purpose": "assistants"})
    assert not_multipart.status_code == 400
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-unknown")


def test_files_are_scoped_to_their_project(client: openai.OpenAI, gateway: FilesGateway):
    from core.errors import NotFoundError

    uploaded = client.files.create(file=("mine.txt", b"mine"), purpose="assistants")
    files = gateway.services.files
    assert files is not None
    with pytest.raises(NotFoundError):
        files.get("another-project", uploaded.id)
    with pytest.raises(NotFoundError):
        files.delete("another-project", uploaded.id)
    assert uploaded.id not in [f.id for f in files.list("another-project")[0]]
