"""Finding and reading documents: txt/md, html, json, jsonl, pdf; hidden entries; errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicerag_cli.config import IndexConfig
from voicerag_cli.errors import InputError
from voicerag_cli.index.chunking import chunk_document
from voicerag_cli.index.documents import find_files, hash_file, read_documents
from vrtest import pdf_file

EXTENSIONS = IndexConfig().extensions


def minimal_pdf(pages: list[str]) -> bytes:
    """A valid PDF (Helvetica text, one line per page) written by hand, with a correct xref."""
    objects: list[bytes] = []
    page_ids = [3 + 2 * i for i in range(len(pages))]
    font_id = 3 + 2 * len(pages)
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    for pid, text in zip(page_ids, pages, strict=True):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {pid + 1} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return pdf_file(objects)


def test_pdf_pages_become_documents(tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(minimal_pdf(["The Rhine rises in the Swiss Alps.", "It flows into the North Sea."]))
    docs = read_documents(pdf, "text")
    assert [d.source for d in docs] == [f"{pdf}#page=1", f"{pdf}#page=2"]
    assert "Rhine rises in the Swiss Alps" in docs[0].text
    assert "North Sea" in docs[1].text


def test_broken_pdf_is_an_input_error(tmp_path: Path) -> None:
    pdf = tmp_path / "broken.pdf"
    pdf.write_bytes(b"%PDF-1.4\nthis is not a pdf body")
    with pytest.raises(InputError, match="cannot read PDF"):
        read_documents(pdf, "text")


def test_html_text_without_markup_scripts_or_head(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Ignored title</title><style>p {color: red}</style></head><body>"
        "<h1>Rivers</h1><p>The Rhine is long &amp; busy.</p><script>var x = 'hidden';</script>"
        "<ul><li>Basel</li><li>Cologne</li></ul></body></html>",
        encoding="utf-8",
    )
    [doc] = read_documents(page, "text")
    assert doc.source == str(page) and doc.markup == ".html"
    [chunk] = chunk_document(doc.source, doc.text, doc.markup, 120, 30)
    assert chunk.text == "Rivers\n\nThe Rhine is long & busy.\n\nBasel\n\nCologne"
    assert [b.kind for b in chunk.blocks] == ["heading", "prose", "list_item", "list_item"]


def test_jsonl_records_are_separate_sources(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    records = [{"text": "first record"}, {"body": "no text field"}, {"text": ["a", "b"]}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    docs = read_documents(path, "text")
    assert [(d.source, d.text) for d in docs] == [
        (f"{path}#L1", "first record"),
        (f"{path}#L3", "a"),
        (f"{path}#L3", "b"),
    ]
    assert [d.text for d in read_documents(path, "body")] == ["no text field"]


def test_jsonl_with_a_bad_line_names_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:2: invalid JSON"):
        read_documents(path, "text")


def test_json_documents(tmp_path: Path) -> None:
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"title": "x", "text": "only text"}), encoding="utf-8")
    assert [(d.source, d.text) for d in read_documents(single, "text")] == [(str(single), "only text")]
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"text": "alpha"}, {"text": "beta"}, "gamma"]), encoding="utf-8")
    assert [(d.source, d.text) for d in read_documents(many, "text")] == [
        (f"{many}#0", "alpha"),
        (f"{many}#1", "beta"),
        (f"{many}#2", "gamma"),
    ]
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2", encoding="utf-8")
    with pytest.raises(InputError, match="invalid JSON"):
        read_documents(broken, "text")


def test_find_files_filters_extensions_and_hidden_entries(tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / ".git").mkdir()
    wanted = [tmp_path / "docs" / "a.md", tmp_path / "docs" / "sub" / "b.TXT", tmp_path / "docs" / "c.pdf"]
    for path in wanted:
        path.write_text("x", encoding="utf-8")
    for skipped in ["docs/.hidden.md", "docs/.git/config.txt", "docs/image.png", "docs/sub/code.py"]:
        (tmp_path / skipped).write_text("x", encoding="utf-8")
    found = find_files([tmp_path / "docs"], EXTENSIONS)
    assert found == sorted(p.resolve() for p in wanted)
    # a file given explicitly is taken as is; duplicates collapse
    assert find_files([wanted[0], tmp_path / "docs" / "a.md"], EXTENSIONS) == [wanted[0].resolve()]


def test_find_files_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="path not found"):
        find_files([tmp_path / "missing"], EXTENSIONS)
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match=r"unsupported file type \.png"):
        find_files([image], EXTENSIONS)


def test_hash_file_identity(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same", encoding="utf-8")
    b.write_text("same", encoding="utf-8")
    ha, hb = hash_file(a), hash_file(b)
    assert ha.content_hash == hb.content_hash and ha.key != hb.key
    assert ha.size == 4
    a.write_text("changed", encoding="utf-8")
    assert hash_file(a).content_hash != ha.content_hash
