"""Text preparation exactly as the official MioTTS server does it.

The speech model was trained on text run through the reference `normalize_text`, and the
server only applies it to Japanese; English and other text is only stripped. Every rule
and its order below is pinned by `tests/data/golden/text/normalize_cases.json`, so change
nothing here without a golden case that says so.
"""

from __future__ import annotations

import re

from miodesk.errors import TextError

# The official server refuses longer text (counted on the raw input). We split long text
# ourselves, so this is a limit for the caller to honour, not a check in text_for_model.
MAX_MODEL_TEXT_CHARS = 300

# Step 1 and 2: deletions, applied one after the other in the reference order (the order
# matters at the edges: "[ n]" keeps its "[n]" because spaces go after the marker).
_DELETIONS: tuple[re.Pattern[str], ...] = (
    re.compile("\t"),
    re.compile(r"\[n\]"),
    re.compile(" "),
    re.compile("\u3000"),
    re.compile("[;▼♀♂《》≪≫①②③④⑤⑥]"),
    re.compile("[\u02d7\u2010-\u2015\u2043\u2212\u23af\u23e4\u2500\u2501\u2e3a\u2e3b]"),
)

# Step 3: one-for-one replacements (the ASCII "~" is deliberately absent).
_REPLACEMENTS = str.maketrans(
    {
        "～": "ー",
        "〜": "ー",
        "？": "?",
        "！": "!",
        "●": "○",
        "◯": "○",
        "〇": "○",
        "♥": "♡",
    }
)

# Step 4: only full-width letters and digits become ASCII; other full-width symbols stay.
_FULLWIDTH_ALNUM = str.maketrans(
    {
        **{chr(0xFF21 + i): chr(ord("A") + i) for i in range(26)},
        **{chr(0xFF41 + i): chr(ord("a") + i) for i in range(26)},
        **{chr(0xFF10 + i): chr(ord("0") + i) for i in range(10)},
    }
)

# Step 5: half-width katakana one character at a time. The voicing marks ﾞ ﾟ and the
# half-width punctuation ｡｢｣､･ are not in the table, so "ﾃﾞ" becomes "テﾞ" as in the reference.
_HALFWIDTH_KANA = str.maketrans(
    "ｦｧｨｩｪｫｬｭｮｯｰｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝ",
    "ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン",
)

_ELLIPSIS_RUN = re.compile("…{3,}")

# Step 7: each pair is tested once, in this order, on the first and last character only.
_SURROUNDING_PAIRS = (("「", "」"), ("『", "』"), ("（", "）"), ("【", "】"), ("(", ")"))


def normalize_text(text: str) -> str:
    """The reference `normalize_text` (the server applies it to Japanese text only)."""
    for pattern in _DELETIONS:
        text = pattern.sub("", text)
    text = text.translate(_REPLACEMENTS)
    text = text.translate(_FULLWIDTH_ALNUM)
    text = text.translate(_HALFWIDTH_KANA)
    text = _ELLIPSIS_RUN.sub("……", text)
    for opening, closing in _SURROUNDING_PAIRS:
        if text.startswith(opening) and text.endswith(closing):
            text = text[len(opening) : -len(closing)]
    if text.endswith(("。", "、")):
        text = text.rstrip("。、")
    return text


def _is_japanese_char(ch: str) -> bool:
    # Kana and CJK ideographs (Chinese counts too); half-width katakana does not.
    code = ord(ch)
    return (
        0x3040 <= code <= 0x309F
        or 0x30A0 <= code <= 0x30FF
        or 0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0xF900 <= code <= 0xFAFF
    )


def _is_ascii_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def detect_language(text: str) -> str:
    """The reference language guess: "ja", "en" or "auto"."""
    chars = [ch for ch in text if not ch.isspace()]
    total = len(chars)
    if total == 0:
        return "auto"
    # Float ratios compared like the reference, so boundary cases (e.g. exactly 20 %) agree.
    if sum(1 for ch in chars if _is_japanese_char(ch)) / total >= 0.2:
        return "ja"
    if sum(1 for ch in chars if _is_ascii_letter(ch)) / total >= 0.5:
        return "en"
    return "auto"


def too_long_for_model(text: str) -> bool:
    """Whether the official server would refuse `text` as too long (raw length, before any change)."""
    return len(text) > MAX_MODEL_TEXT_CHARS


def text_for_model(text: str) -> str:
    """The text the official server sends to the speech model for `text`.

    Japanese is normalised, anything else is only stripped. Raises TextError when nothing
    speakable is left; the length limit is left to the caller (long text gets split first).
    """
    prepared = normalize_text(text) if detect_language(text) == "ja" else text.strip()
    if not prepared.strip():
        raise TextError("There is no text to speak: the text is empty or only spaces.")
    return prepared
