"""Subtitles (miodesk/audio/subtitles.py) written for real and parsed back by small parsers written here
from the formats' descriptions (SubRip, WebVTT, LRC), sharing no code with the writer."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest

from miodesk.audio.output import OutputError
from miodesk.audio.subtitles import Cue, check_subtitles_path, write_subtitles

CUES = [
    Cue(0.0, 1.8, "吾輩は猫である。"),
    Cue(2.1, 4.25, "名前はまだ無い 🐈"),
    Cue(4.4, 6.0, 'He said "a < b && c > d" --> fine.'),
    Cue(3725.5, 3727.125, "An hour and more\ninto the book."),  # a line break inside a sentence
]
EXPECTED_TEXT = ["吾輩は猫である。", "名前はまだ無い 🐈", 'He said "a < b && c > d" --> fine.',
                 "An hour and more into the book."]


def _seconds(clock: str) -> float:
    hours, minutes, seconds = clock.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    cues = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        assert lines[0].isdigit(), block
        start, end = re.fullmatch(r"(\d\d+:\d\d:\d\d,\d\d\d) --> (\d\d+:\d\d:\d\d,\d\d\d)", lines[1]).groups()
        cues.append((_seconds(start), _seconds(end), "\n".join(lines[2:])))
    assert [int(block.split("\n")[0]) for block in text.strip("\n").split("\n\n")] == list(range(1, len(cues) + 1))
    return cues


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    header, *blocks = text.strip("\n").split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        timing, *lines = block.split("\n")
        start, end = re.fullmatch(r"(\d\d+:\d\d:\d\d\.\d\d\d) --> (\d\d+:\d\d:\d\d\.\d\d\d)", timing).groups()
        body = "\n".join(lines)
        assert "<" not in body and ">" not in body, "WebVTT reads < and > as markup"
        cues.append((_seconds(start), _seconds(end), html.unescape(body)))
    return cues


def parse_lrc(text: str) -> list[tuple[float, str]]:
    lines = []
    for line in text.splitlines():
        minutes, seconds, rest = re.fullmatch(r"\[(\d\d+):(\d\d\.\d\d)\](.*)", line).groups()
        lines.append((int(minutes) * 60 + float(seconds), rest))
    return lines


@pytest.mark.parametrize("suffix", (".srt", ".vtt"))
def test_srt_and_vtt_parse_back_in_order(tmp_path, suffix):
    path = write_subtitles(tmp_path / f"book{suffix}", list(reversed(CUES)))  # given in any order
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw
    cues = (parse_srt if suffix == ".srt" else parse_vtt)(raw.decode("utf-8"))
    assert [text for _, _, text in cues] == (
        EXPECTED_TEXT if suffix == ".vtt" else [t.replace("-->", "->") for t in EXPECTED_TEXT])
    for (start, end, _), cue in zip(cues, CUES, strict=True):
        assert start == pytest.approx(cue.start_s, abs=0.001) and end == pytest.approx(cue.end_s, abs=0.001)
    starts = [start for start, _, _ in cues]
    assert starts == sorted(starts) and all(start <= end for start, end, _ in cues)


def test_lrc_parses_back_with_a_clearing_line_after_pauses(tmp_path):
    path = write_subtitles(tmp_path / "book.lrc", CUES)
    lines = parse_lrc(path.read_text(encoding="utf-8"))
    texts = [text for _, text in lines if text]
    assert texts == EXPECTED_TEXT
    times = [time for time, _ in lines]
    assert times == sorted(times)
    assert lines[-1] == (pytest.approx(3727.125, abs=0.01), "")  # the last cue is cleared at its end
    assert (pytest.approx(6.0, abs=0.006), "") in lines  # a long pause clears the line
    assert len(lines) == len(CUES) + 2  # short gaps (0.3 s, 0.15 s) do not
    assert lines[4][0] == pytest.approx(3725.5, abs=0.006)  # minutes go past 59: [62:05.50]
    assert "[62:05.50]" in path.read_text(encoding="utf-8")


def test_empty_cues_are_left_out_and_an_end_before_the_start_is_mended(tmp_path):
    path = write_subtitles(tmp_path / "x.srt", [Cue(1.0, 0.5, "back"), Cue(2.0, 3.0, "  \n "), Cue(0.0, 1.0, "a")])
    assert parse_srt(path.read_text(encoding="utf-8")) == [(0.0, 1.0, "a"), (1.0, 1.0, "back")]
    assert write_subtitles(tmp_path / "none.vtt", []).read_text(encoding="utf-8") == "WEBVTT\n"


def test_unknown_suffix_and_unwritable_places(tmp_path):
    with pytest.raises(OutputError) as caught:
        check_subtitles_path(tmp_path / "book.ass")
    assert str(caught.value) == "Cannot write 'book.ass': subtitles must end in .srt, .vtt or .lrc."
    a_file = tmp_path / "book.txt"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match=r"Not a directory"):
        write_subtitles(a_file / "book.srt", CUES)
    with pytest.raises(OutputError, match="does not exist"):
        check_subtitles_path(tmp_path / "missing" / "book.vtt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.txt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_subtitles_get_the_users_permissions_and_replace_atomically(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = write_subtitles(tmp_path / "book.srt", CUES[:1])
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o640)
        write_subtitles(path, CUES)
        assert path.stat().st_mode & 0o777 == 0o640
        assert len(parse_srt(path.read_text(encoding="utf-8"))) == len(CUES)
        assert [p.name for p in Path(tmp_path).iterdir()] == ["book.srt"]
    finally:
        os.umask(old_umask)
