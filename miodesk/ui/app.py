"""Start the desktop app: `miodesk` with no command, or the installer's launcher."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication

from miodesk import __version__
from miodesk.ui.assets import app_icon
from miodesk.ui.single_instance import HandOff, InstanceServer, hand_off, open_request, read_request, server_name

if TYPE_CHECKING:
    # Imported where used: a second launch only hands its files over and should not pay for these.
    from miodesk.settings import Settings
    from miodesk.ui.controller import EngineFactory, ReaderController
    from miodesk.ui.i18n import Translations
    from miodesk.ui.main_window import MainWindow
    from miodesk.ui.tray import ReaderTray

log = logging.getLogger(__name__)

# `miodesk bench` sets this to time the start: the app prints the moments (a mark and time.time()) and
# quits. Any value: once the window is shown. STARTUP_PROBE_PLAY: it then presses Play on the document
# it opened, as soon as that is loaded, and quits once the first sentence is heard (highlighted).
STARTUP_PROBE_ENV = "MIODESK_STARTUP_PROBE"
STARTUP_PROBE_PLAY = "play"
STARTUP_PROBE_MARK = "miodesk-window-shown"
PLAY_PROBE_MARK = "miodesk-first-sentence-heard"
PROBE_FAILED_MARK = "miodesk-probe-failed"


@dataclass
class AppParts:
    window: MainWindow
    controller: ReaderController
    tray: ReaderTray
    translations: Translations


def has_display() -> bool:
    """False on a Linux/BSD terminal with no X11 or Wayland session (Qt would abort there)."""
    if sys.platform in ("win32", "darwin"):
        return True
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if platform in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def ensure_application(argv: list[str] | None = None) -> QApplication:
    app = cast("QApplication | None", QApplication.instance())  # the stub says QCoreApplication
    if app is None:
        app = QApplication(argv or [sys.argv[0] if sys.argv else "miodesk"])
    app.setApplicationName("MioDesk")
    app.setApplicationDisplayName("MioDesk")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("MioDesk")
    app.setDesktopFileName("miodesk")
    app.setWindowIcon(app_icon())
    return app


def build_app(settings: Settings | None = None, engine_factory: EngineFactory | None = None,
              voice_store=None) -> AppParts:
    """Create the window, its controller and the tray (tests call this with their own engine)."""
    from miodesk.settings import load_settings
    from miodesk.ui.controller import ReaderController
    from miodesk.ui.global_shortcuts import GlobalReader
    from miodesk.ui.i18n import Translations
    from miodesk.ui.main_window import MainWindow
    from miodesk.ui.tray import ReaderTray

    settings = settings if settings is not None else load_settings()
    translations = Translations()
    translations.apply(settings.ui_language)
    controller = ReaderController(settings, engine_factory=engine_factory, voice_store=voice_store)
    window = MainWindow(controller, translations)
    controller.setParent(window)
    tray = ReaderTray(window)
    GlobalReader(window)  # window.global_reader; run_app binds its global shortcuts
    if settings.recovered_from is not None:
        window.show_message(
            "warning",
            QCoreApplication.translate(
                "MainWindow", "The settings file was damaged, so MioDesk started with the default settings. "
                "The damaged file was kept as {0}.").format(settings.recovered_from.name),
        )
    return AppParts(window, controller, tray, translations)


def start_first_run_if_needed(parts: AppParts) -> None:
    """No models yet: offer the download (or say where models go when the manager is missing).

    Models installed: load them now, while the user picks a document, so the first Play speaks at once.
    """
    from miodesk.ui.controller import models_installed

    problem = models_installed(parts.controller.settings)
    if problem is None:
        parts.controller.ensure_engine()
        return
    if not parts.window.open_first_run():
        parts.window.show_message("warning", problem)


class FileOpenEvents(QObject):
    """macOS gives documents opened from the Finder (double-click, Open With, drop on the Dock icon) to
    the running app as FileOpen events, not as command-line arguments."""

    def __init__(self, app: QApplication, parts: AppParts) -> None:
        super().__init__(app)
        self.parts = parts
        app.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FileOpen and watched is QApplication.instance():
            opened = cast(QFileOpenEvent, event)
            path = opened.file() or opened.url().toLocalFile()
            if path:
                open_files(self.parts, [path], raise_window=True)
                return True
        return False


class StartupProbe(QObject):
    """For the bench: once the window is on screen (first expose, painted), print the time; then quit, or
    with `press_play` press Play on the opened document and quit once its first sentence is heard."""

    def __init__(self, app: QApplication, parts: AppParts, press_play: bool = False) -> None:
        super().__init__(app)
        self.app, self.parts, self.press_play = app, parts, press_play
        self._played = self._ended = False
        app.installEventFilter(self)  # before show(): some platforms expose the window at once

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        handle = self.parts.window.windowHandle()
        if event.type() == QEvent.Type.Expose and watched is handle and handle.isExposed():
            self.app.removeEventFilter(self)
            QTimer.singleShot(0, self.report)  # after this expose has been painted
        return False

    def report(self) -> None:
        print(STARTUP_PROBE_MARK, time.time(), flush=True)
        if not self.press_play:
            self.app.quit()
            return
        controller = self.parts.controller
        controller.utteranceStarted.connect(self._heard)
        controller.errorOccurred.connect(self._failed)
        controller.documentFailed.connect(self._failed)
        if controller.loaded is None:
            controller.documentLoaded.connect(lambda _loaded: self._play())
        else:
            self._play()

    def _play(self) -> None:
        if not self._played:  # once: a later document (none is expected) is not played again
            self._played = True
            self.parts.window.toggle_play()  # what the Play button and Space do

    def _heard(self, *_sentence: int) -> None:
        self._end(f"{PLAY_PROBE_MARK} {time.time()}")

    def _failed(self, message: str) -> None:
        self._end(f"{PROBE_FAILED_MARK} {' '.join(message.split())}")

    def _end(self, line: str) -> None:
        if not self._ended:  # the first sentence heard or the first error: what follows is not measured
            self._ended = True
            print(line, flush=True)
            self.parts.window.quit()  # the app's own way out: the reading stops, the device closes


def bring_to_front(window: MainWindow) -> None:
    """Show the window (it may be hidden in the tray or minimised) and ask for the focus."""
    if window.isMinimized():
        # Not showNormal(): that would also undo a maximised window.
        window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.show()
    window.raise_()
    window.activateWindow()
    # Window managers may refuse focus to a program the user did not click; then flash its task bar entry.
    QApplication.alert(window)


def open_files(parts: AppParts, files: list[str], raise_window: bool = False) -> None:
    """Files from the command line or from a later launch: MioDesk reads one document at a time."""
    if raise_window:
        bring_to_front(parts.window)
    if not files:
        return
    # The others go to File › Open Recent (behind the first, which the loader puts in front).
    for other in reversed(files[1:]):
        parts.controller.settings.add_recent(other)
    log.info("opening %s%s", files[0], f" ({len(files) - 1} more in the recent files)" if files[1:] else "")
    parts.window.open_path(Path(files[0]))


def run_app(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="miodesk", add_help=True)
    parser.add_argument("files", nargs="*", help="documents to open")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--read-selection", action="store_true", help="read the selection of any app aloud")
    parser.add_argument("--read-clipboard", action="store_true", help="read the clipboard aloud")
    args, qt_args = parser.parse_known_args(argv)
    read = "selection" if args.read_selection else "clipboard" if args.read_clipboard else ""

    from miodesk.logs import setup_logging

    setup_logging(args.verbose)
    if sys.stderr is not None:
        faulthandler.enable()
    log.info("MioDesk %s starting", __version__)
    app = ensure_application([sys.argv[0] if sys.argv else "miodesk", *qt_args])
    # One app per user: a running MioDesk takes this launch's files (before anything costly is built).
    request = read_request(read) if read else open_request(args.files)
    name = server_name()
    handed = hand_off(request, name)
    if handed is HandOff.DONE:
        log.info("MioDesk is already running: handed over %s", ", ".join(request.get("open", [])) or "activation")
        return 0
    server = InstanceServer(name)
    # Listen before the window is built, so a launch during start-up waits for us instead of starting too.
    if handed is HandOff.NO_INSTANCE and not server.listen() and hand_off(request, name) is HandOff.DONE:
        # Launched together with another one (several files opened at once), which took the name first.
        log.info("MioDesk started meanwhile: handed over %s", ", ".join(request.get("open", [])) or "activation")
        return 0
    app.setQuitOnLastWindowClosed(False)  # close-to-tray decides; quitRequested ends the loop
    parts = build_app()
    parts.window.quitRequested.connect(app.quit)
    server.openRequested.connect(lambda files: open_files(parts, files, raise_window=True))
    server.activateRequested.connect(lambda: bring_to_front(parts.window))
    reader = parts.window.global_reader
    assert reader is not None  # build_app made it
    server.readRequested.connect(reader.read)
    server.start()
    FileOpenEvents(app, parts)
    probe = os.environ.get(STARTUP_PROBE_ENV, "")
    probing_window_only = bool(probe) and probe != STARTUP_PROBE_PLAY  # playing, models load as they always do
    if probe:
        StartupProbe(app, parts, press_play=probe == STARTUP_PROBE_PLAY)
    parts.tray.show()
    if not (read and parts.tray.available()):  # `--read-selection` with none running starts in the tray
        parts.window.show()
    open_files(parts, request.get("open", []))
    reader.start()  # the global shortcuts
    if read:
        reader.read(read)
    if not probing_window_only:
        QTimer.singleShot(300, lambda: start_first_run_if_needed(parts))
    try:
        code = app.exec()
    finally:
        server.close()
    log.info("MioDesk exits (%d)", code)
    return code
