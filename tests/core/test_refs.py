import pytest

from core.errors import InvalidReferenceError
from core.refs import ArtifactRef, is_digest

DIGEST = "sha256:" + "ab" * 32


def test_bare_name_means_latest() -> None:
    ref = ArtifactRef.parse("models/smollm2")
    assert (ref.name, ref.tag, ref.digest) == ("models/smollm2", "latest", None)
    assert str(ref) == "models/smollm2:latest"


def test_tag_and_digest_forms() -> None:
    assert ArtifactRef.parse("rag/docs:prod").tag == "prod"
    pinned = ArtifactRef.parse(f"rag/docs@{DIGEST}")
    assert pinned.digest == DIGEST and pinned.tag is None
    assert str(pinned) == f"rag/docs@{DIGEST}"


def test_nested_namespaces_and_separators() -> None:
    ref = ArtifactRef.parse("site-a/team_x/my.index:v1.2-rc")
    assert ref.name == "site-a/team_x/my.index" and ref.tag == "v1.2-rc"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Models/Upper",
        "a//b",
        "name:",
        "name:bad tag",
        "name@sha256:short",
        "name@md5:" + "a" * 32,
        "/lead",
        "x" * 600,
    ],
)
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        ArtifactRef.parse(text)


def test_with_digest_and_is_digest() -> None:
    assert ArtifactRef.parse("a/b:t").with_digest(DIGEST) == ArtifactRef(name="a/b", digest=DIGEST)
    assert is_digest(DIGEST) and not is_digest("sha256:XYZ")


def test_names_are_capped_at_the_registries_255_characters() -> None:
    assert ArtifactRef.parse("a" * 255 + ":v1").name == "a" * 255
    for text in ("a" * 256, "models/" + "b" * 300 + ":latest", "ns/" + "c" * 300 + "@" + DIGEST):
        with pytest.raises(InvalidReferenceError, match="at most 255"):
            ArtifactRef.parse(text)
    assert ArtifactRef.parse("a/b:" + "t" * 128).tag == "t" * 128
    with pytest.raises(InvalidReferenceError, match="bad tag"):
        ArtifactRef.parse("a/b:" + "t" * 129)
