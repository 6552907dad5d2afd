"""HTML and XHTML: the readable text of a page, as blocks.

Out: scripts, styles, navigation, asides, footers, forms, hidden elements and EPUB page-break
markers and note references; inside a page `<header>` only its headings stay. Headings, list
items, block quotes and table rows become blocks of their own kind.

Ruby (furigana): only the reading (`<rt>`) is kept, not the base text, so 「漢字(かんじ)」 is read
once, correctly, as かんじ; the reader view shows the reading too. `<rp>` parentheses are dropped.
A ruby whose reading is empty or holds no letter (emphasis dots ﹅﹅ set as ruby) keeps its base
(`aozora.ruby_reading`, the rule of every loader).

Aozora Bunko's XHTML edition (a `div.main_text`, see `is_aozora_xhtml`) is read as its plain-text
edition is (see `formats.aozora`): the title block (`h1.title`, `h2.author`…) once, as the title;
`h3`/`h4`/`h5` headings (大/中/小見出し) as chapters; a paragraph per `<br>`; not read: the colophon
(`div.bibliographical_information`), the notation notes (`div.notation_notes`), input notes
(`span.notes`), kaeriten and okurigana; gaiji images (`img.gaiji`) become their character.

Code: a `<pre>` that holds `<code>` is not read; a short announcement block takes its place (see
`code_announcement`). Other `<pre>` text is read with its line breaks.

The stdlib parser is used on purpose: it is lenient with the broken markup real pages and e-books
contain, and it never expands DTD entities or fetches anything, so XML entity bombs are inert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from miodesk.text.formats.aozora import add_title_and_body, fix_kunoji, gaiji_char, ruby_reading
from miodesk.text.formats.base import (
    MAX_TEXT_FILE_BYTES,
    Document,
    DocumentBuilder,
    add_with_heading_chapters,
    collapse_inline,
    read_file_bytes,
)
from miodesk.text.formats.encoding import decode_bytes
from miodesk.text.normalize import detect_language

_SKIP = frozenset(
    "script style noscript template nav aside footer svg math form button select textarea iframe "
    "object canvas audio video rp map datalist head".split()
)
_SKIP_ROLES = frozenset(
    "navigation contentinfo complementary search doc-pagebreak doc-noteref doc-footnote doc-endnotes "
    "doc-toc".split()
)
_SKIP_EPUB_TYPES = frozenset("pagebreak noteref footnote endnote endnotes rearnote rearnotes toc".split())
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_BLOCK = frozenset(
    "address article blockquote body center dd details dialog div dl dt fieldset figcaption figure "
    "h1 h2 h3 h4 h5 h6 header hgroup hr html li main ol p pre section summary table tbody thead tfoot "
    "tr ul caption legend".split()
)
_LINE_BREAK = "\x1e"  # stands for <br> until whitespace is collapsed
_DOCTYPE = re.compile(r"<!DOCTYPE[^\[>]*(?:\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)


def code_announcement(language: str) -> str:
    """What is read where a code block was: code is noise when spoken, but silence would hide it."""
    return "（コードは省略）" if language == "ja" else "(Code block skipped.)"


@dataclass(slots=True)
class _Frame:
    tag: str
    kind: str  # effective block kind inside this element
    level: int
    skip: bool = False
    header: bool = False
    pre: bool = False
    rt: bool = False
    ruby: bool = False
    title: bool = False
    list_: bool = False
    note: bool = False  # Aozora's span.notes: ［＃…］, read only for the gaiji it may name
    front: bool = False  # Aozora's div.metadata: the title block
    author: int | None = None  # Aozora's h2.author: the item count when it began


@dataclass
class HtmlText:
    """Extracted blocks as (kind, text, level), element ids → index of the block they fall in."""

    items: list[tuple[str, str, int]] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)
    title: str = ""
    front: int = 0  # Aozora XHTML: how many leading items are the title block
    author: str = ""  # <meta name="author" content="…">, or Aozora's h2.author


# Aozora Bunko's XHTML: parts that are not the work, and its marks for gaiji, notes and titles.
_AOZORA_SKIP_CLASSES = frozenset({"bibliographical_information", "notation_notes", "kaeriten", "okurigana"})
_AOZORA_MAIN = re.compile(r"""<div[^>]*\sclass\s*=\s*["']main_text["']""", re.IGNORECASE)
_AOZORA_MARKS = re.compile(
    r"""class\s*=\s*["'](?:bibliographical_information|metadata|notation_notes)["']|青空文庫""",
    re.IGNORECASE,
)
# A piece of an Aozora page copied from a browser: its input notes or gaiji images.
_AOZORA_FRAGMENT = re.compile(
    r"""<span[^>]*\sclass\s*=\s*["']notes["'][^>]*>\s*［＃|<img[^>]*\sclass\s*=\s*["']gaiji["']""", re.IGNORECASE
)
_GAIJI_IMAGE = re.compile(r"(?<![0-9])([12])-([0-9]{2})-([0-9]{2})\.png$")


def is_aozora_xhtml(markup: str) -> bool:
    """Aozora Bunko's XHTML edition (its main-text division, and its colophon, title block or name),
    or a piece of it copied from a browser (its input notes or gaiji images)."""
    head = markup[:400_000]
    if _AOZORA_MAIN.search(head):
        return bool(_AOZORA_MARKS.search(markup))
    return bool(_AOZORA_FRAGMENT.search(head))


def _gaiji_image_char(attributes: dict[str, str]) -> str:
    """The character an Aozora gaiji image stands for: from its alt text ("※(「木＋内」、第3水準1-85-54)"),
    else from its file name (…/1-09/1-09-63.png)."""
    alt = attributes.get("alt", "").strip()
    if alt.startswith("※"):
        alt = alt[1:].strip("()（）")
    char = gaiji_char(alt) if alt else ""
    if not char:
        match = _GAIJI_IMAGE.search(attributes.get("src", ""))
        if match:
            char = gaiji_char("-".join(match.groups()))
    return char


class _Extractor(HTMLParser):
    def __init__(self, aozora: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.aozora = aozora
        self.out = HtmlText()
        self._stack: list[_Frame] = []
        self._skip = 0
        self._header = 0
        self._pre = 0
        self._rt = 0
        self._title = 0
        self._lists = 0
        self._buffer: list[str] = []
        self._ruby: list[tuple[list[str], list[str]]] = []
        self._title_parts: list[str] = []
        self._pre_has_code = False
        self._note = 0
        self._note_parts: list[str] = []

    # -- state -------------------------------------------------------------------------------
    def _current(self) -> tuple[str, int]:
        if self._stack:
            return self._stack[-1].kind, self._stack[-1].level
        return "paragraph", 0

    def _flush(self) -> None:
        if not self._buffer:
            return
        raw = "".join(self._buffer)
        self._buffer.clear()
        kind, level = self._current()
        if kind == "preformatted":
            if self._pre_has_code:
                if raw.strip():
                    self.out.items.append(("code", "", 0))
                return
            text = raw.replace(_LINE_BREAK, "\n")
        else:
            text = collapse_inline(raw).replace(_LINE_BREAK, "\n")
        if text.strip():
            self.out.items.append((kind, text, level))

    def _emit(self, text: str) -> None:
        if self._title:
            self._title_parts.append(text)
        if self._skip:
            return
        if self._note:
            self._note_parts.append(text)
            return
        if self._header and self._current()[0] != "heading":
            return
        if self._ruby:
            base, reading = self._ruby[-1]
            (reading if self._rt else base).append(text)
            return
        self._buffer.append(text)

    # -- parser callbacks ----------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: (value or "") for name, value in attrs}
        if tag in _BLOCK:
            self._flush()  # before the anchor: an id on a block names the block that follows
        for key in ("id", "name") if tag == "a" else ("id",):
            if attributes.get(key):
                self.out.anchors.setdefault(attributes[key], len(self.out.items))
        classes = attributes.get("class", "").split() if self.aozora else []
        if tag in _VOID:
            if tag == "meta" and attributes.get("name", "").lower() == "author" and not self.out.author:
                self.out.author = collapse_inline(attributes.get("content", "")).strip()
            elif tag == "img" and "gaiji" in classes:
                self._emit(_gaiji_image_char(attributes))
            elif tag == "br" and self.aozora and not self._ruby and self._current()[0] == "paragraph":
                self._flush()  # Aozora XHTML: a line is a paragraph
            elif tag == "br" and self.aozora and self._current()[0] == "heading":
                self._emit("\u3000")  # a heading of several lines, as the plain-text edition reads it
            elif tag == "br":
                self._emit(_LINE_BREAK if not self._pre else "\n")
            elif tag == "hr":
                self._flush()
            return
        if tag in ("td", "th"):
            self._emit(" ")
        kind, level = self._current()
        frame = _Frame(tag, kind, level)
        hidden = bool(attributes) and (
            "hidden" in attributes
            or attributes.get("aria-hidden", "").lower() == "true"
            or attributes.get("role", "").lower() in _SKIP_ROLES
            or bool(_SKIP_EPUB_TYPES.intersection(attributes.get("epub:type", "").lower().split()))
            or "display:none" in attributes.get("style", "").replace(" ", "").lower()
        )
        if tag in _SKIP or hidden or (
            self.aozora and (_AOZORA_SKIP_CLASSES.intersection(classes) or attributes.get("id") == "card")
        ):
            frame.skip = True
        elif "notes" in classes:
            frame.note = True
        elif "metadata" in classes:
            frame.front = True
        elif "author" in classes:
            frame.author = len(self.out.items)
        elif tag == "header" or attributes.get("role", "").lower() == "banner":
            frame.header = True
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            frame.kind, frame.level = "heading", int(tag[1])
        elif tag in ("ul", "ol"):
            frame.list_ = True
        elif tag == "li" and kind != "heading":
            frame.kind, frame.level = "list_item", max(self._lists, 1)
        elif tag == "blockquote" and kind in ("paragraph", "list_item"):
            frame.kind, frame.level = "quote", 0
        elif tag == "pre":
            frame.kind, frame.pre = "preformatted", True
            self._pre_has_code = False
        elif tag == "tr" and kind == "paragraph":
            frame.kind = "table"
        elif tag == "ruby":
            frame.ruby = True
            self._ruby.append(([], []))
        elif tag == "rt":
            frame.rt = True
        elif tag == "title":
            frame.title = True
        elif tag == "code" and self._pre:
            self._pre_has_code = True
        self._push(frame)

    def _push(self, frame: _Frame) -> None:
        self._stack.append(frame)
        self._skip += frame.skip
        self._header += frame.header
        self._pre += frame.pre
        self._rt += frame.rt
        self._title += frame.title
        self._lists += frame.list_
        self._note += frame.note

    def _pop(self) -> None:
        frame = self._stack[-1]
        if frame.tag in _BLOCK:
            self._flush()
        if frame.front:
            self.out.front = len(self.out.items)
        if frame.author is not None and len(self.out.items) > frame.author and not self.out.author:
            self.out.author = " ".join(text for _kind, text, _level in self.out.items[frame.author:]).strip()
        if frame.note:
            self._stack.pop()
            self._undo(frame)
            self._end_note()
            return
        if frame.ruby and self._ruby:
            base, reading = self._ruby.pop()
            text = ruby_reading("".join(base), "".join(reading))
            self._stack.pop()  # the ruby's output belongs to its parent's context
            self._undo(frame)
            self._emit(text)
            return
        self._stack.pop()
        self._undo(frame)

    def _undo(self, frame: _Frame) -> None:
        self._skip -= frame.skip
        self._header -= frame.header
        self._pre -= frame.pre
        self._rt -= frame.rt
        self._title -= frame.title
        self._lists -= frame.list_
        self._note -= frame.note

    def _end_note(self) -> None:
        """An Aozora input note is not read; after a ※ it names a gaiji (one with no image, such as
        ※［＃「虫＋占」、U+86C5、18-5］), which takes the ※'s place, or drops it when unknown."""
        note = "".join(self._note_parts).strip()
        self._note_parts.clear()
        if self._note or not note.startswith("［＃") or not note.endswith("］"):
            return
        if self._ruby:
            base, reading = self._ruby[-1]
            target = reading if self._rt else base
        else:
            target = self._buffer
        while target and not target[-1].strip():
            target.pop()
        if target and target[-1].endswith("※"):
            target[-1] = target[-1][:-1] + gaiji_char(note[2:-1])

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not any(frame.tag == tag for frame in reversed(self._stack[-64:])):
            # Stray end tags are ignored; only recent frames are searched, so deep unclosed
            # nesting cannot make parsing quadratic.
            return
        while self._stack:
            top = self._stack[-1].tag
            self._pop()
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        if data:
            data = data.replace(_LINE_BREAK, " ")
            self._emit(fix_kunoji(data) if self.aozora else data)

    def finish(self) -> HtmlText:
        self.close()
        while self._stack:
            self._pop()
        self._flush()
        self.out.title = collapse_inline("".join(self._title_parts)).strip()
        return self.out


def extract_html(markup: str, aozora: bool = False) -> HtmlText:
    # Drop the DOCTYPE with any internal subset: its entity declarations are never honoured.
    head = _DOCTYPE.sub("", markup[:65536], count=1)
    parser = _Extractor(aozora)
    parser.feed(head + markup[65536:])
    return parser.finish()


def fill_code(items: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Put the announcement, in the document's language, where code blocks were."""
    if not any(kind == "code" for kind, _t, _l in items):
        return items
    language = detect_language(" ".join(text for _k, text, _l in items[:200]))
    announcement = code_announcement(language)
    return [(kind, announcement if kind == "code" else text, level) for kind, text, level in items]


def add_html(builder: DocumentBuilder, markup: str) -> HtmlText:
    if is_aozora_xhtml(markup):
        return _add_aozora_xhtml(builder, markup)
    extracted = extract_html(markup)
    heading_title = add_with_heading_chapters(builder, fill_code(extracted.items))
    if not extracted.title and heading_title:
        extracted.title = heading_title
    return extracted


def _add_aozora_xhtml(builder: DocumentBuilder, markup: str) -> HtmlText:
    """Aozora Bunko's XHTML: the title block read once as the book's title, then the work."""
    extracted = extract_html(markup, aozora=True)
    front = [text.strip() for _kind, text, _level in extracted.items[: extracted.front] if text.strip()]
    if front:
        extracted.title = "\u3000".join(front)
    heading_title = add_title_and_body(builder, "\n".join(front), extracted.items[extracted.front :])
    if not front and heading_title:
        extracted.title = heading_title
    return extracted


def document_from_html(markup: str, title: str = "Clipboard") -> Document:
    builder = DocumentBuilder(title)
    extracted = add_html(builder, markup)
    return builder.build(extracted.title or title, None, "html", author=extracted.author)


def load_html(path: Path) -> Document:
    data = read_file_bytes(path, MAX_TEXT_FILE_BYTES, "web page")
    text, encoding, warnings = decode_html_bytes(data, path.name)
    builder = DocumentBuilder(path.name)
    builder.warnings += warnings
    extracted = add_html(builder, text)
    return builder.build(extracted.title or path.stem, path, "html", encoding, author=extracted.author)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_\-.]+)["']""")


def decode_html_bytes(data: bytes, name: str) -> tuple[str, str, list[str]]:
    """Honour a BOM, then a declared charset (XML declaration or <meta>), then detect."""
    import codecs

    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = data[:4096]
        match = _XML_ENCODING.match(head.lstrip()) or _META_CHARSET.search(head)
        if match:
            declared = match.group(1).decode("ascii", "replace").lower()
            aliases = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
                       "windows-31j": "cp932", "euc-jp": "euc_jis_2004", "iso-8859-1": "cp1252"}
            encoding = aliases.get(declared, declared)
            try:
                return data.decode(encoding), declared, []
            except (UnicodeDecodeError, LookupError):
                pass  # a wrong declaration is common: fall back to detection
    return decode_bytes(data, name)
