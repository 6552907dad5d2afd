"""Decode the bytes of a text file whose encoding nobody told us, losing only the bytes that are bad.

Order: byte-order marks; ISO-2022-JP escapes; UTF-16 without a BOM (tested by how plausible each
byte order's characters are); strict UTF-8; UTF-8 with a few bad bytes (when its valid multi-byte
characters far outnumber them); then a contest between UTF-8, the Japanese legacy encodings
(CP932/Shift_JIS, EUC-JP), CP1252 and charset-normalizer's guess, each scored by how much it reads
like real text, on the bytes from the first line that is not pure ASCII. The contest exists because
charset-normalizer is weak on short Japanese text: it takes a 30-byte EUC-JP sentence for Big5 or
CP949. Kana scores high and half-width katakana, hangul, private-use and control characters score
low, so mojibake loses to the right decoding.

Damage: every candidate is decoded tolerantly, each undecodable byte sequence marked and scored as
badly as a control character, so a few bad bytes do not hand the file to a wrong encoding (an EUC-JP
file with two stray bytes used to become CP1252 mojibake). The winner decodes the whole file; like
`iconv -c`, only the bad bytes are lost, and a warning says how many characters could not be read.
A line the winner cannot read whole is tried in the other encodings, and one that reads clearly
better in another is taken from it (files pasted together from several sources): never refused.
"""

from __future__ import annotations

import codecs
import logging
import re

from miodesk.text.formats.base import DocumentError

log = logging.getLogger(__name__)

# Enough to judge the encoding; the whole file is then decoded with the winner.
SAMPLE_BYTES = 64 * 1024

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ISO2022 = ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_2004")
# Report the names people know; decode with the supersets Windows and modern files use.
_LABELS = {"cp932": "shift_jis (cp932)", "euc_jis_2004": "euc-jp", "latin-1": "iso-8859-1"}
# How warnings name an encoding.
_NAMES = {
    "utf-8": "UTF-8", "cp932": "Shift_JIS", "euc_jis_2004": "EUC-JP", "cp1252": "Windows-1252",
    "utf-16-le": "UTF-16", "utf-16-be": "UTF-16", "utf-32-le": "UTF-32", "utf-32-be": "UTF-32",
}
# The contest's own candidates, in order of preference on a tie. UTF-8 first: ASCII text with a
# stray byte is reported as UTF-8, as clean ASCII is.
_CANDIDATES = ("utf-8", "cp932", "euc_jis_2004", "cp1252")
# charset-normalizer guesses that are never right here: UTF-16/32 without a BOM were ruled out
# already (it takes damaged Shift_JIS for them), and EBCDIC is for mainframes, not documents.
_NOT_GUESSES = frozenset(
    codecs.lookup(name).name
    for name in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
                 "cp037", "cp273", "cp424", "cp500", "cp875", "cp1026", "cp1140")
)
# A line the winner cannot read whole is taken from another encoding only if that reads like text,
# and clearly better than the winner's reading without its bad bytes.
_TEXT_LIKE = 0.8
_SWITCH_MARGIN = 0.2
_LINE_SAMPLE = 400  # characters of a line enough to judge it
_CONTEST_BYTES = 8 * 1024  # bytes the contest scores, from the first line with a non-ASCII byte
# After a bad byte, this many bytes judge where reading resumes; a line with more bad bytes than
# _RESYNC_MAX_MARKS is in another encoding or beyond repair, and is not resynchronised.
_RESYNC_WINDOW = 24
_RESYNC_MAX_MARKS = 8
_RESYNC_PREFERENCE = 0.5

# Each undecodable byte sequence becomes this lone surrogate while decoding: no decoder produces one
# from valid input, so counting and dropping them is exact (and runs at C speed).
_MARK = "\udbff"
_MARK_ERRORS = "miodesk.mark-undecodable"
# CP932 maps its unassigned bytes (0x80, 0xA0, 0xFD-0xFF) and the user-defined area (gaiji only the
# writer's font had) to U+0080 and private-use characters: nothing a reader can show or say.
_CP932_UNREADABLE = re.compile("[\x80\ue000-\uf8ff]")
_NON_ASCII = re.compile(rb"[\x80-\xff]")


def _mark_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return _MARK, error.end


codecs.register_error(_MARK_ERRORS, _mark_undecodable)


def _latin_word_char(char: str) -> bool:
    """A Latin letter, a space, or the start or end of the text."""
    return char in ("", " ") or (char.isascii() and char.isalpha())


def _char_score(char: str, prev: str, nxt: str) -> float:
    code = ord(char)
    if code < 0x80:
        return 1.0 if (char.isprintable() or char in "\n\r\t") else -3.0
    if 0x3000 <= code <= 0x9FFF or 0xFF01 <= code <= 0xFF5E:
        # A lone kana, kanji or full-width sign among Latin words is a misread byte (cp1252 "é" and
        # the next letter read as one Shift_JIS character), not Japanese.
        if (prev or nxt) and _latin_word_char(prev) and _latin_word_char(nxt):
            return -3.0
        if 0x3041 <= code <= 0x309F:  # hiragana: the surest sign of Japanese
            return 2.0
        if 0x30A0 <= code <= 0x30FF:  # katakana
            return 1.5
        if code <= 0x303F or code >= 0xFF01:  # CJK punctuation, full-width forms
            return 1.0
        if code >= 0x4E00:  # common kanji
            return 1.0
    if 0xFF61 <= code <= 0xFF9F:  # half-width katakana: rare in real text, common in mojibake
        return -0.5
    if 0x00C0 <= code <= 0x024F and char.isalpha():
        # Accented Latin letters belong inside words.
        return 1.0 if (prev.isascii() and prev.isalpha()) or (nxt.isascii() and nxt.isalpha()) else 0.2
    if 0x2010 <= code <= 0x206F or 0x00A0 <= code <= 0x00BF:  # general punctuation, Latin-1 signs
        # Typographic quotes and dashes sit beside Latin words; a sign inside a word (but an
        # apostrophe or a hyphen) is a misread letter.
        if prev.isalpha() and nxt.isalpha() and char not in "\u2019\u2010\u2011":
            return -3.0
        return 1.0 if 0x2010 <= code and (_latin_word_char(prev) or _latin_word_char(nxt)) else 0.3
    if 0x0370 <= code <= 0x052F or 0x0590 <= code <= 0x06FF or 0x0E00 <= code <= 0x0E7F:
        # Greek, Cyrillic, Hebrew, Arabic, Thai: legitimate when the detector says so, in words of
        # their own script; one glued to a Latin word is a stray byte read in the wrong code page.
        if (prev.isascii() and prev.isalpha()) or (nxt.isascii() and nxt.isalpha()):
            return -3.0
        return 0.8 if (not prev.isascii() and prev.isalpha()) or (not nxt.isascii() and nxt.isalpha()) else 0.0
    if 0xAC00 <= code <= 0xD7A3 or 0x3130 <= code <= 0x318F:  # hangul: a classic misreading of EUC-JP
        return -1.0
    if 0x3400 <= code <= 0x4DBF or 0x20000 <= code:  # rare CJK (also byte-swapped UTF-16)
        return -0.5
    if 0xE000 <= code <= 0xF8FF or char in ("\ufffd", _MARK) or 0x80 <= code <= 0x9F:
        return -3.0  # private use, replacement characters, undecodable bytes, C1 controls
    return 0.0


def plausibility(text: str) -> float:
    """Mean score a character: above ~0.8 reads like text, below 0 like the wrong encoding."""
    if not text:
        return 0.0
    total = 0.0
    for index, char in enumerate(text):
        prev = text[index - 1] if index else ""
        nxt = text[index + 1] if index + 1 < len(text) else ""
        total += _char_score(char, prev, nxt)
    return total / len(text)


def _decode_marked(data: bytes, encoding: str, final: bool = True) -> str:
    """Decode, each undecodable sequence becoming one _MARK; with final=False a multi-byte
    character cut at the end of a sample is not a mark."""
    text = codecs.getincrementaldecoder(encoding)(_MARK_ERRORS).decode(data, final=final)
    if codecs.lookup(encoding).name == "cp932" and _CP932_UNREADABLE.search(text):
        text = _CP932_UNREADABLE.sub(_MARK, text)
    return text


def _try_decode(data: bytes, encoding: str, final: bool) -> str | None:
    """Strict decode; with final=False a multi-byte character cut at the end of a sample is fine."""
    try:
        return codecs.getincrementaldecoder(encoding)("strict").decode(data, final=final)
    except (UnicodeDecodeError, LookupError):
        return None


def _looks_binary(sample: bytes) -> bool:
    # Control bytes other than tab, newlines, form feed and ESC (ISO-2022-JP) are rare in text.
    controls = sum(1 for byte in sample if byte < 0x20 and byte not in b"\t\n\r\x0c\x1b")
    return controls > max(2, len(sample) // 100)


def _utf16_guess(sample: bytes) -> str | None:
    """Byte order of BOM-less UTF-16, or None when the bytes do not read as UTF-16 text."""
    piece = sample[:_CONTEST_BYTES]
    if len(piece) < 2:
        return None
    even = piece[: len(piece) // 2 * 2]
    best, best_score = None, 0.9
    for encoding in ("utf-16-le", "utf-16-be"):
        text = _decode_marked(even, encoding, final=False)
        # Legacy double-byte text read as UTF-16 turns into plausible-looking kanji, so demand
        # what real text has besides: ASCII (spaces, newlines, digits) or kana or CJK punctuation.
        structural = sum(1 for char in text if char < "\x80" or "\u3000" <= char <= "\u30ff")
        if structural < 0.25 * len(text):
            continue
        score = plausibility(text)
        if score > best_score:
            best, best_score = encoding, score
    return best


def _evidence_start(data: bytes) -> int:
    """Where the bytes that judge the encoding start: the line holding the first non-ASCII byte
    (ASCII reads the same in every candidate; a long English preface must not hide the rest)."""
    first = _NON_ASCII.search(data)
    return 0 if first is None else data.rfind(b"\n", 0, first.start()) + 1


def _mostly_utf8(piece: bytes, final: bool) -> bool:
    """UTF-8 with a few bad bytes: valid multi-byte characters, which other encodings form only by
    chance, outnumber the undecodable sequences at least two to one."""
    text = _decode_marked(piece, "utf-8", final)
    bad = text.count(_MARK)
    multibyte = len(text) - len(text.encode("ascii", "ignore")) - bad
    return multibyte >= 2 * bad


def _detector_guess(sample: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes

        match = from_bytes(sample).best()
    except Exception:  # a third-party heuristic must not stop a file from opening
        log.debug("charset-normalizer failed", exc_info=True)
        return None
    return None if match is None else match.encoding


def _contest(piece: bytes, final: bool, sample: bytes, name: str) -> str:
    """The encoding `piece` reads best in (`sample`, more of the same bytes, goes to the detector).
    Ties go to the earlier candidate: this is a Japanese-and-English reader, and the detector takes
    short French or German for CP1250 as readily as for CP1252."""
    decoded = {encoding: _decode_marked(piece, encoding, final) for encoding in _CANDIDATES}
    winner = _ranked(decoded)[0]
    best = decoded[winner]
    # A few bytes our winner cannot read: a stray byte in a file of one encoding, or text in
    # another? The detector decodes strictly, so one stray byte sends it elsewhere (EUC-JP to
    # GB18030, CP1252 to CP1250 or CP1256): it is asked again without those bytes. A single-byte
    # guess is also scored without them, so they count as damage, not as its letters; more than a
    # few are evidence for it.
    damaged = best.count(_MARK)
    few = 0 < damaged <= max(3, len(piece) // 1000)
    if few:
        sample = _without_bad_bytes(piece, winner)
    guess = _detector_guess(sample)
    try:
        if guess and codecs.lookup(guess).name not in _NOT_GUESSES | {codecs.lookup(c).name for c in _CANDIDATES}:
            text = _decode_marked(piece, guess, final)
            if few and len(text) == len(best) == len(piece):  # single-byte both: mask the same bytes
                text = "".join(_MARK if mark == _MARK else char for char, mark in zip(text, best, strict=True))
            decoded[guess] = text
    except LookupError:
        pass
    ranking = _ranked(decoded)
    log.debug("encoding candidates for %s: %s (detector: %s)", name, ranking, guess)
    return ranking[0]


def _ranked(decoded: dict[str, str]) -> list[str]:
    """Encodings best first by how their decodings read (in `decoded`'s order on a tie)."""
    # Scoring is slow (Python, a character at a time): a candidate with far more undecodable bytes
    # than the best one has lost already.
    fewest = min(text.count(_MARK) for text in decoded.values())
    scored: list[tuple[float, int, str]] = []
    for rank, (encoding, text) in enumerate(decoded.items()):
        score = -3.0 if text.count(_MARK) > 4 * fewest + 8 else plausibility(text)
        scored.append((score, -rank, encoding))
    scored.sort(reverse=True)
    return [encoding for _score, _rank, encoding in scored]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _lost_warning(name: str, lost: int, encoding: str) -> str:
    return (
        f"{name}: {_plural(lost, 'character')} could not be read "
        f"(invalid {_NAMES.get(encoding, encoding.upper())} bytes); they are left out"
    )


def _first_bad_bytes(data: bytes, encoding: str) -> tuple[int, int] | None:
    """Where the first undecodable bytes of `data` are (start, end), or None."""
    span = None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        text = data[: error.start].decode(encoding)
        span = (error.start, error.end)
    if codecs.lookup(encoding).name == "cp932":
        match = _CP932_UNREADABLE.search(text)
        if match:
            # Every valid CP932 character encodes back to as many bytes as it came from.
            start = len(text[: match.start()].encode(encoding))
            return start, start + (1 if data[start] in b"\x80\xa0\xfd\xfe\xff" else 2)
    return span


def _without_bad_bytes(data: bytes, encoding: str) -> bytes:
    """`data` less the bytes `encoding` cannot decode (a character cut at its end goes too)."""
    kept: list[bytes] = []
    rest = data
    while (span := _first_bad_bytes(rest, encoding)) is not None:
        start, end = span
        kept.append(rest[:start])
        rest = rest[end:]
    kept.append(rest)
    return b"".join(kept)


def _resumption_cost(rest: bytes, encoding: str) -> tuple[int, float]:
    window = rest[:_RESYNC_WINDOW]
    text = _decode_marked(window, encoding, final=len(window) == len(rest))
    return text.count(_MARK), -plausibility(text)


def _resync_line(line: bytes, encoding: str) -> str:
    """Decode a damaged line (a mark for each loss), choosing after each bad byte where reading
    resumes. In Shift_JIS and EUC-JP lead and trail bytes overlap, so a byte inserted into a
    two-byte character would shift every character after it; dropping the byte after the lead
    instead, or one byte more, reads the rest of the line as it was written."""
    parts: list[str] = []
    rest = line
    for _attempt in range(2 * _RESYNC_MAX_MARKS):
        span = _first_bad_bytes(rest, encoding)
        if span is None:
            break
        start, end = span
        parts.append(rest[:start].decode(encoding))
        parts.append(_MARK)
        options = (rest[end:], rest[end + 1 :], rest[start : start + 1] + rest[start + 2 :])
        costs = [_resumption_cost(option, encoding) for option in options]
        # What every decoder does (drop the bad bytes) unless another way leaves fewer bad bytes
        # or reads clearly better.
        costs[0] = (costs[0][0], costs[0][1] - _RESYNC_PREFERENCE)
        rest = options[costs.index(min(costs))]
    parts.append(_decode_marked(rest, encoding))
    return "".join(parts)


def _repair_lines(
    data: bytes, text: str, encoding: str, others: list[str]
) -> tuple[str, dict[str, int]]:
    """Re-read each line holding a mark: resynchronised after its bad bytes, or taken from another
    encoding that reads it whole, like text and better (files pasted together from several
    sources). Returns the text, marks left in, and how many lines each other encoding gave."""
    byte_lines = data.split(b"\n")
    lines = text.split("\n")
    switched: dict[str, int] = {}
    if len(byte_lines) != len(lines):  # a decoder swallowed a newline: keep the winner's reading
        return text, switched
    for index, line in enumerate(lines):
        if _MARK not in line:
            continue
        if line.count(_MARK) <= _RESYNC_MAX_MARKS:
            line = _resync_line(byte_lines[index], encoding)
        best, best_score, best_encoding = line, plausibility(line[:_LINE_SAMPLE]), encoding
        for other in others:
            try:
                candidate = byte_lines[index].decode(other)
            except (UnicodeDecodeError, LookupError):
                continue
            if codecs.lookup(other).name == "cp932" and _CP932_UNREADABLE.search(candidate):
                continue
            score = plausibility(candidate[:_LINE_SAMPLE])
            if score >= best_score + _SWITCH_MARGIN and score >= _TEXT_LIKE:
                best, best_score, best_encoding = candidate, score, other
        lines[index] = best
        if best_encoding != encoding:
            switched[best_encoding] = switched.get(best_encoding, 0) + 1
    return "\n".join(lines), switched


def _finish(
    text: str, label: str, encoding: str, name: str, warnings: list[str]
) -> tuple[str, str, list[str]]:
    """Drop the marks and say how many characters were lost."""
    lost = text.count(_MARK)
    if lost:
        text = text.replace(_MARK, "")
        warnings.append(_lost_warning(name, lost, encoding))
    return text, label, warnings


def decode_bytes(data: bytes, name: str) -> tuple[str, str, list[str]]:
    """Decode `data` (a whole text file). Returns (text, encoding label, warnings)."""
    warnings: list[str] = []
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body = _decode_marked(data[len(bom) :], encoding)
            return _finish(body, f"{encoding} (BOM)", encoding, name, warnings)

    sample = data[:SAMPLE_BYTES]
    if b"\x1b$" in sample or b"\x1b(" in sample:
        # ISO-2022-JP is 7-bit: a few bytes with the high bit set are damage, more mean another encoding.
        high = len(sample) - len(sample.translate(None, bytes(range(0x80, 0x100))))
        if high <= max(2, len(sample) // 1000):
            decoded = [_decode_marked(data, encoding) for encoding in _ISO2022]
            best = min(range(len(decoded)), key=lambda index: decoded[index].count(_MARK))
            return _finish(decoded[best], "iso-2022-jp", "iso2022_jp", name, warnings)

    utf8 = _try_decode(data, "utf-8", final=True)
    if utf8 is not None and "\x00" not in utf8[:SAMPLE_BYTES]:
        return utf8, "utf-8", warnings

    if b"\x00" in sample or utf8 is None:
        utf16 = _utf16_guess(sample)
        if utf16 is not None:
            return _finish(_decode_marked(data, utf16), utf16, utf16, name, warnings)

    if _looks_binary(sample):
        raise DocumentError(f"{name} looks like a binary file, not text")

    # Lines in another encoding come from pasting Japanese and English sources: only our own
    # candidates may take a line.
    start = _evidence_start(data)
    piece = data[start : start + _CONTEST_BYTES]
    final = start + len(piece) == len(data)
    if _mostly_utf8(piece, final):
        encoding = "utf-8"
    else:
        encoding = _contest(piece, final, data[start : start + SAMPLE_BYTES], name)
    others = [candidate for candidate in _CANDIDATES if candidate != encoding]
    text = _decode_marked(data, encoding)
    label = _LABELS.get(encoding, encoding)
    if _MARK in text:
        text, switched = _repair_lines(data, text, encoding, others)
        if switched:
            label = "mixed"
            taken = ", ".join(f"{_plural(n, 'line')} in {_NAMES.get(e, e)}" for e, n in switched.items())
            warnings.append(
                f"{name}: mixed text encodings ({taken}, the rest in {_NAMES.get(encoding, encoding)}); "
                "decoded line by line"
            )
    return _finish(text, label, encoding, name, warnings)
