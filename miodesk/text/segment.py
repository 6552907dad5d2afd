"""Split text into utterances a MioTTS model can say, keeping each one's span in the source text.

MioTTS stops at 700 tokens (28 s) and the official server refuses more than 300 characters, so long
text is cut: at sentence ends first, then at clause boundaries (、，,;), then at spaces, and only as a
last resort at a fixed length. Every utterance keeps `start`/`end` offsets into the original string,
so the reader can highlight exactly what is being said.

With `split_quotes` (a second voice for dialogue), sentences are also cut where a quotation starts and
ends, so no utterance straddles a quote boundary, and `Utterance.quoted` says which are inside one:
「…」, 『…』, “…” and straight "…" pairs. Quotes nest (『…』 inside 「…」 stays dialogue), never cross
a paragraph break, and one left open ends at the end of its paragraph, so a stray mark cannot turn
the rest of a book into dialogue.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from miodesk.text.normalize import MAX_MODEL_TEXT_CHARS, detect_language

# About 12 s of Japanese (7-9 characters a second) and 15 s of English: well inside the 28 s cap,
# short enough that the first sentence of a document starts playing quickly.
MAX_CHARS_JAPANESE = 100
MAX_CHARS_OTHER = 220

# A sentence ends after these, plus any closing brackets or quotes that follow them.
_JAPANESE_ENDS = "。！？‥…"
_CLOSERS = "」』）)】〉》〕］]\"'”’»"
_CLAUSE_MARKS = "、，,;；：:"

# Words ending in "." that rarely end a sentence (compared lower-case, without the final dot).
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf approx dept est fig figs no nos vol vols
    p pp ch sec eq inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec
    u.s u.k u.n a.m p.m ph.d b.a m.a d.c""".split()
)

# ASCII "!?" also end a sentence right before Japanese text ("本当!?すごい"); "." needs a space after it,
# which keeps decimals, versions and URLs whole.
_SENTENCE_END = re.compile(
    rf"[{re.escape(_JAPANESE_ENDS)}!?]+[{re.escape(_CLOSERS)}]*(?=\s|$|[^\x00-\x7f])"
    rf"|[{re.escape(_JAPANESE_ENDS)}]+[{re.escape(_CLOSERS)}]*"
    rf"|[.!?]+[{re.escape(_CLOSERS)}]*(?=\s|$)"
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\u3000]*\n\s*|\r\n[ \t\u3000]*\r\n\s*")


@dataclass(frozen=True)
class Utterance:
    """One piece of speech: `text` is `source[start:end]`, trimmed of surrounding whitespace."""

    text: str
    start: int
    end: int
    language: str
    quoted: bool = False  # inside 「…」, 『…』, “…” or "…" (only found with `segment(split_quotes=True)`)


def is_speakable(text: str) -> bool:
    """True when the text holds a letter or a digit; punctuation and symbols alone are skipped."""
    return any(unicodedata.category(char)[0] in "LN" for char in text)


def _limit_for(text: str) -> int:
    return MAX_CHARS_JAPANESE if detect_language(text) == "ja" else MAX_CHARS_OTHER


def _is_sentence_end(text: str, match: re.Match[str], end: int) -> bool:
    """Reject '.' after abbreviations and initials, and ellipses followed by a lower-case word."""
    marks = match.group().rstrip(_CLOSERS)
    if marks[-1] not in ".…‥":
        return True
    # A short look-ahead keeps the scan linear on huge paragraphs.
    after = text[match.end() : min(end, match.end() + 16)].lstrip()
    if after[:1].islower():
        return False
    if marks != ".":
        return True
    word_start = match.start()
    while word_start > 0 and not text[word_start - 1].isspace() and text[word_start - 1] not in "(\"'“‘":
        word_start -= 1
    word = text[word_start : match.start()].lower()
    if word in ABBREVIATIONS:
        return False
    # An initial such as the "J." in "J. K. Rowling".
    return not (len(word) == 1 and word.isalpha() and after[:1].isupper())


def _split_lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Split a paragraph at newlines, except where a hard-wrapped sentence continues on the next line."""
    piece_start = start
    position = text.find("\n", start, end)
    while position != -1:
        before = text[piece_start:position].rstrip()
        after = text[position + 1 : end].lstrip(" \t")
        continues = bool(before) and (before[-1].isalpha() or before[-1] in ",;-")
        if not (continues and after[:1].islower()):
            yield piece_start, position
            piece_start = position + 1
        position = text.find("\n", position + 1, end)
    yield piece_start, end


def _split_sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    sentence_start = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if _is_sentence_end(text, match, end):
            yield sentence_start, match.end()
            sentence_start = match.end()
    if sentence_start < end:
        yield sentence_start, end


def _cut_points(text: str, start: int, end: int, marks: str) -> list[int]:
    """Offsets just after each clause mark (a Latin comma counts only before a space)."""
    points = []
    for index in range(start, end - 1):
        char = text[index]
        if char in marks and (char not in ",:;" or text[index + 1].isspace()):
            points.append(index + 1)
    return points


def _split_long(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    """Pack clauses greedily up to `limit` characters; cut over-long clauses at spaces, then anywhere."""
    while end - start > limit:
        window_end = start + limit
        cut = 0
        for marks in (_CLAUSE_MARKS, " \t\u3000"):
            # A cut in the first quarter would leave a tiny fragment; look further.
            points = [p for p in _cut_points(text, start, window_end + 1, marks) if p - start >= limit // 4]
            if points:
                cut = points[-1]
                break
        if not cut:
            cut = window_end
        yield start, cut
        start = cut
    yield start, end


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# Quotation marks: an opener and the closer it waits for. Straight double quotes open and close alike;
# which one a mark is depends on the characters around it (`_straight_quote_role`).
_QUOTE_PAIRS = {"「": "」", "『": "』", "“": "”"}
_QUOTE_CLOSERS = frozenset(_QUOTE_PAIRS.values())
_STRAIGHT = '"'
_OPENS_AFTER = "([{<«“‘「『（【〈《〔［"


def _straight_quote_role(text: str, index: int, start: int, end: int) -> str:
    """"open", "close" or "" (neither: an inch mark such as 12", a lone mark between spaces)."""
    before = text[index - 1] if index > start else " "
    after = text[index + 1] if index + 1 < end else " "
    opens = (before.isspace() or before in _OPENS_AFTER) and not after.isspace()
    closes = not before.isspace() and (after.isspace() or not after.isalnum())
    if opens and not closes:
        return "open"
    if closes and not opens and not before.isdigit():
        return "close"
    if opens and closes:  # between punctuation: ("…") or ,"…: decided by the pairing
        return "either"
    return ""


def quote_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each top-level quotation in `text[start:end]`, its marks included; a quote left
    open runs to `end`. Nested quotes are inside their outer span."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    waiting: list[str] = []  # the closers the open quotes wait for, innermost last
    opened = start
    for index in range(start, end):
        char = text[index]
        if char in _QUOTE_PAIRS:
            if not waiting:
                opened = index
            waiting.append(_QUOTE_PAIRS[char])
        elif char in _QUOTE_CLOSERS or char == _STRAIGHT:
            role = "close" if char != _STRAIGHT else _straight_quote_role(text, index, start, end)
            if role in ("close", "either") and waiting and waiting[-1] == char:
                waiting.pop()
                if not waiting:
                    spans.append((opened, index + 1))
            elif char == _STRAIGHT and role in ("open", "either"):
                if not waiting:
                    opened = index
                waiting.append(_STRAIGHT)
            elif char in _QUOTE_CLOSERS and char in waiting:
                # A closer of an outer quote while an inner one is open: the inner one was never closed.
                while waiting and waiting[-1] != char:
                    waiting.pop()
                waiting.pop()
                if not waiting:
                    spans.append((opened, index + 1))
    if waiting:
        spans.append((opened, end))
    return spans


def _cut_at_quotes(start: int, end: int, spans: list[tuple[int, int]]) -> Iterator[tuple[int, int, bool]]:
    """`[start, end)` cut where quotes begin and end: (piece start, piece end, inside a quote)."""
    position = start
    for quote_start, quote_end in spans:
        if quote_end <= position or quote_start >= end:
            continue
        if quote_start > position:
            yield position, quote_start, False
        piece_end = min(quote_end, end)
        yield max(position, quote_start), piece_end, True
        position = piece_end
    if position < end:
        yield position, end, False


def iter_utterances(text: str, split_quotes: bool = False) -> Iterator[Utterance]:
    """Yield utterances in reading order, in time linear in the length of the text."""
    paragraph_start = 0
    boundaries = [match.span() for match in _PARAGRAPH_BREAK.finditer(text)] + [(len(text), len(text))]
    for break_start, break_end in boundaries:
        spans = quote_spans(text, paragraph_start, break_start) if split_quotes else []
        next_span = 0
        for line_start, line_end in _split_lines(text, paragraph_start, break_start):
            for sentence_start, sentence_end in _split_sentences(text, line_start, line_end):
                while next_span < len(spans) and spans[next_span][1] <= sentence_start:
                    next_span += 1  # spans are in order: each sentence looks at those not yet passed
                nearby = []
                for span in spans[next_span:]:
                    if span[0] >= sentence_end:
                        break
                    nearby.append(span)
                for part_start, part_end, quoted in _cut_at_quotes(sentence_start, sentence_end, nearby):
                    limit = _limit_for(text[part_start:part_end])
                    for piece_start, piece_end in _split_long(text, part_start, part_end, limit):
                        start, end = _trimmed(text, piece_start, piece_end)
                        piece = text[start:end]
                        if is_speakable(piece):
                            assert len(piece) <= MAX_MODEL_TEXT_CHARS
                            yield Utterance(piece, start, end, detect_language(piece), quoted)
        paragraph_start = break_end


def segment(text: str, split_quotes: bool = False) -> list[Utterance]:
    """The utterances of `text`; with `split_quotes`, cut at quote boundaries too (see the module's note)."""
    return list(iter_utterances(text, split_quotes))
