"""A user folder with a Japanese name, and consoles that cannot show Japanese.

日本語 user names are common on Windows, so every MioDesk folder (MIODESK_HOME, or the platform's
folders under HOME/XDG_*) may sit under a path like C:\\Users\\田中 太郎. The everyday commands must
work there and print those paths; a console whose encoding cannot hold them (cp1252) must not crash.
"""

from __future__ import annotations

import inspect
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOLDEN, REPO_ROOT

import miodesk.cli
from miodesk.console import encodes_all_of_unicode, make_console_safe

USER = "田中 太郎"
BOOK_TEXT = "吾輩は猫である。名前はまだ無い。\n"

# What the CLI does once miodesk/cli.py calls make_console_safe() first thing in main().
_CONSOLE_SAFE_MAIN = (
    "import sys; from miodesk.console import make_console_safe; make_console_safe(); "
    "from miodesk.cli import main; sys.exit(main(sys.argv[1:]))"
)
CLI_IS_CONSOLE_SAFE = "make_console_safe" in inspect.getsource(miodesk.cli.main)


def _user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ユーザー" / USER
    folder.mkdir(parents=True)
    return folder


def _environment(user: Path, layout: str, encoding: str) -> tuple[dict[str, str], Path]:
    """(environment, MioDesk's data folder) for MIODESK_HOME or for the platform folders under HOME."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHONUTF8", "LC_"))}
    env["PYTHONIOENCODING"] = encoding
    if encoding == "cp1252":
        env["LANG"] = env["LC_ALL"] = "C"
    if layout == "miodesk_home":
        env["MIODESK_HOME"] = str(user / "MioDesk")
        return env, user / "MioDesk" / "data"
    env.pop("MIODESK_HOME", None)
    env["HOME"] = str(user)
    env["XDG_DATA_HOME"] = str(user / ".local" / "share")
    env["XDG_CONFIG_HOME"] = str(user / ".config")
    env["XDG_CACHE_HOME"] = str(user / ".cache")
    env["XDG_STATE_HOME"] = str(user / ".local" / "state")
    return env, user / ".local" / "share" / "MioDesk"


def _run(env: dict[str, str], encoding: str, *args: str | Path, console_safe_main: bool = False) -> tuple[int, str, str]:
    start = [sys.executable, "-c", _CONSOLE_SAFE_MAIN] if console_safe_main else [sys.executable, "-m", "miodesk"]
    completed = subprocess.run([*start, *map(str, args)], capture_output=True, env=env, cwd=REPO_ROOT, timeout=300)
    # Read the bytes the way that console would; what it cannot show appears as \uXXXX escapes.
    return completed.returncode, completed.stdout.decode(encoding), completed.stderr.decode(encoding, "replace")


def _shown(path: Path, encoding: str) -> str:
    """How `path` looks on a console of `encoding` (escaped where the encoding lacks a character)."""
    return str(path).encode(encoding, "backslashreplace").decode(encoding)


def _everyday_commands(tmp_path: Path, layout: str, encoding: str, console_safe_main: bool = False) -> None:
    user = _user_folder(tmp_path)
    env, data = _environment(user, layout, encoding)
    documents = user / "ドキュメント"
    documents.mkdir()
    book = documents / "吾輩は猫である.txt"
    book.write_bytes(BOOK_TEXT.encode("shift_jis"))  # as many Japanese text files still are
    preset = documents / "声" / "jp_female.pt"
    preset.parent.mkdir()
    shutil.copyfile(GOLDEN / "presets" / "jp_female.pt", preset)

    def run(*args: str | Path) -> str:
        code, out, err = _run(env, encoding, *args, console_safe_main=console_safe_main)
        assert code == 0, err
        assert "Traceback" not in err and "Error" not in err, err
        return out

    assert _shown(Path(BOOK_TEXT.strip()), encoding) in run("text", book)
    assert f"Models folder: {_shown(data / 'models', encoding)}" in run("models", "list")
    assert f"No voices installed in {_shown(data / 'voices', encoding)}" in run("voices", "list")
    assert "installed voice 'jp_female'" in run("voices", "import", preset)
    assert (data / "voices" / "jp_female.json").is_file() and (data / "voices" / "jp_female.npy").is_file()
    assert run("voices", "list").split() == ["jp_female"]
    doctor = run("doctor")
    assert f"Models: {_shown(data / 'models', encoding)}" in doctor
    assert f"Voices: {_shown(data / 'voices', encoding)}" in doctor


@pytest.mark.parametrize(("layout", "encoding"), [("platform_folders", "utf-8"), ("miodesk_home", "cp932")])
def test_everyday_commands_in_a_japanese_user_folder(tmp_path: Path, layout: str, encoding: str) -> None:
    _everyday_commands(tmp_path, layout, encoding)


def test_everyday_commands_on_a_cp1252_console(tmp_path: Path) -> None:
    """A Western Windows console (cp1252, here with LANG=C): Japanese comes out escaped, nothing crashes."""
    _everyday_commands(tmp_path, "platform_folders", "cp1252", console_safe_main=True)


@pytest.mark.xfail(
    not CLI_IS_CONSOLE_SAFE, strict=True,
    reason="miodesk/cli.py main() does not call miodesk.console.make_console_safe() yet",
)
def test_the_cli_itself_survives_a_cp1252_console(tmp_path: Path) -> None:
    env, data = _environment(_user_folder(tmp_path), "platform_folders", "cp1252")
    code, out, err = _run(env, "cp1252", "models", "list")
    assert code == 0 and "UnicodeEncodeError" not in err, err
    assert f"Models folder: {_shown(data / 'models', 'cp1252')}" in out


# --------------------------------------------------------------------------------------
# make_console_safe on its own


def _console(encoding: str, errors: str = "strict") -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors=errors, write_through=True)


def test_a_narrow_console_escapes_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout, stderr = _console("cp1252"), _console("ascii", "surrogateescape")
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    make_console_safe()
    print(f"C:\\Users\\{USER}\\café")
    print("ユーザー", file=sys.stderr)
    assert stdout.buffer.getvalue().decode("cp1252") == "C:\\Users\\\\u7530\\u4e2d \\u592a\\u90ce\\café\n"
    assert stderr.buffer.getvalue() == b"\\u30e6\\u30fc\\u30b6\\u30fc\n"
    assert stdout.encoding == "cp1252"  # only the error handling changes, never the encoding


def test_consoles_that_hold_everything_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    utf8, lenient = _console("utf-8"), _console("cp932", "replace")
    monkeypatch.setattr(sys, "stdout", utf8)
    monkeypatch.setattr(sys, "stderr", lenient)
    make_console_safe()
    assert (utf8.errors, lenient.errors) == ("strict", "replace")
    monkeypatch.setattr(sys, "stdout", None)  # a windowed Windows program has no console at all
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    make_console_safe()


@pytest.mark.parametrize(
    ("encoding", "everything"),
    [("utf-8", True), ("UTF8", True), ("utf_16", True), ("cp65001", True), ("cp932", False), ("cp1252", False),
     ("ascii", False), ("", False), (None, False), ("no-such-codec", False)],
)
def test_which_encodings_hold_all_of_unicode(encoding: str | None, everything: bool) -> None:
    assert encodes_all_of_unicode(encoding) is everything
