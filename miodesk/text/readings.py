"""The readings dictionary (読み方辞書): words the speech model should say differently.

Each entry maps a SURFACE (what the text says) to a READING (what the model is given instead), for
Japanese sentences, English sentences or any. It is applied to one utterance at a time, after
segmentation and before normalisation (`text_for_model`), so the text on screen and the character
offsets that drive the highlight never change: only what reaches the model does.

Matching
    Both sides are compared in NFKC form, so full-width and half-width forms match each other (a
    VOICEVOX entry for "ＭｉｏＴＴＳ" applies to "MioTTS"); the parts of the text that match nothing
    keep their original characters, because normalisation later must see them as they were. At each
    position the longest match wins, then the higher priority; the text is scanned once from left to
    right and a replacement is never matched again. A surface that starts (ends) with a Latin letter
    matches only at the start (end) of a word, one that starts (ends) with a digit only where no digit
    is next to it: "AI" does not match inside "MAIN", but "km" matches in "5km". Literal
    surfaces live in a trie, so the cost per character does not grow with the number of entries.
    With `regex`, the surface is a Python regular expression (the `regex` package, run with a time
    limit) matched against the NFKC form of the utterance, and the reading may use its groups (`\\1`,
    `\\g<name>`); a pattern that runs out of time is skipped from then on and logged.

The model's limit
    MioTTS takes at most 300 characters. A reading is at most 100 characters, and when the readings
    would make one utterance longer than 300 characters, the matches that would cross the limit keep
    their original words (logged): a sentence is never cut, and no entry is refused for the sake of
    some long sentence it might meet.

The file (`miodesk.paths.readings_path()`, `readings.tsv`)
    UTF-8 text, one entry a line, the fields separated by tabs::

        # MioDesk readings dictionary (読み方辞書) ...
        # surface<TAB>reading<TAB>lang<TAB>regex<TAB>priority<TAB>enabled<TAB>note
        MioTTS<TAB>ミオティーティーエス<TAB>ja<TAB>0<TAB>5<TAB>1<TAB>
        Dr\\.\\s*(\\w+)<TAB>Doctor \\1<TAB>en<TAB>1<TAB>5<TAB>1<TAB>titles

    Only surface and reading are required; the others default to lang `any` (`*` means the same),
    regex 0, priority 5 (0 to 10, as VOICEVOX counts), enabled 1 and an empty note. Lines starting
    with `#` and blank lines are ignored. Fields cannot hold tabs or line breaks, and there is no
    escaping: a backslash is a backslash. The file is written atomically, and edits take a lock file
    beside it, so two programs that change the dictionary at once both keep their change.

Imports (`import_file`): MioDesk's own file, a VOICEVOX user dictionary export (JSON, uuid → word;
`pronunciation` is the reading; accent data is dropped and counted), and IME word lists (Microsoft
IME: UTF-16 with BOM, `よみ<TAB>語句<TAB>品詞`, `!` comment lines; Google 日本語入力: UTF-8,
`読み<TAB>単語<TAB>品詞<TAB>コメント`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from miodesk.atomic import atomic_write
from miodesk.errors import MioDeskError, TextError
from miodesk.text.normalize import MAX_MODEL_TEXT_CHARS, detect_language, text_for_model
from miodesk.text.segment import is_speakable

if TYPE_CHECKING:
    import regex

log = logging.getLogger(__name__)

LANGUAGES = ("ja", "en", "any")
LANGUAGE_NAMES = {"ja": "Japanese", "en": "English", "any": "any language"}
MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 0, 10, 5  # VOICEVOX's scale
MAX_SURFACE_CHARS = 100  # one Japanese utterance is at most 100 characters: a longer word never matches
MAX_PATTERN_CHARS = 300
MAX_READING_CHARS = 100  # no word needs more; a longer one is likely a paste gone wrong
REGEX_TIMEOUT_S = 0.05  # per pattern and utterance; the reader prepares a sentence in well under a second
MAX_IMPORT_BYTES = 64 * 1024 * 1024
LOCK_WAIT_S = 5.0
STALE_LOCK_S = 30.0  # an edit takes milliseconds: an older lock file was left by a program that died

HEADER = (
    "# MioDesk readings dictionary (読み方辞書): UTF-8, one entry a line, fields separated by tabs.\n"
    "# lang: ja, en or any; regex: 1 when the surface is a regular expression; priority: 0 to 10;\n"
    "# enabled: 1 or 0. Lines starting with # are comments.\n"
    "# surface\treading\tlang\tregex\tpriority\tenabled\tnote\n"
)
_HEADER_MARK = "# MioDesk readings dictionary"
_END = ""  # the trie key under which a node keeps the entries whose surface ends there

T = TypeVar("T")


class ReadingsError(MioDeskError):
    """An entry, a dictionary file or an import that cannot be used; the message says why, in one line.
    `field` names the entry's field at fault ("word", "reading", "lang", "priority", "note"), if any."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


@dataclass(frozen=True)
class Entry:
    surface: str
    reading: str
    lang: str = "any"
    regex: bool = False
    priority: int = DEFAULT_PRIORITY
    enabled: bool = True
    note: str = ""

    @property
    def key(self) -> tuple[str, str, bool]:
        """Entries with the same key are the same entry: adding one replaces the other."""
        return (self.surface if self.regex else nfkc(self.surface), self.lang, self.regex)

    def same_surface(self, surface: str) -> bool:
        return self.surface == surface if self.regex else nfkc(self.surface) == nfkc(surface.strip())


def default_language_for(reading: str) -> str:
    """The language an entry is for when none is given: that of its reading (a katakana reading is for
    Japanese sentences, where the model reads katakana; "Doctor" is for English ones)."""
    language = detect_language(reading)
    return language if language in ("ja", "en") else "any"


def _describe(entry: Entry) -> str:
    return f"“{entry.surface}”"


def _check_field(name: str, value: str) -> None:
    for char in value:
        if char in "\t\r\n":
            raise ReadingsError(f"The {name} cannot hold a tab or a line break (the dictionary file keeps one "
                                "entry a line, its fields separated by tabs).", name)
        if unicodedata.category(char) == "Cc":
            raise ReadingsError(f"The {name} holds a control character (U+{ord(char):04X}).", name)


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    # Imported here: only dictionaries with patterns need it, and the window and the CLI start without it.
    import regex

    try:
        return regex.compile(pattern, regex.VERSION0)
    except regex.error as error:
        raise ReadingsError(f"'{pattern}' is not a valid regular expression: {error}.", "word") from None
    except (ValueError, OverflowError, RecursionError) as error:
        raise ReadingsError(f"'{pattern}' is not a valid regular expression: {error}.", "word") from None


_TEMPLATE_ESCAPES = "\\ntrfvab"


def _check_template(reading: str, compiled: regex.Pattern[str]) -> None:
    """The group references of a regex reading must exist (checked now, not at the first match)."""
    index = 0
    while True:
        index = reading.find("\\", index)
        if index < 0:
            return
        rest = reading[index + 1 :]
        if rest[:1].isdigit():
            digits = rest[:2] if rest[1:2].isdigit() else rest[:1]
            if rest[:1] == "0" or int(digits) > compiled.groups:
                raise ReadingsError(f"The reading refers to group \\{digits}, but the pattern has "
                                    f"{compiled.groups} group{'s' if compiled.groups != 1 else ''}.", "reading")
            index += 1 + len(digits)
        elif rest.startswith("g<"):
            end = rest.find(">")
            name = rest[2:end] if end > 0 else ""
            known = name in compiled.groupindex or (name.isdigit() and 0 <= int(name) <= compiled.groups)
            if not known:
                raise ReadingsError(f"The reading refers to group \\g<{name}>, which the pattern does not have.",
                                    "reading")
            index += 2 + end
        elif rest[:1] and rest[:1] in _TEMPLATE_ESCAPES:
            index += 2
        else:
            raise ReadingsError(f"The reading has a bad escape '\\{rest[:1]}' (write \\\\ for a backslash).",
                                "reading")


def check_entry(entry: Entry) -> Entry:
    """The entry as it is kept (a literal surface and every reading stripped of surrounding spaces),
    or ReadingsError saying what is wrong with it."""
    surface = entry.surface if entry.regex else entry.surface.strip()
    reading = entry.reading.strip()
    if not surface.strip():
        raise ReadingsError("The word (surface) is empty.", "word")
    if not reading:
        raise ReadingsError(f"The reading of {_describe(entry)} is empty; give what should be said instead.",
                            "reading")
    _check_field("word", surface)
    _check_field("reading", reading)
    _check_field("note", entry.note)
    limit = MAX_PATTERN_CHARS if entry.regex else MAX_SURFACE_CHARS
    if len(surface) > limit:
        raise ReadingsError(f"The word is {len(surface)} characters long; at most {limit} can match a sentence.",
                            "word")
    if len(reading) > MAX_READING_CHARS:
        raise ReadingsError(f"The reading is {len(reading)} characters long; a reading can be at most "
                            f"{MAX_READING_CHARS} (the speech model takes {MAX_MODEL_TEXT_CHARS} a sentence).",
                            "reading")
    if entry.lang not in LANGUAGES:
        raise ReadingsError(f"The language must be ja, en or any, not '{entry.lang}'.", "lang")
    if isinstance(entry.priority, bool) or not isinstance(entry.priority, int) \
            or not MIN_PRIORITY <= entry.priority <= MAX_PRIORITY:
        raise ReadingsError(f"The priority must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}, "
                            f"not {entry.priority!r}.", "priority")
    if entry.regex:
        compiled = compile_pattern(surface)
        if compiled.fullmatch("") is not None:
            raise ReadingsError(f"The pattern '{surface}' matches an empty text; it must match at least "
                                "one character.", "word")
        _check_template(reading, compiled)
    return replace(entry, surface=surface, reading=reading, note=entry.note.strip())


# --- the file --------------------------------------------------------------------------------------


def _flag(value: str, name: str) -> bool:
    if value in ("1", "yes", "true"):
        return True
    if value in ("0", "no", "false", ""):
        return False
    raise ReadingsError(f"{name} must be 1 or 0, not '{value}'")


def _parse_line(line: str) -> Entry:
    fields = line.split("\t")
    if len(fields) < 2:
        raise ReadingsError("it needs at least a word and a reading, separated by a tab")
    if len(fields) > 7:
        raise ReadingsError(f"it has {len(fields)} fields, at most 7 (surface, reading, lang, regex, priority, "
                            "enabled, note)")
    fields += [""] * (7 - len(fields))
    surface, reading, lang, is_regex, priority, enabled, note = fields
    lang = lang.strip().lower()
    lang = "any" if lang in ("", "*") else lang
    try:
        number = int(priority) if priority.strip() else DEFAULT_PRIORITY
    except ValueError:
        raise ReadingsError(f"the priority must be a whole number, not '{priority}'") from None
    entry = Entry(surface, reading, lang, _flag(is_regex.strip().lower(), "regex"), number,
                  _flag(enabled.strip().lower() or "1", "enabled"), note)
    return check_entry(entry)


def parse_entries(text: str, source: str = "the dictionary") -> tuple[list[Entry], list[str]]:
    """The entries of a dictionary file's text, and one line for each line that could not be used."""
    entries: list[Entry] = []
    problems: list[str] = []
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entries.append(_parse_line(line))
        except ReadingsError as error:
            problems.append(f"line {number} of {source}: {str(error).rstrip('.')}")
    return entries, problems


def format_entries(entries: Iterable[Entry]) -> str:
    lines = [HEADER]
    for e in entries:
        fields = (e.surface, e.reading, e.lang, "1" if e.regex else "0", str(e.priority), "1" if e.enabled else "0",
                  e.note)
        lines.append("\t".join(fields) + "\n")
    return "".join(lines)


def write_entries(path: Path, entries: Iterable[Entry], private: bool = True) -> None:
    """Write the dictionary file atomically (`private=False`: an export, a file like any other the user makes)."""
    text = format_entries(entries)
    for attempt in range(20):
        try:
            with atomic_write(path, "w", private=private) as handle:
                handle.write(text)
            return
        except PermissionError:
            # Windows refuses to replace a file while another program reads it (a reading that checks the
            # dictionary holds it for a moment): try again shortly.
            if attempt == 19:
                raise
            time.sleep(0.05)


# --- imports ---------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    kind: str  # "MioDesk readings", "VOICEVOX user dictionary", "IME word list"
    entries: list[Entry] = field(default_factory=list)
    accents_dropped: int = 0
    skipped: list[str] = field(default_factory=list)  # one line each


IMPORT_FORMATS = ("auto", "miodesk", "voicevox", "ime")
_IME_SKIPPED_KINDS = ("短縮よみ", "顔文字")  # input shortcuts and emoticons: not readings of the word


def _decode(data: bytes, name: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise ReadingsError(f"'{name}' starts like UTF-16 text but is not ({error.reason}).") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if data[1::2].count(0) > len(data) // 4:  # UTF-16 little-endian without its BOM
        try:
            return data.decode("utf-16-le")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("cp932")  # old IME exports are Shift_JIS
    except UnicodeDecodeError:
        raise ReadingsError(f"'{name}' is not text in UTF-8, UTF-16 or Shift_JIS.") from None


def _is_kana(text: str) -> bool:
    return bool(text) and all("\u3040" <= ch <= "\u30ff" or ch in "ー・ " for ch in text)


def _hiragana(text: str) -> str:
    return "".join(chr(ord(ch) - 0x60) if "\u30a1" <= ch <= "\u30f6" else ch for ch in text)


def _detect_format(text: str) -> str:
    body = text.lstrip("\ufeff \t\r\n")
    if body.startswith(("{", "[")):
        return "voicevox"
    lines = [line for line in body.splitlines() if line.strip()]
    if any(line.startswith(_HEADER_MARK) for line in lines[:5]):
        return "miodesk"
    if any(line.startswith("!") for line in lines[:20]):
        return "ime"
    data = [line.split("\t") for line in lines if not line.startswith("#")][:50]
    ime_like = [f for f in data if len(f) >= 3 and _is_kana(f[0]) and f[2].strip().lower() not in (*LANGUAGES, "*")]
    return "ime" if data and len(ime_like) * 2 > len(data) else "miodesk"


def _from_voicevox(text: str, name: str) -> ImportResult:
    result = ImportResult("VOICEVOX user dictionary")
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ReadingsError(f"'{name}' is not valid JSON: {error}.") from None
    words: Iterable[tuple[str, Any]]
    if isinstance(data, dict):
        words = data.items()
    elif isinstance(data, list):
        words = ((str(index), word) for index, word in enumerate(data))
    else:
        raise ReadingsError(f"'{name}' is JSON but not a VOICEVOX user dictionary (an object of words).")
    for key, word in words:
        if not isinstance(word, dict) or not isinstance(word.get("surface"), str) \
                or not isinstance(word.get("pronunciation"), str):
            result.skipped.append(f"{key}: not a word with a surface and a pronunciation")
            continue
        priority = word.get("priority", DEFAULT_PRIORITY)
        if isinstance(priority, bool) or not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            priority = DEFAULT_PRIORITY
        try:
            # VOICEVOX reads Japanese only: its readings are katakana for Japanese sentences.
            entry = check_entry(Entry(word["surface"], word["pronunciation"], "ja", False, priority))
        except ReadingsError as error:
            result.skipped.append(f"{word['surface']}: {str(error).rstrip('.')}")
            continue
        if any(k in word for k in ("accent_type", "accent_associative_rule", "mora_count")):
            result.accents_dropped += 1
        result.entries.append(entry)
    if not result.entries and not result.skipped:
        raise ReadingsError(f"'{name}' holds no words.")
    return result


def _from_ime(text: str) -> ImportResult:
    result = ImportResult("IME word list")
    shortcuts = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("!", "#")):
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            result.skipped.append(f"line {number}: not “reading<TAB>word”")
            continue
        reading, surface = fields[0].strip(), fields[1].strip()
        kind = fields[2].strip() if len(fields) > 2 else ""
        if kind in _IME_SKIPPED_KINDS:
            shortcuts += 1
            continue
        if _hiragana(nfkc(surface)) == _hiragana(nfkc(reading)):
            continue  # the word is written as it is read: nothing to change
        try:
            result.entries.append(check_entry(Entry(surface, reading, "ja")))
        except ReadingsError as error:
            result.skipped.append(f"line {number}: {str(error).rstrip('.')}")
    if shortcuts:
        result.skipped.append(f"{shortcuts} input shortcut{'s' if shortcuts != 1 else ''} or emoticon"
                              f"{'s' if shortcuts != 1 else ''} (短縮よみ, 顔文字): they are not readings")
    return result


def read_import(path: Path, fmt: str = "auto") -> ImportResult:
    """The entries of a file to import, whatever of the known formats it is in (see the module docstring)."""
    path = Path(path)
    if fmt not in IMPORT_FORMATS:
        raise ReadingsError(f"Unknown format '{fmt}': use one of {', '.join(IMPORT_FORMATS)}.")
    try:
        if not path.is_file():
            raise ReadingsError(f"'{path}' does not exist or is not a file." if not path.exists()
                                else f"'{path}' is not a regular file.")
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise ReadingsError(f"'{path.name}' is larger than {MAX_IMPORT_BYTES // 2**20} MB; it is not a dictionary.")
        data = path.read_bytes()
    except OSError as error:
        raise ReadingsError(f"Cannot read '{path}': {error.strerror or error}.") from None
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")) and data[1::2].count(0) <= len(data) // 4:
        raise ReadingsError(f"'{path.name}' is a binary file, not a dictionary.")
    text = _decode(data, path.name)
    kind = _detect_format(text) if fmt == "auto" else fmt
    if kind == "voicevox":
        return _from_voicevox(text, path.name)
    if kind == "ime":
        return _from_ime(text)
    entries, problems = parse_entries(text, path.name)
    return ImportResult("MioDesk readings", entries, 0, problems)


# --- matching --------------------------------------------------------------------------------------

_JOINS_CACHE: dict[str, bool] = {}


def _joins_previous(char: str) -> bool:
    """A character NFKC attaches to the one before it (a combining mark, half-width ﾞ ﾟ)."""
    found = _JOINS_CACHE.get(char)
    if found is None:
        found = unicodedata.combining(nfkc(char)[:1] or " ") != 0
        _JOINS_CACHE[char] = found
    return found


def normalized_with_offsets(text: str) -> tuple[str, list[int] | None]:
    """`text` in NFKC form, and for each position of it the offset in `text` where it starts (-1 inside
    a character that NFKC expanded, e.g. "㍻" → "平成"); None when the two are the same."""
    if unicodedata.is_normalized("NFKC", text):
        return text, None
    pieces: list[str] = []
    offsets: list[int] = []
    index, length = 0, len(text)
    while index < length:
        end = index + 1
        while end < length and _joins_previous(text[end]):
            end += 1
        piece = nfkc(text[index:end])
        pieces.append(piece)
        offsets.append(index)
        offsets.extend([-1] * (len(piece) - 1))
        index = end
    offsets.append(length)
    return "".join(pieces), offsets


def _edge_kind(char: str) -> str:
    """For a surface's first or last character: "a" (a Latin letter) or "9" (a digit), which must not be
    joined by another of the same kind; "" (kana, kanji, punctuation) needs no boundary."""
    if char.isascii() and char.isdigit():
        return "9"
    if (char.isascii() and char.isalpha()) or ("\u00c0" <= char <= "\u024f" and char.isalpha()):
        return "a"
    return ""


def _joins(char: str, kind: str) -> bool:
    """Whether `char` beside a surface's edge of `kind` makes the match part of a longer word. Letters join
    letters (of alphabetic scripts: kana and kanji never join a Latin word), digits join digits, "_" both:
    "AI" is not in "MAIN", but "km" is in "5km"."""
    if char == "_":
        return True
    if kind == "9":
        return char.isdigit()
    return char.isalpha() and ord(char) < 0x2E80


@dataclass(frozen=True)
class _Terminal:
    left_boundary: str  # _edge_kind of the surface's first character
    right_boundary: str
    entries: tuple[Entry, ...]  # best first: priority, then a language of its own before "any"


def _rank(entry: Entry) -> tuple[int, int]:
    return (entry.priority, entry.lang != "any")


class CompiledReadings:
    """Enabled entries ready to apply; immutable but for the patterns that ran out of time."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        started = time.perf_counter()
        by_surface: dict[str, list[Entry]] = {}
        self._patterns: list[tuple[Entry, regex.Pattern[str]]] = []
        self._expand_errors: tuple[type[BaseException], ...] = (IndexError,)  # and regex.error, once it is loaded
        for entry in entries:
            if not entry.enabled:
                continue
            if entry.regex:
                try:
                    self._patterns.append((entry, compile_pattern(entry.surface)))
                except ReadingsError as error:
                    log.warning("readings: skipped: %s", error)
            else:
                by_surface.setdefault(nfkc(entry.surface), []).append(entry)
        self._root: dict[str, Any] = {}
        for surface, found in by_surface.items():
            node = self._root
            for char in surface:
                node = node.setdefault(char, {})
            node[_END] = _Terminal(_edge_kind(surface[0]), _edge_kind(surface[-1]),
                                   tuple(sorted(found, key=_rank, reverse=True)))
        if self._patterns:
            import regex

            self._expand_errors = (regex.error, IndexError)
        self.size = sum(len(found) for found in by_surface.values()) + len(self._patterns)
        self._timed_out: set[tuple[str, str, bool]] = set()
        self.compile_s = time.perf_counter() - started

    def __bool__(self) -> bool:
        return self.size > 0

    def _pattern_hits(self, norm: str, language: str) -> dict[int, list[tuple[int, Entry, Any]]]:
        hits: dict[int, list[tuple[int, Entry, Any]]] = {}
        for entry, pattern in self._patterns:
            if entry.lang not in (language, "any") or entry.key in self._timed_out:
                continue
            try:
                for match in pattern.finditer(norm, timeout=REGEX_TIMEOUT_S):
                    if match.end() > match.start():
                        hits.setdefault(match.start(), []).append((match.end(), entry, match))
            except TimeoutError:
                self._timed_out.add(entry.key)
                log.warning("readings: the pattern '%s' took longer than %.0f ms on one sentence; it is skipped "
                            "until the dictionary changes", entry.surface, REGEX_TIMEOUT_S * 1000)
        return hits

    def apply(self, text: str, language: str | None = None) -> str:
        """`text` with the readings in place of what they match (see the module docstring)."""
        if not self.size or not text:
            return text
        language = language or detect_language(text)
        norm, offsets = normalized_with_offsets(text)
        hits = self._pattern_hits(norm, language) if self._patterns else {}
        root = self._root
        length = len(norm)
        limit = max(MAX_MODEL_TEXT_CHARS, len(text))
        total = len(text)
        out: list[str] = []
        done = 0  # offset in `text` up to which `out` holds the text
        crossed = False
        position = 0
        while position < length:
            node = root.get(norm[position])
            at = hits.get(position) if hits else None
            if (node is None and at is None) or (offsets is not None and offsets[position] < 0):
                position += 1
                continue
            best_end, best_rank, best = 0, (0, 0, 0), ""
            if node is not None:
                end = position
                before = norm[position - 1] if position else ""
                while node is not None:
                    end += 1
                    terminal = node.get(_END)
                    if terminal is not None and (offsets is None or offsets[end] >= 0) \
                            and not (terminal.left_boundary and before and _joins(before, terminal.left_boundary)) \
                            and not (terminal.right_boundary and end < length
                                     and _joins(norm[end], terminal.right_boundary)):
                        chosen = next((e for e in terminal.entries if e.lang in (language, "any")), None)
                        if chosen is not None:
                            best_end, best_rank, best = end, (*_rank(chosen), 1), chosen.reading
                    node = node.get(norm[end]) if end < length else None
            for end, entry, match in at or ():
                rank = (*_rank(entry), 0)
                if (end, rank) > (best_end, best_rank) and (offsets is None or offsets[end] >= 0):
                    try:
                        expanded = match.expand(entry.reading)
                    except self._expand_errors as error:
                        log.warning("readings: the reading '%s' of '%s' cannot be used: %s", entry.reading,
                                    entry.surface, error)
                        continue
                    best_end, best_rank, best = end, rank, expanded
            if best_end:
                start = position if offsets is None else offsets[position]
                stop = best_end if offsets is None else offsets[best_end]
                grown = total + len(best) - (stop - start)
                if grown <= limit:
                    out.append(text[done:start])
                    out.append(best)
                    done, total, position = stop, grown, best_end
                    continue
                crossed = True
            position += 1
        if crossed:
            log.warning("readings: some words keep their own reading in a sentence that the readings would make "
                        "longer than %d characters: %s", limit, text[:60])
        if not out:
            return text
        out.append(text[done:])
        return "".join(out)

    def model_text(self, text: str) -> str:
        """What the speech model is given for one utterance: the readings, then `text_for_model`.

        Readings that leave nothing to say (a pattern's empty group) are ignored for that utterance.
        """
        replaced = self.apply(text)
        if replaced != text:
            if is_speakable(replaced):
                try:
                    return text_for_model(replaced)
                except TextError:
                    pass
            log.warning("readings: the readings leave nothing to say in %r; it is read as written", text[:60])
        return text_for_model(text)


# --- the file, edited and watched -------------------------------------------------------------------


class _EditLock:
    """A lock file beside the dictionary, so two programs' read-change-write edits do not interleave.

    Exclusive creation works the same on every platform; a lock file older than STALE_LOCK_S was left
    by a program that died mid-edit and is taken over.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")

    def __enter__(self) -> _EditLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    if time.time() - self.path.stat().st_mtime > STALE_LOCK_S:
                        self.path.unlink()
                        continue
                except FileNotFoundError:
                    continue
                if time.monotonic() > deadline:
                    raise ReadingsError("Another program is changing the readings dictionary; try again in a "
                                        f"moment (or delete {self.path} if none is).") from None
                time.sleep(0.01)
                continue
            except OSError as error:
                raise ReadingsError(f"Cannot change the readings dictionary in {self.path.parent}: "
                                    f"{error.strerror or error}.") from None
            os.write(descriptor, str(os.getpid()).encode("ascii"))
            os.close(descriptor)
            return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


@dataclass
class ChangeReport:
    added: list[Entry] = field(default_factory=list)
    replaced: list[tuple[Entry, Entry]] = field(default_factory=list)  # (old, new)
    removed: list[Entry] = field(default_factory=list)


def _default_path() -> Path:
    from miodesk.paths import readings_path

    return readings_path()


class ReadingsStore:
    """The dictionary file as `miodesk dict` and the window edit it: every change is one locked
    read-change-write, written atomically; a file with unusable lines is never rewritten (they would be
    lost), the change is refused naming the first one."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else _default_path()

    def read(self) -> tuple[list[Entry], list[str]]:
        """The entries and a line for each unusable line of the file (none yet: no entries)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return [], []
        except OSError as error:
            raise ReadingsError(f"Cannot read the readings dictionary {self.path}: {error.strerror or error}.") \
                from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ReadingsError(f"The readings dictionary {self.path} is not UTF-8 text; fix or remove it.") from None
        return parse_entries(text, self.path.name)

    def entries(self) -> list[Entry]:
        entries, problems = self.read()
        if problems:
            raise ReadingsError(f"{problems[0]} ({self.path}); fix that line first"
                                + (f" ({len(problems) - 1} more)." if len(problems) > 1 else "."))
        return entries

    def _edit(self, change: Callable[[list[Entry]], T]) -> T:
        with _EditLock(self.path):
            entries = self.entries()
            before = list(entries)
            result = change(entries)
            if entries != before:
                try:
                    write_entries(self.path, entries)
                except OSError as error:
                    raise ReadingsError(f"Cannot save the readings dictionary {self.path}: "
                                        f"{error.strerror or error}.") from None
            return result

    @staticmethod
    def _put(entries: list[Entry], entry: Entry, report: ChangeReport) -> None:
        for index, old in enumerate(entries):
            if old.key == entry.key:
                entries[index] = entry
                if old != entry:
                    report.replaced.append((old, entry))
                return
        entries.append(entry)
        report.added.append(entry)

    def add(self, entry: Entry) -> ChangeReport:
        """Add `entry`, or replace the entry with the same surface, language and kind."""
        entry = check_entry(entry)
        report = ChangeReport()
        self._edit(lambda entries: self._put(entries, entry, report))
        return report

    def update(self, old: Entry, new: Entry) -> ChangeReport:
        """Change `old` into `new` (the window's Edit); another entry with the new key is replaced."""
        new = check_entry(new)
        report = ChangeReport()

        def change(entries: list[Entry]) -> None:
            index = next((i for i, e in enumerate(entries) if e.key == old.key), None)
            if index is None:
                raise ReadingsError(f"{_describe(old)} is no longer in the dictionary (changed elsewhere?).")
            clash = next((i for i, e in enumerate(entries) if e.key == new.key and i != index), None)
            if clash is not None:
                report.removed.append(entries[clash])
                del entries[clash]
                index = index - 1 if clash < index else index
            if entries[index] != new:
                report.replaced.append((entries[index], new))
            entries[index] = new

        self._edit(change)
        return report

    def remove(self, surface: str, lang: str | None = None) -> list[Entry]:
        """Remove the entries for `surface` (any of its width forms; a pattern as written), of `lang` or all."""
        def change(entries: list[Entry]) -> list[Entry]:
            gone = [e for e in entries if e.same_surface(surface) and lang in (None, e.lang)]
            entries[:] = [e for e in entries if e not in gone]
            return gone

        return self._edit(change)

    def set_enabled(self, surface: str, enabled: bool, lang: str | None = None) -> list[Entry]:
        def change(entries: list[Entry]) -> list[Entry]:
            changed = []
            for index, e in enumerate(entries):
                if e.same_surface(surface) and lang in (None, e.lang):
                    entries[index] = replace(e, enabled=enabled)
                    changed.append(entries[index])
            return changed

        return self._edit(change)

    def add_all(self, new_entries: Iterable[Entry]) -> ChangeReport:
        report = ChangeReport()

        def change(entries: list[Entry]) -> None:
            for entry in new_entries:
                self._put(entries, entry, report)

        self._edit(change)
        return report

    def export(self, target: Path) -> int:
        entries = self.entries()
        try:
            write_entries(Path(target), entries, private=False)
        except OSError as error:
            raise ReadingsError(f"Cannot write '{target}': {error.strerror or error}.") from None
        return len(entries)


class LiveReadings:
    """The dictionary as everything that speaks uses it: `prepare_text` for ReadingSession and the engine.

    Each call checks the file (one `stat`) and reloads it when it changed, so an entry saved by the
    window, by `miodesk dict add` in a terminal or by another program applies from the next sentence
    prepared. A file that cannot be read keeps the dictionary as it was (logged once), and unusable
    lines are skipped (logged): reading never fails because of the dictionary.
    """

    def __init__(self, path: Path | None = None, enabled: bool = True) -> None:
        self.path = Path(path) if path is not None else _default_path()
        self.enabled = enabled
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._compiled = CompiledReadings()

    def _stamp_now(self) -> tuple[int, int, int] | None:
        stat = os.stat(self.path)
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def current(self) -> CompiledReadings:
        if not self.enabled:
            return CompiledReadings()
        try:
            stamp = self._stamp_now()
        except FileNotFoundError:
            stamp = None
        except OSError as error:
            log.warning("readings: cannot look at %s: %s", self.path, error)
            return self._compiled
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                self._compiled = self._load() if stamp is not None else CompiledReadings()
            return self._compiled

    def _load(self) -> CompiledReadings:
        try:
            entries, problems = ReadingsStore(self.path).read()
        except ReadingsError as error:
            log.warning("readings: %s; the dictionary stays as it was", error)
            return self._compiled
        for problem in problems:
            log.warning("readings: skipped %s", problem)
        compiled = CompiledReadings(entries)
        log.info("readings: %d entries from %s (compiled in %.1f ms)", compiled.size, self.path,
                 compiled.compile_s * 1000)
        return compiled

    def prepare_text(self, text: str) -> str:
        """One utterance → the text the speech model is given (readings, then normalisation)."""
        return self.current().model_text(text)
