"""Throw mutated samples of every format at the loaders: each returns a Document or raises
DocumentError — never another exception, a hang or a crash. Fixed seed, bounded count."""

from __future__ import annotations

import io
import random
import time
import zipfile
from pathlib import Path

import pytest
from test_documents import check_consistent
from test_documents_samples import docx_paragraph, make_docx, make_epub, make_pdf

from miodesk.text import documents
from miodesk.text.documents import Document, DocumentError, load_document

SEED = 20240605
MUTANTS_PER_SAMPLE = 40


def _samples(tmp_path: Path) -> dict[str, bytes]:
    text = "吾輩は猫である。名前はまだ無い。\n\nThe quick brown fox.\n第二章\nつづき。\n"
    samples = {
        "utf8.txt": text.encode(),
        "sjis.txt": text.encode("cp932"),
        "utf16.txt": text.encode("utf-16"),
        "book.md": b"# Title\n\nSome *text* and [a link](x).\n\n```\ncode\n```\n\n- item\n> quote\n",
        "page.html": (
            "<html><head><title>T</title><script>x</script></head><body><h1>H</h1>"
            "<p>Para <ruby>漢<rt>かん</rt></ruby> &amp; more</p><ul><li>a</li></ul></body></html>"
        ).encode(),
        "paper.pdf": make_pdf([["Header", "Line one of the text-", "continues here.", "1"],
                               ["Header", "第二ページ。", "2"]], outline=[("One", 0), ("Two", 1)]),
    }
    epub = make_epub(tmp_path / "s.epub", [("One", "<h1>One</h1><p>Text <b>bold</b>.</p>"),
                                          ("二", "<p>日本語。</p>")])
    samples["book.epub"] = epub.read_bytes()
    docx = make_docx(tmp_path / "s.docx", docx_paragraph("Title", "Heading1") + docx_paragraph("Body\ntext"))
    samples["report.docx"] = docx.read_bytes()
    return samples


def _flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 12)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def _insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]


def _corrupt_member(rng: random.Random, data: bytes) -> bytes:
    """Rewrite the zip with one member's content mutated (still a valid zip around it)."""
    try:
        source = zipfile.ZipFile(io.BytesIO(data))
        members = [(item, source.read(item)) for item in source.infolist()]
    except Exception:
        return _flip(rng, data)
    target = rng.randrange(len(members))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for index, (item, body) in enumerate(members):
            if index == target and body:
                body = rng.choice([_flip, _truncate, _insert])(rng, body)
            archive.writestr(item, body)
    return out.getvalue()


def test_fuzz_every_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Let loader bugs surface as themselves instead of the catch-all DocumentError.
    monkeypatch.setattr(documents, "_SAFETY_NET", False)
    rng = random.Random(SEED)
    started = time.monotonic()
    outcomes = {"document": 0, "error": 0}
    for name, data in _samples(tmp_path).items():
        mutators = [_flip, _truncate, _insert]
        if name.endswith((".epub", ".docx")):
            mutators += [_corrupt_member, _corrupt_member]
        for number in range(MUTANTS_PER_SAMPLE):
            mutated = rng.choice(mutators)(rng, data)
            path = tmp_path / f"{number}-{name}"
            path.write_bytes(mutated)
            one = time.monotonic()
            try:
                result = load_document(path)
            except DocumentError as error:
                assert str(error) and "\n" not in str(error), (name, number, str(error))
                outcomes["error"] += 1
            except Exception as error:  # the failure this test exists to find
                pytest.fail(f"{name} mutant {number}: {type(error).__name__}: {error}")
            else:
                assert isinstance(result, Document)
                check_consistent(result)
                outcomes["document"] += 1
            assert time.monotonic() - one < 15, f"{name} mutant {number} took too long"
            path.unlink()
    assert outcomes["document"] and outcomes["error"]
    assert time.monotonic() - started < 60
