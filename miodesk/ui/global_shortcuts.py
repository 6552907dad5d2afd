"""Read anything, anywhere: the global shortcuts, `miodesk --read-selection`/`--read-clipboard`, and
macOS's "Read with MioDesk" service all end here.

`GlobalReader` belongs to the main window. Asked to read (a shortcut pressed, a command handed over by
a later launch, the Services menu), it stops the reading when one is under way (pressing the key again
is how to stop); otherwise it takes the selection or the clipboard (`miodesk.ui.selection`), shows
it in the window's reader view — without bringing the window to the front — and reads it from the
start. A tray notification says what is being read; problems (nothing selected, binary data left out,
a long selection cut) are said there and to the screen reader, and nothing is read when there is
nothing to read.

The shortcuts themselves come from a platform backend (`miodesk.ui.hotkeys`), bound when `start()` is
called (the app does; tests choose their own backend) and again when the settings change. Their state
(active, taken by another app, refused, unavailable) is what Settings › Shortcuts shows.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication

from miodesk.text.documents import DocumentError, document_from_text
from miodesk.ui import accessibility
from miodesk.ui.hotkeys.base import ACTIONS, READ_CLIPBOARD, READ_SELECTION, ShortcutBackend, ShortcutState, Status
from miodesk.ui.hotkeys.keys import KeyCombo, KeyComboError
from miodesk.ui.selection import CLIPBOARD, SELECTION, TakenText, TextSource

log = logging.getLogger(__name__)

KINDS = {READ_SELECTION: SELECTION, READ_CLIPBOARD: CLIPBOARD}
EXCERPT_CHARS = 60  # how much of the text the notification quotes
NOTIFICATION_MS = 4000


def shortcut_texts(settings) -> dict[str, str]:
    """{action: the shortcut as the settings keep it} ("" = none)."""
    return {READ_SELECTION: settings.selection_shortcut, READ_CLIPBOARD: settings.clipboard_shortcut}


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


class GlobalReader(QObject):
    """Reads the selection or the clipboard on request; owns the global shortcuts' backend."""

    statesChanged = Signal()
    # What was read and where from, after the document is shown: (SELECTION or CLIPBOARD, characters).
    readingStarted = Signal(str, int)

    def __init__(self, window: Any, source: TextSource | None = None) -> None:
        """`window`: the MainWindow (not imported here: it imports this module)."""
        super().__init__(window)
        self.window = window
        self.controller = window.controller
        self.settings = window.settings
        self.source = source or TextSource(QGuiApplication.clipboard(), self)
        self.backend: ShortcutBackend | None = None
        self._bound: dict[str, str] | None = None  # the shortcut texts bound last
        self._invalid: dict[str, KeyComboError] = {}
        self._taking = False
        self._paused: dict[str, ShortcutState] | None = None  # the states before a key field took the keys
        window.global_reader = self
        window.quitRequested.connect(self.close)

    # --- the shortcuts ---------------------------------------------------------------------------------------

    def start(self, backend: ShortcutBackend | None = None) -> None:
        """Bind the shortcuts of the settings with `backend` (default: this platform's)."""
        if self.backend is not None:
            return
        if backend is None:
            from miodesk.ui.hotkeys import create_backend

            backend = create_backend(self)
        self.backend = backend
        backend.setParent(self)
        backend.activated.connect(self.read_action)
        backend.textReceived.connect(self.read_text)
        backend.statesChanged.connect(self.statesChanged)
        self.apply_settings()

    def apply_settings(self) -> None:
        """Bind the shortcuts the settings name now (nothing happens when they did not change)."""
        texts = shortcut_texts(self.settings)
        if self.backend is None or texts == self._bound:
            return
        self._bound = texts
        self._invalid = {}
        combos: dict[str, KeyCombo | None] = {}
        for action, text in texts.items():
            combos[action] = None
            if text.strip():
                try:
                    combos[action] = KeyCombo.parse(text)
                except KeyComboError as error:
                    self._invalid[action] = error
                    log.warning("global shortcut %s: %s", action, error)
        self.backend.bind(combos)

    def pause_for_recording(self, paused: bool) -> None:
        """Let go of the keys while Settings records a new one (a grabbed key never reaches the field),
        and take them again after. The desktop's portal keeps its keys: pressed there, they still read."""
        if self.backend is None or not self.backend.grabs_keys:
            return
        if paused and self._paused is None:
            self._paused = self.states()
            self.backend.bind({action: None for action in ACTIONS})
            log.info("global shortcuts let go while a key field records")
        elif not paused and self._paused is not None:
            self._paused, self._bound = None, None
            self.apply_settings()

    def state(self, action: str) -> ShortcutState:
        if self._paused is not None:
            return self._paused[action]
        if action in self._invalid:
            return ShortcutState(Status.UNAVAILABLE, str(self._invalid[action]))
        if self.backend is None:
            return ShortcutState(Status.OFF if not shortcut_texts(self.settings)[action].strip() else Status.PENDING)
        return self.backend.state(action)

    def states(self) -> dict[str, ShortcutState]:
        return {action: self.state(action) for action in ACTIONS}

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()

    # --- reading -----------------------------------------------------------------------------------------

    def read_action(self, action: str) -> None:
        """A shortcut was pressed."""
        self.read(KINDS.get(action, SELECTION))

    def read(self, kind: str) -> None:
        """Read the selection (SELECTION) or the clipboard (CLIPBOARD); stop when reading already."""
        if self.controller.state != "idle":
            log.info("global reading: stop (asked to read the %s while %s)", kind, self.controller.state)
            self.controller.stop()
            self.notify(self.tr("Stopped reading."))
            return
        if self._taking:
            return  # the copy of the last press is still under way (Windows)
        self._taking = True
        self.source.take(kind, self._taken)

    def read_text(self, text: str) -> None:
        """Text an app handed over (macOS Services): read as a selection."""
        from miodesk.ui.selection import clean_text

        cleaned, removed, cut_from = clean_text(text)
        self._taking = True
        self._taken(TakenText(cleaned, SELECTION, SELECTION, removed, cut_from))

    def _taken(self, taken: TakenText) -> None:
        self._taking = False
        if not taken.text:
            if taken.asked == CLIPBOARD:
                message = self.tr("The clipboard holds no text to read.")
            elif taken.fell_back:
                message = self.tr("Nothing is selected, and the clipboard holds no text to read.")
            else:
                message = self.tr("Nothing is selected.")
            if taken.binary_removed:
                message = self.tr("The selection holds no readable text.")
            self.notify(message, problem=True)
            return
        title = self.tr("Selection") if taken.source == SELECTION else self.tr("Clipboard")
        try:
            document = document_from_text(taken.text, title)
        except DocumentError as error:
            self.notify(str(error), problem=True)
            return
        self.controller.set_document(document)
        self.controller.play(0)
        log.info("global reading: the %s, %d characters", taken.source, len(taken.text))
        self.readingStarted.emit(taken.source, len(taken.text))
        notes = []
        if taken.fell_back:
            notes.append(self.tr("Nothing is selected, so MioDesk reads the clipboard."))
        if taken.binary_removed:
            notes.append(self.tr("Binary data in it was left out."))
        if taken.cut_from:
            notes.append(self.tr("It is long: MioDesk reads its first {0} characters.").format(
                f"{len(taken.text):,}" if len(taken.text) >= 1000 else len(taken.text)))
        heading = (self.tr("Reading the selection: “{0}”") if taken.source == SELECTION
                   else self.tr("Reading the clipboard: “{0}”")).format(excerpt(taken.text))
        self.notify(" ".join([heading, *notes]), problem=bool(notes))

    def notify(self, text: str, problem: bool = False) -> None:
        """Say `text` in the tray (the window may be hidden), the status bar, and — for a problem — to
        the screen reader."""
        log.info("global reading: %s", text)
        tray = getattr(self.window, "tray", None)
        if tray is not None and tray.available():
            tray.icon.showMessage("MioDesk", text, tray.icon.icon(), NOTIFICATION_MS)
        self.window.statusBar().showMessage(text, NOTIFICATION_MS + 1000)
        if problem:
            accessibility.announce(self.window, text)
