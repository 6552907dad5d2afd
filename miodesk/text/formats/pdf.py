"""PDF: the text layer, page by page, with the page furniture taken out and lines unwrapped.

pypdf (BSD) extracts each page's text in content order, which is reading order for the PDFs word
processors and typesetters make. Then:
- running headers and footers go: a line among the first or last two of a page that recurs (digits
  ignored) on at least 40 % of the pages, and bare page numbers ("12", "- 12 -", "Page 12 of 80");
- lines are joined back into paragraphs and end-of-line hyphens undone (see plaintext);
- top-level bookmarks, when present, become chapters starting on their page.
A PDF whose pages hold no text at all (a scan) or that needs a password gets one clear line.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from pathlib import Path

from miodesk.text.formats.base import (
    MAX_CONTAINER_FILE_BYTES,
    MAX_DOCUMENT_CHARS,
    Document,
    DocumentBuilder,
    DocumentError,
    clean_block,
    size_text,
)
from miodesk.text.formats.plaintext import paragraphs_from_lines, wrap_width

log = logging.getLogger(__name__)

MAX_PAGES = 20_000
# Extraction stops (with a warning) past this, so a pathological file cannot hang the reader.
TIME_BUDGET_S = 120.0
_PAGE_NUMBER = re.compile(
    r"^(?:[-–—\s]*\d{1,5}[-–—\s]*|(?:page|p\.)\s*\d{1,5}(?:\s*(?:of|/)\s*\d{1,5})?|\d{1,5}\s*/\s*\d{1,5}"
    r"|[ivxlcdm]{1,7}|[-–—]\s*[ivxlcdm]{1,7}\s*[-–—]|第?\s*\d{1,5}\s*(?:頁|ページ))$",
    re.IGNORECASE,
)


def _furniture_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).lower()


def strip_page_furniture(pages: list[list[str]]) -> list[list[str]]:
    """Remove running headers/footers and page numbers from each page's lines."""
    edge = 2
    counts: Counter[str] = Counter()
    for lines in pages:
        keys = {_furniture_key(line) for line in lines[:edge] + lines[-edge:]}
        counts.update(keys)
    threshold = max(2, int(0.4 * len(pages) + 0.999))
    recurring = {key for key, count in counts.items() if count >= threshold and key}
    cleaned: list[list[str]] = []
    for lines in pages:
        kept = list(lines)
        for position in [*range(min(edge, len(kept))), *range(max(len(kept) - edge, 0), len(kept))]:
            line = kept[position]
            if line is not None and (
                _furniture_key(line) in recurring or _PAGE_NUMBER.match(line.strip())
            ):
                kept[position] = None  # type: ignore[call-overload]
        cleaned.append([line for line in kept if line is not None])
    return cleaned


def _open(path: Path):  # -> pypdf.PdfReader
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        size = path.stat().st_size
    except OSError as error:
        raise DocumentError(f"cannot read {path.name}: {error.strerror or error}") from None
    if size == 0:
        raise DocumentError(f"{path.name} is empty")
    if size > MAX_CONTAINER_FILE_BYTES:
        raise DocumentError(
            f"{path.name} is {size_text(size)}; "
            f"MioDesk opens a PDF of up to {size_text(MAX_CONTAINER_FILE_BYTES)}"
        )
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many PDFs only have an owner password
            except DependencyError:
                raise DocumentError(
                    f"{path.name} is encrypted (AES); MioDesk cannot open encrypted PDFs"
                ) from None
            if not opened:
                raise DocumentError(f"{path.name} is password-protected; MioDesk cannot open it")
        count = len(reader.pages)
    except DocumentError:
        raise
    except FileNotDecryptedError:
        raise DocumentError(f"{path.name} is password-protected; MioDesk cannot open it") from None
    except (PdfReadError, Exception) as error:  # pypdf raises many kinds on damaged files
        raise DocumentError(f"{path.name} is not a readable PDF ({type(error).__name__}: {error})") from None
    if count > MAX_PAGES:
        raise DocumentError(f"{path.name} has {count:,} pages; MioDesk opens PDFs of up to {MAX_PAGES:,}")
    return reader


def _outline(reader) -> list[tuple[int, str]]:
    """(page index, title) of the top-level bookmarks."""
    marks: list[tuple[int, str]] = []
    try:
        for item in reader.outline:
            if isinstance(item, list):
                continue
            page = reader.get_destination_page_number(item)
            if page is not None and page >= 0:
                marks.append((page, str(item.title or "")))
    except Exception:  # bookmarks are a convenience: a broken outline must not block reading
        log.debug("PDF outline unreadable", exc_info=True)
    return marks


def load_pdf(path: Path) -> Document:
    reader = _open(path)
    builder = DocumentBuilder(path.name)
    pages: list[list[str]] = []
    started = time.monotonic()
    total = 0
    failed: list[str] = []
    for number, page in enumerate(reader.pages, 1):
        if time.monotonic() - started > TIME_BUDGET_S:
            builder.warnings.append(f"{path.name}: stopped reading after page {number - 1} (too slow)")
            break
        try:
            text = page.extract_text() or ""
        except Exception as error:  # one damaged page must not lose the rest of the book
            builder.warnings.append(f"{path.name}: page {number} could not be read ({type(error).__name__})")
            failed.append(type(error).__name__)
            text = ""
        total += len(text)
        if total > MAX_DOCUMENT_CHARS:
            raise DocumentError(f"{path.name} holds too much text for MioDesk to open")
        pages.append([line for line in text.replace("\r", "\n").split("\n") if line.strip()])
    if not any(pages) and failed:
        raise DocumentError(
            f"{path.name} is damaged: {len(failed)} page(s) could not be read ({failed[0]}) "
            "and the rest hold no text"
        )
    if not any(pages):
        raise DocumentError(
            f"{path.name} has no text layer (a scanned PDF?); "
            "MioDesk reads only PDFs with text: run OCR on it first"
        )
    pages = strip_page_furniture(pages)
    lines: list[str] = []
    line_page: list[int] = []
    page_first_line: dict[int, int] = {}
    for index, page_lines in enumerate(pages):
        page_first_line[index] = len(lines)
        lines.extend(page_lines)
        line_page.extend([index] * len(page_lines))
    bookmarks = sorted(_outline(reader))
    # A chapter's page starts a paragraph, even when the last line before it looks full.
    breaks = frozenset(page_first_line[page] for page, _title in bookmarks if page in page_first_line)
    paragraphs = paragraphs_from_lines(lines, wrap_width(lines), breaks)
    next_mark = 0
    for first_line, text in paragraphs:
        page = line_page[first_line]
        while next_mark < len(bookmarks) and bookmarks[next_mark][0] <= page:
            builder.chapter(bookmarks[next_mark][1])
            next_mark += 1
        builder.add("paragraph", text)
    title = author = ""
    try:
        metadata = reader.metadata or {}
        title = clean_block(str(metadata.get("/Title") or ""), keep_lines=False)
        author = str(metadata.get("/Author") or "")
    except Exception:  # metadata only
        log.debug("PDF metadata unreadable", exc_info=True)
    return builder.build(title or path.stem, path, "pdf", author=author)
