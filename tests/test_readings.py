"""The readings dictionary's engine (miodesk.text.readings): matching, the file, imports, live reloading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from miodesk.paths import readings_path
from miodesk.text import text_for_model
from miodesk.text.readings import (
    MAX_READING_CHARS,
    CompiledReadings,
    Entry,
    LiveReadings,
    ReadingsError,
    ReadingsStore,
    format_entries,
    normalized_with_offsets,
    parse_entries,
    read_import,
)
from miodesk.text.segment import segment

REPO = Path(__file__).parent.parent


def apply(entries: list[Entry], text: str, language: str | None = None) -> str:
    return CompiledReadings(entries).apply(text, language)


# --- matching ----------------------------------------------------------------------------------------


def test_full_and_half_width_forms_match_each_other_and_the_rest_stays_as_written():
    full = Entry("ＭｉｏＴＴＳ", "ミオティーティーエス", "ja")  # how VOICEVOX stores Latin letters
    # The unmatched full-width "！" and half-width "ｶﾞ" keep their form: normalisation sees them later.
    assert apply([full], "MioTTSで読む！ｶﾞ") == "ミオティーティーエスで読む！ｶﾞ"
    assert apply([Entry("MioTTS", "みお", "ja")], "ＭｉｏＴＴＳで読む！") == "みおで読む！"
    # A half-width katakana word with a voiced mark (two characters that NFKC makes one) matches whole.
    assert apply([Entry("ガキ", "こども", "ja")], "あのｶﾞｷが来た") == "あのこどもが来た"
    # A word inside one character that NFKC expands ("㍻" is "平成") matches only the whole character.
    assert apply([Entry("平成", "へいせい", "ja")], "㍻の話") == "へいせいの話"
    assert apply([Entry("平", "たいら", "ja")], "㍻の話") == "㍻の話"


def test_offsets_of_the_normal_form_point_back_into_the_text():
    norm, offsets = normalized_with_offsets("ｶﾞｷ㍻A")
    assert norm == "ガキ平成A"
    assert offsets == [0, 2, 3, -1, 4, 5]
    assert normalized_with_offsets("plain text") == ("plain text", None)


def test_longest_match_first_then_priority_then_own_language():
    entries = [Entry("本", "ほん", "ja", priority=10), Entry("本屋", "ほんや", "ja", priority=0)]
    assert apply(entries, "本屋で本を買う。") == "ほんやでほんを買う。"
    same_length = [Entry("AI", "エーアイ", "ja", priority=3), Entry("AI", "えーあい", "any", priority=8)]
    assert apply(same_length, "AIの話です。") == "えーあいの話です。"
    tie = [Entry("AI", "えーあい", "any", priority=5), Entry("AI", "エーアイ", "ja", priority=5)]
    assert apply(tie, "AIの話です。") == "エーアイの話です。"
    # A pattern and a word of the same length: the priority decides, then the word.
    both = [Entry("Dr. Who", "the Doctor", "en", priority=5), Entry(r"Dr\.\s*(\w+)", r"Doctor \1", "en", True, 5)]
    assert apply(both, "Meet Dr. Who today.") == "Meet the Doctor today."
    both[1] = Entry(r"Dr\.\s*(\w+)", r"Doctor \1", "en", True, 9)
    assert apply(both, "Meet Dr. Who today.") == "Meet Doctor Who today."


def test_one_left_to_right_pass_never_matches_a_replacement_again():
    entries = [Entry("cat", "dog", "en"), Entry("dog", "wolf", "en")]
    assert apply(entries, "The cat and the dog.") == "The dog and the wolf."
    assert apply([Entry("猫", "ねこ猫", "ja")], "猫が猫を見る。") == "ねこ猫がねこ猫を見る。"


@pytest.mark.parametrize(("text", "expected"), [
    ("The AI works.", "The エーアイ works."),
    ("MAIN and AIR and FAI and _AI stay.", "MAIN and AIR and FAI and _AI stay."),
    ("AI2 and 2AI", "エーアイ2 and 2エーアイ"),  # a digit does not join a letter
    ("(AI), AI. AIは", "(エーアイ), エーアイ. エーアイは"),
    ("ＡＩの話", "エーアイの話"),
])
def test_latin_surfaces_match_whole_words_only(text, expected):
    assert apply([Entry("AI", "エーアイ", "any")], text) == expected


def test_japanese_surfaces_match_inside_words_and_numbers_only_whole():
    assert apply([Entry("本", "ほん", "ja")], "日本語の本。") == "日ほん語のほん。"
    assert apply([Entry("10", "ten", "any")], "10 and 100 and 10km and x10") == "ten and 100 and tenkm and xten"


def test_entries_apply_to_the_sentences_of_their_language():
    entries = [Entry("AI", "エーアイ", "ja"), Entry("etc.", "et cetera", "en"), Entry("km", "キロ", "any")]
    assert apply(entries, "AIで5kmなど、etc.と書く。") == "エーアイで5キロなど、etc.と書く。"
    assert apply(entries, "AI runs 5 km, etc.") == "AI runs 5 キロ, et cetera"
    assert apply(entries, "AI 5 km 123 456 789") == "AI 5 キロ 123 456 789"  # neither language: only "any"


def test_regex_entries_use_their_groups():
    entries = [Entry(r"Dr\.\s*(\w+)", r"Doctor \1", "en", True),
               Entry(r"(?P<n>\d+)\s*GB", r"\g<n> gigabytes", "any", True)]
    assert apply(entries, "Dr. Smith has 16GB and Dr.Jones 8 GB.") == \
        "Doctor Smith has 16 gigabytes and Doctor Jones 8 gigabytes."
    # The pattern sees the NFKC form: full-width digits are digits.
    assert apply(entries[1:], "容量は１６ＧＢです。") == "容量は16 gigabytesです。"


def test_a_catastrophic_pattern_times_out_without_hanging_and_is_skipped_from_then_on(caplog):
    compiled = CompiledReadings([Entry(r"(x+x+)+y", "never", "any", True), Entry("zz", "ok", "any")])
    text = "x" * 250 + " zz"
    started = time.perf_counter()
    assert compiled.apply(text) == "x" * 250 + " ok"
    first = time.perf_counter() - started
    started = time.perf_counter()
    assert compiled.apply(text) == "x" * 250 + " ok"
    again = time.perf_counter() - started
    assert first < 1.0, first  # the time limit is 50 ms: without it this pattern runs for hours
    assert again < 0.02, again  # skipped after its timeout
    assert "took longer than" in caplog.text


def test_readings_never_make_a_sentence_longer_than_the_model_takes_and_drop_no_word():
    sentence = " ".join(["AI"] * 70) + "."  # 210 characters, under the 220 of one English utterance
    replaced = apply([Entry("AI", "artificial intelligence", "any")], sentence)
    assert len(replaced) <= 300
    words = replaced.rstrip(".").split(" ")
    assert "artificial" in words and "AI" in words  # replaced while it fits, the rest kept as written
    assert replaced.count("artificial intelligence") + words.count("AI") == 70


def test_model_text_is_the_dictionary_then_normalisation():
    compiled = CompiledReadings([Entry("ＡＩ", "エーアイ", "ja"), Entry(r"(\d*)円", r"\1", "ja", True)])
    assert compiled.model_text("「AIの　本」") == text_for_model("「エーアイの　本」") == "エーアイの本"
    # Readings that would leave nothing to say are ignored for that sentence.
    assert compiled.model_text("円") == text_for_model("円")
    assert CompiledReadings().model_text("Hello there. ") == "Hello there."


# --- checks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "message"), [
    (Entry("", "x"), "empty"),
    (Entry("  ", "x"), "empty"),
    (Entry("AI", ""), "empty"),
    (Entry("A\tI", "x"), "tab or a line break"),
    (Entry("AI", "x\ny"), "tab or a line break"),
    (Entry("AI", "x" * (MAX_READING_CHARS + 1)), "at most 100"),
    (Entry("AI", "x", "fr"), "ja, en or any"),
    (Entry("AI", "x", priority=11), "0 to 10"),
    (Entry("x(", "y", regex=True), "not a valid regular expression"),
    (Entry("a*", "y", regex=True), "matches an empty text"),
    (Entry("(a)", r"\2", regex=True), "group \\2"),
    (Entry("(a)", r"\g<name>", regex=True), "does not have"),
    (Entry("(a)", r"\q", regex=True), "bad escape"),
])
def test_bad_entries_are_refused_with_one_line(entry, message):
    store = ReadingsStore(readings_path())
    store.add(Entry("keep", "me"))
    before = store.path.read_bytes()
    with pytest.raises(ReadingsError) as error:
        store.add(entry)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert store.path.read_bytes() == before  # the dictionary is as it was


def test_add_replaces_the_same_word_and_language_in_any_width():
    store = ReadingsStore(readings_path())
    assert store.add(Entry("ＡＩ", "エーアイ", "ja")).added
    report = store.add(Entry("AI", "えーあい", "ja"))
    assert report.replaced and report.replaced[0][0].reading == "エーアイ" and not report.added
    assert store.add(Entry("AI", "アイ", "en")).added  # another language: another entry
    assert [(e.surface, e.reading, e.lang) for e in store.entries()] == [("AI", "えーあい", "ja"), ("AI", "アイ", "en")]
    assert [e.lang for e in store.remove("ａｉ".upper())] == ["ja", "en"]


# --- the file ------------------------------------------------------------------------------------------


def test_file_round_trip_and_hand_edited_lines():
    entries = [Entry("MioTTS", "ミオティーティーエス", "ja", False, 7, True, "the model"),
               Entry(r"Dr\.\s*(\w+)", r"Doctor \1", "en", True, 5, False, "")]
    text = format_entries(entries)
    assert text.startswith("# MioDesk readings dictionary")
    assert parse_entries(text) == (entries, [])
    hand = "# mine\n\nＡＩ\tえーあい\n東京\tとうきょう\t*\n\n  # indented comment\nkm\tキロ\tany\t0\t\t0\n"
    parsed, problems = parse_entries(hand)
    assert problems == []
    assert [(e.surface, e.lang, e.priority, e.enabled) for e in parsed] == [
        ("ＡＩ", "any", 5, True), ("東京", "any", 5, True), ("km", "any", 5, False)]
    _parsed, problems = parse_entries("ok\tfine\nbroken line\nx\ty\tfr\n", "readings.tsv")
    assert problems == ["line 2 of readings.tsv: it needs at least a word and a reading, separated by a tab",
                        "line 3 of readings.tsv: The language must be ja, en or any, not 'fr'"]


def test_a_file_with_bad_lines_is_not_rewritten_by_an_edit():
    path = readings_path()
    path.write_text("good\tfine\nthis line has no tab\n", encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ReadingsError, match="line 2 of readings.tsv"):
        ReadingsStore(path).add(Entry("x", "y"))
    assert path.read_bytes() == before
    # Reading still uses the good lines.
    assert LiveReadings(path).prepare_text("good day") == "fine day"


def test_two_programs_adding_at_once_keep_every_entry(miodesk_home):
    code = ("import sys\nfrom miodesk.text.readings import Entry, ReadingsStore\nstore = ReadingsStore()\n"
            "for n in range(40):\n    store.add(Entry(f'{sys.argv[1]}{n}', 'r'))\n")
    env = dict(os.environ, MIODESK_HOME=str(miodesk_home))
    writers = [subprocess.Popen([sys.executable, "-c", code, prefix], env=env, cwd=REPO) for prefix in ("a", "b")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    entries, problems = ReadingsStore().read()
    assert problems == []
    assert sorted(e.surface for e in entries) == sorted(f"{p}{n}" for p in "ab" for n in range(40))
    assert not (readings_path().parent / "readings.tsv.lock").exists()
    assert [p.name for p in readings_path().parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_lock_left_by_a_program_that_died_is_taken_over():
    lock = readings_path().with_name("readings.tsv.lock")
    lock.write_text("12345", encoding="ascii")
    old = time.time() - 120
    os.utime(lock, (old, old))
    ReadingsStore().add(Entry("x", "y"))
    assert not lock.exists()


# --- live reloading ------------------------------------------------------------------------------------


def test_live_readings_follow_the_file():
    path = readings_path()
    live = LiveReadings(path)
    assert live.prepare_text("Hello AI.") == "Hello AI."
    ReadingsStore(path).add(Entry("AI", "artificial intelligence", "en"))
    assert live.prepare_text("Hello AI.") == "Hello artificial intelligence."
    ReadingsStore(path).set_enabled("AI", False)
    assert live.prepare_text("Hello AI.") == "Hello AI."
    ReadingsStore(path).set_enabled("AI", True)
    assert live.prepare_text("Hello AI.") == "Hello artificial intelligence."
    path.write_bytes(b"\xff\xfe broken")  # not UTF-8: the last good dictionary stays
    assert live.prepare_text("Hello AI.") == "Hello artificial intelligence."
    path.unlink()
    assert live.prepare_text("Hello AI.") == "Hello AI."
    assert LiveReadings(path, enabled=False).prepare_text("Hello AI.") == "Hello AI."


# --- imports -------------------------------------------------------------------------------------------

VOICEVOX_EXPORT = {
    "0f8cb5f8-4a0b-4a88-9a4b-0c8a0dbb6e1a": {
        "surface": "ＭｉｏＴＴＳ", "priority": 5, "context_id": 1348, "part_of_speech": "名詞",
        "part_of_speech_detail_1": "固有名詞", "part_of_speech_detail_2": "一般", "part_of_speech_detail_3": "*",
        "inflectional_type": "*", "inflectional_form": "*", "stem": "*", "yomi": "ミオティーティーエス",
        "pronunciation": "ミオティーティーエス", "accent_type": 1, "mora_count": 8, "accent_associative_rule": "*",
    },
    "5b2c2b8e-1f57-4a8e-8d4e-7a0d8c1f2e3b": {
        "surface": "読み上げ", "priority": 8, "context_id": 1348, "part_of_speech": "名詞",
        "part_of_speech_detail_1": "普通名詞", "part_of_speech_detail_2": "一般", "part_of_speech_detail_3": "*",
        "inflectional_type": "*", "inflectional_form": "*", "stem": "*", "yomi": "ヨミアゲ",
        "pronunciation": "ヨミアゲ", "accent_type": 0, "mora_count": 4, "accent_associative_rule": "*",
    },
    "9d1e7f3a-2b4c-4d5e-8f6a-1b2c3d4e5f60": {"surface": "壊れた", "priority": 5},
}


def test_voicevox_export_imports_with_its_accents_counted(tmp_path):
    path = tmp_path / "user_dict.json"
    path.write_text(json.dumps(VOICEVOX_EXPORT, ensure_ascii=False), encoding="utf-8")
    result = read_import(path)
    assert result.kind == "VOICEVOX user dictionary"
    assert [(e.surface, e.reading, e.lang, e.priority) for e in result.entries] == [
        ("ＭｉｏＴＴＳ", "ミオティーティーエス", "ja", 5), ("読み上げ", "ヨミアゲ", "ja", 8)]
    assert result.accents_dropped == 2
    assert len(result.skipped) == 1 and "9d1e7f3a" in result.skipped[0]
    assert CompiledReadings(result.entries).apply("MioTTSで読み上げる。") == "ミオティーティーエスでヨミアゲる。"


def test_microsoft_ime_list_in_utf16_and_google_list_in_utf8(tmp_path):
    ms = tmp_path / "ms_ime.txt"
    ms.write_bytes("\ufeff!Microsoft IME Dictionary Tool\r\n!Version:\r\n!Format:WORDLIST\r\n!User Dictionary Name: "
                   "x\r\n\r\nみおですく\tMioDesk\t固有名詞\r\nとうきょうと\t東京都\t地名その他\r\n"
                   "おせ\tお世話になっております\t短縮よみ\r\n".encode("utf-16-le"))
    assert ms.read_bytes()[:2] == b"\xff\xfe"  # UTF-16 LE with its BOM, as the IME writes it
    result = read_import(ms)
    assert result.kind == "IME word list"
    assert [(e.surface, e.reading, e.lang) for e in result.entries] == [
        ("MioDesk", "みおですく", "ja"), ("東京都", "とうきょうと", "ja")]
    assert any("短縮よみ" in line for line in result.skipped)

    google = tmp_path / "google.txt"
    google.write_text("みおてぃーてぃーえす\tMioTTS\t固有名詞\tモデル名\nきょう\t今日\t名詞\t\nかな\tかな\t名詞\t\n",
                      encoding="utf-8")
    result = read_import(google)
    assert result.kind == "IME word list"
    assert [(e.surface, e.reading) for e in result.entries] == [("MioTTS", "みおてぃーてぃーえす"), ("今日", "きょう")]


def test_import_problems_are_one_line_each(tmp_path):
    missing = tmp_path / "none.json"
    with pytest.raises(ReadingsError, match="does not exist"):
        read_import(missing)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json", encoding="utf-8")
    with pytest.raises(ReadingsError, match="not valid JSON"):
        read_import(bad_json)
    binary = tmp_path / "x.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ReadingsError):
        read_import(binary)


def test_segmented_reading_keeps_the_source_offsets():
    # The dictionary works on each utterance's text; the spans come from the document alone.
    text = "MioTTSは速い。AIも使う。Dr. Smith said so."
    before = [(u.start, u.end, u.text) for u in segment(text)]
    live = CompiledReadings([Entry("MioTTS", "ミオ", "ja"), Entry("AI", "エーアイ", "ja")])
    model = [live.model_text(u.text) for u in segment(text)]
    assert [(u.start, u.end, u.text) for u in segment(text)] == before
    assert model[:2] == ["ミオは速い", "エーアイも使う"]
