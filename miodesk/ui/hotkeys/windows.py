"""Windows: RegisterHotKey for the shortcuts, and a synthesised Ctrl+C to take the selection.

RegisterHotKey with no window posts WM_HOTKEY to the UI thread's message queue, where Qt's event
dispatcher hands every message to the native event filters before dispatching it: `HotkeyFilter`
picks ours out. A key another app registered fails with ERROR_HOTKEY_ALREADY_REGISTERED: taken.

Windows has no selection an app can ask for, so `SelectionCopier` copies it: it waits for the user to
let go of the shortcut's modifiers (Ctrl+C with Alt and Shift still held is another key), sends Ctrl+C
with SendInput, waits for the clipboard to change, reads it, and puts back what the clipboard held
before (every format Qt can read back). When nothing changes within COPY_TIMEOUT_MS, nothing was
selected: the user's clipboard was never touched.

Every native call goes through `Win32`, the one seam: tests give it a fake; only the real one, built
inside `sys.platform == "win32"` branches, touches user32.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable

from PySide6.QtCore import QAbstractNativeEventFilter, QByteArray, QCoreApplication, QMimeData, QObject, QTimer
from PySide6.QtGui import QClipboard

from miodesk.ui.hotkeys.base import ShortcutBackend, ShortcutState, Status
from miodesk.ui.hotkeys.keys import KeyCombo

log = logging.getLogger(__name__)

WM_HOTKEY = 0x0312
ERROR_HOTKEY_ALREADY_REGISTERED = 1409
FIRST_HOTKEY_ID = 0xB001  # an application's hotkey ids are 0x0000-0xBFFF
PROBE_HOTKEY_ID = 0xBFF0
VK_CONTROL, VK_SHIFT, VK_MENU, VK_LWIN, VK_RWIN, VK_C = 0x11, 0x10, 0x12, 0x5B, 0x5C, 0x43
HELD_MODIFIERS = (VK_CONTROL, VK_SHIFT, VK_MENU, VK_LWIN, VK_RWIN)
POLL_MS = 15
RELEASE_TIMEOUT_MS = 1500  # how long the copy waits for the user to let go of the shortcut's modifiers
COPY_TIMEOUT_MS = 600  # how long it waits for the app to put its selection on the clipboard


class Win32:
    """The native calls, nothing else (the seam tests replace)."""

    def register_hotkey(self, ident: int, modifiers: int, key: int) -> int:
        """0 when registered, else the Windows error code."""
        if sys.platform == "win32":
            user32 = ctypes.WinDLL("user32", use_last_error=True)
            if user32.RegisterHotKey(None, ident, modifiers, key):
                return 0
            return ctypes.get_last_error() or 1
        raise OSError("RegisterHotKey exists on Windows only")

    def unregister_hotkey(self, ident: int) -> None:
        if sys.platform == "win32":
            ctypes.WinDLL("user32", use_last_error=True).UnregisterHotKey(None, ident)

    def keys_down(self, keys: tuple[int, ...]) -> bool:
        """Whether any of these virtual keys is held now."""
        if sys.platform == "win32":
            state = ctypes.WinDLL("user32").GetAsyncKeyState
            state.restype = ctypes.c_short
            return any(state(key) & 0x8000 for key in keys)
        return False

    def send_keys(self, strokes: list[tuple[int, bool]]) -> bool:
        """Type (virtual key, key up?) strokes as if on the keyboard; False when Windows refused them
        (another program's window with higher integrity has the focus)."""
        if sys.platform == "win32":
            from ctypes import wintypes

            class KEYBDINPUT(ctypes.Structure):
                _fields_ = [("wVk", wintypes.WORD), ("wScan", wintypes.WORD), ("dwFlags", wintypes.DWORD),
                            ("time", wintypes.DWORD), ("dwExtraInfo", ctypes.c_size_t)]

            class MOUSEINPUT(ctypes.Structure):  # the union's largest member sets INPUT's size
                _fields_ = [("dx", wintypes.LONG), ("dy", wintypes.LONG), ("mouseData", wintypes.DWORD),
                            ("dwFlags", wintypes.DWORD), ("time", wintypes.DWORD), ("dwExtraInfo", ctypes.c_size_t)]

            class INPUTUNION(ctypes.Union):
                _fields_ = [("ki", KEYBDINPUT), ("mi", MOUSEINPUT)]

            class INPUT(ctypes.Structure):
                _fields_ = [("type", wintypes.DWORD), ("union", INPUTUNION)]

            keyeventf_keyup, input_keyboard = 0x0002, 1
            inputs = (INPUT * len(strokes))()
            for item, (key, up) in zip(inputs, strokes, strict=True):
                item.type = input_keyboard
                item.union.ki = KEYBDINPUT(key, 0, keyeventf_keyup if up else 0, 0, 0)
            sent = ctypes.WinDLL("user32", use_last_error=True).SendInput(len(strokes), inputs, ctypes.sizeof(INPUT))
            return bool(sent == len(strokes))
        return False

    def clipboard_sequence(self) -> int:
        """GetClipboardSequenceNumber: changes with every change of the clipboard."""
        if sys.platform == "win32":
            return int(ctypes.WinDLL("user32").GetClipboardSequenceNumber())
        return 0


def hotkey_message(address: int) -> tuple[int, int] | None:
    """(message, wParam) of the MSG at `address` (what Qt hands a native event filter on Windows)."""
    from ctypes import wintypes

    message = wintypes.MSG.from_address(address)
    return int(message.message), int(message.wParam or 0)


class HotkeyFilter(QAbstractNativeEventFilter):
    """Picks WM_HOTKEY for our ids out of the UI thread's messages."""

    def __init__(self, pressed: Callable[[int], bool]) -> None:
        super().__init__()
        self._pressed = pressed

    def nativeEventFilter(self, eventType, message):  # noqa: N802 - Qt's name
        # "windows_dispatcher_MSG": a message posted to the thread (RegisterHotKey without a window).
        if bytes(QByteArray(eventType).data()).startswith(b"windows_"):
            found = hotkey_message(int(message))
            if found is not None and found[0] == WM_HOTKEY and self._pressed(found[1]):
                return True, 0
        return False, 0


class WindowsBackend(ShortcutBackend):
    name = "windows"
    grabs_keys = True

    def __init__(self, api: Win32 | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent=parent)
        self.api = api or Win32()
        self._ids: dict[int, str] = {}  # hotkey id → action
        self._keys: dict[tuple[int, int], int] = {}  # (modifiers, key) → hotkey id
        self._filter: HotkeyFilter | None = None

    def bind(self, shortcuts: dict[str, KeyCombo | None]) -> None:
        self._unregister_all()
        if self._filter is None and any(shortcuts.values()):
            self._filter = HotkeyFilter(self._pressed)
            app = QCoreApplication.instance()
            if app is not None:
                app.installNativeEventFilter(self._filter)
        states: dict[str, ShortcutState] = {}
        for number, (action, combo) in enumerate(shortcuts.items()):
            if combo is None:
                states[action] = ShortcutState(Status.OFF)
                continue
            key = combo.windows_key()
            if key in self._keys:
                states[action] = ShortcutState(Status.TAKEN, f"also MioDesk's {self._ids[self._keys[key]]}")
                continue
            ident = FIRST_HOTKEY_ID + number
            error = self.api.register_hotkey(ident, *key)
            if error == 0:
                self._ids[ident], self._keys[key] = action, ident
                states[action] = ShortcutState(Status.ACTIVE, combo.portable())
            elif error == ERROR_HOTKEY_ALREADY_REGISTERED:
                states[action] = ShortcutState(Status.TAKEN, f"{combo.portable()} is registered by another app")
            else:
                states[action] = ShortcutState(Status.UNAVAILABLE, f"RegisterHotKey failed with error {error}")
        self._set_states(states)

    def held_by_us(self, combo: KeyCombo) -> bool:
        return combo.windows_key() in self._keys

    def probe(self, combo: KeyCombo) -> Status | None:
        if self.held_by_us(combo):
            return Status.ACTIVE
        error = self.api.register_hotkey(PROBE_HOTKEY_ID, *combo.windows_key())
        if error == 0:
            self.api.unregister_hotkey(PROBE_HOTKEY_ID)
            return Status.ACTIVE
        return Status.TAKEN if error == ERROR_HOTKEY_ALREADY_REGISTERED else None

    def close(self) -> None:
        self._unregister_all()
        if self._filter is not None:
            app = QCoreApplication.instance()
            if app is not None:
                app.removeNativeEventFilter(self._filter)
            self._filter = None
        super().close()

    def _unregister_all(self) -> None:
        for ident in self._ids:
            self.api.unregister_hotkey(ident)
        self._ids, self._keys = {}, {}

    def _pressed(self, ident: int) -> bool:
        action = self._ids.get(ident)
        if action is None:
            return False
        log.info("global shortcut pressed: %s", action)
        self.activated.emit(action)
        return True


def clipboard_snapshot(clipboard: QClipboard) -> QMimeData | None:
    """A copy of everything on the clipboard that Qt can read back (None: it was empty)."""
    mime = clipboard.mimeData()
    if mime is None or not mime.formats():
        return None
    copy = QMimeData()
    for name in mime.formats():
        copy.setData(name, mime.data(name))
    return copy


class SelectionCopier(QObject):
    """Takes the selection of the app in front by copying it, and restores the user's clipboard."""

    def __init__(self, clipboard: QClipboard, api: Win32 | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.clipboard = clipboard
        self.api = api or Win32()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._step)
        self._done: Callable[[str], None] | None = None
        self._saved: QMimeData | None = None
        self._sequence = 0
        self._waited_ms = 0
        self._phase = ""

    def copy_selection(self, done: Callable[[str], None]) -> None:
        """Call `done(text)` with the selected text ("" when nothing was selected or copying failed)."""
        if self._done is not None:
            return  # a copy is under way: this press is the same request
        self._done = done
        self._saved = clipboard_snapshot(self.clipboard)
        self._phase, self._waited_ms = "release", 0
        self._timer.start()
        self._step()

    def _step(self) -> None:
        if self._phase == "release":
            if self.api.keys_down(HELD_MODIFIERS) and self._waited_ms < RELEASE_TIMEOUT_MS:
                self._waited_ms += POLL_MS
                return
            self._sequence = self.api.clipboard_sequence()
            strokes = [(VK_CONTROL, False), (VK_C, False), (VK_C, True), (VK_CONTROL, True)]
            if not self.api.send_keys(strokes):
                log.warning("Windows refused the synthesised Ctrl+C (the window in front runs as administrator?)")
                self._finish("", changed=False)
                return
            self._phase, self._waited_ms = "copy", 0
        elif self._phase == "copy":
            if self.api.clipboard_sequence() != self._sequence:
                self._phase = "read"  # read on the next tick: the app may still be adding formats
            elif self._waited_ms >= COPY_TIMEOUT_MS:
                log.info("nothing was copied within %d ms: no selection", COPY_TIMEOUT_MS)
                self._finish("", changed=False)
            else:
                self._waited_ms += POLL_MS
        elif self._phase == "read":
            mime = self.clipboard.mimeData()
            self._finish(mime.text() if mime is not None and mime.hasText() else "", changed=True)

    def _finish(self, text: str, changed: bool) -> None:
        self._timer.stop()
        self._phase = ""
        if changed:
            # Put back what the user had; an empty clipboard stays empty.
            if self._saved is not None:
                self.clipboard.setMimeData(self._saved)
            else:
                self.clipboard.clear()
        self._saved = None
        done, self._done = self._done, None
        if done is not None:
            done(text)
