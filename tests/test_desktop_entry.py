"""`miodesk --install-desktop-entry`: the menu entry and icons of a pip/pipx install, checked by the
freedesktop.org validator (desktop-file-validate, from desktop-file-utils, which tests/run.sh installs)."""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from miodesk import cli, desktop_entry
from miodesk.ui.assets import icon_path

ALL_ICONS = ["icons/hicolor/scalable/apps/miodesk.svg",
             *(f"icons/hicolor/{n}x{n}/apps/miodesk.png" for n in desktop_entry.PNG_SIZES)]


@pytest.fixture
def data_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "xdg data"  # a space on purpose
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def validate(path: Path) -> None:
    if shutil.which("desktop-file-validate") is None:
        pytest.fail("desktop-file-validate is not installed; tests/run.sh installs desktop-file-utils")
    result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def read_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def unquote_exec(value: str) -> list[str]:
    """The Exec value as the desktop splits it (Desktop Entry spec, "The Exec key"), field codes kept."""
    # First the string-type escapes of the key file, then the argument quoting.
    text = value.replace("\\\\", "\0").replace("\\s", " ").replace("\0", "\\")
    arguments, current, quoted, index, started = [], "", False, 0, False
    while index < len(text):
        ch = text[index]
        if quoted:
            if ch == "\\" and index + 1 < len(text) and text[index + 1] in '"`$\\':
                current += text[index + 1]
                index += 1
            elif ch == '"':
                quoted = False
            else:
                current += ch
        elif ch == '"':
            quoted, started = True, True
        elif ch == " ":
            if started:
                arguments.append(current)
            current, started = "", False
        else:
            assert ch not in desktop_entry._RESERVED, f"unquoted reserved character {ch!r} in {value!r}"
            current += ch
            started = True
        index += 1
    assert not quoted, value
    if started:
        arguments.append(current)
    return [a.replace("%%", "%") if a != "%F" else a for a in arguments]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_install_writes_a_valid_entry_and_the_icons(run_cli, data_home):
    result = run_cli("--install-desktop-entry", timeout=120)
    assert result.returncode == 0, result.stderr
    entry_path = data_home / "applications" / "miodesk.desktop"
    for relative in ["applications/miodesk.desktop", *ALL_ICONS]:
        assert f"wrote {data_home / relative}" in result.stdout
        assert stat.S_IMODE((data_home / relative).stat().st_mode) == 0o644
    validate(entry_path)

    entry = read_entry(entry_path)
    assert entry["Type"] == "Application" and entry["Name"] == "MioDesk"
    assert entry["GenericName"] and entry["Comment"] and entry["Comment[ja]"] and entry["Name[ja]"]
    assert entry["GenericName[ja]"] == "読み上げリーダー"
    assert entry["Icon"] == "miodesk" and entry["Terminal"] == "false"
    assert entry["StartupWMClass"] == "MioDesk"  # Qt's WM_CLASS class = the application name
    assert entry["Categories"] == "Utility;Accessibility;"
    assert entry["MimeType"].split(";")[:-1] == list(desktop_entry.MIME_TYPES)
    assert {"text/markdown", "application/pdf", "application/epub+zip"} <= set(entry["MimeType"].split(";"))
    # The `miodesk` script of this environment (the subprocess runs the same python as the tests).
    script = Path(sys.executable).parent / "miodesk"
    assert script.is_file()
    assert unquote_exec(entry["Exec"]) == [str(script), "%F"]
    assert entry["TryExec"] == str(script)

    # The icons: the SVG as shipped, and PNGs of the sizes their folders name.
    svg = data_home / "icons/hicolor/scalable/apps/miodesk.svg"
    assert svg.read_bytes() == icon_path("miodesk").read_bytes()
    for size in desktop_entry.PNG_SIZES:
        assert png_size(data_home / f"icons/hicolor/{size}x{size}/apps/miodesk.png") == (size, size)
    # update-desktop-database ran: documents of these types now offer MioDesk.
    mime_cache = (data_home / "applications" / "mimeinfo.cache").read_text(encoding="utf-8")
    assert "text/plain=miodesk.desktop;" in mime_cache
    assert "application/epub+zip=miodesk.desktop;" in mime_cache


def test_reinstall_overwrites_and_uninstall_removes(run_cli, data_home):
    entry_path = data_home / "applications" / "miodesk.desktop"
    assert run_cli("--install-desktop-entry", timeout=120).returncode == 0
    first = entry_path.read_bytes()
    entry_path.write_text("[Desktop Entry]\nName=old\n", encoding="utf-8")
    (data_home / ALL_ICONS[1]).write_bytes(b"broken")
    assert run_cli("--install-desktop-entry", timeout=120).returncode == 0
    assert entry_path.read_bytes() == first
    assert png_size(data_home / ALL_ICONS[1])[0] == desktop_entry.PNG_SIZES[0]
    # Atomic writes leave no temporary files behind.
    leftovers = [p for p in data_home.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]
    assert leftovers == []

    other = data_home / "applications" / "someone-else.desktop"
    other.write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n", encoding="utf-8")
    removed = run_cli("--uninstall-desktop-entry", timeout=120)
    assert removed.returncode == 0, removed.stderr
    for relative in ["applications/miodesk.desktop", *ALL_ICONS]:
        assert f"removed {data_home / relative}" in removed.stdout
        assert not (data_home / relative).exists()
    assert other.exists()
    assert "miodesk.desktop" not in (data_home / "applications" / "mimeinfo.cache").read_text(encoding="utf-8")

    again = run_cli("--uninstall-desktop-entry", timeout=120)
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_exec_quotes_paths_with_spaces_and_special_characters(tmp_path):
    awkward = ['/opt/My Apps/mio "desk"/bin/miodesk', "/home/山田/$HOME/100%/a\\b/python"]
    for launcher in awkward:
        for command in ([launcher], [launcher, "-m", "miodesk"]):
            report = desktop_entry.install(tmp_path, command)
            entry_path = desktop_entry.desktop_file_path(tmp_path)
            assert entry_path in report.written
            validate(entry_path)
            entry = read_entry(entry_path)
            assert unquote_exec(entry["Exec"]) == [*command, "%F"]
    assert desktop_entry.quote_exec_argument("/usr/bin/miodesk") == "/usr/bin/miodesk"
    assert desktop_entry.quote_exec_argument("/a b/miodesk") == '"/a b/miodesk"'
    with pytest.raises(desktop_entry.MioDeskError, match="control characters"):
        desktop_entry.quote_exec_argument("/a\nb")


def test_launcher_command_prefers_the_frozen_program_then_the_script(tmp_path, monkeypatch):
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text("")
    monkeypatch.setattr(sys, "executable", str(python))
    assert desktop_entry.launcher_command() == [str(python), "-m", "miodesk"]
    script = bin_dir / "miodesk"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert desktop_entry.launcher_command() == [str(script)]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "MioDesk" / "miodesk"))
    assert desktop_entry.launcher_command() == [str(tmp_path / "MioDesk" / "miodesk")]


def test_failing_cache_tools_do_not_fail_the_install(run_cli, data_home, tmp_path, monkeypatch):
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("update-desktop-database", "gtk-update-icon-cache"):
        (tools / name).write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
        (tools / name).chmod(0o755)
    hicolor = data_home / "icons" / "hicolor"
    hicolor.mkdir(parents=True)
    (hicolor / "icon-theme.cache").write_bytes(b"")  # a cache exists, so it is refreshed
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    result = run_cli("--install-desktop-entry", timeout=120)
    assert result.returncode == 0, result.stderr
    assert (data_home / "applications" / "miodesk.desktop").is_file()
    assert "broken" not in result.stdout + result.stderr


def test_default_location_and_other_platforms(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert desktop_entry.data_home() == tmp_path / ".local" / "share"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # not absolute: ignored, as the spec says
    assert desktop_entry.data_home() == tmp_path / ".local" / "share"

    monkeypatch.setattr(desktop_entry, "supported", lambda: False)
    assert cli.main(["--install-desktop-entry"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "for Linux desktops" in err and "installer" in err
    assert not (tmp_path / ".local").exists()


def test_install_and_uninstall_are_exclusive(run_cli):
    result = run_cli("--install-desktop-entry", "--uninstall-desktop-entry", timeout=60)
    assert result.returncode == 2 and "not allowed with" in result.stderr
