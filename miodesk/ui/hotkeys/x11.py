"""X11: the shortcuts grabbed on the root window with XGrabKey (python-xlib, a connection of our own).

Each shortcut is grabbed four times: as set, and with Caps Lock, Num Lock and both on, since X matches
modifier masks exactly and a shortcut should not stop working when Num Lock is on. A grab that another
client holds fails with BadAccess: that key is taken, and all four grabs are let go again.

Events arrive on our own X connection, read on the UI thread when its socket has data (QSocketNotifier).
A key held down repeats as release/press pairs with the same server time; those are not new presses.

python-xlib is imported here only, when the backend connects: it is a Linux-only dependency.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier

from miodesk.ui.hotkeys.base import ShortcutBackend, ShortcutState, Status
from miodesk.ui.hotkeys.keys import KeyCombo

log = logging.getLogger(__name__)

# X11 modifier masks (X.h); Alt, Super and Num Lock are looked up in the server's modifier map.
SHIFT_MASK, LOCK_MASK, CONTROL_MASK = 1 << 0, 1 << 1, 1 << 2
MOD_MASKS = [1 << n for n in range(3, 8)]  # Mod1 … Mod5
DEFAULT_ALT, DEFAULT_NUM_LOCK, DEFAULT_SUPER = 1 << 3, 1 << 4, 1 << 6  # Mod1, Mod2, Mod4 on most servers


class X11Backend(ShortcutBackend):
    name = "x11"
    grabs_keys = True

    def __init__(self, display_name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent=parent)
        self._display_name = display_name or os.environ.get("DISPLAY")
        self._display: Any = None
        self._root: Any = None
        self._notifier: QSocketNotifier | None = None
        self._grabs: dict[tuple[int, int], str] = {}  # (keycode, modifier mask) → action
        self._held: dict[str, tuple[int, int]] = {}  # action → its grab
        self._last_release: dict[int, int] = {}  # keycode → server time of its last release
        self._masks = {"Ctrl": CONTROL_MASK, "Shift": SHIFT_MASK, "Alt": DEFAULT_ALT, "Meta": DEFAULT_SUPER}
        self._num_lock = DEFAULT_NUM_LOCK

    # --- the connection ----------------------------------------------------------------------------------

    def _connect(self) -> str:
        """"" once connected, else why not."""
        if self._display is not None:
            return ""
        try:
            from Xlib import display as xdisplay
        except ImportError:
            return "python-xlib is not installed"
        try:
            self._display = xdisplay.Display(self._display_name)
        except Exception as error:  # noqa: BLE001 - DisplayNameError, ConnectionClosedError, OSError
            return f"cannot connect to the X server {self._display_name!r}: {error}"
        self._root = self._display.screen().root
        self._read_modifier_map()
        self._notifier = QSocketNotifier(self._display.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._read_events)
        log.info("X11 global shortcuts on display %s", self._display.get_display_name())
        return ""

    def _read_modifier_map(self) -> None:
        """Which ModN masks Alt, Super and Num Lock are on this server."""
        from Xlib import XK

        wanted = {"Alt": ("Alt_L", "Alt_R"), "Meta": ("Super_L", "Super_R"), "NumLock": ("Num_Lock",)}
        codes = {name: {self._display.keysym_to_keycode(XK.string_to_keysym(s)) for s in syms} - {0}
                 for name, syms in wanted.items()}
        found: set[str] = set()
        for index, keycodes in enumerate(self._display.get_modifier_mapping()[3:8]):
            for name, mine in codes.items():
                if name not in found and set(keycodes) & mine:
                    found.add(name)
                    if name == "NumLock":
                        self._num_lock = MOD_MASKS[index]
                    else:
                        self._masks[name] = MOD_MASKS[index]

    # --- binding -------------------------------------------------------------------------------------------

    def bind(self, shortcuts: dict[str, KeyCombo | None]) -> None:
        self._ungrab_all()
        problem = self._connect() if any(shortcuts.values()) else ""
        states: dict[str, ShortcutState] = {}
        for action, combo in shortcuts.items():
            if combo is None:
                states[action] = ShortcutState(Status.OFF)
            elif problem:
                states[action] = ShortcutState(Status.UNAVAILABLE, problem)
            else:
                states[action] = self._grab(action, combo)
        self._set_states(states)

    def held_by_us(self, combo: KeyCombo) -> bool:
        return self._display is not None and self._grab_key(combo) in self._grabs

    def probe(self, combo: KeyCombo) -> Status | None:
        if self.held_by_us(combo):
            return Status.ACTIVE
        if self._connect():
            return None
        grab = self._grab_key(combo)
        if grab is None:
            return Status.UNAVAILABLE
        taken = self._try_grab(*grab)
        if not taken:
            self._ungrab(*grab)
            self._display.sync()
        return Status.TAKEN if taken else Status.ACTIVE

    def close(self) -> None:
        self._ungrab_all()
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._display is not None:
            try:
                self._display.close()
            except Exception as error:  # noqa: BLE001 - the server may be gone already
                log.debug("closing the X connection: %s", error)
            self._display = None
        super().close()

    def _grab_key(self, combo: KeyCombo) -> tuple[int, int] | None:
        """(keycode, modifier mask) of `combo` on this server; None when its keyboard lacks the key."""
        from Xlib import XK

        keycode = self._display.keysym_to_keycode(XK.string_to_keysym(combo.x11_keysym()))
        if not keycode:
            return None
        mask = 0
        for name in combo.modifiers:
            mask |= self._masks[name]
        return keycode, mask

    def _grab(self, action: str, combo: KeyCombo) -> ShortcutState:
        grab = self._grab_key(combo)
        if grab is None:
            return ShortcutState(Status.UNAVAILABLE, f"no key {combo.x11_keysym()} on this keyboard")
        if grab in self._grabs:
            return ShortcutState(Status.TAKEN, f"also MioDesk's {self._grabs[grab]}")
        if self._try_grab(*grab):
            return ShortcutState(Status.TAKEN, f"{combo.portable()} is grabbed by another X client")
        self._grabs[grab] = action
        self._held[action] = grab
        return ShortcutState(Status.ACTIVE, combo.portable())

    def _variants(self, mask: int) -> list[int]:
        return [mask, mask | LOCK_MASK, mask | self._num_lock, mask | LOCK_MASK | self._num_lock]

    def _try_grab(self, keycode: int, mask: int) -> bool:
        """Grab all variants; True (and nothing held) when another client has one of them."""
        from Xlib import X
        from Xlib import error as xerror

        catcher = xerror.CatchError(xerror.BadAccess)
        for variant in self._variants(mask):
            self._root.grab_key(keycode, variant, True, X.GrabModeAsync, X.GrabModeAsync, onerror=catcher)
        self._display.sync()
        if catcher.get_error() is None:
            return False
        self._ungrab(keycode, mask)
        self._display.sync()
        return True

    def _ungrab(self, keycode: int, mask: int) -> None:
        for variant in self._variants(mask):
            self._root.ungrab_key(keycode, variant)

    def _ungrab_all(self) -> None:
        if self._display is None or not self._grabs:
            self._grabs, self._held = {}, {}
            return
        for keycode, mask in self._grabs:
            self._ungrab(keycode, mask)
        self._grabs, self._held = {}, {}
        try:
            self._display.sync()
        except Exception as error:  # noqa: BLE001 - the server went away: nothing is grabbed any more
            log.debug("ungrabbing: %s", error)

    # --- events ------------------------------------------------------------------------------------------

    def _read_events(self) -> None:
        from Xlib import X

        try:
            while self._display is not None and self._display.pending_events():
                event = self._display.next_event()
                if event.type == X.KeyPress:
                    self._pressed(event.detail, event.state, event.time)
                elif event.type == X.KeyRelease:
                    self._last_release[event.detail] = event.time
        except Exception as error:  # noqa: BLE001 - the X server closed the connection
            log.warning("X11 global shortcuts stopped: %s", error)
            if self._notifier is not None:
                self._notifier.setEnabled(False)

    def _pressed(self, keycode: int, state: int, time: int) -> None:
        if self._last_release.get(keycode) == time:
            return  # auto-repeat: the key is still held
        relevant = CONTROL_MASK | SHIFT_MASK | self._masks["Alt"] | self._masks["Meta"]
        action = self._grabs.get((keycode, state & relevant))
        if action is not None:
            log.info("global shortcut pressed: %s", action)
            self.activated.emit(action)
