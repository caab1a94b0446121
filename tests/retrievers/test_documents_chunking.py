import json
from pathlib import Path

import pytest

from core.errors import InvalidRequestError
from retrievers.chunking import Chunking, split
from retrievers.documents import Document, read_sources


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with one line of Helvetica text, with a correct xref table."""
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 400 144]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>",
        b"<</Length %d>>stream\n" % len(stream) + stream + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_reads_text_markdown_html_pdf_and_beir_jsonl(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("Plain notes about glaciers.")
    (tmp_path / "guide.md").write_text("# Volcano guide\n\nLava is hot.")
    (tmp_path / "page.html").write_text(
        "<html><head><title>Page title</title><style>p{}</style></head>"
        "<body><p>Visible text.</p><script>var hidden = 1;</script></body></html>"
    )
    (tmp_path / "paper.pdf").write_bytes(minimal_pdf("Hello PDF magma"))
    (tmp_path / "skip.bin").write_bytes(b"\x00\x01")
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps(
            {"_id": "d1", "title": "T", "text": "Body", "metadata": {"year": 2020, "nested": {"x": 1}}}
        )
        + "\n"
    )
    docs = {d.doc_id: d for d in read_sources([tmp_path])}
    assert set(docs) == {"notes.txt", "guide.md", "page.html", "paper.pdf", "d1"}
    assert docs["guide.md"].title == "Volcano guide"
    assert docs["page.html"].title == "Page title"
    assert "Visible text." in docs["page.html"].text and "hidden" not in docs["page.html"].text
    assert "Hello PDF magma" in docs["paper.pdf"].text
    assert docs["d1"].attributes == {"year": 2020} and docs["d1"].is_passage
    assert docs["notes.txt"].attributes["extension"] == "txt"


def test_bad_jsonl_and_missing_source_are_refused(tmp_path: Path):
    (tmp_path / "bad.jsonl").write_text('{"title": "no id"}\n')
    with pytest.raises(InvalidRequestError, match="BEIR"):
        list(read_sources([tmp_path]))
    with pytest.raises(InvalidRequestError, match="does not exist"):
        list(read_sources([tmp_path / "nope"]))


def test_chunks_overlap_and_cover_the_document():
    words = [f"w{i}" for i in range(25)]
    doc = Document("d", " ".join(words))
    chunks = split(doc, Chunking(size=10, overlap=3))
    assert [c.chunk_id for c in chunks] == ["d#0", "d#1", "d#2", "d#3"]
    assert chunks[0].text.split() == words[0:10]
    assert chunks[1].text.split()[:3] == words[7:10]
    assert chunks[-1].text.split()[-1] == "w24"
    assert (
        split(Document("p", " ".join(words), is_passage=True), Chunking(size=10, overlap=3))[0].text
        == doc.text
    )


def test_chunking_parameters_are_checked():
    with pytest.raises(InvalidRequestError):
        Chunking(size=10, overlap=10)
    with pytest.raises(InvalidRequestError):
        Chunking(size=0, overlap=0)
