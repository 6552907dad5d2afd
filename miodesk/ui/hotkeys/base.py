"""What every global-shortcut backend shares: the actions, the states, the base class."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QObject, Signal

from miodesk.ui.hotkeys.keys import KeyCombo

log = logging.getLogger(__name__)

READ_SELECTION = "read-selection"
READ_CLIPBOARD = "read-clipboard"
ACTIONS = (READ_SELECTION, READ_CLIPBOARD)


class Status(Enum):
    OFF = "off"  # no shortcut set
    PENDING = "pending"  # asked for, no answer yet (the portal asks the user)
    ACTIVE = "active"  # pressing it anywhere reaches MioDesk
    TAKEN = "taken"  # another app holds that key
    REFUSED = "refused"  # the desktop (portal) or the user said no
    UNAVAILABLE = "unavailable"  # this desktop offers global shortcuts to no app (detail says why)
    SERVICES = "services"  # macOS: the Services menu item stands in for the shortcut


@dataclass(frozen=True)
class ShortcutState:
    status: Status
    detail: str = ""  # the key the desktop assigned (portal), or a technical reason for the log


class ShortcutBackend(QObject):
    """Base of the platform backends; alone, it binds nothing (a platform without global shortcuts)."""

    activated = Signal(str)  # the action whose shortcut was pressed
    textReceived = Signal(str)  # text another app handed over (macOS: the Services menu)
    statesChanged = Signal()

    name = "none"
    grabs_keys = False  # True: MioDesk itself holds the keys (X11, Windows), so they never reach its own fields

    def __init__(self, reason: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._reason = reason
        self._states: dict[str, ShortcutState] = {}

    def bind(self, shortcuts: dict[str, KeyCombo | None]) -> None:
        """Replace every shortcut bound before with these; states follow (maybe later: statesChanged)."""
        self._set_states({action: ShortcutState(Status.OFF if combo is None else Status.UNAVAILABLE, self._reason)
                          for action, combo in shortcuts.items()})

    def state(self, action: str) -> ShortcutState:
        return self._states.get(action, ShortcutState(Status.OFF))

    def held_by_us(self, combo: KeyCombo) -> bool:
        """Whether `combo` is one this backend holds now (a probe must not call our own key taken)."""
        return False

    def probe(self, combo: KeyCombo) -> Status | None:
        """Whether another app holds `combo` now (TAKEN) or it is free (ACTIVE); None when this backend
        cannot tell without binding it."""
        return None

    def close(self) -> None:
        """Let every key go."""
        self._states = {}

    def _set_states(self, states: dict[str, ShortcutState]) -> None:
        self._states = dict(states)
        for action, state in states.items():
            detail = f" ({state.detail})" if state.detail else ""
            log.info("global shortcut %s: %s%s", action, state.status.value, detail)
        self.statesChanged.emit()
