"""Utterance splitting: sentence ends, abbreviations, long sentences, spans that map back to the source."""

from __future__ import annotations

import time

import pytest

from miodesk.text.segment import MAX_CHARS_JAPANESE, MAX_CHARS_OTHER, segment


def texts(source: str) -> list[str]:
    return [u.text for u in segment(source)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("今日は晴れです。明日は雨でしょう。", ["今日は晴れです。", "明日は雨でしょう。"]),
        ("本当？うそ！そうなんだ…すごい。", ["本当？", "うそ！", "そうなんだ…", "すごい。"]),
        ("「行こう。」と彼は言った。『はい！』", ["「行こう。」", "と彼は言った。", "『はい！』"]),
        ("彼は（たぶん。）来ない。", ["彼は（たぶん。）", "来ない。"]),
        ("Hello there. How are you? Fine!", ["Hello there.", "How are you?", "Fine!"]),
        ("Mr. Smith met Dr. Jones at 3 p.m. today.", ["Mr. Smith met Dr. Jones at 3 p.m. today."]),
        ("It costs 3.14 dollars. Really.", ["It costs 3.14 dollars.", "Really."]),
        ("Use e.g. apples, i.e. fruit. Done.", ["Use e.g. apples, i.e. fruit.", "Done."]),
        ("The U.S. economy grew. Then it shrank.", ["The U.S. economy grew.", "Then it shrank."]),
        ("See https://example.com/a.b?c=1 for more. Next.", ["See https://example.com/a.b?c=1 for more.", "Next."]),
        ("Wait... what? Well... Okay.", ["Wait... what?", "Well...", "Okay."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("J. K. Rowling wrote it. Yes.", ["J. K. Rowling wrote it.", "Yes."]),
        ("Version 2.0.1 is out. Install it.", ["Version 2.0.1 is out.", "Install it."]),
        ("第一章\n\n吾輩は猫である。名前はまだ無い。", ["第一章", "吾輩は猫である。", "名前はまだ無い。"]),
        ("Title\nFirst line.\nSecond line.", ["Title", "First line.", "Second line."]),
        ("This sentence is hard\nwrapped across lines. Next one.", ["This sentence is hard\nwrapped across lines.", "Next one."]),
        ("これは English の文です。That is English.", ["これは English の文です。", "That is English."]),
        ("", []),
        ("。。。！？\n\n・・・ ---", []),
    ],
)
def test_sentence_table(source, expected):
    assert texts(source) == expected


def test_spans_map_back_to_the_source():
    source = "  第一章　始まり\n\n昔々、ある所に。\r\n\r\nOnce upon a time, there was a cat. ★★★ The end."
    for utterance in segment(source):
        assert source[utterance.start : utterance.end] == utterance.text
        assert utterance.text == utterance.text.strip()


def test_languages_switch_per_utterance():
    languages = [u.language for u in segment("これは日本語です。This is English. 123.")]
    assert languages[:2] == ["ja", "en"]


def test_unspeakable_pieces_are_skipped_without_losing_position():
    source = "最初。\n★☆★\n最後。"
    utterances = segment(source)
    assert [u.text for u in utterances] == ["最初。", "最後。"]
    assert utterances[1].start == source.index("最後")


def test_long_japanese_sentence_is_cut_at_clause_marks():
    clause = "吾輩はここで始めて人間というものを見た、"
    source = clause * 12 + "終わり。"
    pieces = segment(source)
    assert len(pieces) > 1
    assert all(len(p.text) <= MAX_CHARS_JAPANESE for p in pieces)
    assert all(p.text.endswith("、") for p in pieces[:-1])
    assert "".join(p.text for p in pieces) == source


def test_long_english_sentence_is_cut_at_commas_then_spaces():
    source = ", ".join(f"item number {i} of the list" for i in range(40)) + "."
    pieces = segment(source)
    assert all(len(p.text) <= MAX_CHARS_OTHER for p in pieces)
    assert all(p.text.endswith(",") for p in pieces[:-1])
    words = "word " * 200
    pieces = segment(words)
    assert all(len(p.text) <= MAX_CHARS_OTHER and not p.text.endswith("wor") for p in pieces)
    assert " ".join(p.text for p in pieces).split() == words.split()


def test_text_without_any_punctuation_or_spaces_is_cut_at_the_limit():
    source = "あ" * 1000
    pieces = segment(source)
    assert all(len(p.text) <= MAX_CHARS_JAPANESE for p in pieces)
    assert "".join(p.text for p in pieces) == source


def test_a_megabyte_of_text_is_split_fast_and_linearly():
    paragraph = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ、何でも薄暗い所で泣いていた。\n\n"
    paragraph += "It was the best of times, it was the worst of times. Mr. Lorry said so.\n"
    small = paragraph * 500
    large = paragraph * 5000  # about 1 MB
    started = time.perf_counter()
    small_count = len(segment(small))
    small_time = time.perf_counter() - started
    started = time.perf_counter()
    large_count = len(segment(large))
    large_time = time.perf_counter() - started
    assert large_count == 10 * small_count
    # Linear: ten times the text may not take much more than ten times as long (generous for noise).
    assert large_time < 30 * max(small_time, 0.01)
