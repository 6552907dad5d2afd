"""The system tray icon: read the clipboard, pause, stop, show the window, quit."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from miodesk.ui.assets import app_icon


class ReaderTray(QObject):
    """Owns a QSystemTrayIcon; the actions exist (and are testable) even where no tray is shown."""

    def __init__(self, window, parent: QObject | None = None) -> None:
        super().__init__(parent or window)
        self.window = window
        self.controller = window.controller
        self.icon = QSystemTrayIcon(app_icon(), self)
        self.menu = QMenu()
        self.read_clipboard = QAction(self)
        self.read_clipboard.triggered.connect(self._read_clipboard)
        self.pause_resume = QAction(self)
        self.pause_resume.triggered.connect(self._pause_resume)
        self.stop = QAction(self)
        self.stop.triggered.connect(self.controller.stop)
        self.show_window = QAction(self)
        self.show_window.triggered.connect(window.show_window)
        self.quit = QAction(self)
        self.quit.triggered.connect(window.quit)
        for action in (self.read_clipboard, self.pause_resume, self.stop):
            self.menu.addAction(action)
        self.menu.addSeparator()
        self.menu.addAction(self.show_window)
        self.menu.addAction(self.quit)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self._notified = False
        window.installEventFilter(self)
        self.retranslate()
        self.update_state(self.controller.state)
        window.tray = self

    def available(self) -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        if self.available():
            self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def retranslate(self) -> None:
        self.read_clipboard.setText(self.tr("Read Clipboard"))
        self.stop.setText(self.tr("Stop"))
        self.show_window.setText(self.tr("Show Window"))
        self.quit.setText(self.tr("Quit"))
        self.update_state(self.controller.state)

    def update_state(self, state: str) -> None:
        self.pause_resume.setText(self.tr("Resume") if state == "paused" else self.tr("Pause"))
        self.pause_resume.setEnabled(state in ("playing", "paused"))
        self.stop.setEnabled(state != "idle")
        tips = {"playing": self.tr("MioDesk — reading"), "paused": self.tr("MioDesk — paused"),
                "loading": self.tr("MioDesk — loading models")}
        self.icon.setToolTip(tips.get(state, "MioDesk"))

    def notify_hidden(self) -> None:
        if not self._notified and self.available():
            self._notified = True
            self.icon.showMessage("MioDesk", self.tr("MioDesk keeps reading here. Use Quit in this menu to exit."),
                                  app_icon(), 4000)

    def _read_clipboard(self) -> None:
        self.window.paste_and_read()

    def _pause_resume(self) -> None:
        if self.controller.state == "playing":
            self.controller.pause()
        elif self.controller.state == "paused":
            self.controller.resume()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            if self.window.isVisible() and not self.window.isMinimized():
                self.window.hide() if self.window.settings.close_to_tray else self.window.show_window()
            else:
                self.window.show_window()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        return False
