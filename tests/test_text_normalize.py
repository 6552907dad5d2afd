"""Text preparation against the reference goldens (golden README §6)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from miodesk.errors import TextError
from miodesk.text import MAX_MODEL_TEXT_CHARS, detect_language, normalize_text, text_for_model
from miodesk.text.normalize import too_long_for_model

CASES_PATH = Path(__file__).parent / "data" / "golden" / "text" / "normalize_cases.json"
CASES = json.loads(CASES_PATH.read_text(encoding="utf-8"))


def _case_id(case: dict) -> str:
    text = case["input"]
    return ascii(text[:24]) + (f"..len{len(text)}" if len(text) > 24 else "")


def test_golden_file_is_complete() -> None:
    assert len(CASES) >= 100
    refusals = {case["server_refused"] for case in CASES}
    assert refusals == {None, "empty", "too_long"}


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_detect_language(case: dict) -> None:
    assert detect_language(case["input"]) == case["language"]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_normalize_text(case: dict) -> None:
    assert normalize_text(case["input"]) == case["normalized"]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_server_text(case: dict) -> None:
    text = case["input"]
    refused = case["server_refused"]
    if refused == "too_long":
        # The server counts the raw input; we leave the refusal to the caller (it splits).
        assert len(text) > MAX_MODEL_TEXT_CHARS
        assert too_long_for_model(text)
        return
    assert not too_long_for_model(text)
    if refused == "empty" or case["server_text"] == "":
        # The server would send "" (or refuse ""): we say there is nothing to speak instead.
        with pytest.raises(TextError) as info:
            text_for_model(text)
        assert "\n" not in str(info.value)
        return
    assert refused is None
    assert text_for_model(text) == case["server_text"]


def test_max_model_text_chars() -> None:
    assert MAX_MODEL_TEXT_CHARS == 300
    assert not too_long_for_model("あ" * 300)
    assert too_long_for_model("あ" * 301)
    # Counted before normalisation: spaces that normalisation removes still count.
    assert too_long_for_model("あ " * 151)


def test_text_for_model_does_not_refuse_long_text() -> None:
    text = "吾輩は猫である。" * 50
    assert len(text) > MAX_MODEL_TEXT_CHARS
    assert text_for_model(text) == normalize_text(text)


@pytest.mark.parametrize("text", ["", " ", "\u3000\u3000", "\n\t ", "\u00a0"])
def test_text_for_model_refuses_blank(text: str) -> None:
    with pytest.raises(TextError):
        text_for_model(text)


def test_halfwidth_kana_table_matches_unicode() -> None:
    # Each half-width kana letter maps like NFKC does for that single character.
    for code in range(0xFF66, 0xFF9E):
        char = chr(code)
        assert normalize_text(char) == unicodedata.normalize("NFKC", char), hex(code)
    # The voicing marks stay as they are (no combining).
    assert normalize_text("ﾞﾟ") == "ﾞﾟ"


def test_rule_order_edges() -> None:
    # "[n]" is deleted before spaces, so a spaced marker survives as "[n]".
    assert normalize_text("あ[ n]い") == "あ[n]い"
    assert normalize_text("あ[\tn]い") == "あい"
    # Bracket pairs are tested once each, in order.
    assert normalize_text("「（注）」") == "注"
    assert normalize_text("（「注」）") == "「注」"
