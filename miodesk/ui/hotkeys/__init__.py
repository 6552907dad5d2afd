"""Global shortcuts: one backend per platform, each in its own module, all with the same small API.

- x11.py      X11: XGrabKey on the root window (python-xlib, imported there only, lazily)
- portal.py   Wayland: the xdg-desktop-portal GlobalShortcuts interface on the session bus
- windows.py  Windows: RegisterHotKey, WM_HOTKEY read by a native event filter
- macos.py    macOS: no key grabbing; the Services menu item "Read with MioDesk" instead

A backend binds the shortcuts it is given ({action: KeyCombo or None}), reports per action how that
went (`ShortcutState`) and emits `activated(action)` when one is pressed. Which one runs is decided by
`create_backend()`; nothing here imports a platform module until it is chosen.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication

from miodesk.ui.hotkeys.base import ShortcutBackend


def wayland_session() -> bool:
    """A Wayland desktop: XGrabKey there only sees keys typed into X11 windows, so the portal it is."""
    return os.environ.get("XDG_SESSION_TYPE", "").lower() == "wayland" or bool(os.environ.get("WAYLAND_DISPLAY"))


def create_backend(parent: QObject | None = None) -> ShortcutBackend:
    """The backend for this platform and desktop."""
    if sys.platform == "win32":
        from miodesk.ui.hotkeys.windows import WindowsBackend

        return WindowsBackend(parent=parent)
    if sys.platform == "darwin":
        from miodesk.ui.hotkeys.macos import ServicesBackend

        return ServicesBackend(parent=parent)
    if wayland_session():
        from miodesk.ui.hotkeys.portal import PortalBackend

        return PortalBackend(parent=parent)
    if QGuiApplication.platformName() == "xcb":
        from miodesk.ui.hotkeys.x11 import X11Backend

        return X11Backend(parent=parent)
    return ShortcutBackend(f"no global shortcuts on the {QGuiApplication.platformName()} platform", parent)
