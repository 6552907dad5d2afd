"""`miodesk --install-desktop-entry`: the applications-menu entry and icon for pip/pipx installs.

The installers bring their own shortcuts; a package installed with pip or pipx has none, so this
writes the freedesktop.org files a Linux (or other XDG) desktop reads:

    $XDG_DATA_HOME/applications/miodesk.desktop          menu entry, "Open with MioDesk" for documents
    $XDG_DATA_HOME/icons/hicolor/scalable/apps/miodesk.svg
    $XDG_DATA_HOME/icons/hicolor/<N>x<N>/apps/miodesk.png  for menus and docks that want bitmaps

No display and no QApplication are needed; Qt is used only to draw the PNG sizes from the SVG.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from miodesk.atomic import atomic_write_bytes
from miodesk.errors import MioDeskError

log = logging.getLogger(__name__)

DESKTOP_FILE_NAME = "miodesk.desktop"
ICON_NAME = "miodesk"
PNG_SIZES = (32, 48, 64, 128, 256)
# What the app opens (miodesk.text.documents.SUPPORTED_EXTENSIONS), as MIME types for "Open with".
MIME_TYPES = (
    "text/plain",
    "text/markdown",
    "text/html",
    "application/epub+zip",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)
# Qt's X11 WM_CLASS is (program name, application name); the app calls setApplicationName("MioDesk").
STARTUP_WM_CLASS = "MioDesk"

# Desktop Entry spec, "The Exec key": an argument holding one of these must be quoted.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


@dataclass
class Report:
    """What an install or uninstall did, for the user to read."""

    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)


def supported() -> bool:
    """Windows and macOS have their own shortcuts (made by the installers); everything else is XDG."""
    return sys.platform not in ("win32", "darwin")


def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share when it is unset or not absolute (as the spec says)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "share"


def desktop_file_path(base: Path | None = None) -> Path:
    return (base or data_home()) / "applications" / DESKTOP_FILE_NAME


def icon_paths(base: Path | None = None) -> list[Path]:
    hicolor = (base or data_home()) / "icons" / "hicolor"
    return [hicolor / "scalable" / "apps" / f"{ICON_NAME}.svg",
            *(hicolor / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png" for size in PNG_SIZES)]


def launcher_command() -> list[str]:
    """How the desktop starts this MioDesk: the frozen program, the `miodesk` script, or python -m."""
    if getattr(sys, "frozen", False):
        return [os.path.abspath(sys.executable)]
    # Not resolved: in a venv (pipx) python is a symlink, and its target would lose the venv.
    bin_dir = Path(os.path.abspath(sys.executable)).parent
    script = bin_dir / ("miodesk.exe" if sys.platform == "win32" else "miodesk")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [os.path.abspath(sys.executable), "-m", "miodesk"]


def quote_exec_argument(argument: str) -> str:
    """One argument of an Exec line, quoted per the Desktop Entry spec, as it is written in the file."""
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in argument):
        raise MioDeskError(f"Cannot write a desktop entry for {argument!r}: the path holds control characters.")
    # '%' starts a field code (%F); a literal one is doubled.
    argument = argument.replace("%", "%%")
    if any(ch in _RESERVED for ch in argument):
        argument = '"' + re.sub(r'(["`$\\])', r"\\\1", argument) + '"'
    # The value is also a key-file string, where a backslash is itself escaped.
    return _escape_string(argument)


def _escape_string(value: str) -> str:
    return value.replace("\\", "\\\\")


def exec_line(command: Sequence[str]) -> str:
    return " ".join(quote_exec_argument(part) for part in command) + " %F"


def desktop_entry(command: Sequence[str]) -> str:
    """The text of miodesk.desktop for a launcher `command`."""
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        "Name=MioDesk",
        "Name[ja]=MioDesk",
        "GenericName=Text Reader",
        "GenericName[ja]=読み上げリーダー",
        "Comment=Read documents aloud offline with natural Japanese and English speech",
        "Comment[ja]=文書を自然な日本語・英語の音声でオフライン読み上げ",
        f"Exec={exec_line(command)}",
        # TryExec hides the entry once the program is gone (pipx uninstall) instead of a broken item.
        f"TryExec={_escape_string(command[0])}",
        f"Icon={ICON_NAME}",
        "Terminal=false",
        "StartupNotify=true",
        f"StartupWMClass={STARTUP_WM_CLASS}",
        "Categories=Utility;Accessibility;",
        "Keywords=text to speech;TTS;read aloud;reader;ebook;speech;",
        "Keywords[ja]=読み上げ;音声合成;テキスト;電子書籍;",
        "MimeType=" + "".join(f"{mime};" for mime in MIME_TYPES),
        "X-MioDesk-Installed-By=miodesk --install-desktop-entry",
    ]
    return "\n".join(lines) + "\n"


def _svg_icon() -> Path:
    from miodesk.ui.assets import icon_path  # plain paths; importing QtGui there loads no platform

    return icon_path(ICON_NAME)


def render_png(svg: Path, size: int) -> bytes:
    """`svg` drawn at size×size (QImage + QtSvg: works with no display and no QApplication)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise MioDeskError(f"Cannot draw the icon {svg}.")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[call-overload]  # the stub says bytes; PySide6 takes only str here
    buffer.close()
    return bytes(data.data())


def _refresh_caches(base: Path, report: Report, run: Callable[..., object] = subprocess.run) -> None:
    """Tell the desktop about the change where the tools exist; their failure changes nothing we wrote."""
    applications = base / "applications"
    commands = []
    if shutil.which("update-desktop-database") and applications.is_dir():
        commands.append(["update-desktop-database", "-q", str(applications)])
    hicolor = base / "icons" / "hicolor"
    # Only refresh a cache that exists: a new cache that later goes stale would hide icons from GTK,
    # which otherwise notices new files by the folder's time stamp.
    if shutil.which("gtk-update-icon-cache") and (hicolor / "icon-theme.cache").is_file():
        commands.append(["gtk-update-icon-cache", "-q", "-t", "-f", str(hicolor)])
    for command in commands:
        try:
            run(command, capture_output=True, timeout=60, check=False)
            report.tools.append(command[0])
        except (OSError, subprocess.SubprocessError) as error:
            log.warning("%s failed: %s", command[0], error)


def _write(path: Path, data: bytes, report: Report) -> None:
    atomic_write_bytes(path, data)
    os.chmod(path, 0o644)  # the temporary file was private; these are ordinary readable files
    report.written.append(path)


def install(base: Path | None = None, command: Sequence[str] | None = None) -> Report:
    """Write the desktop entry and the icons (replacing earlier ones) under `base` (XDG_DATA_HOME)."""
    base = base or data_home()
    command = list(command or launcher_command())
    report = Report()
    svg = _svg_icon()
    try:
        svg_bytes = svg.read_bytes()
    except OSError as error:
        raise MioDeskError(f"Cannot read the icon {svg}: {error.strerror or error}.") from None
    scalable, *pngs = icon_paths(base)
    try:
        for path, size in zip(pngs, PNG_SIZES, strict=True):
            _write(path, render_png(svg, size), report)
        _write(scalable, svg_bytes, report)
        # The entry last: it names the icon, which is then already there.
        _write(desktop_file_path(base), desktop_entry(command).encode("utf-8"), report)
    except OSError as error:
        where = error.filename or base
        raise MioDeskError(f"Cannot write {where}: {error.strerror or error}.") from None
    _refresh_caches(base, report)
    log.info("desktop entry installed: %s", ", ".join(map(str, report.written)))
    return report


def uninstall(base: Path | None = None) -> Report:
    """Remove what `install` wrote under `base`; files that are not there are no error."""
    base = base or data_home()
    report = Report()
    for path in (desktop_file_path(base), *icon_paths(base)):
        try:
            path.unlink()
            report.removed.append(path)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise MioDeskError(f"Cannot remove {path}: {error.strerror or error}.") from None
    if report.removed:
        _refresh_caches(base, report)
    log.info("desktop entry removed: %s", ", ".join(map(str, report.removed)) or "nothing was installed")
    return report
