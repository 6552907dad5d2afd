"""Take the text to read from the selection or the clipboard of whatever app has it, on every platform.

- X11: the PRIMARY selection (what is highlighted now, `QClipboard.Mode.Selection`), else the clipboard.
- Wayland: `wl-paste --primary` where wl-clipboard is installed (a window in the background gets no
  fresh selection from the compositor through Qt), else Qt's selection, else the clipboard.
- Windows: there is no selection to ask for: a synthesised Ctrl+C copies it, and the user's clipboard
  is put back afterwards (`miodesk.ui.hotkeys.windows.SelectionCopier`).
- macOS: apps give their selection to MioDesk through the Services menu (`hotkeys.macos`); asked
  from a command, MioDesk reads the clipboard and says so.

The text is cleaned before it is read: control characters and undecodable bytes (a binary selection)
are left out, and a selection longer than MAX_READ_CHARS is cut at a sentence or line end before it.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject
from PySide6.QtGui import QClipboard

from miodesk.ui.background import UiDispatcher, run_in_background
from miodesk.ui.hotkeys import wayland_session

log = logging.getLogger(__name__)

SELECTION, CLIPBOARD = "selection", "clipboard"
# About two hours of speech; a selection of a whole book is cut here (with a notice).
MAX_READ_CHARS = 100_000
WL_PASTE_TIMEOUT_S = 3.0
# C0 and C1 control characters other than tab, line and page breaks (NEL is a line break too), the
# replacement character of undecodable bytes and the two noncharacters: what a binary selection is made of.
_BINARY = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x84\x86-\x9f\ufffd\ufffe\uffff]")
# Where a cut may end: after a sentence end or at a line break.
_CUT_POINTS = re.compile(r"[.!?。！？」』](?=\s)|[。！？」』]|\n")


@dataclass
class TakenText:
    text: str  # what will be read; "" when there is nothing to read
    asked: str  # SELECTION or CLIPBOARD: what the user asked for
    source: str  # where the text came from (the clipboard when there was no selection to read)
    binary_removed: int = 0  # characters left out as binary
    cut_from: int = 0  # the length before it was cut to MAX_READ_CHARS; 0 when it was not cut

    @property
    def fell_back(self) -> bool:
        return self.source != self.asked


def clean_text(raw: str, limit: int = MAX_READ_CHARS) -> tuple[str, int, int]:
    """(text to read, binary characters left out, length before the cut or 0 when not cut).

    Only the first `limit` * 2 characters are looked at, so a clipboard of hundreds of megabytes is
    not scanned whole.
    """
    text, removed = _BINARY.subn("", raw[: limit * 2])
    cut_from = 0
    if len(text) > limit or len(raw) > limit * 2:
        cut_from = len(raw)
        window = text[:limit]
        ends = [m.end() for m in _CUT_POINTS.finditer(window, max(0, limit - 2000))]
        text = window[: ends[-1]] if ends else window
    return text.strip(), removed, cut_from


class TextSource(QObject):
    """Gets the selection or the clipboard, asynchronously (the Windows copy and wl-paste take a moment)."""

    def __init__(self, clipboard: QClipboard, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.clipboard = clipboard
        self._ui = UiDispatcher(self)
        self._copier = None
        if sys.platform == "win32":
            from miodesk.ui.hotkeys.windows import SelectionCopier

            self._copier = SelectionCopier(clipboard, parent=self)

    def take(self, asked: str, done: Callable[[TakenText], None]) -> None:
        """Call `done` with the text of the selection (SELECTION) or the clipboard (CLIPBOARD)."""

        def finish(text: str, source: str) -> None:
            cleaned, removed, cut_from = clean_text(text)
            taken = TakenText(cleaned, asked, source, removed, cut_from)
            log.info("took %d characters from the %s (asked: the %s; %d binary left out; cut from %d)",
                     len(cleaned), source, asked, removed, cut_from)
            done(taken)

        if asked == CLIPBOARD:
            finish(self.clipboard_text(), CLIPBOARD)
        elif self._copier is not None:
            self._copier.copy_selection(lambda text: finish(text, SELECTION))
        elif sys.platform == "darwin":
            finish(self.clipboard_text(), CLIPBOARD)  # no selection to ask for outside the Services menu
        elif wayland_session() and shutil.which("wl-paste"):
            run_in_background(self._ui, "wl-paste", wl_paste_primary,
                              lambda text: self._selection_or_clipboard(text, finish),
                              lambda error: self._selection_or_clipboard(self.qt_selection_text(), finish))
        else:
            self._selection_or_clipboard(self.qt_selection_text(), finish)

    def _selection_or_clipboard(self, selection: str, finish: Callable[[str, str], None]) -> None:
        if selection.strip():
            finish(selection, SELECTION)
        else:
            finish(self.clipboard_text(), CLIPBOARD)

    def qt_selection_text(self) -> str:
        """The PRIMARY selection as Qt sees it ("" where the platform has none)."""
        if not self.clipboard.supportsSelection():
            return ""
        return mime_text(self.clipboard, QClipboard.Mode.Selection)

    def clipboard_text(self) -> str:
        return mime_text(self.clipboard, QClipboard.Mode.Clipboard)


def mime_text(clipboard: QClipboard, mode: QClipboard.Mode) -> str:
    """The plain text on the clipboard or selection; the text of its HTML when it offers only HTML."""
    mime = clipboard.mimeData(mode)
    if mime is None:
        return ""
    if mime.hasText() and mime.text().strip():
        return mime.text()
    if mime.hasHtml():
        from miodesk.text.documents import DocumentError, document_from_html

        try:
            return document_from_html(mime.html()[: MAX_READ_CHARS * 8], "").text
        except DocumentError:
            return ""
    return ""


def wl_paste_primary() -> str:
    """The Wayland primary selection through wl-clipboard (wlroots, KDE: the data-control protocol)."""
    result = subprocess.run(["wl-paste", "--primary", "--no-newline", "--type", "text"], capture_output=True,
                            timeout=WL_PASTE_TIMEOUT_S)
    if result.returncode != 0:
        log.info("wl-paste --primary: %s", result.stderr.decode("utf-8", "replace").strip())
        return ""
    return result.stdout.decode("utf-8", "replace")
