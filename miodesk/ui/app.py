"""Start the desktop app: `miodesk` with no command, or the installer's launcher."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from miodesk import __version__
from miodesk.settings import Settings, load_settings
from miodesk.ui.assets import app_icon
from miodesk.ui.controller import EngineFactory, ReaderController, models_installed
from miodesk.ui.i18n import Translations
from miodesk.ui.main_window import MainWindow
from miodesk.ui.tray import ReaderTray

log = logging.getLogger(__name__)


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
    app = QApplication.instance()
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
    settings = settings if settings is not None else load_settings()
    translations = Translations()
    translations.apply(settings.ui_language)
    controller = ReaderController(settings, engine_factory=engine_factory, voice_store=voice_store)
    window = MainWindow(controller, translations)
    controller.setParent(window)
    tray = ReaderTray(window)
    if settings.recovered_from is not None:
        window.show_message(
            "warning",
            QCoreApplication.translate(
                "MainWindow", "The settings file was damaged, so MioDesk started with the default settings. "
                "The damaged file was kept as {0}.").format(settings.recovered_from.name),
        )
    return AppParts(window, controller, tray, translations)


def start_first_run_if_needed(parts: AppParts) -> None:
    """No models yet: offer the download (or say where models go when the manager is missing)."""
    problem = models_installed(parts.controller.settings)
    if problem is None:
        return
    if not parts.window.open_first_run():
        parts.window.show_message("warning", problem)


def run_app(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="miodesk", add_help=True)
    parser.add_argument("files", nargs="*", help="documents to open")
    parser.add_argument("-v", "--verbose", action="store_true")
    args, qt_args = parser.parse_known_args(argv)

    from miodesk.logs import setup_logging

    setup_logging(args.verbose)
    if sys.stderr is not None:
        faulthandler.enable()
    log.info("MioDesk %s starting", __version__)
    app = ensure_application([sys.argv[0] if sys.argv else "miodesk", *qt_args])
    app.setQuitOnLastWindowClosed(False)  # close-to-tray decides; quitRequested ends the loop
    parts = build_app()
    parts.window.quitRequested.connect(app.quit)
    parts.tray.show()
    parts.window.show()
    if args.files:
        parts.window.open_path(Path(args.files[0]))
    QTimer.singleShot(300, lambda: start_first_run_if_needed(parts))
    code = app.exec()
    log.info("MioDesk exits (%d)", code)
    return code
