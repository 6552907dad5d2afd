"""Markdown: the prose, never the syntax.

Headings, paragraphs, list items, block quotes and table rows become blocks; emphasis marks, link
targets, images and inline HTML tags disappear (a link's text stays, inline code's text stays).
Code blocks (fenced or indented) are not read: a short announcement block of kind "code" takes
their place — "(Code block skipped.)", or 「（コードは省略）」 in a Japanese document — so the
listener knows something was left out. YAML front matter is dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from miodesk.text.formats.base import (
    MAX_TEXT_FILE_BYTES,
    Document,
    DocumentBuilder,
    add_with_heading_chapters,
    read_file_bytes,
)
from miodesk.text.formats.encoding import decode_bytes
from miodesk.text.formats.html import extract_html, fill_code
from miodesk.text.formats.plaintext import normalize_newlines

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_SOFT = "\x1f"  # a soft line break: a space between words, nothing between CJK characters
_CJK = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_SOFT_CJK = re.compile(rf"(?<=[{_CJK}]){_SOFT}+(?=[{_CJK}])")


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        # Images (and their alt text), inline HTML tags and link targets are not read.
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(_SOFT)
        elif child.type == "hardbreak":
            parts.append("\n")
    text = _SOFT_CJK.sub("", "".join(parts))
    return text.replace(_SOFT, " ")


def markdown_items(source: str) -> list[tuple[str, str, int]]:
    source = normalize_newlines(source)
    if source.startswith("---"):
        source = _FRONT_MATTER.sub("", source[:65536], count=1) + source[65536:]
    items: list[tuple[str, str, int]] = []
    kinds: list[tuple[str, int]] = [("paragraph", 0)]
    lists = 0
    row: list[str] | None = None
    for token in _parser().parse(source):
        kind, level = kinds[-1]
        if token.type == "heading_open":
            kinds.append(("heading", int(token.tag[1])))
        elif token.type == "blockquote_open":
            kinds.append(("quote", 0) if kind == "paragraph" else (kind, level))
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            lists += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists -= 1
        elif token.type == "list_item_open":
            kinds.append(("list_item", lists))
        elif token.type in ("heading_close", "blockquote_close", "list_item_close") and len(kinds) > 1:
            kinds.pop()
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            items.append(("table", " ".join(cell for cell in row if cell.strip()), 0))
            row = None
        elif token.type == "inline":
            text = _inline_text(token)
            if row is not None:
                row.append(text)
            else:
                items.append((kind, text, level))
        elif token.type in ("fence", "code_block"):
            if token.content.strip():
                items.append(("code", "", 0))
        elif token.type == "html_block":
            items.extend(
                (kind if item_kind == "paragraph" else item_kind, text, item_level)
                for item_kind, text, item_level in extract_html(token.content).items
            )
    return fill_code(items)


def _add_markdown(builder: DocumentBuilder, source: str) -> str | None:
    return add_with_heading_chapters(builder, markdown_items(source))


def document_from_markdown(source: str, title: str = "Clipboard") -> Document:
    builder = DocumentBuilder(title)
    heading_title = _add_markdown(builder, source)
    return builder.build(heading_title or title, None, "markdown")


def load_markdown(path: Path) -> Document:
    data = read_file_bytes(path, MAX_TEXT_FILE_BYTES, "Markdown file")
    text, encoding, warnings = decode_bytes(data, path.name)
    builder = DocumentBuilder(path.name)
    builder.warnings += warnings
    heading_title = _add_markdown(builder, text)
    return builder.build(heading_title or path.stem, path, "markdown", encoding)
