"""Plain text: paragraphs from blank lines, indentation or line ends, hard-wrapped lines unwrapped.

The segmenter ends an utterance at every line break, so text wrapped at a fixed width (e-mail,
Project Gutenberg, PDF text) is joined back into paragraphs: when most lines are about as long as
the longest, a line that is clearly shorter ends its paragraph and the others continue it (with a
space between words, nothing between CJK characters, and "exam-\\nple" becomes "example"). Files with
no blank line at all and no wrapping (Aozora Bunko style) get one paragraph a line. Text in Aozora
notation (ruby 《》, notes ［＃…］, its legend or colophon) is handed to `formats.aozora`.
"""

from __future__ import annotations

import re
from pathlib import Path

from miodesk.text.formats.aozora import aozora_document
from miodesk.text.formats.base import (
    MAX_TEXT_FILE_BYTES,
    Document,
    DocumentBuilder,
    is_cjk,
    read_file_bytes,
)
from miodesk.text.formats.encoding import decode_bytes

_CJK_ENDS = "。！？」』）"
_INDENT = re.compile(r"^(?:\u3000|\t| {2,})")
# A short line of its own that names a chapter: "第三章 …", "Chapter 12", "CHAPTER IV. …", "序章".
_CHAPTER_LINE = re.compile(
    r"^(?:第[0-9０-９一二三四五六七八九十百千〇零]+[章話部編幕]|序章|終章|プロローグ|エピローグ"
    r"|(?i:chapter|part|book)\s+(?:[0-9]+|[ivxlcdm]+|one|two|three|four|five|six|seven|eight|nine|ten)\b)"
)


def normalize_newlines(text: str) -> str:
    # Unicode line and paragraph separators and form feeds count as line breaks too.
    return (
        text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
        .replace("\u2029", "\n\n").replace("\x0c", "\n\n").replace("\x85", "\n")
    )


# East Asian wide and full-width characters (the common blocks; exactness does not matter here).
_WIDE = re.compile(
    "[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
    "\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]"
)


def display_width(line: str) -> int:
    """Columns the line takes in a monospaced font (CJK characters take two)."""
    if line.isascii():
        return len(line)
    return len(line) + len(_WIDE.findall(line))


def join_wrapped(left: str, right: str) -> str:
    """Join two lines of one wrapped paragraph, undoing end-of-line hyphenation."""
    if not left:
        return right
    if not right:
        return left
    if len(left) >= 2 and left[-1] in "-\u2010" and left[-2].isalpha() and right[0].islower():
        return left[:-1] + right
    if is_cjk(left[-1]) or is_cjk(right[0]):
        return left + right
    return left + " " + right


def wrap_width(lines: list[str]) -> int | None:
    """The width text is hard-wrapped at, or None when it does not look wrapped."""
    widths = sorted(display_width(line.strip()) for line in lines if line.strip())
    if len(widths) < 4:
        return None
    width = widths[int(len(widths) * 0.9) - 1] if len(widths) >= 10 else widths[-1]
    if not 20 <= width <= 110:
        return None
    full = sum(1 for value in widths if value >= 0.6 * width)
    return width if full >= 0.5 * len(widths) else None


def paragraphs_from_lines(
    lines: list[str], width: int | None, breaks: frozenset[int] = frozenset()
) -> list[tuple[int, str]]:
    """Group lines into paragraphs: (index of the paragraph's first line, its text). A paragraph
    always starts at the line indices in `breaks`."""
    filled = [index for index, line in enumerate(lines) if line.strip()]
    has_blank = bool(filled) and any(not line.strip() for line in lines[filled[0] : filled[-1]])
    paragraphs: list[tuple[int, str]] = []
    current: list[str] = []
    first = 0
    prev_short = False

    def flush() -> None:
        if current:
            if width:
                # Each line is joined to the end of the last piece only: joining to the whole text so
                # far would copy it once a line (minutes on a 10 MB hard-wrapped file).
                pieces: list[str] = []
                for line in current:
                    if pieces:
                        tail = pieces[-1][-2:]
                        pieces[-1] = pieces[-1][: -len(tail)]
                        line = join_wrapped(tail, line)
                    pieces.append(line)
                text = "".join(pieces)
            else:
                text = "\n".join(current)
            paragraphs.append((first, text))
            current.clear()

    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            flush()
            continue
        chapter_line = bool(_CHAPTER_LINE.match(line)) and len(line) <= 60
        starts_new = (
            bool(_INDENT.match(raw)) or (width is None and not has_blank) or chapter_line or index in breaks
        )
        if current and (starts_new or (width is not None and prev_short)):
            flush()
        if not current:
            first = index
        current.append(line)
        # Ragged-right lines vary a lot, but justified CJK lines are all full: a CJK line that
        # ends a sentence clearly short of the width ends its paragraph.
        prev_short = width is not None and (
            display_width(line) < 0.6 * width
            or (line[-1] in _CJK_ENDS and display_width(line) < 0.9 * width)
        )
        if chapter_line:
            flush()  # a chapter title is a paragraph of its own
    flush()
    return paragraphs


def is_chapter_title(paragraph: str) -> bool:
    return len(paragraph) <= 60 and "\n" not in paragraph and bool(_CHAPTER_LINE.match(paragraph))


def add_text(builder: DocumentBuilder, text: str) -> None:
    lines = normalize_newlines(text).split("\n")
    paragraphs = [text for _first, text in paragraphs_from_lines(lines, wrap_width(lines))]
    # Chapter lines count only when there are several: one "Part one" line is just a paragraph.
    use_chapters = sum(1 for paragraph in paragraphs if is_chapter_title(paragraph)) >= 2
    for paragraph in paragraphs:
        if use_chapters and is_chapter_title(paragraph):
            builder.chapter(paragraph)
            builder.add("heading", paragraph, 1)
        else:
            builder.add("paragraph", paragraph)


def document_from_text(text: str, title: str = "Clipboard") -> Document:
    aozora = aozora_document(text, title)  # pasted Aozora Bunko text: notation not read
    if aozora is not None:
        return aozora
    builder = DocumentBuilder(title)
    add_text(builder, text)
    return builder.build(title, None, "text")


def load_text(path: Path) -> Document:
    data = read_file_bytes(path, MAX_TEXT_FILE_BYTES, "text file")
    text, encoding, warnings = decode_bytes(data, path.name)
    aozora = aozora_document(text, path.stem, path, encoding, warnings)  # Aozora Bunko notation
    if aozora is not None:
        return aozora
    builder = DocumentBuilder(path.name)
    builder.warnings += warnings
    add_text(builder, text)
    return builder.build(path.stem, path, "text", encoding)
