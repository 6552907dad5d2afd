"""Settings › Shortcuts: the two global shortcuts, what became of them, and the commands.

Each shortcut is recorded in a key field (press the new keys; Backspace or Delete empties it, Tab
moves on). A key another app holds is said beside the field as soon as it is recorded (where the
platform can tell: X11 and Windows try it), and again after OK from the live binding; a key without
Ctrl, Alt or the Super/Windows key is refused at once, since it would take typing from every app.
Each field's state line is also its accessible description, and a new state is announced.

The note below names the commands, `miodesk --read-selection` and `--read-clipboard`, which any
desktop's own keyboard settings can run (the way on Wayland desktops without the portal, and Sway).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFocusEvent, QHideEvent, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QFormLayout, QKeySequenceEdit, QLabel, QPushButton, QSizePolicy, QWidget

from miodesk.settings import Settings
from miodesk.ui import accessibility
from miodesk.ui.hotkeys.base import READ_CLIPBOARD, READ_SELECTION, ShortcutState, Status
from miodesk.ui.hotkeys.keys import KeyCombo, KeyComboError
from miodesk.ui.theme import error_text

if TYPE_CHECKING:
    from miodesk.ui.global_shortcuts import GlobalReader

PORTABLE = QKeySequence.SequenceFormat.PortableText
NATIVE = QKeySequence.SequenceFormat.NativeText


class ShortcutEdit(QKeySequenceEdit):
    """One key combination; bare Backspace/Delete empties it (a bare key is never a global shortcut)."""

    focusChanged = Signal(bool)  # True when it takes the focus (and records keys)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMaximumSequenceLength(1)

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.focusChanged.emit(True)
        super().focusInEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.focusChanged.emit(False)
        super().focusOutEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        bare = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.NoModifier
        if bare and event.key() in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            self.clear()
            self.editingFinished.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def portable(self) -> str:
        return self.keySequence().toString(PORTABLE)


class ShortcutsPage(QWidget):
    def __init__(self, settings: Settings, reader: GlobalReader | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsPage")
        self.reader = reader
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setVerticalSpacing(10)
        self.edits: dict[str, ShortcutEdit] = {}
        self.labels: dict[str, QLabel] = {}
        self.state_lines: dict[str, QLabel] = {}
        self._values: dict[str, str] = {}
        for action, name in ((READ_SELECTION, "selectionShortcut"), (READ_CLIPBOARD, "clipboardShortcut")):
            edit = ShortcutEdit()
            edit.setObjectName(name)
            label = QLabel()
            label.setBuddy(edit)
            line = QLabel()
            line.setObjectName(f"{name}State")
            line.setWordWrap(True)
            line.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)  # the field's width
            line.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
            form.addRow(label, edit)
            form.addRow("", line)
            edit.editingFinished.connect(lambda action=action: self._edited(action))
            edit.focusChanged.connect(self._recording)
            self.edits[action], self.labels[action], self.state_lines[action] = edit, label, line
        self.defaults_button = QPushButton()
        self.defaults_button.setObjectName("shortcutDefaults")
        self.defaults_button.clicked.connect(self.restore_defaults)
        form.addRow("", self.defaults_button)
        self.note = QLabel()
        self.note.setObjectName("note")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.note)
        self.retranslate()
        self.load(settings)
        if reader is not None:
            reader.statesChanged.connect(self._show_states)

    def retranslate(self) -> None:
        # Mnemonics S, B, D: free on this page and on the dialog's buttons (O and C are OK and Cancel).
        self.labels[READ_SELECTION].setText(self.tr("Read the &selection:"))
        self.labels[READ_CLIPBOARD].setText(self.tr("Read the clip&board:"))
        self.defaults_button.setText(self.tr("Restore &defaults"))
        commands = "miodesk --read-selection, miodesk --read-clipboard"
        if sys.platform == "darwin":
            text = self.tr(
                "On macOS, select text in any app and choose Services › Read with MioDesk in the app's menu; "
                "give it a key in System Settings › Keyboard › Keyboard Shortcuts › Services. "
                "Press the key again while MioDesk reads to stop it. Shortcuts.app can run the commands too: {0}."
            ).format(commands)
        else:
            text = self.tr(
                "These keys work in every app, also while the MioDesk window is hidden; pressing one again while "
                "MioDesk reads stops it. Your desktop's own keyboard settings can run the commands instead: {0}."
            ).format(commands)
        self.note.setText(text)
        for action in self.edits:
            self._show_state(action)

    def load(self, settings: Settings) -> None:
        self._values = {READ_SELECTION: settings.selection_shortcut, READ_CLIPBOARD: settings.clipboard_shortcut}
        self._original = dict(self._values)
        for action, edit in self.edits.items():
            edit.setKeySequence(QKeySequence.fromString(self._values[action], PORTABLE))
        self._show_states()

    def selection_shortcut(self) -> str:
        """The settings' selection_shortcut as the page shows it ("" = none)."""
        return self._values[READ_SELECTION]

    def clipboard_shortcut(self) -> str:
        return self._values[READ_CLIPBOARD]

    def restore_defaults(self) -> None:
        defaults = Settings()
        self._values = {READ_SELECTION: defaults.selection_shortcut, READ_CLIPBOARD: defaults.clipboard_shortcut}
        for action, edit in self.edits.items():
            edit.setKeySequence(QKeySequence.fromString(self._values[action], PORTABLE))
        self._show_states(announce=True)

    def _recording(self, focused: bool) -> None:
        """MioDesk's own global keys would never reach a field that records keys: let go of them meanwhile."""
        if self.reader is not None:
            self.reader.pause_for_recording(focused)

    # --- what the fields say ------------------------------------------------------------------------------

    def _edited(self, action: str) -> None:
        """A key was recorded (or the field emptied): keep it if it can be a global shortcut."""
        edit = self.edits[action]
        text = edit.portable()
        problem = ""
        if text:
            try:
                combo = KeyCombo.parse(text)
            except KeyComboError as error:
                problem = self._combo_problem(error)
            else:
                text = combo.portable()
                other = next((a for a in self.edits if a != action and self._values[a] == text), None)
                if other == READ_CLIPBOARD:
                    problem = self.tr("{0} already reads the clipboard.").format(self._native(text))
                elif other == READ_SELECTION:
                    problem = self.tr("{0} already reads the selection.").format(self._native(text))
        if problem:
            # Back to what it was; the reason stays beside the field.
            edit.setKeySequence(QKeySequence.fromString(self._values[action], PORTABLE))
            self._set_line(action, problem, error=True, announce=True)
            return
        if text != self._values[action]:
            self._values[action] = text
            self._show_state(action, announce=True)

    def _combo_problem(self, error: KeyComboError) -> str:
        if error.reason in ("no-modifier", "shift-only"):
            return self.tr("A global shortcut needs Ctrl, Alt or the Super (Windows) key, or it would take the key "
                           "from every app.")
        return self.tr("{0} cannot be a global shortcut.").format(self._native(error.text))

    def _show_states(self, announce: bool = False) -> None:
        for action in self.edits:
            self._show_state(action, announce)

    def _show_state(self, action: str, announce: bool = False) -> None:
        text = self._values.get(action, "")
        if not text:
            self._set_line(action, self.tr("No shortcut."), announce=announce)
            return
        combo = KeyCombo.parse(text) if _valid(text) else None
        if combo is None:
            self._set_line(action, self.tr("{0} cannot be a global shortcut.").format(self._native(text)), error=True,
                           announce=announce)
            return
        live = self.reader.state(action) if self.reader is not None else None
        backend = self.reader.backend if self.reader is not None else None
        unchanged = self._values[action] == self._original[action]
        if live is not None and (unchanged or live.status in (Status.UNAVAILABLE, Status.SERVICES)):
            message, error = self.state_text(live, combo)
        else:
            probed = backend.probe(combo) if backend is not None and not backend.held_by_us(combo) else None
            if probed == Status.TAKEN:
                message, error = self.tr("Another app already uses {0}: choose another key.").format(
                    self._native(text)), True
            else:
                message, error = self.tr("{0} takes effect when you press OK.").format(self._native(text)), False
        self._set_line(action, message, error=error, announce=announce)

    def state_text(self, state: ShortcutState, combo: KeyCombo) -> tuple[str, bool]:
        """(what the field's line says, whether it is a problem) for a live binding."""
        key = self._native(combo.portable())
        if state.status == Status.ACTIVE:
            if state.detail and state.detail != combo.portable():  # the portal names the key it gave
                return self.tr("Works in every app: the desktop assigned {0}.").format(state.detail), False
            return self.tr("{0} works in every app.").format(key), False
        if state.status == Status.PENDING:
            return self.tr("Waiting for the desktop to confirm {0}…").format(key), False
        if state.status == Status.TAKEN:
            return self.tr("Another app already uses {0}: choose another key.").format(key), True
        if state.status == Status.REFUSED:
            return self.tr("The desktop did not allow the shortcut. Its own keyboard settings can run the "
                           "command below instead."), True
        if state.status == Status.SERVICES:
            return self.tr("Use Services › Read with MioDesk (see below)."), False
        if state.status == Status.UNAVAILABLE:
            return self.tr("This desktop lets no app set global shortcuts. Its own keyboard settings can run the "
                           "command below instead."), True
        return self.tr("No shortcut."), False

    def _set_line(self, action: str, text: str, error: bool = False, announce: bool = False) -> None:
        line = self.state_lines[action]
        changed = line.text() != text
        line.setText(text)
        line.setStyleSheet(f"color: {error_text(self.palette()).name()};" if error else "")
        self.edits[action].setAccessibleDescription(text)
        if announce and changed:
            accessibility.announce(self, text, urgent=error)

    @staticmethod
    def _native(portable: str) -> str:
        return QKeySequence.fromString(portable, PORTABLE).toString(NATIVE)

    def hideEvent(self, event: QHideEvent) -> None:
        self._recording(False)  # the dialog closed with the focus in a key field
        super().hideEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)


def _valid(text: str) -> bool:
    try:
        KeyCombo.parse(text)
    except KeyComboError:
        return False
    return True
