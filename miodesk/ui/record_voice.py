"""The Record Voice dialog: record (or re-record) yourself, check the takes, name the voice, save it.

Audio capture runs in PortAudio's thread (miodesk.audio.recorder); the meter is polled by a timer.
Analysis, encoding and saving run on a worker thread whose results come back on the UI thread
(`miodesk.ui.background`), so the UI never waits on the encoder. Nothing engine-wide is touched:
the dialog gets the store and a factory for the encoder, and announces a saved voice with
`voiceSaved(name)`.

Accessibility: what the dialog says in its status line (and the hints for a new take) is also spoken
through `accessibility.announce` (failures urgently), because a screen reader does not read a label
that changes without focus. A button is never disabled while it has the focus: the focus first moves
to the control to use next (Record → Stop → Record again), not into whatever follows in the chain.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QLocale, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from miodesk.audio.recorder import (
    MAX_RECORD_SECONDS,
    QualityIssue,
    QualityReport,
    Recorder,
    Recording,
    analyse,
    combine_takes,
    list_input_devices,
    reading_text,
)
from miodesk.errors import MioDeskError
from miodesk.tts.voice_encoder import VoiceEncoder, make_voice_from_audio
from miodesk.tts.voices import VoiceStore, validate_voice_name
from miodesk.ui import accessibility
from miodesk.ui.background import UiDispatcher, run_in_background
from miodesk.ui.theme import error_text

log = logging.getLogger(__name__)

METER_FLOOR_DB = -60.0


class RecordVoiceDialog(QDialog):
    """Record 10–30 s, check quality, save into `store`; emits `voiceSaved(name)` when stored."""

    voiceSaved = Signal(str)

    def __init__(self, store: VoiceStore, encoder_factory: Callable[[], VoiceEncoder], parent: QWidget | None = None,
                 *, language: str | None = None, max_seconds: float = MAX_RECORD_SECONDS) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Record your voice"))
        self._store = store
        self._encoder_factory = encoder_factory
        self._encoder: VoiceEncoder | None = None
        self._max_seconds = max_seconds
        self._recorder: Recorder | None = None
        self._takes: list[Recording] = []
        self._reports: list[QualityReport] = []
        self._busy = False
        self._checking = False  # the take just stopped is being analysed (Stop keeps the focus meanwhile)
        self._worker: threading.Thread | None = None
        self._ui = UiDispatcher(self)
        language = language or ("ja" if QLocale().name().startswith("ja") else "en")

        self.device_combo = QComboBox()
        self.device_combo.addItem(self.tr("System default"), None)
        try:
            for index, name in list_input_devices():
                self.device_combo.addItem(name, index)
        except MioDeskError as error:
            log.info("no input devices listed: %s", error)

        intro = QLabel(self.tr("Read this text aloud in your normal voice, for 10 to 30 seconds:"))
        intro.setWordWrap(True)
        self.text_label = QLabel(reading_text(language))
        self.text_label.setWordWrap(True)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_label.setStyleSheet("font-size: 14pt; padding: 8px;")

        self.meter = QProgressBar()
        self.meter.setRange(0, int(-METER_FLOOR_DB))
        self.meter.setTextVisible(False)
        self.meter.setAccessibleName(self.tr("Input level"))  # no visible label; its value is the level
        self.time_label = QLabel("0.0 s")

        # Mnemonics, one letter each: M R S P E N V.
        self.record_button = QPushButton(self.tr("&Record"))
        self.stop_button = QPushButton(self.tr("&Stop"))
        self.play_button = QPushButton(self.tr("&Play back"))
        self.rerecord_button = QPushButton(self.tr("R&e-record"))
        self.record_button.clicked.connect(self.start_recording)
        self.stop_button.clicked.connect(self.stop_recording)
        self.play_button.clicked.connect(self.play_back)
        self.rerecord_button.clicked.connect(self.rerecord)

        self.hints_label = QLabel()
        self.hints_label.setWordWrap(True)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText(self.tr("e.g. My voice"))
        self.name_edit.textChanged.connect(self._update_buttons)
        self.save_button = QPushButton(self.tr("Sa&ve voice"))
        self.save_button.setDefault(True)  # Enter in the name field saves (not Record, the first button)
        self.save_button.clicked.connect(self.save)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.clicked.connect(self.reject)

        form = QFormLayout()
        form.addRow(self.tr("&Microphone:"), self.device_combo)  # the label is the combo's buddy: its name
        meter_row = QHBoxLayout()
        meter_row.addWidget(self.meter, 1)
        meter_row.addWidget(self.time_label)
        buttons = QHBoxLayout()
        for button in (self.record_button, self.stop_button, self.play_button, self.rerecord_button):
            buttons.addWidget(button)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(intro)
        layout.addWidget(self.text_label)
        layout.addLayout(meter_row)
        layout.addLayout(buttons)
        layout.addWidget(self.hints_label)
        name_form = QFormLayout()
        name_form.addRow(self.tr("Voice &name:"), self.name_edit)
        layout.addLayout(name_form)
        layout.addWidget(self.status_label)
        layout.addLayout(bottom)

        self._timer = QTimer(self)
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._tick)
        self._update_buttons()

    # --- state ------------------------------------------------------------------------------------
    @property
    def takes(self) -> list[Recording]:
        return list(self._takes)

    @property
    def reports(self) -> list[QualityReport]:
        return list(self._reports)

    def _usable(self) -> bool:
        return any(r.ok for r in self._reports)

    def _update_buttons(self) -> None:
        recording = self._recorder is not None
        idle = not recording and not self._busy
        self.record_button.setText(self.tr("&Record another take") if self._takes else self.tr("&Record"))
        states: list[tuple[QWidget, bool]] = [
            (self.device_combo, idle),
            (self.record_button, idle),
            (self.stop_button, recording or self._checking),
            (self.play_button, bool(self._takes) and idle),
            (self.rerecord_button, bool(self._takes) and idle),
            (self.save_button, idle and self._usable() and bool(self.name_edit.text().strip())),
        ]
        for widget, enabled in states:
            if enabled:
                widget.setEnabled(True)
        # Qt moves the focus of a control being disabled to the next one in the chain (the name
        # field): move it to the control to use next first.
        focused = self.focusWidget()
        if any(widget is focused and not enabled for widget, enabled in states):
            self._next_control().setFocus(Qt.FocusReason.OtherFocusReason)
        for widget, enabled in states:
            if not enabled:
                widget.setEnabled(False)

    def _next_control(self) -> QWidget:
        """The control to use next, for the focus when the focused one is disabled."""
        if self._recorder is not None or self._checking:
            return self.stop_button
        if not self._busy:
            return self.record_button
        return self.name_edit  # the voice is being made: a failure would ask for another name

    def _show_status(self, text: str, error: bool = False, details: Sequence[str] = ()) -> None:
        """Show `text` and have the screen reader say it, with `details` (a take's hints) after it.

        Errors interrupt the screen reader. The label keeps its text as its accessible name.
        """
        self.status_label.setStyleSheet(f"color: {error_text(self.palette()).name()};" if error else "")
        self.status_label.setText(text)
        accessibility.announce(self, " ".join([text, *details]), urgent=error)

    # --- recording --------------------------------------------------------------------------------
    def start_recording(self) -> None:
        self._stop_playback()
        try:
            recorder = Recorder(device=self.device_combo.currentData(), max_seconds=self._max_seconds)
            recorder.start()
        except MioDeskError as error:
            self._update_buttons()  # Re-record has cleared the takes already
            self._show_status(str(error), error=True)
            return
        self._recorder = recorder
        self._timer.start()
        self._update_buttons()  # the focus moves to Stop before the status is spoken
        self._show_status(self.tr("Recording… read the text aloud, then press Stop."))

    def _tick(self) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        level = recorder.level
        self.meter.setValue(int(max(0.0, level.rms_db - METER_FLOOR_DB)))
        self.time_label.setText(f"{recorder.elapsed:.1f} s")
        if recorder.is_full:
            self.stop_recording()

    def stop_recording(self) -> None:
        recorder, self._recorder = self._recorder, None
        self._timer.stop()
        self.meter.setValue(0)
        if recorder is None:
            return
        self._busy = self._checking = True
        self._update_buttons()
        self._show_status(self.tr("Checking the recording…"))

        def work() -> tuple[Recording, QualityReport]:
            take = recorder.stop()
            return take, analyse(take.samples, take.sample_rate)

        self._start_worker(work, self._on_analysed)

    def _on_analysed(self, result: tuple[Recording, QualityReport]) -> None:
        take, report = result
        self._busy = self._checking = False
        self._takes.append(take)
        self._reports.append(report)
        self._show_hints()
        self._update_buttons()  # the focus moves from Stop to Record before the result is spoken
        number = len(self._takes)
        hints = [text for _, text in self._hint_lines(number, report)]
        if report.ok:
            self._show_status(self.tr("Take {n} is usable. Record another take, or name the voice and save it.")
                              .format(n=number), details=hints)
        else:
            self._show_status(self.tr("Take {n} cannot be used; please record again.").format(n=number),
                              error=True, details=hints)

    def _hint_lines(self, number: int, report: QualityReport) -> list[tuple[str, str]]:
        """(mark, sentence) for what the check found in take `number`; the mark is shown, not spoken."""
        if not report.issues:
            return [("", self.tr("Take {n}: good ({s:.0f} s of speech).").format(n=number, s=report.speech_seconds))]
        return [("✗" if issue.severity == "error" else "!",
                 self.tr("Take {n}:").format(n=number) + " " + self._issue_text(issue, report))
                for issue in report.issues]

    def _issue_text(self, issue: QualityIssue, report: QualityReport) -> str:
        """The check's finding in the window's language (the recorder's own message is the CLI's English)."""
        seconds, snr = report.speech_seconds, max(report.snr_db, 0.0)
        texts = {
            ("silence", "error"): self.tr(
                "Nothing was heard: check that the right microphone is selected, connected and not muted."),
            ("noise", "error"): self.tr(
                "Too much background noise (speech is only {0:.0f} dB above it): record somewhere quieter."
            ).format(snr),
            ("noise", "warning"): self.tr(
                "Some background noise (speech {0:.0f} dB above it): a quieter room gives a cleaner voice."
            ).format(snr),
            ("clipping", "error"): self.tr(
                "The sound is distorted (clipping): move back from the microphone or lower its gain."),
            ("clipping", "warning"): self.tr(
                "Some peaks are clipped: speak a little softer or lower the microphone gain."),
            ("quiet", "error"): self.tr(
                "Far too quiet: move closer to the microphone or raise its gain, then record again."),
            ("quiet", "warning"): self.tr(
                "The recording is quiet: move closer to the microphone or raise its gain."),
            ("short", "error"): self.tr(
                "Too short: only {0:.1f} s of speech; read for at least 10 seconds.").format(seconds),
            ("short", "warning"): self.tr(
                "Short: {0:.1f} s of speech; 10–30 seconds give a more faithful voice.").format(seconds),
            ("pauses", "warning"): self.tr("Mostly silence: keep reading steadily, with only short pauses."),
        }
        return texts.get((issue.code, issue.severity), issue.message)

    def _show_hints(self) -> None:
        lines = []
        for number, report in enumerate(self._reports, start=1):
            for mark, text in self._hint_lines(number, report):
                lines.append(f"{mark} {text}" if mark else text)
        self.hints_label.setText("\n".join(lines))

    def rerecord(self) -> None:
        self._stop_playback()
        self._takes.clear()
        self._reports.clear()
        self.hints_label.clear()
        self.start_recording()

    def play_back(self) -> None:
        if not self._takes:
            return
        try:
            import sounddevice

            combined, _ = combine_takes(self._takes) if self._usable() else (self._takes[-1], None)
            sounddevice.play(combined.samples, combined.sample_rate)
        except Exception as error:  # no output device: say so, nothing else depends on it
            self._show_status(self.tr("Cannot play the recording: {error}").format(error=error), error=True)

    def _stop_playback(self) -> None:
        try:
            import sounddevice

            sounddevice.stop()
        except Exception:  # nothing was playing, or no PortAudio
            pass

    # --- saving -------------------------------------------------------------------------------------
    def save(self) -> None:
        name = self.name_edit.text().strip()
        try:
            validate_voice_name(name)
            if name in self._store:
                raise MioDeskError(
                    self.tr("A voice named “{name}” already exists; choose another name.").format(name=name))
        except MioDeskError as error:
            self._show_status(str(error), error=True)
            return
        takes = list(self._takes)
        self._busy = True
        self._update_buttons()
        self._show_status(self.tr("Making the voice… this takes a few seconds."))

        def work() -> str:
            combined, reports = combine_takes(takes)
            if self._encoder is None:
                self._encoder = self._encoder_factory()
            good = [r for r in reports if r.ok]
            metadata = {"source": {"method": "recorded", "takes": len(takes), "used_takes": len(good),
                                   "sample_rate": combined.sample_rate},
                        "quality": {"speech_seconds": round(sum(r.speech_seconds for r in good), 2),
                                    "snr_db": round(min(r.snr_db for r in good), 1),
                                    "warnings": sorted({i.code for r in good for i in r.warnings})}}
            make_voice_from_audio(self._store, name, combined.samples, combined.sample_rate, self._encoder,
                                  metadata=metadata)
            return name

        self._start_worker(work, self._on_saved)

    def _on_saved(self, name: str) -> None:
        self._busy = False
        self._show_status(self.tr("Saved voice “{name}”.").format(name=name))
        self._update_buttons()
        self.voiceSaved.emit(name)
        self.accept()

    def _on_failed(self, error: BaseException) -> None:
        # Shown in the dialog, never raised into Qt; the store keeps no half voice.
        self._busy = self._checking = False
        self._update_buttons()
        self._show_status(str(error), error=True)

    def _start_worker(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._worker = run_in_background(self._ui, "record-voice", work, done, self._on_failed)

    def done(self, result: int) -> None:  # closing by any route stops the microphone
        if self._recorder is not None:
            recorder, self._recorder = self._recorder, None
            self._timer.stop()
            recorder.stop()
        self._stop_playback()
        super().done(result)
