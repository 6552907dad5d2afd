"""Aozora Bunko (青空文庫) plain text: the story only, read once, with its headings as chapters.

Aozora Bunko's ~17,000 works come as Shift_JIS text (usually zipped, see `safezip.load_text_zip`)
in Aozora notation, and as XHTML (see `html.py`, which uses the helpers here). A text is taken for
Aozora notation by its content (`looks_like_aozora`): input notes `［＃…］`, ruby `《》`, the legend
【テキスト中に現れる記号について】 or a 底本： colophon, so a pasted excerpt is read right too.

What is read:
- The title block (title, subtitle, author, translator: the lines before the legend) once, as the
  first heading; it is also the Document's title.
- The legend (between the dash lines after the title) and the colophon (from 底本： to the end:
  入力：, 校正：, 青空文庫作成ファイル…) are not in the Document at all. A Document has no blocks that are
  shown but not spoken, and the reader highlights what it says: text kept in view would be read.
- Ruby `｜base《reading》` and `base《reading》` keep only the reading (`ruby_reading`, the rule every
  loader uses). Without ｜ the base is the run of characters of one kind right before 《: kanji (with
  々〆〇〻ヶ and gaiji), else hiragana, katakana or Latin letters, as Aozora's own converter does.
- Input notes `［＃…］` are never read. Headings (大/中/小見出し, in the `［＃「…」は中見出し］` form, the
  `［＃中見出し］…［＃中見出し終わり］` form, the `ここから…ここで` block form, and their 同行/窓 variants)
  become heading blocks and so chapters; everything else (page breaks, indentation, emphasis, 底本では
  notes, kaeriten, illustrations…) is dropped, leaving the text it annotates.
- Gaiji `※［＃「…」、第3水準1-85-54］` becomes the character of that JIS X 0213 plane-row-cell, or of
  its `U+XXXX`; an unknown one is dropped whole. Characters written as gaiji (《, ｜, ※) are text, not
  notation. くの字点 `／＼` and `／″＼` become 〳〵 and 〴〵; accented Latin in 〔〕 is composed (〔e'te'〕
  → été).
- Every line is a paragraph: Aozora texts are never hard-wrapped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from miodesk.text.formats.base import Document, DocumentBuilder, add_with_heading_chapters

# -- detection -------------------------------------------------------------------------------------

_LEGEND_MARK = "テキスト中に現れる記号について"
_KANJI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f々〆〇〻仝ヶ"
_NOTE_SAMPLE = re.compile("［＃[^］\n]{1,300}］")
_RUBY_SAMPLE = re.compile(f"｜[^《》\n]{{1,60}}《[^《》\n]{{1,60}}》|[{_KANJI}]《[ぁ-ゖァ-ヺー・]{{1,40}}》")
_KUNOJI_SAMPLE = re.compile(f"[ぁ-ゖァ-ヺ{_KANJI}]／″?＼")  # いろ／＼: くの字点 as Aozora writes it
_COLOPHON = re.compile(r"^[ \u3000]*底本[：:]", re.MULTILINE)
_COLOPHON_FIELDS = ("入力：", "校正：", "青空文庫")


def looks_like_aozora(text: str) -> bool:
    """Whether `text` is written in Aozora notation (judged on its content, not its name)."""
    head = text[:200_000]
    if _LEGEND_MARK in head[:20_000] or any(
        pattern.search(head) for pattern in (_NOTE_SAMPLE, _RUBY_SAMPLE, _KUNOJI_SAMPLE)
    ):
        return True
    colophon = _COLOPHON.search(text)
    return colophon is not None and any(field in text[colophon.start() :] for field in _COLOPHON_FIELDS)


# -- the notation's pieces, shared with the XHTML loader ----------------------------------------------


def ruby_reading(base: str, reading: str) -> str:
    """What is read for a ruby (EPUB, HTML, Aozora): the reading, once; the base only when the
    'reading' is empty or holds no letter at all (emphasis dots such as ﹅﹅ or ・・ set as ruby)."""
    reading = reading.strip()
    if not any(unicodedata.category(char)[0] in "LN" for char in reading):
        return base
    return reading


_PLANE_ROW_CELL = re.compile(r"(?<![0-9])([12])-([0-9]{1,2})-([0-9]{1,2})(?![0-9])")
_UNICODE_NOTE = re.compile(r"U\+([0-9A-Fa-f]{4,6})(?![0-9A-Fa-f])")


def jis_x0213_char(plane: int, row: int, cell: int) -> str:
    """The character at a JIS X 0213 plane-row-cell ("" when there is none). EUC-JIS-2004 puts
    row and cell at 0xA0 + n, plane 2 after a 0x8F byte."""
    if plane not in (1, 2) or not (1 <= row <= 94 and 1 <= cell <= 94):
        return ""
    data = bytes([0xA0 + row, 0xA0 + cell])
    try:
        char = (b"\x8f" + data if plane == 2 else data).decode("euc_jis_2004")
    except UnicodeDecodeError:
        return ""
    return char if char.isprintable() else ""


def gaiji_char(note: str) -> str:
    """The character an Aozora gaiji note names ("「木＋内」、第3水準1-85-54", "二の字点、1-2-22",
    "「虫＋占」、U+86C5、18-5"), or "" when it gives no code we can use."""
    # Only the codes after the description count: a description may hold digits of its own.
    codes = note.rsplit("」", 1)[-1] if note.startswith(("「", "(「", "（「")) else note
    unicode = _UNICODE_NOTE.search(codes)
    if unicode:
        value = int(unicode.group(1), 16)
        char = chr(value) if value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF else ""
        return char if char.isprintable() else ""
    match = _PLANE_ROW_CELL.search(codes)
    if match:
        return jis_x0213_char(*(int(group) for group in match.groups()))
    return ""


def fix_kunoji(text: str) -> str:
    """くの字点, which Aozora writes ／＼ (voiced ／″＼), as the Unicode characters."""
    if "／" not in text:
        return text
    return text.replace("／″＼", "〴〵").replace("／＼", "〳〵")


# 〔e'te'〕: Aozora's accent decomposition, only inside 〔〕 and only on the letters it is used on.
_ACCENT_MARKS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", ":": "\u0308", "~": "\u0303", "_": "\u0304"}
_ACCENT_LIGATURES = {"ae&": "æ", "AE&": "Æ", "oe&": "œ", "OE&": "Œ", "s&": "ß", "o/": "ø", "O/": "Ø",
                     "a&": "å", "A&": "Å", "c,": "ç", "C,": "Ç", "n~": "ñ", "N~": "Ñ", "!@": "¡", "?@": "¿"}
_ACCENT = re.compile(r"ae&|AE&|oe&|OE&|s&|[oO]/|[aA]&|[cC],|[nN]~|!@|\?@|([aeiouyAEIOUY])(['`^:~_])")
_ACCENT_SPAN = re.compile(r"〔([\x20-\x7e]*[A-Za-z][\x20-\x7e]*)〕")


def _compose(match: re.Match[str]) -> str:
    if match.group(1) is None:
        return _ACCENT_LIGATURES[match.group(0)]
    return unicodedata.normalize("NFC", match.group(1) + _ACCENT_MARKS[match.group(2)])


def fix_accents(text: str) -> str:
    if "〔" not in text:
        return text
    return _ACCENT_SPAN.sub(lambda span: _ACCENT.sub(_compose, span.group(1)), text)


# -- one line: notes, gaiji, ruby ---------------------------------------------------------------------


@dataclass(slots=True)
class _Char:
    char: str
    literal: bool = False  # written as gaiji: text, never notation (《 ｜ written as ※［＃…］)


@dataclass(slots=True)
class _Note:
    content: str  # what is between ［＃ and ］


@dataclass(slots=True)
class _Unit:
    """A character, or a ruby: `base` as written (headings name their text by it), `spoken` as read."""

    base: str
    spoken: str


_BRACKETS = re.compile("[［］]")


def _closing_brackets(line: str) -> dict[int, int]:
    """Where each ［ of the line is closed (nested pairs allowed), found in one pass."""
    pairs: dict[int, int] = {}
    opened: list[int] = []
    for match in _BRACKETS.finditer(line):
        if match.group() == "［":
            opened.append(match.start())
        elif opened:
            pairs[opened.pop()] = match.start()
    return pairs


def _tokens(line: str) -> list[_Char | _Note]:
    """Characters and notes (nested ［］ allowed inside a note); ※ + note becomes its character."""
    out: list[_Char | _Note] = []
    closing = _closing_brackets(line) if "［＃" in line else {}
    index = 0
    while index < len(line):
        start = line.find("［＃", index)
        if start < 0:
            out.extend(_Char(char) for char in line[index:])
            break
        out.extend(_Char(char) for char in line[index:start])
        end = closing.get(start, -1)
        if end < 0:  # an unclosed note: drop its marker, keep the text
            index = start + 2
            continue
        content = line[start + 2 : end]
        if out and isinstance(out[-1], _Char) and out[-1].char == "※" and not out[-1].literal:
            out.pop()
            char = gaiji_char(content)
            out.extend(_Char(c, literal=True) for c in char)
        else:
            out.append(_Note(content))
        index = end + 1
    return out


_KANJI_CHAR = re.compile(f"[{_KANJI}]")


def _kind(char: str) -> str:
    if _KANJI_CHAR.match(char):
        return "kanji"
    if "ぁ" <= char <= "ゖ" or char in "ゝゞ":
        return "hiragana"
    if "ァ" <= char <= "ヺ" or char in "ーヽヾ":
        return "katakana"
    if char.isascii() and (char.isalnum() or char == "'"):
        return "latin"
    if "\uff10" <= char <= "\uff5a" and char.isalnum():
        return "fullwidth"
    return ""


def _is_mark(token: _Char | _Note, marks: str) -> bool:
    """A ruby mark (｜《》) of the notation, not a character written as gaiji."""
    return isinstance(token, _Char) and not token.literal and token.char in marks


def _units(tokens: list[_Char | _Note]) -> list[_Unit | _Note]:
    """Resolve ruby: each `｜base《reading》` or `base《reading》` becomes one unit."""
    out: list[_Unit | _Note] = []
    bar: int | None = None  # where in `out` a ｜ started the next ruby's base
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if isinstance(token, _Note):
            out.append(token)
            continue
        if not _is_mark(token, "｜《》"):
            out.append(_Unit(token.char, token.char))
            continue
        # Stray ｜, 《 and 》 are dropped: Aozora writes the characters themselves as gaiji.
        if token.char == "｜":
            bar = len(out)
            continue
        close = next((i for i in range(index, len(tokens)) if _is_mark(tokens[i], "《》")), -1)
        if token.char == "》" or close < 0 or not _is_mark(tokens[close], "》"):
            continue
        reading = "".join(t.char for t in tokens[index:close] if isinstance(t, _Char))
        index = close + 1
        if bar is None:
            bar = len(out)
            kind = ""
            while bar > 0:
                unit = out[bar - 1]
                if not isinstance(unit, _Unit) or len(unit.base) != 1 or unit.base != unit.spoken:
                    break
                this = _kind(unit.base)
                if not this or (kind and this != kind):
                    break
                kind = this
                bar -= 1
        base = "".join(unit.base for unit in out[bar:] if isinstance(unit, _Unit))
        del out[bar:]
        out.append(_Unit(base, ruby_reading(base, reading)))
        bar = None
    return out


def _line_units(line: str) -> list[_Unit | _Note]:
    return _units(_tokens(fix_accents(fix_kunoji(line))))


def _spoken(units: list[_Unit | _Note]) -> str:
    return "".join(unit.spoken for unit in units if isinstance(unit, _Unit))


def _base(units: list[_Unit | _Note]) -> str:
    return "".join(unit.base for unit in units if isinstance(unit, _Unit))


def plain_line(line: str) -> str:
    """One line as read: notes dropped, gaiji resolved, ruby read once."""
    if not any(mark in line for mark in "［《｜※〔／"):
        return line
    return _spoken(_line_units(line))


# -- headings ----------------------------------------------------------------------------------------

# Heading levels as Aozora's XHTML has them: h1 the title, h3 大見出し, h4 中見出し, h5 小見出し.
TITLE_LEVEL = 1
HEADING_LEVELS = {"大": 3, "中": 4, "小": 5}
_HEADING_AFTER = re.compile(r"「(?P<target>.+)」は(?:同行|窓)?(?P<size>[大中小])見出し")
_HEADING_START = re.compile(r"(?P<block>ここから)?(?:同行|窓)?(?P<size>[大中小])見出し")
_HEADING_END = re.compile(r"(?:ここで)?(?:同行|窓)?(?P<size>[大中小])見出し終わり")
# A block heading that never ends is a mistake in the file: after this many lines it is text again.
_MAX_HEADING_LINES = 8


def _notation_free(text: str) -> str:
    """A note's quoted text as it reads on the page (how heading notes name their text)."""
    text = fix_accents(fix_kunoji(text))
    return _base(_units(_tokens(text)))


class _Body:
    """Turns body lines into (kind, text, level) items: a paragraph a line, headings on their own."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, int]] = []
        self._block_level = 0  # inside ［＃ここから中見出し］…［＃ここで中見出し終わり］
        self._block_lines: list[str] = []

    def _add(self, kind: str, units: list[_Unit | _Note], level: int = 0) -> None:
        text = _spoken(units)
        if text.strip():
            self.items.append((kind, text, level))

    def _end_block(self) -> None:
        if self._block_lines:
            # One line in the contents, as Aozora's XHTML shows it: the lines joined by a space.
            self.items.append(("heading", "\u3000".join(self._block_lines), self._block_level))
        self._block_lines = []
        self._block_level = 0

    def feed(self, line: str) -> None:
        if not any(mark in line for mark in "［《｜※〔／"):  # most lines hold no notation
            if self._block_level:
                self._continue_block(line)
            elif line.strip():
                self.items.append(("paragraph", line, 0))
            return
        pending: list[_Unit | _Note] = []
        inline_level = 0  # inside ［＃中見出し］…［＃中見出し終わり］ on this line
        for unit in _line_units(line):
            if isinstance(unit, _Unit):
                pending.append(unit)
                continue
            note = unit.content
            after = _HEADING_AFTER.fullmatch(note)
            start = _HEADING_START.fullmatch(note)
            end = _HEADING_END.fullmatch(note)
            if after:
                split = self._target_start(pending, _notation_free(after.group("target")))
                if self._block_level:
                    self._continue_block(_spoken(pending[:split]))
                else:
                    self._add("paragraph", pending[:split])
                self._add("heading", pending[split:], HEADING_LEVELS[after.group("size")])
                pending = []
            elif start:
                self._flush(pending, inline_level)
                pending = []
                if start.group("block"):
                    self._end_block()
                    self._block_level = HEADING_LEVELS[start.group("size")]
                else:
                    inline_level = HEADING_LEVELS[start.group("size")]
            elif end:
                if inline_level:
                    self._add("heading", pending, inline_level)
                    inline_level = 0
                elif self._block_level:
                    self._continue_block(_spoken(pending))
                    self._end_block()
                else:
                    self._add("heading", pending, HEADING_LEVELS[end.group("size")])
                pending = []
            # Every other note (indentation, emphasis, page breaks, 底本では…) is not read.
        self._flush(pending, inline_level)

    def _flush(self, pending: list[_Unit | _Note], inline_level: int) -> None:
        if inline_level:
            self._add("heading", pending, inline_level)
        elif self._block_level:
            self._continue_block(_spoken(pending))
        else:
            self._add("paragraph", pending)

    def _continue_block(self, text: str) -> None:
        if text.strip(" \u3000"):
            self._block_lines.append(text.strip(" \u3000"))
        if len(self._block_lines) >= _MAX_HEADING_LINES:
            self._end_block()

    @staticmethod
    def _target_start(pending: list[_Unit | _Note], target: str) -> int:
        """Where the text a `［＃「…」は中見出し］` note names starts in `pending` (0 when not found:
        then the whole line so far is the heading)."""
        left = len(target)  # how much of the target is still to match, from its end
        for index in range(len(pending) - 1, -1, -1):
            unit = pending[index]
            if isinstance(unit, _Unit):
                if len(unit.base) > left or target[left - len(unit.base) : left] != unit.base:
                    break
                left -= len(unit.base)
            if left == 0:
                return index
        return 0

    def finish(self) -> list[tuple[str, str, int]]:
        self._end_block()
        return self.items


# -- the whole file ----------------------------------------------------------------------------------

_DASHES = re.compile(r"^[-－]{10,}[ \u3000]*$")
# The legend sits right after the title block; its examples can run to a few dozen lines.
_LEGEND_SEARCH_LINES = 200


def _layout(lines: list[str]) -> tuple[list[str], int, int]:
    """(title block lines, first body line, end of the body): the legend and the colophon are
    outside the body."""
    first = next((index for index, line in enumerate(lines) if line.strip()), len(lines))
    end = len(lines)
    for index in range(first, len(lines)):
        if _COLOPHON.match(lines[index]):
            end = index
            break
    dashes = [index for index in range(first, min(end, first + _LEGEND_SEARCH_LINES))
              if _DASHES.match(lines[index])]
    if len(dashes) >= 2 and any(_LEGEND_MARK in line or "：ルビ" in line
                                for line in lines[dashes[0] : dashes[1]]):
        return [line for line in lines[first : dashes[0]] if line.strip()], dashes[1] + 1, end
    # No legend (older files): a short block of short lines, then a blank line, is the title
    # block when the file is whole (it ends in a colophon).
    if end < len(lines):
        stop = next((index for index in range(first, end) if not lines[index].strip()), end)
        block = lines[first:stop]
        if stop < end and 1 <= len(block) <= 6 and all(
            len(line.strip()) <= 40 and "。" not in line and "［＃" not in line for line in block
        ):
            return block, stop, end
    return [], first, end


@dataclass
class AozoraText:
    title: str  # title block as written, lines joined by a full-width space ("" when none)
    title_spoken: str  # the title block as read, a line each
    items: list[tuple[str, str, int]]  # (kind, text, level) of the body
    author: str = ""  # the author's line of the title block ("" when none)


# Title block lines that name someone other than the author: translator, editor, illustrator.
_NOT_AUTHOR = re.compile(r"(?:訳|翻訳|訳者|訳注|編|編者|編集|校訂|校注|画|絵|挿絵)[ \u3000]*$")


def author_of_title_block(lines: list[str]) -> str:
    """The author in an Aozora title block: title first, then subtitles, the author, and translators or
    editors (named with 訳, 編 …); the author is the last line that is neither the title nor those."""
    names = [line.strip(" \u3000") for line in lines[1:] if line.strip(" \u3000")]
    names = [line for line in names if not _NOT_AUTHOR.search(line)]
    return names[-1] if names else ""


def parse_aozora(text: str) -> AozoraText:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    header, start, end = _layout(lines)
    units = [_line_units(line) for line in header]
    written = [_base(line).strip(" \u3000") for line in units if _base(line).strip()]
    title = "\u3000".join(written)
    spoken = "\n".join(_spoken(line) for line in units if _spoken(line).strip())
    body = _Body()
    for line in lines[start:end]:
        body.feed(line)
    return AozoraText(title, spoken, body.finish(), author_of_title_block(written))


def add_title_and_body(builder: DocumentBuilder, title_spoken: str, items: list[tuple[str, str, int]]) -> str | None:
    """The title block (read once, first) and the body with its headings as chapters; the first
    chapter, from the title to the first heading, is named after the book. Returns the body's single
    top heading when it stands for a title."""
    if title_spoken.strip():
        builder.add("heading", title_spoken, TITLE_LEVEL)
    return add_with_heading_chapters(builder, items)


def document_from_aozora(
    text: str, title: str, source: Path | None = None, encoding: str | None = None,
    warnings: list[str] | None = None,
) -> Document:
    """A Document from text in Aozora notation; `title` names it when the text has no title block."""
    parsed = parse_aozora(text)
    builder = DocumentBuilder(source.name if source else title)
    builder.warnings += warnings or []
    heading_title = add_title_and_body(builder, parsed.title_spoken, parsed.items)
    return builder.build(parsed.title or heading_title or title, source, "text", encoding, author=parsed.author)


def aozora_document(
    text: str, title: str, source: Path | None = None, encoding: str | None = None,
    warnings: list[str] | None = None,
) -> Document | None:
    """The Document for `text` when it is in Aozora notation, else None (the plain-text hook)."""
    if not looks_like_aozora(text):
        return None
    return document_from_aozora(text, title, source, encoding, warnings)
