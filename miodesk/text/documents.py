"""Open what people read: text in any encoding, Markdown, HTML, EPUB, PDF, DOCX, Aozora Bunko
texts (plain, zipped or XHTML) and the clipboard.

`load_document(path)` sniffs the content first (PDF and zip signatures, an HTML start) and uses the
extension to break ties, then hands the file to one of the loaders in `miodesk.text.formats`. Every
loader returns a `Document` (see `formats.base`) or raises `DocumentError` with a one-line message;
untrusted input never gets further than that.

Decisions, for the README:
- Code blocks (Markdown fences and indents, HTML/EPUB `<pre><code>`) are not read; a short block
  "(Code block skipped.)" — 「（コードは省略）」 in Japanese documents — is read in their place.
- Ruby (furigana) in EPUB, HTML, DOCX and Aozora notation: only the reading is kept (漢字 with
  reading かんじ becomes かんじ), so it is spoken once and correctly; the base text is dropped. A ruby
  whose reading holds no letter (emphasis dots ﹅﹅ set as ruby) keeps its base instead.
- Aozora Bunko (see formats.aozora), told by content: a zip holding a text opens directly (its
  largest .txt); notation (《》, ｜, ［＃…］ notes) is never read, gaiji become their character, 大/中/小
  見出し become chapters; the title block is read once as the title; the notation legend and the
  colophon (底本：… to the end) are left out of the document, since whatever it shows is read. The
  XHTML edition is read the same way (formats.html).
- Size: text, Markdown and HTML files over 32 MB are refused with a message (10 MB of text loads in
  about 1.5-2 s); EPUB/DOCX parts are capped at 32 MB unpacked each and 512 MB in all, and any
  document at 40 million characters.
- Encodings: BOM, ISO-2022-JP, BOM-less UTF-16, UTF-8, then charset-normalizer's guess contested by
  CP932 (Shift_JIS) and EUC-JP, scored on how Japanese-like the result is (see formats.encoding).
  Damaged files: only the bytes that cannot be read are left out, and a warning counts them.
- Only regular files are opened: a FIFO, device or socket is refused before it is opened.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import BinaryIO

from miodesk.filenames import extended_path
from miodesk.text.formats.base import (
    MAX_TEXT_FILE_BYTES,
    Block,
    Chapter,
    Document,
    DocumentError,
    check_regular_file,
    read_stream_bytes,
)
from miodesk.text.formats.encoding import decode_bytes
from miodesk.text.formats.html import document_from_html
from miodesk.text.formats.markdown import document_from_markdown
from miodesk.text.formats.plaintext import document_from_text

log = logging.getLogger(__name__)

__all__ = [
    "Block",
    "Chapter",
    "Document",
    "DocumentError",
    "SUPPORTED_EXTENSIONS",
    "document_from_html",
    "document_from_markdown",
    "document_from_text",
    "load_document",
    "load_stream",
    "outline_text",
]

_MARKDOWN = {".md", ".markdown", ".mdown", ".mkd", ".mkdn"}
_HTML = {".html", ".htm", ".xhtml", ".xht", ".shtml"}
_TEXT = {".txt", ".text", ".log", ".csv", ".tsv"}
SUPPORTED_EXTENSIONS = frozenset({*_MARKDOWN, *_HTML, *_TEXT, ".epub", ".pdf", ".docx", ".zip"})

# Signatures of files that are certainly not text, with what to tell the user.
_BINARY_MAGIC = (
    (b"\xd0\xcf\x11\xe0", "an old Word/Office file (.doc); save it as .docx and open that"),
    (b"\x89PNG", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF8", "an image"),
    (b"\x1f\x8b", "a compressed (gzip) file"),
    (b"7z\xbc\xaf", "a compressed (7z) file"),
    (b"Rar!", "a compressed (RAR) file"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a program"),
    (b"ID3", "an audio file"),
    (b"RIFF", "an audio or video file"),
    (b"fLaC", "an audio file"),
    (b"OggS", "an audio file"),
)

# Tests turn this off so a bug in a loader surfaces instead of becoming a DocumentError.
_SAFETY_NET = True


def _sniff(path: Path) -> str:
    """The format to load `path` as: "text", "markdown", "html", "epub", "pdf", "docx" or "zip"."""
    suffix = path.suffix.lower()
    check_regular_file(path)  # before opening: opening a FIFO would wait for a writer forever
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except IsADirectoryError:
        raise DocumentError(f"{path} is a folder, not a document") from None
    except FileNotFoundError:
        raise DocumentError(f"{path} does not exist") from None
    except OSError as error:
        raise DocumentError(f"cannot read {path.name}: {error.strerror or error}") from None
    # PDF allows junk before its header; a text file that merely mentions "%PDF-" stays text.
    if head.startswith(b"%PDF-") or (b"%PDF-" in head[:1024] and suffix not in _TEXT | _MARKDOWN | _HTML):
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if b"mimetype" in head[:64] and b"application/epub+zip" in head[:128]:
            return "epub"
        if suffix in (".epub", ".docx"):
            return suffix[1:]
        if b"word/" in head:
            return "docx"
        if b"META-INF/" in head or b"OEBPS" in head:
            return "epub"
        return "zip"  # a zipped text (Aozora Bunko's downloads); refused there when it holds none
    if suffix in (".epub", ".docx"):
        what = "EPUB e-book" if suffix == ".epub" else "Word document"
        if not head.strip():
            raise DocumentError(f"{path.name} is empty")
        raise DocumentError(f"{path.name} is not a valid {what} (it is not a zip archive)")
    if suffix == ".pdf":
        if not head.strip():
            raise DocumentError(f"{path.name} is empty")
        raise DocumentError(f"{path.name} is not a valid PDF (no PDF header)")
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic) and suffix not in _TEXT | _MARKDOWN | _HTML:
            raise DocumentError(f"{path.name} is {what}, not a document")
    if suffix in _MARKDOWN:
        return "markdown"
    if suffix in _HTML:
        return "html"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if suffix not in _TEXT and (start.startswith((b"<!doctype html", b"<html")) or
                                (start.startswith(b"<?xml") and b"<html" in start)):
        return "html"
    return "text"


def _load(path: Path) -> Document:
    fmt = _sniff(path)
    log.debug("loading %s as %s", path, fmt)
    if fmt == "pdf":
        from miodesk.text.formats.pdf import load_pdf

        return load_pdf(path)
    if fmt == "epub":
        from miodesk.text.formats.epub import load_epub

        return load_epub(path)
    if fmt == "docx":
        from miodesk.text.formats.docx import load_docx

        return load_docx(path)
    if fmt == "zip":
        from miodesk.text.formats.safezip import load_text_zip

        return load_text_zip(path)
    if fmt == "markdown":
        from miodesk.text.formats.markdown import load_markdown

        return load_markdown(path)
    if fmt == "html":
        from miodesk.text.formats.html import load_html

        return load_html(path)
    from miodesk.text.formats.plaintext import load_text

    return load_text(path)


def load_document(path: Path | str) -> Document:
    """Open any supported file as a Document; a file that cannot be read raises DocumentError."""
    path = Path(path)
    try:
        # Every loader opens what it is given: on Windows a long path goes in its extended form.
        document = _load(Path(extended_path(path)))
    except DocumentError:
        raise
    except MemoryError:
        raise DocumentError(f"{path.name} is too large to open in the memory available") from None
    except RecursionError:
        raise DocumentError(f"{path.name} is nested too deeply to read") from None
    except Exception as error:
        if not _SAFETY_NET:
            raise
        # A loader bug must not crash the reader: the user gets one line, the log gets the rest.
        log.exception("unexpected error loading %s", path)
        raise DocumentError(f"{path.name} could not be read ({type(error).__name__}: {error})") from None
    document.source = path  # the path as the user gave it, whatever form was opened
    for warning in document.warnings:
        log.warning("%s", warning)
    return document


def load_stream(stream: BinaryIO | None, name: str = "standard input") -> Document:
    """A document from a byte stream (`miodesk read -`), read as plain text with a text file's size
    limit, binary check and encoding detection."""
    data = read_stream_bytes(stream, MAX_TEXT_FILE_BYTES, name)
    text, encoding, warnings = decode_bytes(data, name)
    document = document_from_text(text, title="stdin")
    document.encoding = encoding
    document.warnings = [*warnings, *document.warnings]
    for warning in document.warnings:
        log.warning("%s", warning)
    return document


def outline_text(document: Document) -> str:
    """The extracted text with a marker line before each chapter (what `miodesk text FILE` prints)."""
    out: list[str] = []
    for number, chapter in enumerate(document.chapters, 1):
        if out:
            out.append("")
        title = " ".join(chapter.title.splitlines())
        out.append(f"=== Chapter {number}: {title} ===")
        out.append(document.text[chapter.start : chapter.end].strip("\n"))
    return "\n".join(out) + "\n"
