"""Help menu: About (versions, licences), the log viewer and "Copy system info" for bug reports."""

from __future__ import annotations

import html
import logging
from importlib.metadata import PackageNotFoundError, version

from PySide6.QtCore import QCoreApplication, QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from miodesk import __version__
from miodesk.ui.assets import app_icon
from miodesk.ui.background import UiDispatcher, run_in_background

log = logging.getLogger(__name__)

LOG_TAIL_BYTES = 256 * 1024


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "—"


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle(self.tr("About MioDesk"))
        self.setMinimumSize(QSize(560, 520))
        layout = QVBoxLayout(self)
        header = QHBoxLayout()
        logo = QLabel(self)
        logo.setPixmap(app_icon().pixmap(QSize(64, 64), self.devicePixelRatioF()))
        title = QLabel(f"<h2>MioDesk {html.escape(__version__)}</h2>"
                       + self.tr("An offline reader: natural Japanese and English speech on your computer."), self)
        title.setWordWrap(True)
        header.addWidget(logo)
        header.addWidget(title, 1)
        layout.addLayout(header)
        body = QTextBrowser(self)
        body.setOpenExternalLinks(True)
        body.setAccessibleName(self.tr("Versions and licences"))
        onnx = _version("onnxruntime-gpu")
        if onnx == "—":
            onnx = _version("onnxruntime")
        versions = [
            ("MioDesk", __version__),
            ("PySide6 / Qt", _version("PySide6-Essentials")),
            ("llama-cpp-python", _version("llama_cpp_python")),
            ("onnxruntime", onnx),
            ("numpy", _version("numpy")),
            ("sounddevice", _version("sounddevice")),
        ]
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>&nbsp;&nbsp;{html.escape(v)}</td></tr>" for n, v in versions)
        licences = [
            (self.tr("MioDesk"), self.tr("MIT licence.")),
            (self.tr("MioTTS models"), self.tr("Licensed like their base models: 0.1B Falcon-LLM License; "
                                               "0.4B, 1.2B and 2.6B LFM Open License v1.0; 0.6B and 1.7B Apache-2.0.")),
            (self.tr("MioCodec"), self.tr("MIT licence (code); see the model card for the weights.")),
            (self.tr("Preset voices"), self.tr("Audio made with the official preset voices may not be used "
                                               "commercially.")),
            (self.tr("Your own voices"), self.tr("You are responsible for the rights to the voice they were made "
                                                 "from.")),
            (self.tr("Qt / PySide6"), self.tr("LGPLv3.")),
        ]
        items = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(t)}</li>" for n, t in licences)
        versions_title, licences_title = html.escape(self.tr("Versions")), html.escape(self.tr("Licences"))
        body.setHtml(
            f"<h3>{versions_title}</h3><table>{rows}</table>"
            f"<h3>{licences_title}</h3><ul>{items}</ul>"
            "<p>" + html.escape(self.tr("Nothing you read leaves this computer: MioDesk works offline once the "
                                        "models are downloaded.")) + "</p>"
        )
        layout.addWidget(body, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)


class LogDialog(QDialog):
    """The end of the log file, with buttons to copy it or open its folder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from miodesk.logs import log_file

        self.path = log_file()
        self.setObjectName("logDialog")
        self.setWindowTitle(self.tr("MioDesk log"))
        self.resize(820, 520)
        layout = QVBoxLayout(self)
        where = QLabel(self.tr("Log file: {0}").format(self.path), self)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(where)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setAccessibleName(self.tr("Log"))
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setPlainText(self._tail())
        self.text.moveCursor(self.text.textCursor().MoveOperation.End)
        layout.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        copy = QPushButton(self.tr("&Copy"), self)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text.toPlainText()))
        folder = QPushButton(self.tr("Open &Folder"), self)
        folder.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path.parent))))
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(folder, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _tail(self) -> str:
        try:
            with self.path.open("rb") as handle:
                handle.seek(0, 2)
                size = handle.tell()
                handle.seek(max(0, size - LOG_TAIL_BYTES))
                return handle.read().decode("utf-8", "replace")
        except OSError as error:
            return self.tr("The log file cannot be read: {0}").format(error)


def copy_system_info(window) -> None:
    """Gather `doctor_report()` off the UI thread (it imports the runtimes), then copy it."""
    from miodesk.doctor import doctor_report

    dispatcher = UiDispatcher(window)

    def done(report: str) -> None:
        QGuiApplication.clipboard().setText(report)
        window.statusBar().showMessage(
            QCoreApplication.translate("MainWindow", "System information copied to the clipboard."), 6000)
        dispatcher.deleteLater()

    def failed(error: BaseException) -> None:
        dispatcher.deleteLater()  # already logged; the clipboard keeps what it had

    run_in_background(dispatcher, "doctor", doctor_report, done, failed)
