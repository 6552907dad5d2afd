"""`miodesk export` (miodesk/export.py) and `read -o` through it, run as a user runs them: the real command in
a subprocess, a generated speech model, the ONNX codec and the official preset voices.

The files are read back by readers that share no code with the writer (mutagen, PyAV, the subtitle parsers
of tests/test_subtitles.py). Where each sentence lies in the audio is found in the audio itself: the pauses
between sentences are digital silence and the generated model's speech never is, so the stretches of sound
in a lossless export are the sentences, and every cue and chapter mark must start where its sentence's
sound starts.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import mutagen
import numpy as np
import pytest
import soundfile
from conftest import GOLDEN, REPO_ROOT, assert_one_line_error
from gguf_fixtures import make_model
from test_audio_output import chapters_by_mutagen, png_image, pyav_chapters, pyav_decoded_seconds, tags_by_mutagen
from test_subtitles import parse_lrc, parse_srt, parse_vtt

from miodesk.tts.codec import ensure_decoder

TOLERANCE_S = 0.05
VOICE = GOLDEN / "presets" / "jp_female.pt"
OTHER_VOICE = GOLDEN / "presets" / "en_male.pt"
LOSSY_FORMATS = (".m4b", ".m4a", ".mp3", ".opus")
CHAPTER_FORMATS = (*LOSSY_FORMATS, ".flac")

# Three chapters (the top headings), Japanese and English, with dialogue in both.
BOOK_MD = """## 第一章

最初の章です。「こんにちは」と彼女は言った。

## Chapter Two

The second chapter begins here. "Hello there," he said.

## 第三章

最後の章です。『また明日』と言って、おしまい。
"""
BOOK_MD_CHAPTERS = ["第一章", "Chapter Two", "第三章"]
COVER = png_image(16, 16)


def write_epub(path: Path, title: str, author: str, chapters: list[tuple[str, str]], cover: bytes | None) -> Path:
    """An EPUB 3 with dc:creator, a cover-image item and one XHTML file per (title, paragraph)."""
    items = "".join(f'<item id="c{n}" href="c{n}.xhtml" media-type="application/xhtml+xml"/>'
                    for n in range(1, len(chapters) + 1))
    if cover is not None:
        items += '<item id="cover" href="cover.png" media-type="image/png" properties="cover-image"/>'
    items += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
    spine = "".join(f'<itemref idref="c{n}"/>' for n in range(1, len(chapters) + 1))
    opf = ('<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
           'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
           f'<dc:identifier id="id">urn:uuid:2</dc:identifier><dc:title>{escape(title)}</dc:title>'
           f'<dc:creator id="a1">{escape(author)}</dc:creator><dc:language>ja</dc:language></metadata>'
           f"<manifest>{items}</manifest><spine>{spine}</spine></package>")

    def page(body: str) -> str:
        return ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
                f'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>x</title></head><body>{body}</body></html>')

    links = "".join(f'<li><a href="c{n}.xhtml">{escape(t)}</a></li>' for n, (t, _) in enumerate(chapters, 1))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr("META-INF/container.xml",
                         '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:'
                         'container"><rootfiles><rootfile full-path="OEBPS/book.opf" '
                         'media-type="application/oebps-package+xml"/></rootfiles></container>')
        archive.writestr("OEBPS/book.opf", opf)
        archive.writestr("OEBPS/nav.xhtml", page(f'<nav epub:type="toc"><ol>{links}</ol></nav>'))
        for number, (chapter_title, text) in enumerate(chapters, 1):
            archive.writestr(f"OEBPS/c{number}.xhtml", page(f"<h1>{escape(chapter_title)}</h1><p>{escape(text)}</p>"))
        if cover is not None:
            archive.writestr("OEBPS/cover.png", cover)
    return path


EPUB_CHAPTERS = [("一の巻", "猫が一匹いました。名前はまだありません。"), ("二の巻", "ある日、猫は旅に出ました。")]
EPUB_TITLE, EPUB_AUTHOR = "猫の本", "夏目 漱石"


# --- running the command ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the generated speech model, the codec's decoder graph built once for the whole module)."""
    home = tmp_path_factory.mktemp("export_models_home")
    old = os.environ.get("MIODESK_HOME")
    os.environ["MIODESK_HOME"] = str(home)
    try:
        decoder = ensure_decoder(GOLDEN / "codec" / "v2_44k")
    finally:
        if old is None:
            del os.environ["MIODESK_HOME"]
        else:
            os.environ["MIODESK_HOME"] = old
    model = make_model(tmp_path_factory.mktemp("export_model"), "export", "qwen3", eog_probability=0.05, seed=1)
    return model.path, decoder


def miodesk(home: Path, *args: str | Path, popen: bool = False, timeout: float = 300):
    env = dict(os.environ, MIODESK_HOME=str(home), PYTHONIOENCODING="utf-8")
    command = [sys.executable, "-m", "miodesk", *map(str, args)]
    if popen:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", env=env,
                                cwd=REPO_ROOT)
    return subprocess.run(command, capture_output=True, encoding="utf-8", env=env, cwd=REPO_ROOT, timeout=timeout)


def model_args(models: tuple[Path, Path]) -> list[str | Path]:
    return ["--model", models[0], "--codec", models[1]]


def export(home: Path, models, document: Path, output: Path, *extra: str | Path):
    return miodesk(home, "export", document, "-o", output, "--voice", VOICE, "--seed", "7", *model_args(models), *extra)


def assert_one_error_line(result, *fragments: str) -> None:
    """`assert_one_line_error` for a command that also reports progress and the model's warnings on
    stderr: of the rest, one error line naming the problem, no traceback."""
    kept = [line for line in result.stderr.splitlines()
            if line.strip() and not line.startswith(("miodesk: WARNING", "miodesk: 0:", "miodesk: encoding"))]
    assert_one_line_error(subprocess.CompletedProcess([], result.returncode, "", "\n".join(kept)), *fragments)


def staged_folders(home: Path) -> list[Path]:
    root = home / "cache" / "exports"
    return sorted(root.iterdir()) if root.exists() else []


def staged_chapter_count(home: Path) -> int:
    """Finished chapters in the manifest of the one staging folder (0 while there is none)."""
    for folder in staged_folders(home):
        try:
            return len(json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["chapters"])
        except (OSError, ValueError):
            return 0
    return 0


def chapters_staged_in_log(home: Path) -> int:
    log = home / "logs" / "miodesk.log"
    return sum("export: chapter " in line and " staged" in line
               for line in log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0


# --- reading the audio back ---------------------------------------------------------------------------


def sound_runs(samples: np.ndarray, rate: int, min_gap_s: float = 0.2) -> list[tuple[float, float]]:
    """(start, end) in seconds of the stretches of sound: digital silence of `min_gap_s` or more separates them."""
    silent = samples == 0
    runs: list[tuple[int, int]] = []
    index, length = 0, len(samples)
    nonzero = np.flatnonzero(~silent)
    if not len(nonzero):
        return []
    start = previous = int(nonzero[0])
    gap = round(min_gap_s * rate)
    for index in nonzero[1:]:
        index = int(index)
        if index - previous > gap:
            runs.append((start, previous + 1))
            start = index
        previous = index
    runs.append((start, previous + 1))
    assert length >= runs[-1][1]
    return [(a / rate, b / rate) for a, b in runs]


def read_cues(path: Path) -> list[tuple[float, float, str]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".srt":
        return parse_srt(text)
    if path.suffix == ".vtt":
        return parse_vtt(text)
    lines = parse_lrc(text)  # LRC: a line per cue, an empty line where a pause follows
    return [(start, lines[i + 1][0] if i + 1 < len(lines) else start, body)
            for i, (start, body) in enumerate(lines) if body]


def assert_cues_on_the_sound(cues: list[tuple[float, float, str]], runs: list[tuple[float, float]],
                             ends: bool = True) -> None:
    """One cue per stretch of sound, starting (and ending) where it does."""
    assert len(cues) == len(runs), (cues, runs)
    for (start, end, text), (sound_start, sound_end) in zip(cues, runs, strict=True):
        assert abs(start - sound_start) <= TOLERANCE_S, (text, start, sound_start)
        if ends:
            assert abs(end - sound_end) <= TOLERANCE_S, (text, end, sound_end)


def assert_same_16_bit_audio(samples: np.ndarray, reference: np.ndarray) -> None:
    """The same 16-bit audio, WAV against FLAC: the WAV encoder scales by 32767 and libsndfile by 32768,
    which moves a sample by at most one step."""
    assert len(samples) == len(reference)
    np.testing.assert_allclose(samples, reference, rtol=0, atol=1.01 / 32768)


def expected_chapters(cues: list[tuple[float, float, str]], titles: list[str]) -> list[tuple[float, str]]:
    """Each chapter starts with its heading, spoken as the chapter's first sentence."""
    starts = []
    for title in titles:
        starts.append(next(start for start, _end, text in cues if text == title))
    return list(zip(starts, titles, strict=True))


def assert_chapter_marks(found: list[tuple[float, str]], expected: list[tuple[float, str]], reader: str) -> None:
    assert [title for _, title in found] == [title for _, title in expected], reader
    assert [start for start, _ in found] == sorted(start for start, _ in found), reader
    for (start, title), (want, _) in zip(found, expected, strict=True):
        assert abs(start - want) <= TOLERANCE_S, (reader, title, start, want)


# --- every format, chapters, tags and subtitles ----------------------------------------------------------


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory, models) -> dict[str, dict]:
    """Each book exported once to WAV with SRT subtitles: the reference the other formats are held to."""
    folder = tmp_path_factory.mktemp("books")
    markdown = folder / "book.md"
    markdown.write_text(BOOK_MD, encoding="utf-8")
    epub = write_epub(folder / "cat.epub", EPUB_TITLE, EPUB_AUTHOR, EPUB_CHAPTERS, COVER)
    found = {}
    for name, path, titles in (("markdown", markdown, BOOK_MD_CHAPTERS), ("epub", epub, [t for t, _ in EPUB_CHAPTERS])):
        home = tmp_path_factory.mktemp(f"home_{name}")
        out = folder / f"{name}.wav"
        result = export(home, models, path, out, "--subtitles", folder / f"{name}.srt")
        assert result.returncode == 0, result.stderr
        samples, rate = soundfile.read(out, dtype="float32")
        cues = read_cues(folder / f"{name}.srt")
        found[name] = {"path": path, "titles": titles, "samples": samples, "rate": rate, "cues": cues,
                       "runs": sound_runs(samples, rate), "stdout": result.stdout, "home": home}
    return found


@pytest.mark.parametrize("name", ["markdown", "epub"])
def test_the_reference_export_has_a_cue_on_every_sentence_heard(books, name):
    book = books[name]
    assert_cues_on_the_sound(book["cues"], book["runs"])
    assert f"{len(book['titles'])} chapters" in book["stdout"]
    assert staged_folders(book["home"]) == []  # the staging folder is removed after success
    # Every sentence is spoken (none left out) and in reading order.
    from miodesk.text.documents import load_document
    from miodesk.text.segment import segment

    assert [text for _, _, text in book["cues"]] == [u.text for u in segment(load_document(book["path"]).text)]


@pytest.mark.parametrize("suffix", CHAPTER_FORMATS)
@pytest.mark.parametrize("name", ["markdown", "epub"])
def test_every_format_has_the_chapters_tags_and_length_of_the_reference(books, models, tmp_path, name, suffix):
    book = books[name]
    subtitles = tmp_path / ("book.vtt" if suffix in (".m4b", ".flac") else "book.lrc")
    out = tmp_path / f"book{suffix}"
    result = export(tmp_path / "home", models, book["path"], out, "--subtitles", subtitles)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == sorted([out.name, subtitles.name])

    expected = expected_chapters(book["cues"], book["titles"])
    assert_chapter_marks(pyav_chapters(out), expected, "PyAV")
    assert_chapter_marks(chapters_by_mutagen(out), expected, "mutagen")
    seconds, _ = pyav_decoded_seconds(out)
    reference = len(book["samples"]) / book["rate"]
    assert abs(seconds - reference) <= 0.1, (seconds, reference)
    if name == "epub":
        assert tags_by_mutagen(out)[:3] == (EPUB_TITLE, EPUB_AUTHOR, COVER)
    else:  # a Markdown file: its name as the title, no author
        tags = mutagen.File(out, easy=True)
        assert tags["title"] == ["book"] and "artist" not in tags
    # The same sentences at the same times as the reference (the same seed makes the same audio).
    cues = read_cues(subtitles)
    assert [text for *_, text in cues] == [text for *_, text in book["cues"]]
    assert_cues_on_the_sound(cues, book["runs"], ends=subtitles.suffix != ".lrc")
    if suffix == ".flac":  # lossless: the samples of the reference
        samples, rate = soundfile.read(out, dtype="float32")
        assert rate == book["rate"]
        assert_same_16_bit_audio(samples, book["samples"])


def test_wav_export_has_no_chapters_but_title_and_author(books, models, tmp_path):
    out = tmp_path / "cat.wav"
    result = export(tmp_path / "home", models, books["epub"]["path"], out)
    assert result.returncode == 0, result.stderr
    samples, _ = soundfile.read(out, dtype="float32")
    np.testing.assert_array_equal(samples, books["epub"]["samples"])
    info = out.read_bytes()
    assert EPUB_TITLE.encode("utf-8") in info and EPUB_AUTHOR.encode("utf-8") in info  # LIST/INFO chunk


# --- dialogue voice ----------------------------------------------------------------------------------------


def test_quoted_sentences_are_in_the_dialogue_voice(models, tmp_path):
    """Three renderings with the same sentences (split at the quotes) and seed: the dialogue voice's
    quoted sentences are, sample for sample, what that voice alone makes of them; the rest is the main
    voice's. (The quality guard is off: it judges audio, which differs by voice, and could pick other
    candidates per voice.)"""
    book = tmp_path / "book.md"
    book.write_text(BOOK_MD, encoding="utf-8")

    def render(name: str, main: Path, dialogue: Path) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
        out = tmp_path / f"{name}.wav"
        result = miodesk(tmp_path / f"home_{name}", "export", book, "-o", out, "--voice", main, "--dialogue-voice",
                         dialogue, "--seed", "3", "--no-quality-guard", "--subtitles", tmp_path / f"{name}.srt",
                         *model_args(models))
        assert result.returncode == 0, result.stderr
        return soundfile.read(out, dtype="float32")[0], read_cues(tmp_path / f"{name}.srt")

    mixed, cues = render("mixed", VOICE, OTHER_VOICE)
    main_alone, main_cues = render("main", VOICE, VOICE)
    other_alone, _ = render("other", OTHER_VOICE, OTHER_VOICE)
    assert cues == main_cues and len(mixed) == len(main_alone) == len(other_alone)
    texts = [text for *_, text in cues]
    assert "「こんにちは」" in texts and '"Hello there,"' in texts and "『また明日』" in texts
    assert "と彼女は言った。" in texts  # the narration after a quote is a sentence of its own
    rate = 44100
    for start, end, text in cues:
        span = slice(round(start * rate), round(end * rate))
        quoted = text[0] in "「『\""
        expected, other = (other_alone, main_alone) if quoted else (main_alone, other_alone)
        np.testing.assert_array_equal(mixed[span], expected[span], err_msg=text)
        assert np.abs(mixed[span] - other[span]).max() > 1e-2, text


# --- resume after an interruption ------------------------------------------------------------------------


def long_book(path: Path, chapters: int = 10) -> Path:
    parts = [f"## 第{n}章\n\n第{n}章の最初の文です。二つ目の文です。三つ目の文で終わります。\n" for n in range(1, chapters + 1)]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, models) -> dict:
    folder = tmp_path_factory.mktemp("whole")
    book = long_book(folder / "long.md")
    out = folder / "whole.flac"
    result = export(folder / "home", models, book, out, "--subtitles", folder / "whole.srt")
    assert result.returncode == 0, result.stderr
    return {"book": book, "samples": soundfile.read(out, dtype="float32")[0], "chapters": pyav_chapters(out),
            "cues": read_cues(folder / "whole.srt")}


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_an_export_killed_midway_continues_and_redoes_at_most_one_chapter(models, tmp_path, uninterrupted, how):
    if not hasattr(signal, how):
        pytest.skip(f"{how} is POSIX's")
    home, out, subtitles = tmp_path / "home", tmp_path / "out" / "long.flac", tmp_path / "out" / "long.srt"
    out.parent.mkdir()
    args = ["export", uninterrupted["book"], "-o", out, "--voice", VOICE, "--seed", "7", "--subtitles", subtitles,
            *model_args(models)]
    process = miodesk(home, *args, popen=True)
    deadline = time.monotonic() + 120
    while staged_chapter_count(home) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "the export ended before it could be interrupted"
    process.send_signal(getattr(signal, how))
    _, stderr = process.communicate(timeout=60)
    kept = staged_chapter_count(home)
    assert 2 <= kept < 10
    assert list(out.parent.iterdir()) == []  # nothing at the output, no temporary file beside it
    if how == "SIGTERM":
        assert process.returncode == 143
        lines = [line for line in stderr.splitlines() if line.startswith("miodesk: stopped")]
        assert lines == [f"miodesk: stopped; {kept} of 10 chapters are kept in '{staged_folders(home)[0]}': "
                         "run the same command again to continue (--restart starts over)."], stderr
        assert "Traceback" not in stderr and "--from-char" not in stderr
    else:
        assert process.returncode == -signal.SIGKILL

    staged_before = chapters_staged_in_log(home)
    resumed = miodesk(home, *args)
    assert resumed.returncode == 0, resumed.stderr
    assert f"10 chapters ({kept} from the interrupted run)" in resumed.stdout
    # Only the chapters not finished before the interruption were made again: the one in progress was
    # the only work lost.
    assert chapters_staged_in_log(home) - staged_before == 10 - kept
    assert staged_folders(home) == [] and sorted(p.name for p in out.parent.iterdir()) == ["long.flac", "long.srt"]
    samples = soundfile.read(out, dtype="float32")[0]
    assert np.array_equal(samples, uninterrupted["samples"])
    assert pyav_chapters(out) == uninterrupted["chapters"]
    assert read_cues(subtitles) == uninterrupted["cues"]


def test_restart_throws_the_staged_work_away(models, tmp_path, uninterrupted):
    home, out = tmp_path / "home", tmp_path / "long.flac"
    args = ["export", uninterrupted["book"], "-o", out, "--voice", VOICE, "--seed", "7", *model_args(models)]
    process = miodesk(home, *args, popen=True)
    while staged_chapter_count(home) < 1 and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert staged_chapter_count(home) >= 1
    again = miodesk(home, *args, "--restart")
    assert again.returncode == 0, again.stderr
    assert "from the interrupted run" not in again.stdout
    assert np.array_equal(soundfile.read(out, dtype="float32")[0], uninterrupted["samples"])


def test_other_settings_do_not_reuse_the_staged_chapters(models, tmp_path, uninterrupted):
    home, out = tmp_path / "home", tmp_path / "long.flac"
    args = ["export", uninterrupted["book"], "-o", out, "--voice", VOICE, *model_args(models)]
    process = miodesk(home, *args, "--seed", "7", popen=True)
    while staged_chapter_count(home) < 1 and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    other = miodesk(home, *args, "--seed", "8")
    assert other.returncode == 0, other.stderr
    assert "from the interrupted run" not in other.stdout
    assert len(staged_folders(home)) == 1  # the seed-7 work is kept for its own resume


# --- failures ----------------------------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (root or CAP_SYS_ADMIN, as in CI here; skipped elsewhere): mount(folder, size)."""
    mounted: list[Path] = []
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("tmpfs is Linux's")

    def mount(folder: Path, size: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_at_the_output_keeps_the_chapters_and_the_next_run_only_encodes(models, tmp_path, tmpfs, books):
    disk = tmpfs(tmp_path / "small", "64k")
    out = disk / "book.flac"
    home = tmp_path / "home"
    result = export(home, models, books["markdown"]["path"], out)
    assert_one_error_line(result, f"Cannot write '{out}': No space left on device.",
                          "The 3 finished chapters are kept")
    assert list(disk.iterdir()) == []  # nothing half-written at the output
    assert staged_chapter_count(home) == 3
    subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)  # room made
    again = export(home, models, books["markdown"]["path"], out)
    assert again.returncode == 0, again.stderr
    assert "3 chapters (3 from the interrupted run)" in again.stdout
    assert_same_16_bit_audio(soundfile.read(out, dtype="float32")[0], books["markdown"]["samples"])


def test_a_full_disk_in_the_staging_folder_stops_with_one_line_and_resumes(models, tmp_path, tmpfs, uninterrupted):
    home = tmp_path / "home"
    # The staging folder's disk; the log, the settings and the speech model's audio-only copy are elsewhere
    # (without its copy the model samples on the whole vocabulary: the same distribution, but not always the
    # same codes as the uninterrupted run, where two float16 logits of the test model tie).
    cache = tmpfs(home / "cache" / "exports", "1200k")
    out = tmp_path / "long.flac"
    result = export(home, models, uninterrupted["book"], out)
    assert_one_error_line(result, "No space left on device", "kept")
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name != "home"] == []
    kept = staged_chapter_count(home)
    assert 1 <= kept < 10
    assert not [p for p in staged_folders(home)[0].iterdir() if p.name.startswith(".")]  # no temporary files
    subprocess.run(["mount", "-o", "remount,size=16m", str(cache)], check=True)
    again = export(home, models, uninterrupted["book"], out)
    assert again.returncode == 0, again.stderr
    assert f"({kept} from the interrupted run)" in again.stdout
    assert np.array_equal(soundfile.read(out, dtype="float32")[0], uninterrupted["samples"])


def test_bad_arguments_get_one_line_before_any_model_work(tmp_path, run_cli):
    book = tmp_path / "book.md"
    book.write_text(BOOK_MD, encoding="utf-8")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    no_model = ["--voice", VOICE, "--model", tmp_path / "missing.gguf"]  # loading it would fail differently
    cases = [
        (["-o", tmp_path / "book.mp4"], "must end in"),
        (["-o", tmp_path / "book.m4b", "--subtitles", tmp_path / "book.txt"], "subtitles must end in .srt, .vtt or .lrc"),
        (["-o", tmp_path / "missing" / "book.mp3"], "does not exist"),
        (["-o", a_file / "book.mp3"], "Not a directory"),
        (["-o", tmp_path], "must end in"),
        (["-o", tmp_path / "a.srt.mp3", "--subtitles", tmp_path / "a.srt.mp3"], "subtitles must end"),
        (["-o", tmp_path / "book.mp3", "--speed", "3"], "--speed must be from 0.5 to 2.0"),
        (["-o", tmp_path / "book.mp3", "--from-char", "-1"], "--from-char must be 0 or more"),
        (["-o", tmp_path / "book.mp3", "--from-char", "100000"], "past the end"),
        (["-o", tmp_path / "book.mp3", "--dialogue-voice", tmp_path / "nobody.npy"], "does not exist"),
        (["-o", tmp_path / "book.mp3", "--voice-ja", "jp_female"], "either --voice"),
    ]
    for extra, fragment in cases:
        result = run_cli("export", book, *no_model, *extra)
        assert_one_line_error(result, fragment)
        assert "missing.gguf" not in result.stderr
    missing = run_cli("export", tmp_path / "nothing.md", "-o", tmp_path / "x.mp3", *no_model)
    assert_one_line_error(missing, "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.md", "notes.txt"]


@pytest.mark.skipif(os.name == "posix" and os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_folder_is_refused_before_synthesis(tmp_path, run_cli):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run_cli("export", tmp_path / "x.md", "-o", folder / "book.mp3", "--model", tmp_path / "m.gguf")
        assert_one_line_error(result, "Permission denied")
    finally:
        folder.chmod(0o755)


# --- from a character offset --------------------------------------------------------------------------------


def test_from_char_exports_the_rest_with_the_chapters_it_reaches(models, tmp_path):
    book = tmp_path / "book.md"
    book.write_text(BOOK_MD, encoding="utf-8")
    from miodesk.text.documents import load_document

    text = load_document(book).text
    start = text.index("The second chapter")
    out, subtitles = tmp_path / "rest.m4b", tmp_path / "rest.srt"
    result = export(tmp_path / "home", models, book, out, "--from-char", str(start), "--subtitles", subtitles)
    assert result.returncode == 0, result.stderr
    cues = read_cues(subtitles)
    assert cues[0][0] == 0.0 and cues[0][2] == "The second chapter begins here."
    assert "Chapter Two" not in [c[2] for c in cues] and "最初の章です。" not in [c[2] for c in cues]
    marks = pyav_chapters(out)
    assert [title for _, title in marks] == ["Chapter Two", "第三章"]
    assert marks[0][0] == 0.0
    assert abs(marks[1][0] - next(s for s, _e, t in cues if t == "第三章")) <= TOLERANCE_S
    assert "2 chapters" in result.stdout


# --- read -o through the exporter ------------------------------------------------------------------------------


def test_read_o_writes_any_format_with_chapters_and_stats(models, tmp_path, run_cli):
    book = tmp_path / "book.md"
    book.write_text(BOOK_MD, encoding="utf-8")
    out = tmp_path / "book.mp3"
    result = run_cli("read", book, "--voice", VOICE, "-o", out, "--stats", "--seed", "3", *model_args(models))
    assert result.returncode == 0, result.stderr
    assert [line.split("] ", 1)[1] for line in result.stdout.splitlines() if line.startswith("[")][:3] == [
        "第一章", "最初の章です。", "「こんにちは」と彼女は言った。"]  # no quote split without a dialogue voice
    stats = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert stats["underruns"] == 0 and stats["audio_s"] > 0
    assert [title for _, title in pyav_chapters(out)] == BOOK_MD_CHAPTERS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.md", "book.mp3"]


def test_sigterm_during_read_o_leaves_nothing_at_the_output(models, tmp_path, uninterrupted):
    home, out = tmp_path / "home", tmp_path / "out" / "long.wav"
    out.parent.mkdir()
    process = miodesk(home, "read", uninterrupted["book"], "--voice", VOICE, "-o", out, *model_args(models),
                      popen=True)
    while staged_chapter_count(home) < 1 and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert list(out.parent.iterdir()) == []
    assert "run the same command again to continue" in stderr and "--from-char" not in stderr


def test_two_reads_to_one_path_at_once_leave_one_whole_render(models, tmp_path, books):
    """The probe: `read six.txt --seed 1 -o same.flac & read six.txt --seed 2 -o same.flac`."""
    book = books["markdown"]["path"]
    out = tmp_path / "out" / "same.flac"
    out.parent.mkdir()
    common = ["--voice", VOICE, "--full-decode", *model_args(models)]
    processes = [miodesk(tmp_path / "home", "read", book, "-o", out, "--seed", seed, *common, popen=True)
                 for seed in ("1", "2")]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    assert [p.name for p in out.parent.iterdir()] == ["same.flac"]
    survivor = soundfile.read(out, dtype="float32")[0]
    renders = []
    for seed in ("1", "2"):
        alone = tmp_path / f"alone{seed}.flac"
        result = miodesk(tmp_path / "home", "read", book, "-o", alone, "--seed", seed, *common)
        assert result.returncode == 0, result.stderr
        renders.append(soundfile.read(alone, dtype="float32")[0])
    assert sum(len(r) == len(survivor) and np.array_equal(r, survivor) for r in renders) == 1


def test_the_same_export_twice_at_once_refuses_the_second(models, tmp_path, uninterrupted):
    if not hasattr(signal, "SIGSTOP"):
        pytest.skip("SIGSTOP is POSIX's")
    home, out = tmp_path / "home", tmp_path / "long.flac"
    args = ["export", uninterrupted["book"], "-o", out, "--voice", VOICE, "--seed", "7", *model_args(models)]
    first = miodesk(home, *args, popen=True)
    try:
        while staged_chapter_count(home) < 1 and first.poll() is None:
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)  # held mid-export, its lock with it
        second = miodesk(home, *args)
        assert_one_error_line(second, "Another export of the same document with the same settings is running")
        assert staged_chapter_count(home) >= 1  # the first one's work is untouched
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert np.array_equal(soundfile.read(out, dtype="float32")[0], uninterrupted["samples"])


# --- what the terminal shows ---------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_is_rewritten_on_a_terminal_and_printed_now_and_then_in_a_log(monkeypatch):
    from miodesk import export_cli
    from miodesk.export import ExportProgress

    progress = ExportProgress("rendering", 754.0, 500, 2000, 3, 12, 2.5, 310.0)
    terminal = Terminal()
    line = export_cli.ProgressLine(terminal)
    line.update(progress)
    assert terminal.getvalue() == "\r0:12:34 of audio · 2.5× real time · 0:05:10 left · chapter 3/12"
    line.update(progress)  # too soon: not rewritten
    line.update(ExportProgress("encoding", 3600.0, 2000, 2000, 12, 12, 80.0, 45.0))  # a new stage: at once
    shown = terminal.getvalue().split("\r")
    assert len(shown) == 3 and shown[-1].rstrip() == "encoding 1:00:00 of audio · 80.0× real time · 0:00:45 left"
    assert len(shown[-1]) == len(shown[-2])  # padded: nothing of the longer line before is left on screen
    line.clear()
    assert terminal.getvalue().endswith("\r" + " " * len(shown[-1].rstrip()) + "\r")

    monkeypatch.setattr(export_cli, "PLAIN_EVERY_S", 0.2)
    log = io.StringIO()
    plain = export_cli.ProgressLine(log)
    plain.update(progress)
    assert log.getvalue() == ""  # not at once: a short export prints no progress into a log
    time.sleep(0.25)
    plain.update(progress)
    plain.update(progress)
    assert log.getvalue() == "miodesk: 0:12:34 of audio · 2.5× real time · 0:05:10 left · chapter 3/12\n"


PAUSED_BOOK = "# A heading\n\nThe first sentence is here. The second one follows.\n\nA new paragraph starts.\n"


def test_pauses_after_sentences_paragraphs_and_headings_are_the_chosen_ones(models, tmp_path):
    """`--sentence-pause`/`--paragraph-pause` as the subtitles and the samples show them: silence of
    exactly that length between the cues, half again the paragraph pause after the heading."""
    document = tmp_path / "paused.md"
    document.write_text(PAUSED_BOOK, encoding="utf-8")
    gaps_by_run = []
    for sentence, paragraph in ((0.1, 1.2), (None, None)):
        options = [] if sentence is None else ["--sentence-pause", str(sentence), "--paragraph-pause", str(paragraph)]
        out = tmp_path / f"paused-{sentence}.wav"
        result = export(tmp_path / "home", models, document, out, "--subtitles", out.with_suffix(".srt"), *options)
        assert result.returncode == 0, result.stderr
        cues = read_cues(out.with_suffix(".srt"))
        assert [text for _, _, text in cues] == ["A heading", "The first sentence is here.", "The second one follows.",
                                                 "A new paragraph starts."]
        gaps = [round(cues[i + 1][0] - cues[i][1], 2) for i in range(len(cues) - 1)]
        gaps_by_run.append(gaps)
        audio, rate = soundfile.read(str(out), dtype="float32")
        for (_, end, _), (start, _, _) in zip(cues, cues[1:], strict=False):
            between = audio[round(end * rate) + 5:round(start * rate) - 5]
            assert len(between) and not np.any(between), "the pause is silence"
    # Heading, sentence, paragraph: as chosen, and the defaults (0.25 s, 0.6 s) without the options.
    assert gaps_by_run == [[1.8, 0.1, 1.2], [0.9, 0.25, 0.6]]


def test_a_pause_out_of_range_is_one_line(models, tmp_path):
    document = tmp_path / "a.md"
    document.write_text(PAUSED_BOOK, encoding="utf-8")
    result = export(tmp_path / "home", models, document, tmp_path / "a.wav", "--paragraph-pause", "9")
    assert_one_error_line(result, "--paragraph-pause must be from 0 to 5 seconds, not 9.")
    assert not (tmp_path / "a.wav").exists()


def test_bench_reports_the_export_encoding_cost(tmp_path):
    result = miodesk(tmp_path / "home", "bench", "--export", "--tiny", "--seconds", "20", "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    figure = json.loads(result.stdout)["export"]
    assert set(figure["formats"]) == {".m4b", ".mp3", ".opus", ".flac", ".wav"}
    base = figure["baseline"]["guard"]
    assert base["audio_s"] >= 15 and base["guard"]["checked"] > 0
    for each in figure["formats"].values():
        assert each["wall_s"] > 0 and each["encode_s"] > 0 and each["mb"] > 0
        assert each["ratio"] == pytest.approx(each["wall_s"] / base["wall_s"] - 1, abs=0.02)


def test_bench_compares_ffmpeg_and_libsndfile_encoders_side_by_side(tmp_path):
    result = miodesk(tmp_path / "home", "bench", "--export", "--tiny", "--seconds", "10", "--json",
                     "--export-formats", ".mp3,.mp3/libsndfile", timeout=600)
    assert result.returncode == 0, result.stderr
    figure = json.loads(result.stdout)["export"]
    assert list(figure["formats"]) == [".mp3", ".mp3/libsndfile"]
    assert all(each["encode_s"] > 0 and each["mb"] > 0 for each in figure["formats"].values())
    wrong = miodesk(tmp_path / "home", "bench", "--export", "--tiny", "--export-formats", ".aiff")
    assert wrong.returncode != 0 and "Unknown export format '.aiff'" in wrong.stderr
    assert "Traceback" not in wrong.stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_book_gets_the_users_permissions_and_a_replaced_file_keeps_its_mode(books, models, tmp_path):
    old = os.umask(0o022)
    os.umask(old)
    out = tmp_path / "cat.mp3"
    result = export(tmp_path / "home", models, books["epub"]["path"], out)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o666 & ~old  # as any program makes a new file
    out.chmod(0o640)
    again = export(tmp_path / "home", models, books["epub"]["path"], out, "--speed", "1.25")
    assert again.returncode == 0, again.stderr
    assert out.stat().st_mode & 0o777 == 0o640
