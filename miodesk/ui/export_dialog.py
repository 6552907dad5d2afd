"""File › Export audio…: the open document as an audiobook file, made while the window goes on reading.

`ExportJob` runs one export at a time: `miodesk.export.run_export` on a thread of its own, with the
window's engine (loaded the way Play loads it, `ReaderController.when_engine_ready`) at
`Priority.BACKGROUND`, so the window's own reading goes first through the engine's GenerationGate; the
readings dictionary and the voices of Settings › Voices are the reading's. Its reports come back to the
UI thread as signals. Cancel stops it between sentences; the export keeps what it has done in its
staging folder, and the same export started again continues from there. An engine reload (Settings ›
Speech) stops it the same way.

`ExportDialog` is not modal, so the reading view stays usable: output file (Browse… is a Save dialog that
lists the formats), voice and dialogue voice, speed, subtitles (written next to the audio), from the start
or from the cursor, Start. While the export runs its fields are disabled and it shows a progress bar
(named for screen readers, its value a percentage) with the audio made, the speed, the time left and the
chapter, and Cancel Export. Closing the dialog leaves the export running: the window's status bar shows
its percentage and File › Export audio… shows the dialog again. Screen readers hear the start, the end
(the window's banner, with "Open Folder") and a failure, not every percent.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from PySide6.QtCore import QEvent, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from miodesk.errors import MioDeskError, VoiceError
from miodesk.filenames import portable_file_name
from miodesk.formatting import format_duration
from miodesk.settings import EXPORT_FORMATS, EXPORT_SUBTITLES, Settings, save_settings
from miodesk.ui import accessibility
from miodesk.ui.background import UiDispatcher, deliver, run_in_background
from miodesk.ui.theme import error_text
from miodesk.ui.voice_labels import voice_label
from miodesk.ui.widgets import open_window_modal

if TYPE_CHECKING:
    from miodesk.export import ExportProgress, ExportRequest, ExportResult
    from miodesk.text.documents import Document
    from miodesk.ui.controller import ReaderController

log = logging.getLogger(__name__)

QUIT_WAIT_S = 30.0  # how long quitting waits for a cancelled export to stop (it stops between sentences)


class ExportWindow(Protocol):
    """What the dialog needs of the main window (miodesk.ui.main_window.MainWindow, which imports this module)."""

    controller: ReaderController
    settings: Settings
    translations: Any  # miodesk.ui.i18n.Translations, or None
    reader: Any  # the ReaderView: cursor_offset()
    export_dialog: ExportDialog | None

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 - Qt's name

    def show_message(self, kind: str, text: str, action: str | None = None, handler: Any = None) -> None: ...

    def show_error(self, text: str) -> None: ...


class JobState:
    IDLE = "idle"
    LOADING = "loading"  # waiting for the speech models
    RUNNING = "running"
    CANCELLING = "cancelling"  # asked to stop; ends at the next sentence


class ExportJob(QObject):
    """One export at a time on the window's engine; see the module docstring. UI thread only."""

    stateChanged = Signal(str)  # a JobState
    progressed = Signal(object)  # ExportProgress
    succeeded = Signal(object)  # ExportResult
    failed = Signal(str)  # one line
    cancelled = Signal(str)  # why: "user" or "engine" (the models are reloading)

    def __init__(self, controller: ReaderController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.state = JobState.IDLE
        self.request: ExportRequest | None = None
        self.progress: ExportProgress | None = None  # the latest report of this export
        self._ui = UiDispatcher(self)
        self._cancel = threading.Event()
        self._cancel_reason = "user"
        self._thread: threading.Thread | None = None
        self._generation = 0  # reports and results of an export that ended no longer count
        controller.engineStateChanged.connect(self._engine_state_changed)

    @property
    def busy(self) -> bool:
        return self.state != JobState.IDLE

    def start(self, request: ExportRequest) -> None:
        """Export `request` once the models are loaded (one export at a time)."""
        if self.busy:
            raise RuntimeError("an export is already running")
        self._generation += 1
        generation = self._generation
        self.request, self.progress = request, None
        self._cancel = threading.Event()
        self._cancel_reason = "user"
        self._set_state(JobState.LOADING)
        self.controller.when_engine_ready(lambda engine: self._run(generation, engine),
                                          lambda message: self._not_loaded(generation, message))

    def cancel(self, reason: str = "user") -> None:
        """Stop the export (what it made stays staged); `cancelled` follows once it has stopped."""
        if self.state == JobState.LOADING:
            self._generation += 1  # the models may still load: nothing starts then
            self._end()
            self.cancelled.emit(reason)
        elif self.state == JobState.RUNNING:
            self._cancel_reason = reason
            self._cancel.set()
            self._set_state(JobState.CANCELLING)

    def close(self, timeout: float) -> bool:
        """The window closes: stop the export, wait for its thread, and report nothing more. False when it
        was still running after `timeout` seconds."""
        self.cancel()
        stopped = self.wait(timeout)
        self._generation += 1
        self._ui.close()
        self._end()
        return stopped

    def wait(self, timeout: float) -> bool:
        """Block until the export thread has ended (quitting); False when it is still running."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # --- on the UI thread, as the export goes ------------------------------------------------------------

    def _run(self, generation: int, engine: Any) -> None:
        if generation != self._generation or self.request is None:
            return
        from miodesk.export import run_export

        request, cancel = self.request, self._cancel
        report = deliver(self._ui, lambda progress: self._progressed(generation, progress))
        self._set_state(JobState.RUNNING)
        self._thread = run_in_background(
            self._ui, "export", lambda: run_export(engine, request, report, cancel),
            lambda result: self._done(generation, result), lambda error: self._failed(generation, error))

    def _not_loaded(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self._end()
            self.failed.emit(message)

    def _progressed(self, generation: int, progress: ExportProgress) -> None:
        if generation == self._generation and self.state in (JobState.RUNNING, JobState.CANCELLING):
            self.progress = progress
            self.progressed.emit(progress)

    def _done(self, generation: int, result: ExportResult) -> None:
        if generation == self._generation:
            self._end()
            self.succeeded.emit(result)

    def _failed(self, generation: int, error: BaseException) -> None:
        from miodesk.export import ExportCancelled

        if generation != self._generation:
            return
        self._end()
        if isinstance(error, ExportCancelled):
            self.cancelled.emit(self._cancel_reason)
        elif isinstance(error, MioDeskError):
            self.failed.emit(" ".join(str(error).split()))
        else:
            self.failed.emit(f"{type(error).__name__}: {error}")

    def _end(self) -> None:
        self._set_state(JobState.IDLE)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    def _engine_state_changed(self, state: str) -> None:
        # "none" comes only from a reload (Settings › Speech changed): the export stops rather than hold
        # the old models in memory beside the new ones.
        if state == "none" and self.state in (JobState.LOADING, JobState.RUNNING):
            self.cancel("engine")


# --- the dialog --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportChoices:
    """What the dialog's fields say, checked: what `ExportJob` gets as a request."""

    output: Path
    subtitles: Path | None
    voice: str  # "" = the reading voices of Settings › Voices
    dialogue_voice: str  # "" = none
    speed: float
    from_char: int


def default_output(document: Document, folder: str, suffix: str) -> Path:
    """Where an export of `document` goes unless the user says otherwise: the folder of the last export,
    else the document's, else the home folder; named as the document's file (book.epub → book.m4b), or by
    its title when it has none (the clipboard)."""
    base = Path(folder) if folder and Path(folder).is_dir() else None
    if base is None and document.source is not None and document.source.parent.is_dir():
        base = document.source.parent
    name = portable_file_name(document.source.stem if document.source is not None else document.title)
    return (base or Path.home()) / f"{name}{suffix}"


def available_formats() -> list[str]:
    """The export formats whose encoder is installed (AAC needs PyAV, an optional extra)."""
    from miodesk.audio.encoding import aac_available

    return [suffix for suffix in EXPORT_FORMATS if suffix not in (".m4b", ".m4a") or aac_available()]


class ExportDialog(QDialog):
    """File › Export audio…; see the module docstring. One per window, kept while the window lives."""

    def __init__(self, window: ExportWindow) -> None:
        super().__init__(cast(QWidget, window))
        self.setObjectName("exportDialog")
        self.setModal(False)  # the window reads on meanwhile
        self.window_ = window
        self.controller = window.controller
        self.settings = window.settings
        self.job = ExportJob(self.controller, self)
        self._document: Document | None = None  # the document the fields were filled for
        self._finished_output: Path | None = None  # the file the last export made (Open Folder)
        self.file_dialog: QFileDialog | None = None  # Browse…'s, while it is open
        self._replace_confirmed = ""  # the file the Save dialog already asked to replace
        self.quit_question: QMessageBox | None = None  # quitting during an export asks this

        self.output = QLineEdit()
        self.output.setObjectName("exportOutput")
        self.output_label = QLabel()
        self.browse_button = QPushButton()
        self.browse_button.setObjectName("exportBrowse")
        output_row = QHBoxLayout()
        output_row.addWidget(self.output, 1)
        output_row.addWidget(self.browse_button)
        self.voice = QComboBox()
        self.voice.setObjectName("exportVoice")
        self.voice_label = QLabel()
        self.dialogue_voice = QComboBox()
        self.dialogue_voice.setObjectName("exportDialogueVoice")
        self.dialogue_label = QLabel()
        self.speed = QDoubleSpinBox()
        self.speed.setObjectName("exportSpeed")
        self.speed.setRange(0.5, 2.0)
        self.speed.setSingleStep(0.1)
        self.speed.setDecimals(2)
        self.speed_label = QLabel()
        self.subtitles = QComboBox()
        self.subtitles.setObjectName("exportSubtitles")
        self.subtitles_label = QLabel()
        self.subtitles_note = QLabel()  # where the subtitles go, beside the choice
        self.subtitles_note.setObjectName("note")
        subtitles_row = QHBoxLayout()
        subtitles_row.addWidget(self.subtitles)
        subtitles_row.addWidget(self.subtitles_note)
        subtitles_row.addStretch(1)
        # Where to start: a titled group (its title labels the radios, as in Settings).
        self.start_group = QGroupBox()
        self.from_start = QRadioButton()
        self.from_start.setObjectName("exportFromStart")
        self.from_cursor = QRadioButton()
        self.from_cursor.setObjectName("exportFromCursor")
        self._start_buttons = QButtonGroup(self)
        start_box = QVBoxLayout(self.start_group)
        for radio in (self.from_start, self.from_cursor):
            self._start_buttons.addButton(radio)
            start_box.addWidget(radio)
            radio.toggled.connect(self._start_choice_changed)

        self.fields = QWidget()
        form = QFormLayout(self.fields)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setVerticalSpacing(10)
        form.addRow(self.output_label, output_row)
        form.addRow(self.voice_label, self.voice)
        form.addRow(self.dialogue_label, self.dialogue_voice)
        form.addRow(self.speed_label, self.speed)
        form.addRow(self.subtitles_label, subtitles_row)
        form.addRow(self.start_group)
        for label, field in ((self.output_label, self.output), (self.voice_label, self.voice),
                             (self.dialogue_label, self.dialogue_voice), (self.speed_label, self.speed),
                             (self.subtitles_label, self.subtitles)):
            label.setBuddy(field)

        # What the export is doing: hidden until the first export starts.
        self.progress = QProgressBar()
        self.progress.setObjectName("exportProgress")
        self.progress.setRange(0, 100)
        self.status = QLabel()
        self.status.setObjectName("exportStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = QLabel()
        self.error.setObjectName("exportError")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()

        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("", QDialogButtonBox.ButtonRole.ActionRole)
        self.start_button.setObjectName("exportStart")
        self.cancel_button = self.buttons.addButton("", QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.setObjectName("exportCancel")
        self.open_folder_button = self.buttons.addButton("", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_folder_button.setObjectName("exportOpenFolder")
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.start_button.setDefault(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.fields)
        layout.addSpacing(4)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

        self.browse_button.clicked.connect(self.browse)
        self.output.textChanged.connect(lambda _: self._output_changed())
        self.subtitles.currentIndexChanged.connect(lambda _: self._output_changed())
        self.start_button.clicked.connect(self.start_export)
        self.cancel_button.clicked.connect(lambda: self.job.cancel())
        self.open_folder_button.clicked.connect(self.open_folder)
        self.buttons.rejected.connect(self.reject)
        self.job.stateChanged.connect(self._job_state_changed)
        self.job.progressed.connect(self._show_progress)
        self.job.succeeded.connect(self._succeeded)
        self.job.failed.connect(self._failed)
        self.job.cancelled.connect(self._cancelled)
        # Another document opened while the dialog is shown: the fields are for it now.
        self.controller.documentLoaded.connect(lambda _: self.prepare() if self.isVisible() else None)

        # The window's status bar shows the export while the dialog is closed.
        self.status_progress = QProgressBar(window.statusBar())
        self.status_progress.setObjectName("exportStatusProgress")
        self.status_progress.setRange(0, 100)
        self.status_progress.setMaximumWidth(160)
        self.status_progress.setMaximumHeight(16)
        self.status_progress.hide()
        window.statusBar().addPermanentWidget(self.status_progress)
        self.retranslate()
        self._show_idle()

    # --- texts ------------------------------------------------------------------------------------------

    def retranslate(self) -> None:
        # Mnemonics, one letter each: F B V D P T G U S A (O: Open Folder; C: Close in GNOME's and KDE's themes).
        self.setWindowTitle(self.tr("Export Audio"))
        self.output_label.setText(self.tr("Output &file:"))
        self.browse_button.setText(self.tr("&Browse…"))
        self.browse_button.setToolTip(self.tr("Choose where the audio goes and its format"))
        self.browse_button.setAccessibleDescription(self.browse_button.toolTip())
        self.output.setAccessibleDescription(self.tr(
            "The extension picks the format: .m4b (audiobook), .m4a, .mp3, .opus, .flac or .wav"))
        self.voice_label.setText(self.tr("&Voice:"))
        self.dialogue_label.setText(self.tr("&Dialogue voice:"))
        self.dialogue_voice.setToolTip(self.tr("Text inside 「…」, 『…』 and \"…\" is read in this voice"))
        self.dialogue_voice.setAccessibleDescription(self.dialogue_voice.toolTip())
        self.speed_label.setText(self.tr("S&peed:"))
        self.speed.setSuffix(self.tr("×"))
        self.subtitles_label.setText(self.tr("Subti&tles:"))
        self.start_group.setTitle(self.tr("Where to start"))
        self.from_start.setText(self.tr("From the beginnin&g"))
        self.start_button.setText(self.tr("&Start"))
        self.start_button.setToolTip(self.tr("Make the audio file"))
        self.cancel_button.setText(self.tr("C&ancel Export"))
        self.cancel_button.setToolTip(self.tr("Stop the export; the work done so far is kept for the next one"))
        self.open_folder_button.setText(self.tr("&Open Folder"))
        self.progress.setAccessibleName(self.tr("Export progress"))
        self.status_progress.setAccessibleName(self.tr("Export progress"))
        self.status_progress.setFormat(self.tr("Export %p %"))
        self.progress.setFormat(self.tr("%p %"))
        self.status.setAccessibleDescription(self.tr("Export status"))
        subtitle_labels = {"": self.tr("None"), ".srt": self.tr("SubRip (.srt)"), ".vtt": self.tr("WebVTT (.vtt)"),
                           ".lrc": self.tr("Lyrics (.lrc)")}
        current = self.subtitles.currentData()
        self.subtitles.blockSignals(True)
        self.subtitles.clear()
        for suffix in EXPORT_SUBTITLES:
            self.subtitles.addItem(subtitle_labels[suffix], suffix)
        self.subtitles.setCurrentIndex(max(0, self.subtitles.findData(current if current is not None
                                                                      else self.settings.export_subtitles)))
        self.subtitles.blockSignals(False)
        if self.voice.count():  # the first choice of each voice list is a text of the dialog's
            self.voice.setItemText(0, self._reading_voices_text())
            self.dialogue_voice.setItemText(0, self.tr("(none)"))
        self._output_changed()
        self._update_cursor_choice()
        if self.job.progress is not None:
            self._show_progress(self.job.progress)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    # --- the fields -------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Fill the fields for the open document (shown again for the same one: as the user left them)."""
        if self.job.busy:
            return
        document = self.controller.document
        japanese = self._japanese()
        voices = self.controller.voice_names()
        chosen_voice = self.voice.currentData() if self._document is document else self.settings.export_voice
        self.voice.clear()
        self.voice.addItem(self._reading_voices_text(), "")
        for name in voices:
            self.voice.addItem(voice_label(name, japanese), name)
        self.voice.setCurrentIndex(max(0, self.voice.findData(chosen_voice)))
        chosen_dialogue = (self.dialogue_voice.currentData() if self._document is document
                           else self.settings.dialogue_voice)
        self.dialogue_voice.clear()
        self.dialogue_voice.addItem(self.tr("(none)"), "")
        for name in voices:
            self.dialogue_voice.addItem(voice_label(name, japanese), name)
        self.dialogue_voice.setCurrentIndex(max(0, self.dialogue_voice.findData(chosen_dialogue)))
        if self._document is not document and document is not None:
            formats = available_formats()
            suffix = self.settings.export_format if self.settings.export_format in formats else ".mp3"
            self.output.setText(str(default_output(document, self.settings.export_folder, suffix)))
            self.speed.setValue(self.settings.speed)
            self.from_start.setChecked(True)
            self._finished_output = None  # what the dialog said of the last export is about another document
            self._set_status("")
            self._show_error("")
        self._document = document
        self._update_cursor_choice()
        self._show_idle()

    def _japanese(self) -> bool:
        translations = self.window_.translations
        return translations is not None and translations.language == "ja"

    def _reading_voices_text(self) -> str:
        """The first voice choice: the reading's voices, named ("Reading voices: Japanese, female · …")."""
        try:
            plan = self.controller.voice_plan()
        except VoiceError:
            return self.tr("Reading voices (Settings › Voices)")
        japanese = self._japanese()
        if not plan.by_language:
            return self.tr("Reading voice: {0}").format(voice_label(plan.main, japanese))
        return self.tr("Reading voices: {0} · {1}").format(voice_label(plan.by_language["ja"], japanese),
                                                          voice_label(plan.by_language["en"], japanese))

    def _caret_sentence(self) -> tuple[int, int] | None:
        """(index, start) of the sentence at the reader's cursor, or None without sentences."""
        loaded = self.controller.loaded
        if loaded is None or not loaded.utterances:
            return None
        index = min(self.controller.reading.index_at(self.window_.reader.cursor_offset()),
                    len(loaded.utterances) - 1)
        return index, loaded.utterances[index].start

    def _start_choice_changed(self) -> None:
        """One Tab stop for the two radios, the checked one (what Qt does once the group had the focus)."""
        for radio in (self.from_start, self.from_cursor):
            radio.setFocusPolicy(Qt.FocusPolicy.StrongFocus if radio.isChecked() else Qt.FocusPolicy.ClickFocus)

    def _update_cursor_choice(self) -> None:
        loaded = self.controller.loaded
        caret = self._caret_sentence()
        if caret is None or loaded is None:
            self.from_cursor.setText(self.tr("From the c&ursor"))
        else:
            self.from_cursor.setText(self.tr("From the c&ursor (sentence {0} of {1})").format(
                caret[0] + 1, len(loaded.utterances)))

    def output_path(self) -> Path | None:
        text = self.output.text().strip()
        return Path(text).expanduser() if text else None

    def subtitles_path(self) -> Path | None:
        suffix = self.subtitles.currentData()
        output = self.output_path()
        return output.with_suffix(suffix) if suffix and output is not None and output.name else None

    def _output_changed(self) -> None:
        subtitles = self.subtitles_path()
        self.subtitles_note.setText(self.tr("Written next to the audio: {0}").format(subtitles.name)
                                    if subtitles is not None else "")
        self.subtitles_note.setVisible(subtitles is not None)
        self.subtitles.setAccessibleDescription(self.subtitles_note.text())
        if self.error.isVisible() and not self.job.busy:
            self._show_error("")

    def browse(self) -> None:
        """A Save dialog whose filter lists the formats; the chosen filter's extension is added when the
        name has none."""
        output = self.output_path()
        filters = self.format_filters()
        dialog = QFileDialog(self, self.tr("Export audio to"), str(output) if output else str(Path.home()))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        dialog.setNameFilters(list(filters.values()))
        suffix = output.suffix.lower() if output is not None and output.suffix.lower() in filters else ".m4b"
        if suffix in filters:
            dialog.selectNameFilter(filters[suffix])
            dialog.setDefaultSuffix(suffix[1:])
        by_filter = {text: key for key, text in filters.items()}
        dialog.filterSelected.connect(lambda text: dialog.setDefaultSuffix(by_filter.get(text, ".m4b")[1:]))
        dialog.fileSelected.connect(self._file_chosen)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.file_dialog = dialog
        open_window_modal(dialog)

    def format_filters(self) -> dict[str, str]:
        """The Save dialog's filter of each format the dialog offers whose encoder is installed."""
        names = {".m4b": self.tr("Audiobook, AAC"), ".m4a": self.tr("AAC audio"), ".mp3": self.tr("MP3 audio"),
                 ".opus": self.tr("Ogg Opus audio"), ".flac": self.tr("FLAC audio, lossless"),
                 ".wav": self.tr("WAV audio, uncompressed")}
        return {suffix: f"{names[suffix]} (*{suffix})" for suffix in available_formats()}

    def _file_chosen(self, path: str) -> None:
        self.file_dialog = None
        if path:
            self.output.setText(path)
            self._replace_confirmed = path  # the Save dialog asked already

    # --- starting, progress, the end -------------------------------------------------------------------

    def choices(self) -> ExportChoices:
        """The fields, checked (MioDeskError with the reason in one line)."""
        from miodesk.export import check_export_paths

        output = self.output_path()
        if output is None:
            raise MioDeskError(self.tr("Enter the file to export to, for example book.m4b."))
        subtitles = self.subtitles_path()
        check_export_paths(output, subtitles)
        caret = self._caret_sentence()
        from_char = caret[1] if self.from_cursor.isChecked() and caret is not None else 0
        return ExportChoices(output, subtitles, self.voice.currentData() or "", self.dialogue_voice.currentData() or "",
                             round(self.speed.value(), 2), from_char)

    def request_for(self, choices: ExportChoices) -> ExportRequest:
        """The export request: the open document, the voices' vectors, the reading's dictionary."""
        from miodesk.export import ExportRequest
        from miodesk.tts.generation import Priority

        document = self.controller.document
        if document is None:
            raise MioDeskError(self.tr("Open a document first."))
        store = self.controller.voice_store
        if choices.voice:
            voice, voices = store.get(choices.voice).vector, None
            key = choices.voice
        else:
            plan = self.controller.voice_plan()
            voice, by_language = self.controller.voice_vectors(plan)
            voices = by_language or None
            key = ",".join([plan.main, *(f"{lang}={name}" for lang, name in sorted(plan.by_language.items()))])
        dialogue = store.get(choices.dialogue_voice).vector if choices.dialogue_voice else None
        if choices.dialogue_voice:
            key += f",dialogue={choices.dialogue_voice}"
        return ExportRequest(document=document, output=choices.output, voice=voice, voices=voices,
                             dialogue_voice=dialogue, voice_key=key, speed=choices.speed,
                             subtitles=choices.subtitles, from_char=choices.from_char, seed=self.controller.seed,
                             prepare_text=self.controller.readings.prepare_text, priority=Priority.BACKGROUND)

    def start_export(self) -> bool:
        """Start: check the fields, remember them, start the job. False (with the reason shown) if not."""
        if self.job.busy:
            return False
        try:
            choices = self.choices()
            request = self.request_for(choices)
        except MioDeskError as error:
            self._show_error(" ".join(str(error).split()))
            self.output.setFocus(Qt.FocusReason.OtherFocusReason)
            return False
        if choices.output.exists() and self._replace_confirmed != str(choices.output) and not self._confirm_replace(
                choices.output):
            return False
        self._remember(choices)
        self._finished_output = None
        self._show_error("")
        # Said before the start, which may say that the models load.
        accessibility.announce(self, self.tr("Exporting to {0}.").format(choices.output.name))
        self.job.start(request)
        return True

    def _confirm_replace(self, path: Path) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Export Audio"),
                          self.tr("{0} already exists. Replace it?").format(path.name),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    def _remember(self, choices: ExportChoices) -> None:
        settings = self.settings
        settings.export_folder = str(choices.output.parent)
        if choices.output.suffix.lower() in EXPORT_FORMATS:
            settings.export_format = choices.output.suffix.lower()
        settings.export_subtitles = choices.subtitles.suffix.lower() if choices.subtitles is not None else ""
        settings.export_voice = choices.voice
        try:
            save_settings(settings)
        except OSError as error:
            log.warning("cannot save the settings: %s", error)

    def _job_state_changed(self, state: str) -> None:
        busy = state != JobState.IDLE
        self.fields.setEnabled(not busy)
        self.start_button.setVisible(not busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(state in (JobState.LOADING, JobState.RUNNING))
        self.open_folder_button.setVisible(not busy and self._finished_output is not None)
        self.status_progress.setVisible(busy)
        if state == JobState.LOADING:
            self.progress.show()
            self.progress.setRange(0, 0)  # busy, no value yet
            self._set_status(self.tr("Loading the speech models…"))
        elif state == JobState.RUNNING:
            self.progress.setRange(0, 100)
            self.progress.setValue(0)
            self.status_progress.setValue(0)
            self._set_status(self.tr("Starting…"))
        elif state == JobState.CANCELLING:
            self._set_status(self.tr("Cancelling after this sentence…"))
        if busy and self.isVisible() and (self.focusWidget() is None or not self.focusWidget().isEnabled()
                                          or not self.focusWidget().isVisible()):
            self.cancel_button.setFocus(Qt.FocusReason.OtherFocusReason)  # the keyboard stays in the dialog

    def progress_text(self, progress: ExportProgress) -> str:
        """One line: audio made, speed, time left, chapter."""
        parts = [self.tr("{0} of audio").format(format_duration(progress.audio_s))]
        if progress.speed_x > 0:
            parts.append(self.tr("{0:.1f}× real time").format(progress.speed_x))
        if progress.eta_s is not None:
            parts.append(self.tr("about {0} left").format(format_duration(progress.eta_s)))
        if progress.stage == "encoding":
            parts.append(self.tr("writing the file"))
        elif progress.chapters > 1:
            parts.append(self.tr("chapter {0} of {1}").format(progress.chapter, progress.chapters))
        return " · ".join(parts)

    def _show_progress(self, progress: ExportProgress) -> None:
        percent = round(100 * progress.done_chars / progress.total_chars) if progress.total_chars else 0
        percent = min(100, max(0, percent))
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 100)
        self.progress.setValue(percent)
        self.status_progress.setValue(percent)
        if self.job.state == JobState.RUNNING:
            self._set_status(self.progress_text(progress))
        self.status_progress.setToolTip(self.progress_text(progress))

    def _succeeded(self, result: ExportResult) -> None:
        self._finished_output = result.output
        self.progress.setRange(0, 100)
        self.progress.setValue(100)
        parts = [self.tr("{0} of audio").format(format_duration(result.audio_s))]
        if result.chapters > 1:
            parts.append(self.tr("{0} chapters").format(result.chapters))
        if result.chapters_reused:
            parts.append(self.tr("{0} chapters from the earlier export").format(result.chapters_reused))
        if result.dropped:
            parts.append(self.tr("{0} sentences left out").format(result.dropped))
        message = self.tr("Exported {0}: {1}.").format(result.output.name, ", ".join(parts))
        self._set_status(message)
        self.open_folder_button.setVisible(True)
        if self.isVisible():
            self.open_folder_button.setFocus(Qt.FocusReason.OtherFocusReason)
        self.window_.statusBar().showMessage(message, 10000)
        # The banner says it (to screen readers too) and opens the folder.
        self.window_.show_message("info", message, self.tr("Open Folder"), self.open_folder)

    def _failed(self, message: str) -> None:
        text = self.tr("The export failed: {0}").format(message)
        self._set_status("")
        self.progress.setRange(0, 100)
        self._show_error(text, announce=False)
        self.window_.show_error(text)  # the banner, spoken at once

    def _cancelled(self, reason: str) -> None:
        if reason == "engine":
            message = self.tr("The export stopped because the speech models are reloading. The work done so far "
                              "is kept: Export again continues it.")
        else:
            message = self.tr("Export cancelled. The work done so far is kept: Export again continues it.")
        self.progress.setRange(0, 100)
        self._set_status(message)
        self.window_.show_message("info", message)
        if self.isVisible():
            self.start_button.setFocus(Qt.FocusReason.OtherFocusReason)

    def open_folder(self) -> None:
        if self._finished_output is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._finished_output.parent)))

    def _set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def _show_error(self, text: str, announce: bool = True) -> None:
        self.error.setStyleSheet(f"color: {error_text(self.palette()).name()};")
        self.error.setText(text)
        self.error.setVisible(bool(text))
        if text and announce:
            accessibility.announce(self, text, urgent=True)

    def _show_idle(self) -> None:
        self._job_state_changed(self.job.state)
        self.progress.setVisible(self.job.busy or bool(self.status.text()))

    # --- closing and quitting --------------------------------------------------------------------------

    def confirm_quit(self) -> bool:
        """Quitting with an export running: ask whether to stop it (its work stays staged). True: quit."""
        if not self.job.busy:
            return True
        question = self.tr("An export is running. Stop it and quit? The work done so far is kept: Export again "
                           "continues it.")
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Export Audio"), question,
                          QMessageBox.StandardButton.NoButton, self.parentWidget())
        quit_button = box.addButton(self.tr("Stop Export and &Quit"), QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton(self.tr("&Keep Exporting"), QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        self.quit_question = box  # for tests: the question being asked
        box.exec()
        self.quit_question = None
        return box.clickedButton() is quit_button

    def shutdown(self) -> None:
        """The app quits: stop the export and wait for its thread (the engine must outlive it)."""
        if not self.job.close(QUIT_WAIT_S):
            log.warning("the export did not stop within %.0f s", QUIT_WAIT_S)


def open_export_dialog(window: ExportWindow) -> ExportDialog:
    """File › Export audio…: the window's one export dialog, filled for the open document, shown."""
    dialog: ExportDialog | None = getattr(window, "export_dialog", None)
    if dialog is None:
        dialog = ExportDialog(window)
        window.export_dialog = dialog
    dialog.prepare()
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
