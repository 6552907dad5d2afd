"""Decode the bytes of a text file whose encoding nobody told us.

Order: byte-order marks; ISO-2022-JP escapes; UTF-16 without a BOM (tested by how plausible each
byte order's characters are); strict UTF-8; then a contest between charset-normalizer's guess and
the Japanese legacy encodings (CP932/Shift_JIS, EUC-JP) plus CP1252, each decoded strictly and scored
by how much it reads like real text. The contest exists because charset-normalizer is weak on short
Japanese text: it takes a 30-byte EUC-JP sentence for Big5 or CP949. Kana scores high and half-width
katakana, hangul, private-use and control characters score low, so mojibake loses to the right
decoding. Bytes that no candidate decodes cleanly (mixed encodings) are decoded best-effort with
replacement characters and a warning, never refused.
"""

from __future__ import annotations

import codecs
import logging

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


def _char_score(char: str, prev: str, nxt: str) -> float:
    code = ord(char)
    if code < 0x80:
        return 1.0 if (char.isprintable() or char in "\n\r\t") else -3.0
    if 0x3041 <= code <= 0x309F:  # hiragana: the surest sign of Japanese
        return 2.0
    if 0x30A0 <= code <= 0x30FF:  # katakana
        return 1.5
    if 0x3000 <= code <= 0x303F or 0xFF01 <= code <= 0xFF5E:  # CJK punctuation, full-width forms
        return 1.0
    if 0x4E00 <= code <= 0x9FFF:  # common kanji
        return 1.0
    if 0xFF61 <= code <= 0xFF9F:  # half-width katakana: rare in real text, common in mojibake
        return -0.5
    if 0x00C0 <= code <= 0x024F and char.isalpha():
        # Accented Latin letters belong inside words.
        return 1.0 if (prev.isascii() and prev.isalpha()) or (nxt.isascii() and nxt.isalpha()) else 0.2
    if 0x2010 <= code <= 0x206F or 0x00A0 <= code <= 0x00BF:  # general punctuation, Latin-1 signs
        return 0.3
    if 0x0370 <= code <= 0x052F or 0x0590 <= code <= 0x06FF or 0x0E00 <= code <= 0x0E7F:
        return 0.8  # Greek, Cyrillic, Hebrew, Arabic, Thai: legitimate when the detector says so
    if 0xAC00 <= code <= 0xD7A3 or 0x3130 <= code <= 0x318F:  # hangul: a classic misreading of EUC-JP
        return -1.0
    if 0x3400 <= code <= 0x4DBF or 0x20000 <= code:  # rare CJK (also byte-swapped UTF-16)
        return -0.5
    if 0xE000 <= code <= 0xF8FF or char == "\ufffd" or 0x80 <= code <= 0x9F:
        return -3.0
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
    if len(sample) < 2:
        return None
    even = sample[: len(sample) // 2 * 2]
    best, best_score = None, 0.9
    for encoding in ("utf-16-le", "utf-16-be"):
        text = _try_decode(even, encoding, final=False)
        if text is None:
            continue
        # Legacy double-byte text read as UTF-16 turns into plausible-looking kanji, so demand
        # what real text has besides: ASCII (spaces, newlines, digits) or kana or CJK punctuation.
        structural = sum(1 for char in text if char < "\x80" or "\u3000" <= char <= "\u30ff")
        score = plausibility(text)
        if score > best_score and structural >= 0.25 * len(text):
            best, best_score = encoding, score
    return best


def _detector_guess(sample: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes

        match = from_bytes(sample).best()
    except Exception:  # a third-party heuristic must not stop a file from opening
        log.debug("charset-normalizer failed", exc_info=True)
        return None
    return None if match is None else match.encoding


def decode_bytes(data: bytes, name: str) -> tuple[str, str, list[str]]:
    """Decode `data` (a whole text file). Returns (text, encoding label, warnings)."""
    warnings: list[str] = []
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body = data[len(bom) :]
            try:
                return body.decode(encoding), f"{encoding} (BOM)", warnings
            except UnicodeDecodeError:
                warnings.append(f"{name}: some bytes are not valid {encoding}; they show as �")
                return body.decode(encoding, "replace"), f"{encoding} (BOM)", warnings

    sample = data[:SAMPLE_BYTES]
    if b"\x1b$" in sample or b"\x1b(" in sample:
        if all(byte < 0x80 for byte in sample):
            for encoding in _ISO2022:
                text = _try_decode(data, encoding, final=True)
                if text is not None:
                    return text, "iso-2022-jp", warnings

    utf8 = _try_decode(data, "utf-8", final=True)
    if utf8 is not None and "\x00" not in utf8[:SAMPLE_BYTES]:
        return utf8, "utf-8", warnings

    if b"\x00" in sample or utf8 is None:
        utf16 = _utf16_guess(sample)
        if utf16 is not None:
            text = _try_decode(data, utf16, final=True)
            if text is not None:
                return text, utf16, warnings

    if _looks_binary(sample):
        raise DocumentError(f"{name} looks like a binary file, not text")

    # The contest: every candidate that decodes the sample strictly, scored; ties go to the
    # earlier one (Japanese encodings and CP1252 first: this is a Japanese-and-English reader, and
    # the detector takes short French or German for CP1250 as readily as for CP1252).
    candidates = ["cp932", "euc_jis_2004", "cp1252"]
    guess = _detector_guess(sample)
    if guess and codecs.lookup(guess).name not in {codecs.lookup(c).name for c in candidates}:
        candidates.append(guess)
    scored: list[tuple[float, int, str]] = []
    for rank, encoding in enumerate(candidates):
        text = _try_decode(sample, encoding, final=len(sample) == len(data))
        if text is not None:
            scored.append((plausibility(text), -rank, encoding))
    log.debug("encoding candidates for %s: %s (detector: %s)", name, scored, guess)
    if scored:
        _score, _rank, encoding = max(scored)
        text = _try_decode(data, encoding, final=True)
        if text is not None:
            return text, _LABELS.get(encoding, encoding), warnings
        order = [encoding, "utf-8", *(c for c in candidates if c != encoding)]
    else:
        order = ["utf-8", *sorted(candidates, key=lambda c: -plausibility(sample.decode(c, "replace")))]
    return _decode_lines(data, order, name, warnings)


def _decode_lines(
    data: bytes, order: list[str], name: str, warnings: list[str]
) -> tuple[str, str, list[str]]:
    """Mixed encodings (files pasted together from several sources): each line is decoded with
    the first encoding in `order` that takes it whole; a line none takes keeps a � per bad byte.
    Latin-1 never fails, so it is not tried: it would hide the problem as mojibake."""
    lines = data.split(b"\n")
    decoded: list[str] = []
    damaged = 0
    for line in lines:
        for encoding in order:
            try:
                decoded.append(line.decode(encoding))
                break
            except UnicodeDecodeError:
                continue
        else:
            damaged += 1
            decoded.append(line.decode(order[0], "replace"))
    warnings.append(
        f"{name}: mixed text encodings; decoded line by line"
        + (f" ({damaged} line(s) with undecodable bytes shown as �)" if damaged else "")
    )
    return "\n".join(decoded), "mixed", warnings
