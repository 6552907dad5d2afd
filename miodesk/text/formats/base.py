"""The document model every loader produces, and the builder that keeps its offsets exact.

A `Document` holds the plain text that is spoken and shown, cut into blocks (paragraphs, headings,
list items…) joined by a blank line, so `miodesk.text.segment` never lets an utterance cross a block.
Each block's `start`/`end` index `Document.text` exactly; chapters cover the text in order, with no
gap and no overlap, so the reader view can highlight and navigate by offset alone.
"""

from __future__ import annotations

import logging
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from miodesk.errors import DocumentError

log = logging.getLogger(__name__)

__all__ = ["Block", "Chapter", "Document", "DocumentBuilder", "DocumentError"]

MB = 1024 * 1024

# Text-like files (txt, md, html) are read whole: above this they are refused rather than risk a
# memory blow-up (a decoded str can take 4 bytes a character, plus the cleaned copy).
MAX_TEXT_FILE_BYTES = 32 * MB
# Containers (EPUB, DOCX, PDF) may hold large images we never read; their text is capped separately.
MAX_CONTAINER_FILE_BYTES = 512 * MB
# The most plain text any document may produce (characters).
MAX_DOCUMENT_CHARS = 40_000_000
# A cover image larger than this is left out (a FLAC picture block holds at most 16 MB).
MAX_COVER_BYTES = 16_000_000

BLOCK_SEPARATOR = "\n\n"


@dataclass(slots=True)
class Block:
    """One paragraph-like unit: `Document.text[start:end]` is its text (no blank line inside)."""

    kind: str  # "heading" | "paragraph" | "list_item" | "quote" | "code" | "preformatted" | "table"
    start: int
    end: int
    level: int = 0  # heading level 1-6, list nesting depth; 0 otherwise
    chapter: int = 0  # index into Document.chapters


@dataclass(slots=True)
class Chapter:
    title: str
    start: int
    end: int


@dataclass
class Document:
    title: str
    text: str
    blocks: list[Block]
    chapters: list[Chapter]
    source: Path | None
    format: str  # "text" | "markdown" | "html" | "epub" | "pdf" | "docx"
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    # What an exported audiobook is tagged with, where the format says: the author (EPUB dc:creator,
    # DOCX core properties, PDF /Author, HTML <meta name="author">, an Aozora title block) and the
    # cover image's bytes (EPUB) with its media type.
    author: str = ""
    cover: bytes | None = field(default=None, repr=False)
    cover_mime: str = ""

    def heading_spans(self) -> list[tuple[int, int]]:
        """(start, end) in `text` of every heading block, in order (a reading pauses longer after them)."""
        return [(block.start, block.end) for block in self.blocks if block.kind == "heading"]


# Characters that must not reach the reader: C0 controls (but newline), DEL, C1 controls, BOM,
# soft hyphens and lone surrogates (invalid UTF-16 in some files).
_INVISIBLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\ufeff\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f]+")
_CJK = (
    "\u2e80-\u2fff\u3001-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff00-\uffef"
)
# A line break (with any spaces around it) between two CJK characters is layout, not a word gap.
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t\n]*(?=[{_CJK}])")


def is_cjk(char: str) -> bool:
    return bool(char) and bool(re.match(rf"[{_CJK}]", char))


def clean_block(text: str, keep_lines: bool = True) -> str:
    """Tidy one block: drop invisible characters, collapse spaces, trim lines, drop blank lines.

    With `keep_lines` single line breaks stay (the segmenter ends an utterance there); without,
    they become spaces. A block never keeps an empty line: that would split it in the segmenter.
    """
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " "))
    lines = [_SPACES.sub(" ", line).strip(" \u3000") for line in text.split("\n")]
    lines = [line for line in lines if line and not line.isspace()]
    if not lines:
        return ""
    if keep_lines:
        return "\n".join(lines)
    return _CJK_GAP.sub("", "\n".join(lines)).replace("\n", " ")


def collapse_inline(text: str) -> str:
    """Collapse HTML-like whitespace: runs become one space, and vanish between CJK characters."""
    return re.sub(r"[ \t\r\n\f]+", " ", _CJK_GAP.sub("", text.replace("\r", "\n")))


def size_text(count: int) -> str:
    return f"{count / MB:.0f} MB" if count >= MB else f"{count / 1024:.0f} KB"


class DocumentBuilder:
    """Collects blocks and chapter starts, then builds a `Document` with exact offsets."""

    def __init__(self, name: str) -> None:
        self.name = name  # shown in error messages
        self._parts: list[str] = []
        self._blocks: list[Block] = []
        self._chapter_marks: list[tuple[int, str]] = []  # (index of first block, title)
        self._pos = 0
        self.warnings: list[str] = []

    @property
    def block_count(self) -> int:
        return len(self._blocks)

    def add(self, kind: str, text: str, level: int = 0, keep_lines: bool = True) -> bool:
        """Add a block (cleaned first); empty text adds nothing. Returns whether a block was added."""
        text = clean_block(text, keep_lines)
        if not text:
            return False
        if self._pos + len(text) > MAX_DOCUMENT_CHARS:
            raise DocumentError(
                f"{self.name} holds more than {MAX_DOCUMENT_CHARS:,} characters of text; "
                "MioDesk cannot open a document that large: split it into smaller files"
            )
        if self._parts:
            self._parts.append(BLOCK_SEPARATOR)
            self._pos += len(BLOCK_SEPARATOR)
        self._parts.append(text)
        self._blocks.append(Block(kind, self._pos, self._pos + len(text), level))
        self._pos += len(text)
        return True

    def chapter(self, title: str, at_block: int | None = None) -> None:
        """Start a chapter at the next block added (or at block index `at_block`)."""
        index = self.block_count if at_block is None else at_block
        title = clean_block(title, keep_lines=False) or f"Chapter {len(self._chapter_marks) + 1}"
        self._chapter_marks.append((index, title))

    def build(
        self, title: str, source: Path | None, fmt: str, encoding: str | None = None, author: str = "",
        cover: bytes | None = None, cover_mime: str = "",
    ) -> Document:
        if not self._blocks:
            raise DocumentError(f"{self.name} has no readable text")
        text = "".join(self._parts)
        title = clean_block(title, keep_lines=False) or self.name
        # One chapter per distinct first block, in order; a later mark at the same block loses
        # (an outer table-of-contents entry such as "Part I" usually comes first and names it).
        marks: list[tuple[int, str]] = []
        for index, chapter_title in sorted(self._chapter_marks, key=lambda mark: mark[0]):
            if index >= len(self._blocks) or (marks and marks[-1][0] == index):
                continue
            marks.append((index, chapter_title))
        if not marks or marks[0][0] != 0:
            marks.insert(0, (0, title))
        chapters: list[Chapter] = []
        for number, (index, chapter_title) in enumerate(marks):
            start = 0 if number == 0 else self._blocks[index].start
            end = len(text) if number + 1 == len(marks) else self._blocks[marks[number + 1][0]].start
            chapters.append(Chapter(chapter_title, start, end))
            stop = len(self._blocks) if number + 1 == len(marks) else marks[number + 1][0]
            for block in self._blocks[index:stop]:
                block.chapter = number
        author = clean_block(author, keep_lines=False)
        if cover is not None and not 0 < len(cover) <= MAX_COVER_BYTES:
            cover, cover_mime = None, ""
        return Document(title, text, self._blocks, chapters, source, fmt, encoding, list(self.warnings),
                        author=author, cover=cover, cover_mime=cover_mime if cover else "")


def chapters_from_headings(builder_blocks: list[tuple[str, str, int]]) -> int:
    """The heading level that starts chapters: the top level in use, or the next one down when the
    top level appears only once, first, as the document's title. 0 when there are no headings."""
    levels = [level for kind, _text, level in builder_blocks if kind == "heading" and level > 0]
    if not levels:
        return 0
    top = min(levels)
    first_heading = next(i for i, (kind, _t, level) in enumerate(builder_blocks) if kind == "heading")
    if levels.count(top) == 1 and builder_blocks[first_heading][2] == top:
        deeper = [level for level in levels if level > top]
        if deeper:
            return min(deeper)
    return top


def add_with_heading_chapters(
    builder: DocumentBuilder, items: list[tuple[str, str, int]], keep_lines: bool = True
) -> str | None:
    """Add (kind, text, level) items, starting a chapter at each heading of the chapter level.
    Returns the title heading's text when the document has one single top heading, else None."""
    chapter_level = chapters_from_headings(items)
    levels = [level for kind, _t, level in items if kind == "heading" and level > 0]
    title = None
    if levels and levels.count(min(levels)) == 1 and chapter_level != min(levels):
        title = next(text for kind, text, level in items if kind == "heading" and level == min(levels))
    for kind, text, level in items:
        if kind == "heading" and level == chapter_level:
            clean = clean_block(text, keep_lines=False)
            if clean:
                builder.chapter(clean)
        builder.add(kind, text, level, keep_lines=keep_lines)
    return title


def check_regular_file(path: Path) -> int:
    """Refuse what is not a regular file before anything opens it (opening a FIFO waits for a
    writer forever; a device or a socket never ends). Returns the file's size."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DocumentError(f"{path} does not exist") from None
    except OSError as error:
        raise DocumentError(f"cannot read {path.name or path}: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DocumentError(f"{path} is a folder, not a document")
    if not stat.S_ISREG(info.st_mode):
        raise DocumentError(
            f"{path} is not a regular file (a pipe, device or socket); MioDesk opens documents saved as files"
        )
    return info.st_size


def _check_size(data: bytes, name: str, limit: int) -> bytes:
    if len(data) > limit:
        raise DocumentError(f"{name} is larger than {size_text(limit)}; split it into smaller files")
    if not data.strip():
        raise DocumentError(f"{name} is empty")
    return data


def read_file_bytes(path: Path, limit: int, what: str = "file") -> bytes:
    """Read a whole regular file, refusing directories, devices, empty files and files over `limit`."""
    name = path.name or str(path)
    size = check_regular_file(path)
    if size > limit:
        raise DocumentError(
            f"{name} is {size_text(size)}; MioDesk opens a {what} of up to {size_text(limit)}: "
            "split it into smaller files"
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)  # the size may change while we read
    except OSError as error:
        raise DocumentError(f"cannot read {name}: {error.strerror or error}") from None
    return _check_size(data, name, limit)


def read_stream_bytes(stream: BinaryIO | None, limit: int, name: str) -> bytes:
    """Read a whole byte stream (standard input) with the limit and checks of a file."""
    if stream is None:
        raise DocumentError(f"there is no {name} to read")
    try:
        data = stream.read(limit + 1)
    except OSError as error:
        raise DocumentError(f"cannot read {name}: {error.strerror or error}") from None
    return _check_size(data, name, limit)
