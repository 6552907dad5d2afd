"""Damaged and unusual input: text files with a few bad bytes, FIFOs and devices, binary standard
input, and --from-char outside the document.

A damaged file loses only its bad bytes (like `iconv -c`), is decoded in the encoding the rest of it
clearly is, and says how many characters could not be read; what is not a regular file is refused
before it is opened; standard input gets a file's checks. Through `decode_bytes`, `load_document`
and the `miodesk text`/`read` commands a user runs.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile
from conftest import GOLDEN, REPO_ROOT, CliResult, assert_one_line_error
from gguf_fixtures import make_model
from test_documents import ENCODED, check_consistent

from miodesk.text.documents import DocumentError, load_document
from miodesk.text.formats.encoding import decode_bytes

NEKO = [
    "吾輩は猫である。名前はまだ無い。",
    "どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。",
    "吾輩はここで始めて人間というものを見た。しかもあとで聞くとそれは書生という人間中で一番獰悪な種族であったそうだ。",
    "この書生というのは時々我々を捕えて煮て食うという話である。",
]
TEXT = "\n".join(NEKO) + "\n"


def encode_with_strays(lines: list[str], encoding: str, strays: dict[tuple[int, int], bytes]) -> bytes:
    """The lines encoded, with stray bytes inserted before character (line, column)."""
    out = []
    for row, line in enumerate(lines):
        for column, char in enumerate(line):
            out.append(strays.get((row, column), b"") + char.encode(encoding))
        out.append(b"\n")
    return b"".join(out)


def lost_warning(name: str, count: int, encoding: str) -> str:
    noun = "character" if count == 1 else "characters"
    return f"{name}: {count} {noun} could not be read (invalid {encoding} bytes); they are left out"


# -- decode_bytes: a few bad bytes in every encoding --------------------------------------------------


def test_shift_jis_with_invalid_bytes_keeps_all_other_text() -> None:
    # Bytes Shift_JIS never uses (0x80, 0xA0, 0xFD-0xFF) in three of the four lines.
    data = encode_with_strays(NEKO, "cp932", {(0, 3): b"\xff", (1, 10): b"\x80", (1, 30): b"\xa0", (2, 5): b"\xfd"})
    text, label, warnings = decode_bytes(data, "book.txt")
    assert text == TEXT
    assert "shift_jis" in label
    assert warnings == [lost_warning("book.txt", 4, "Shift_JIS")]


def test_a_damaged_character_is_lost_and_the_rest_of_its_line_kept() -> None:
    data = bytearray(TEXT.encode("cp932"))
    at = len("吾輩は".encode("cp932")) + 1  # the trail byte of 猫
    data[at] = 0xFF
    text, _label, warnings = decode_bytes(bytes(data), "book.txt")
    assert text == TEXT.replace("猫", "", 1)
    assert warnings == [lost_warning("book.txt", 1, "Shift_JIS")]


@pytest.mark.parametrize(("encoding", "name"), [("cp932", "Shift_JIS"), ("euc_jp", "EUC-JP")])
def test_a_byte_inserted_inside_a_character_does_not_shift_the_rest_of_the_line(encoding: str, name: str) -> None:
    # Lead and trail bytes overlap in both, so a plain decoder reads every character after the
    # stray byte from the wrong half: the rest of the line would be mojibake.
    data = TEXT.encode(encoding)
    at = len(NEKO[0].encode(encoding)) + 1 + len("どこで".encode(encoding)) + 1  # inside 生
    text, _label, warnings = decode_bytes(data[:at] + b"\xff" + data[at:], "book.txt")
    assert text == TEXT
    assert warnings == [lost_warning("book.txt", 1, name)]


def test_euc_jp_with_two_stray_bytes_is_euc_jp_not_cp1252() -> None:
    data = encode_with_strays(NEKO, "euc_jp", {(0, 4): b"\xff", (2, 8): b"\x80"})
    text, label, warnings = decode_bytes(data, "book.txt")
    assert (text, label) == (TEXT, "euc-jp")
    assert warnings == [lost_warning("book.txt", 2, "EUC-JP")]


def test_utf8_with_a_few_invalid_bytes() -> None:
    # A stray byte, a character cut short (its first two bytes of three), an invalid start byte.
    cut = "生".encode()[:2]
    data = encode_with_strays(NEKO, "utf-8", {(0, 2): b"\xff", (1, 7): cut, (3, 4): b"\xc0"})
    text, label, warnings = decode_bytes(data, "book.txt")
    assert (text, label) == (TEXT, "utf-8")
    assert warnings == [lost_warning("book.txt", 3, "UTF-8")]


def test_utf8_english_with_curly_quotes_and_a_stray_byte() -> None:
    text = "“Hello,” she said — it’s fine.\nAnother line, naïve and café.\n"
    data = text.encode()
    at = data.index(b"she")
    decoded, label, warnings = decode_bytes(data[:at] + b"\xfe" + data[at:], "note.txt")
    assert (decoded, label) == (text, "utf-8")
    assert warnings == [lost_warning("note.txt", 1, "UTF-8")]


def test_cp1252_english_with_a_stray_byte() -> None:
    text = "Café crème, déjà vu — “naïve” résumé.\nThe second line of the letter.\n"
    data = text.encode("cp1252")
    at = data.index(b"vu")
    decoded, label, warnings = decode_bytes(data[:at] + b"\x81" + data[at:], "letter.txt")
    assert (decoded, label) == (text, "cp1252")
    assert warnings == [lost_warning("letter.txt", 1, "Windows-1252")]


def test_ascii_with_a_stray_byte() -> None:
    text = "The quick brown fox jumps over the lazy dog.\n"
    data = text.encode()
    decoded, label, warnings = decode_bytes(data[:10] + b"\x81" + data[10:], "fox.txt")
    assert (decoded, label) == (text, "utf-8")  # ASCII is reported as UTF-8, as a clean file is
    assert warnings == [lost_warning("fox.txt", 1, "UTF-8")]


@pytest.mark.parametrize(
    ("text", "encoding", "stray_at", "label"),
    [
        ("今日はいい天気ですね。", "euc_jp", 2, "euc-jp"),
        ("こんにちは", "cp932", 5, "shift_jis"),
        ("東京都", "euc_jp", 1, "euc-jp"),
        ("メロスは激怒した。", "cp932", 0, "shift_jis"),
    ],
)
def test_short_files_with_a_stray_byte(text: str, encoding: str, stray_at: int, label: str) -> None:
    data = encode_with_strays([text], encoding, {(0, stray_at): b"\xff"}).rstrip(b"\n")
    if stray_at == len(text):
        data += b"\xff"
    decoded, decoded_label, warnings = decode_bytes(data, "short.txt")
    assert decoded == text and label in decoded_label
    assert len(warnings) == 1 and "1 character could not be read" in warnings[0]


def test_damaged_bom_files() -> None:
    # UTF-16 with a lone surrogate; UTF-8 with a BOM and a stray byte.
    data = "\ufeff吾輩は".encode("utf-16-le") + b"\x00\xd8" + "猫である。".encode("utf-16-le")
    assert decode_bytes(data, "a.txt") == ("吾輩は猫である。", "utf-16-le (BOM)", [lost_warning("a.txt", 1, "UTF-16")])
    data = b"\xef\xbb\xbf" + "吾輩は".encode() + b"\xff" + "猫である。".encode()
    assert decode_bytes(data, "b.txt") == ("吾輩は猫である。", "utf-8 (BOM)", [lost_warning("b.txt", 1, "UTF-8")])


def test_iso_2022_jp_with_a_stray_high_byte() -> None:
    data = "吾輩は猫である。\n名前はまだ無い。\n".encode("iso2022_jp")
    at = data.index(b"\n") + 1
    text, label, warnings = decode_bytes(data[:at] + b"\xa4" + data[at:], "mail.txt")
    assert (text, label) == ("吾輩は猫である。\n名前はまだ無い。\n", "iso-2022-jp")
    assert len(warnings) == 1 and "1 character could not be read" in warnings[0]


def test_mixed_encodings_are_decoded_line_by_line() -> None:
    # Lines pasted together from a Shift_JIS file and a UTF-8 one, no byte lost.
    lines = [NEKO[0].encode("cp932"), NEKO[1].encode(), NEKO[2].encode("cp932"), NEKO[3].encode()]
    text, label, warnings = decode_bytes(b"\n".join(lines), "notes.txt")
    assert text == "\n".join(NEKO)
    assert label == "mixed"
    assert warnings == ["notes.txt: mixed text encodings (2 lines in UTF-8, the rest in Shift_JIS); decoded line by line"]


@pytest.mark.parametrize(("encoding", "label"), [("cp932", "shift_jis"), ("euc_jp", "euc-jp"), ("cp1252", "cp1252")])
def test_a_long_ascii_preface_does_not_hide_the_encoding(encoding: str, label: str) -> None:
    """The contest judges the bytes from the first line that is not ASCII: 20 KB of an English
    licence first must not make the rest look like ASCII with damage."""
    preface = "This text is in the public domain. Copy it, share it, read it aloud.\n" * 300
    body = "Café crème, déjà vu — naïve résumé.\n" * 20 if encoding == "cp1252" else TEXT * 20
    stray = b"\x81" if encoding == "cp1252" else b"\xff"  # a byte the encoding does not use
    data = preface.encode("ascii") + encode_with_strays(body.splitlines(), encoding, {(3, 2): stray})
    text, decoded_label, warnings = decode_bytes(data, "book.txt")
    assert text == preface + body and label in decoded_label
    assert len(warnings) == 1 and "1 character could not be read" in warnings[0]


def test_clean_files_have_no_warning() -> None:
    for text, encoding, _label in ENCODED:
        decoded, _label, warnings = decode_bytes(text.encode(encoding), "clean.txt")
        assert decoded == text and warnings == [], (encoding, text)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。", "gb18030"),
        ("人人生而自由，在尊嚴和權利上一律平等。他們賦有理性和良心，並應以兄弟關係的精神相對待。", "big5"),
        ("Все люди рождаются свободными и равными в своем достоинстве и правах.", "cp1251"),
        ("Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα.", "cp1253"),
        ("Zażółć gęślą jaźń. Wszystkie ludzkie istoty rodzą się wolne i równe w swojej godności.", "cp1250"),
        ("Alle Menschen sind frei und gleich an Würde und Rechten geboren. Größe, Übermaß.", "cp1252"),
    ],
)
def test_other_languages_are_still_told_apart(text: str, encoding: str) -> None:
    """The tolerant contest must not take clean text of other encodings for damaged Japanese or CP1252."""
    decoded, _label, warnings = decode_bytes(text.encode(encoding), "other.txt")
    assert decoded == text and warnings == []


def test_binary_files_are_still_refused(tmp_path: Path) -> None:
    rng = random.Random(7)
    samples = {
        "all_bytes.txt": bytes(range(256)) * 64,
        "random.txt": rng.randbytes(20_000),
        "program.txt": b"\x7fELF\x02\x01\x01" + rng.randbytes(5000),
        "short.txt": b"\x00\x01\x02\x03\x04\x05\xff\xfe\x10\x11",
    }
    for name, data in samples.items():
        with pytest.raises(DocumentError, match="binary"):
            decode_bytes(data, name)
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DocumentError, match="binary"):
            load_document(path)


def test_a_damaged_ten_megabyte_file_decodes_quickly() -> None:
    unit = (TEXT * 20).encode("cp932")
    data = bytearray(unit * (10 * 1024 * 1024 // len(unit)))
    for at in range(5000, len(data), len(data) // 10):
        data[at] = 0xFF
    started = time.perf_counter()
    text, label, warnings = decode_bytes(bytes(data), "big.txt")
    elapsed = time.perf_counter() - started
    assert "shift_jis" in label and len(warnings) == 1 and "could not be read" in warnings[0]
    assert text.count("吾輩は猫である。") >= len(data) // len(unit) * 20 - 10
    assert elapsed < 3, elapsed  # about 0.1 s on a 2-core machine


def test_load_document_reports_the_loss(tmp_path: Path) -> None:
    path = tmp_path / "neko.txt"
    path.write_bytes(encode_with_strays(NEKO, "cp932", {(0, 3): b"\xff", (3, 6): b"\x80"}))
    doc = load_document(path)
    assert all(line in doc.text for line in NEKO)
    assert "�" not in doc.text
    assert doc.warnings == [lost_warning("neko.txt", 2, "Shift_JIS")]
    check_consistent(doc)


# -- what is not a regular file ----------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "book.txt"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(DocumentError, match="not a regular file"):
        load_document(fifo)
    assert time.monotonic() - started < 5


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_a_device_is_refused() -> None:
    with pytest.raises(DocumentError, match="not a regular file"):
        load_document("/dev/null")


# -- through the commands ------------------------------------------------------------------------------


def run_with_stdin(miodesk_home: Path, *args: str | Path, stdin: bytes, timeout: float = 120) -> CliResult:
    """`miodesk ARGS` with these bytes on standard input, as from `cat FILE | miodesk …`."""
    env = dict(os.environ, MIODESK_HOME=str(miodesk_home), PYTHONIOENCODING="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "miodesk", *map(str, args)],
        input=stdin, capture_output=True, env=env, cwd=REPO_ROOT, timeout=timeout,
    )
    return CliResult(completed.returncode, completed.stdout.decode("utf-8"), completed.stderr.decode("utf-8"))


@pytest.fixture(scope="module")
def reading_model(tmp_path_factory: pytest.TempPathFactory):
    return make_model(tmp_path_factory.mktemp("damaged_read"), "damaged_read", "qwen3", eog_probability=0.05, seed=1)


def reading_options(model) -> list[str | Path]:
    return ["--voice", GOLDEN / "presets" / "jp_female.pt", "--model", model.path, "--codec", GOLDEN / "codec" / "24k",
            "--seed", "3"]


def test_cli_text_prints_a_damaged_file_and_warns(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "neko.txt"
    path.write_bytes(encode_with_strays(NEKO, "cp932", {(0, 3): b"\xff", (1, 10): b"\x80", (2, 5): b"\xfd"}))
    result = run_cli("text", path)
    assert result.returncode == 0, result.stderr
    assert all(line in result.stdout for line in NEKO) and "�" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith(lost_warning("neko.txt", 3, "Shift_JIS")), result.stderr


def test_cli_read_a_damaged_file_from_stdin(miodesk_home: Path, reading_model, tmp_path: Path) -> None:
    data = encode_with_strays(NEKO[:2], "euc_jp", {(0, 4): b"\xff", (1, 8): b"\x80"})
    out = tmp_path / "neko.wav"
    result = run_with_stdin(miodesk_home, "read", "-", *reading_options(reading_model), "-o", out, stdin=data,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    spoken = [line.split("] ", 1)[1] for line in result.stdout.splitlines() if line.startswith("[")]
    assert spoken == ["吾輩は猫である。", "名前はまだ無い。", "どこで生れたかとんと見当がつかぬ。",
                      "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"]
    assert lost_warning("standard input", 2, "EUC-JP") in result.stderr
    assert soundfile.info(str(out)).duration > 0


def test_cli_text_reads_stdin_in_any_encoding(miodesk_home: Path) -> None:
    result = run_with_stdin(miodesk_home, "text", "-", stdin=TEXT.encode("cp932"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("=== Chapter 1: stdin ===\n")
    assert all(line in result.stdout for line in NEKO)


@pytest.mark.parametrize("command", ["text", "read"])
def test_cli_refuses_binary_standard_input(miodesk_home: Path, command: str) -> None:
    binary = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 20
    result = run_with_stdin(miodesk_home, command, "-", stdin=binary)
    assert_one_line_error(result, "standard input looks like a binary file")
    empty = run_with_stdin(miodesk_home, command, "-", stdin=b" \n")
    assert_one_line_error(empty, "standard input is empty")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("command", ["text", "read"])
def test_cli_refuses_a_fifo_at_once(run_cli, tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "book.txt"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = run_cli(command, fifo, timeout=60)  # before the fix: waits for a writer until killed
    assert_one_line_error(result, "not a regular file", "book.txt")
    assert time.monotonic() - started < 60


def test_cli_read_refuses_a_start_outside_the_document(run_cli, reading_model, tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("吾輩は猫である。名前はまだ無い。", encoding="utf-8")
    out = tmp_path / "short.wav"
    past = run_cli("read", path, *reading_options(reading_model), "-o", out, "--from-char", "500")
    assert_one_line_error(past, "--from-char 500", "past the end", "16 characters", "0 to 15")
    negative = run_cli("read", path, *reading_options(reading_model), "-o", out, "--from-char", "-3")
    assert_one_line_error(negative, "--from-char must be 0 or more")
    assert not out.exists()
    # The last character still starts a reading.
    last = run_cli("read", path, *reading_options(reading_model), "-o", out, "--from-char", "15")
    assert last.returncode == 0, last.stderr
    assert [line.split("] ", 1)[1] for line in last.stdout.splitlines() if line.startswith("[")] == ["名前はまだ無い。"]


# -- in the window ----------------------------------------------------------------------------------
# The banner speaks through accessibility.announce; tests/test_atspi.py shows a banner message reaching
# the AT-SPI bus as object:announcement.


def test_the_window_shows_and_announces_the_loss(app, qtbot, tmp_path: Path, announced) -> None:
    from gui_fixtures import screenshot

    path = tmp_path / "neko.txt"
    path.write_bytes(encode_with_strays(NEKO, "cp932", {(0, 3): b"\xff", (2, 5): b"\xfd"}))
    with qtbot.waitSignal(app.controller.documentLoaded, timeout=20000):
        app.window.open_path(path)
    warning = lost_warning("neko.txt", 2, "Shift_JIS")
    assert app.window.banner.isVisible() and app.window.banner.kind == "warning"
    assert app.window.banner.label.text() == warning
    assert (warning, False) in announced
    assert all(line in app.controller.document.text for line in NEKO)
    screenshot(app.window, "damaged-input-warning")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_the_window_refuses_a_fifo(app, qtbot, tmp_path: Path, announced) -> None:
    fifo = tmp_path / "book.txt"
    os.mkfifo(fifo)
    with qtbot.waitSignal(app.controller.documentFailed, timeout=10000) as failed:
        app.window.open_path(fifo)
    assert "not a regular file" in failed.args[0]
    assert app.window.banner.kind == "error" and app.window.banner.label.text() == failed.args[0]
    assert (failed.args[0], True) in announced
