"""First run: recommend a model set, show licences and sizes, download with progress, say hello.

Built on the model catalog (`miodesk.models.catalog`) and installer (`miodesk.model_setup`). The download
runs on a background thread; progress and the result come back on the UI thread
(`miodesk.ui.background`), and Cancel sets the manager's cancel event (the manager leaves nothing
half-installed).

Accessibility: the dialog's messages (started, cancelled, failed) are spoken through
`accessibility.announce`; the Download button is the default and has the focus; the details text is
in the Tab order, to be read and scrolled with the keyboard, and shows a caret when it has the focus.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import Any

from PySide6.QtCore import QCoreApplication, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from miodesk import paths
from miodesk.models.catalog import format_bytes
from miodesk.ui import accessibility
from miodesk.ui.assets import app_icon
from miodesk.ui.background import UiDispatcher, deliver, run_in_background
from miodesk.ui.theme import first_run_style, follow_palette, header_background, muted_text

log = logging.getLogger(__name__)

WELCOME_TEXT = {
    "ja": "ようこそ、MioDeskへ。準備ができました。",
    "en": "Welcome to MioDesk. Everything is ready.",
}
# The welcome sentence waits this long after the dialog closed: the screen reader is announcing the
# window that got the focus back, and MioDesk's voice would talk over it.
WELCOME_DELAY_MS = 1500


def models_api() -> tuple[Any, Any] | None:
    """(catalog module, installer module), or None while the models manager is not installed."""
    try:
        from miodesk import model_setup
        from miodesk.models import catalog
    except ImportError:
        return None
    if not all(hasattr(catalog, n) for n in ("recommend", "get_entry")) or not hasattr(model_setup, "ModelInstaller"):
        return None
    return catalog, model_setup


def _field(entry: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(entry, name, None)
        if value is None and isinstance(entry, dict):
            value = entry.get(name)
        if value not in (None, ""):
            return value
    return default


def size_text(size: float | None) -> str:
    """The catalogue's size format; "?" for a size not known (yet)."""
    return format_bytes(size) if size else "?"


class FirstRunDialog(QDialog):
    """Welcome: what will be downloaded, why, under which licences; then the download itself."""

    downloadProgress = Signal(object)  # each progress report of the download, on the UI thread

    def __init__(self, catalog: Any, download: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("firstRunDialog")
        self.catalog, self.download_module = catalog, download
        self.recommendation = catalog.recommend()
        self.names: list[str] = list(_field(self.recommendation, "names", default=[]))
        self.cancel_event = threading.Event()
        self.download_thread: threading.Thread | None = None
        self.error: str | None = None
        self.model_done: dict[str, int] = {}
        self.model_total: dict[str, int] = {}
        self._ui = UiDispatcher(self)

        # At most 640×400 so the dialog fits a 1280×800 screen at 200 % scale; larger where there is room.
        self.setMinimumSize(QSize(560, 400))
        self.resize(QSize(720, 600).boundedTo(self.screen().availableGeometry().size()))
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        header = QHBoxLayout()
        logo = QLabel(self)
        logo.setPixmap(app_icon().pixmap(QSize(56, 56), self.devicePixelRatioF()))
        self.title = QLabel(self)
        self.title.setObjectName("firstRunTitle")
        self.title.setWordWrap(True)
        header.addWidget(logo)
        header.addWidget(self.title, 1)
        layout.addLayout(header)
        self.intro = QLabel(self)
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        self.details = QTextBrowser(self)
        self.details.setObjectName("firstRunDetails")
        self.details.setOpenExternalLinks(False)
        # Read-only text that may need scrolling (large fonts, 200 % scale) and that a screen-reader user
        # reads line by line: it stays in the Tab order, with a keyboard caret, so it shows the focus.
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction
                                             | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        layout.addWidget(self.details, 1)
        self.file_label = QLabel(self)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        self.speed_label = QLabel(self)
        for widget in (self.file_label, self.progress, self.speed_label):
            widget.hide()
            layout.addWidget(widget)
        self.buttons = QDialogButtonBox(self)
        self.download_button = QPushButton(self)
        self.download_button.setObjectName("primaryButton")
        self.download_button.setDefault(True)
        self.later_button = QPushButton(self)
        self.buttons.addButton(self.download_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.later_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.download_button.clicked.connect(self.start_download)
        self.later_button.clicked.connect(self._later_or_cancel)
        layout.addWidget(self.buttons)
        self.download_button.setFocus()  # what Enter does anyway; the text above is a Shift+Tab away
        follow_palette(self, first_run_style)  # colours from the palette, light or dark
        self.retranslate()

    def entries(self) -> list[tuple[str, Any]]:
        found = []
        for name in self.names:
            try:
                found.append((name, self.catalog.get_entry(name)))
            except Exception:  # noqa: BLE001 - an unknown name is shown without details
                found.append((name, None))
        return found

    def total_size(self) -> int:
        return sum(int(_field(e, "size_bytes", "size", "bytes", default=0) or 0) for _, e in self.entries())

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Welcome to MioDesk"))
        self.title.setText(self.tr("Welcome to MioDesk"))
        self.intro.setText(self.tr(
            "MioDesk reads aloud on this computer, without the internet. It needs its speech models once: "
            "about {0} in all. After that it works offline.").format(size_text(self.total_size())))
        # The secondary text and the table header from the palette: fixed greys vanish on a dark page.
        muted = muted_text(self.palette()).name()
        header = header_background(self.palette()).name()
        rows = []
        for name, entry in self.entries():
            size = size_text(_field(entry, "size_bytes", "size", "bytes"))
            licence = _field(entry, "licence", "license", default="")
            what = _field(entry, "description", "summary", "recommendation", "note", default="")
            rows.append(
                f"<tr><td><b>{html.escape(name)}</b><br>"
                f"<span style='color:{muted}'>{html.escape(str(what))}</span></td>"
                f"<td align='right' style='white-space:nowrap'>{html.escape(size)}</td>"
                f"<td>{html.escape(str(licence))}</td></tr>")
        reason = html.escape(str(_field(self.recommendation, "reason", default="")))
        recommended = html.escape(self.tr("Recommended for this computer"))
        model, size, licence = (html.escape(self.tr("Model")), html.escape(self.tr("Size")),
                                html.escape(self.tr("Licence")))
        saved_in = html.escape(self.tr("Saved in {0}").format(paths.models_dir()))
        self.details.setHtml(
            f"<p><b>{recommended}</b><br><span style='color:{muted}'>{reason}</span></p>"
            f"<table width='100%' cellspacing='0' cellpadding='6'>"
            f"<tr style='background:{header}'><th align='left'>{model}</th>"
            f"<th align='right'>{size}</th><th align='left'>{licence}</th></tr>{''.join(rows)}</table>"
            f"<p style='color:{muted}'>{saved_in}</p>")
        self.details.setAccessibleName(self.tr("Models to download"))
        # The buttons are named by their text; the details and the progress bar have no visible label.
        self.download_button.setText(self.tr("&Download and start"))
        self.later_button.setText(self.tr("Cancel") if self.running() else self.tr("&Later"))
        self.progress.setAccessibleName(self.tr("Download progress"))

    def _show_status(self, text: str, urgent: bool = False) -> None:
        """Show `text` above the progress bar and have the screen reader say it."""
        self.file_label.setText(text)
        accessibility.announce(self, text, urgent=urgent)

    def running(self) -> bool:
        return self.download_thread is not None and self.download_thread.is_alive()

    def start_download(self) -> None:
        if self.running():
            return
        self.cancel_event.clear()
        self.error = None
        if self.focusWidget() is self.download_button:
            self.later_button.setFocus()  # on Cancel, not dropped to the next control by disabling
        self.download_button.setEnabled(False)
        self.later_button.setText(self.tr("Cancel"))
        for widget in (self.file_label, self.progress, self.speed_label):
            widget.show()
        self._show_status(self.tr("Starting the download…"))
        self.progress.setValue(0)
        # The installer runs the post-install steps too: decoder graph, preset voices.
        manager = self.download_module.ModelInstaller(paths.models_dir())
        names = list(self.names)

        def work() -> None:
            manager.download(names, progress=deliver(self._ui, self._on_progress), cancel=self.cancel_event)

        def done(_: None) -> None:
            self._on_done("cancelled" if self.cancel_event.is_set() else None)

        def failed(error: BaseException) -> None:
            cancelled = self.cancel_event.is_set()
            if not cancelled:
                log.warning("model download failed: %s", error)
            self._on_done("cancelled" if cancelled else str(error))

        self.download_thread = run_in_background(self._ui, "model-download", work, done, failed)

    def _on_progress(self, progress: Any) -> None:
        self.downloadProgress.emit(progress)
        name = _field(progress, "name", default="")
        file = _field(progress, "file", default="")
        done = int(_field(progress, "bytes_done", default=0) or 0)
        total = int(_field(progress, "bytes_total", default=0) or 0)
        self.model_done[name], self.model_total[name] = done, total
        # Exact sizes for the models seen so far, the catalogue's estimate for the others.
        estimates = [_field(e, "size_bytes", default=0) or 0 for n, e in self.entries() if n not in self.model_total]
        overall = sum(self.model_total.values()) + sum(estimates)
        if overall:
            self.progress.setValue(min(1000, int(1000 * sum(self.model_done.values()) / overall)))
        self.file_label.setText(self.tr("Downloading {0} ({1} of {2})").format(
            file or name, size_text(done), size_text(total)))
        speed = _field(progress, "speed_bps", default=0) or 0
        eta = _field(progress, "eta_s")
        text = self.tr("{0}/s").format(size_text(speed)) if speed else ""
        if eta is not None:
            minutes, seconds = divmod(int(eta), 60)
            text += "  ·  " + self.tr("{0}:{1:02d} left").format(minutes, seconds)
        self.speed_label.setText(text)

    def _on_done(self, error: str | None) -> None:
        self.download_thread = None
        self.download_button.setEnabled(True)
        self.later_button.setText(self.tr("&Later"))
        if error is None:
            self.progress.setValue(1000)
            self.accept()
            return
        self.error = error
        self.download_button.setText(self.tr("&Try again"))
        if self.focusWidget() is self.later_button:
            self.download_button.setFocus()  # back where it was before the download: now "Try again"
        if error == "cancelled":
            self._show_status(self.tr("Download cancelled. Nothing half-finished was kept."))
        else:
            self._show_status(self.tr("The download failed: {0}").format(error), urgent=True)

    def _later_or_cancel(self) -> None:
        if self.running():
            self.cancel_event.set()
            self._show_status(self.tr("Cancelling…"))
        else:
            self.reject()

    def reject(self) -> None:
        # Esc and the window's close button end here: a running download is cancelled, not left behind.
        self.cancel_event.set()
        super().reject()


def open_first_run(window) -> bool:
    """Show the welcome dialog; after a download, load the models and say a welcome sentence.

    False when the models manager is not available (the window then shows what to do instead).
    """
    api = models_api()
    if api is None:
        return False
    try:
        dialog = FirstRunDialog(*api, parent=window)
    except Exception as error:  # noqa: BLE001 - a catalog problem must not stop the app
        log.exception("first-run dialog failed")
        window.show_error(
            QCoreApplication.translate("MainWindow", "The model catalogue is not available: {0}").format(error))
        return True
    if dialog.exec() == QDialog.DialogCode.Accepted:
        after_download(window)
    return True


def after_download(window) -> None:
    """Models are in place: load them and greet the user in the UI's language.

    The greeting waits WELCOME_DELAY_MS, while the models load, and is left out if the user has started
    something else meanwhile (the transport is no longer idle) or the window is gone or the models failed.
    """
    controller = window.controller
    controller.settings.welcome_done = True
    window._save_settings()
    window._refresh_voices()  # the preset voices came with the download
    controller.reload_engine()
    controller.ensure_engine()  # load while the screen reader speaks, so the greeting is not later still
    language = window.translations.language if window.translations is not None else "en"
    welcome = WELCOME_TEXT.get(language, WELCOME_TEXT["en"])

    def greet() -> None:
        if window.isVisible() and controller.state == "idle" and controller.engine_state != "failed":
            controller.speak_text(welcome)

    # A child of the window: no greeting once it is gone. Precise: a coarse timer may fire 5 % early.
    timer = QTimer(window, singleShot=True, timerType=Qt.TimerType.PreciseTimer)
    timer.timeout.connect(greet)
    timer.timeout.connect(timer.deleteLater)
    timer.start(WELCOME_DELAY_MS)
    # The window's banner speaks the message to the screen reader itself.
    window.show_message("info", QCoreApplication.translate(
        "MainWindow", "The models are ready. Open a document or paste text to start reading."))
