"""Settings: where the speech model runs (a file here, or an LLM server), codec, compute device and
threads, audio output, decoding, language, window.

Accessibility: every field is named by its visible label (a QFormLayout label is the field's buddy,
the speech-model and decoding choices sit in titled group boxes), so a screen reader says what the
user sees; only a control without a visible label gets a name of its own. Each mnemonic letter is used
once in the dialog, and O and C stay free for the OK and Cancel buttons (&OK, &Cancel in GNOME's and
KDE's Qt themes).

The server's Test button probes it off the UI thread (`miodesk.tts.llm_server.probe_server`) and says
what it found in one line beside the button, which the screen reader speaks too.

The Voices page chooses how sentences get their voice: a voice per language (a Japanese and an English
voice; mixed documents switch per sentence) or one voice for every sentence. Its choices are the ones
the window's voice list shows: the one voice, or the voice of the open document's main language.

The Server page turns on MioDesk's own speech server (the OpenAI and VOICEVOX APIs, on 127.0.0.1 only),
which runs inside the app on the window's engine; "Copy URL" puts the OpenAI base URL on the clipboard
and says so.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from PySide6.QtCore import QLocale, QSize, Qt
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from miodesk import paths, runtime, system
from miodesk.errors import MioDeskError
from miodesk.models import registry
from miodesk.models.catalog import CODEC_VARIANTS, DEFAULT_CODEC_VARIANT
from miodesk.reading_state import choose_voice
from miodesk.runtime import Provider
from miodesk.settings import (
    MAX_SERVER_PORT,
    MAX_TEXT_SCALE,
    MIN_SERVER_PORT,
    MIN_TEXT_SCALE,
    VOICE_MODE_LANGUAGE,
    VOICE_MODE_SINGLE,
    Settings,
)
from miodesk.tts.pauses import MAX_PARAGRAPH_PAUSE_S, MAX_SENTENCE_PAUSE_S
from miodesk.ui import accessibility
from miodesk.ui.background import UiDispatcher, run_in_background
from miodesk.ui.shortcuts_page import ShortcutsPage
from miodesk.ui.theme import error_text
from miodesk.ui.voice_labels import PRESET_LABELS, voice_label

if TYPE_CHECKING:
    from miodesk.tts.llm_server import ServerConfig, ServerProbe

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 8.0  # the Test button's answer comes within 10 s, a dead server included
SERVER_HOST = "127.0.0.1"  # the in-app speech server listens on this computer only


def speech_server_url(port: int) -> str:
    """The OpenAI base URL of the in-app speech server on `port` (what "Copy URL" copies)."""
    return f"http://{SERVER_HOST}:{port}/v1"


def _pause_field(name: str, longest: float, step: float) -> tuple[QDoubleSpinBox, QLabel]:
    """A pause in seconds (0 to `longest`, two decimals) and its label."""
    box = QDoubleSpinBox()
    box.setObjectName(name)
    box.setRange(0.0, longest)
    box.setSingleStep(step)
    box.setDecimals(2)
    return box, QLabel()


def output_devices() -> list[str]:
    """Names of the audio outputs PortAudio sees (empty when it cannot list them)."""
    try:
        import sounddevice

        names = []
        for device in sounddevice.query_devices():
            if device["max_output_channels"] > 0 and device["name"] not in names:
                names.append(device["name"])
        return names
    except Exception as error:  # noqa: BLE001 - no PortAudio: the default device is all we offer
        log.info("cannot list audio devices: %s", error)
        return []


def available_providers() -> set[str]:
    return {provider.value for provider in runtime.available_providers()}


def installed_models() -> list[Path]:
    return sorted(paths.models_dir().rglob("*.gguf"))


def installed_voices() -> list[str]:
    """The voices in the app's voice folder (empty when it cannot be read)."""
    from miodesk.tts.voices import VoiceStore

    try:
        return VoiceStore().names()
    except OSError as error:
        log.warning("cannot list voices: %s", error)
        return []


def scrolling(page: QWidget) -> QScrollArea:
    """A tab page that scrolls when the screen is short (200 % scale on a laptop) instead of pushing
    OK and Cancel off the screen; Tab scrolls the focused control into view."""
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keyboard goes to the controls, not the page
    return area


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None, voices: list[str] | None = None,
                 language: str | None = None) -> None:
        """`voices`: the installed voices (None: those in the app's voice folder); `language`: the open
        document's main language, which picks the one voice shown while none was chosen (None: the UI's)."""
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.original = settings
        self._voices = installed_voices() if voices is None else list(voices)
        self._japanese_ui = QLocale().language() == QLocale.Language.Japanese
        self._document_language = language or ("ja" if self._japanese_ui else "en")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget(self)
        layout.addWidget(self.tabs)

        # Speech
        speech = QWidget()
        form = QFormLayout(speech)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setVerticalSpacing(10)
        # Where the speech model runs: a titled group (its title labels the radios), each choice with
        # its fields below it, indented under the radio; only the chosen side's fields are enabled.
        self.engine_group = QGroupBox()
        self.engine_group.setObjectName("speechModelGroup")
        self.local_radio = QRadioButton()
        self.local_radio.setObjectName("modelOnComputer")
        self.server_radio = QRadioButton()
        self.server_radio.setObjectName("modelOnServer")
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("modelCombo")
        self.browse_model = QPushButton()
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.browse_model)
        self.model_label = QLabel()
        self.server_url = QLineEdit()
        self.server_url.setObjectName("serverUrl")
        self.server_url.setPlaceholderText("http://gpu-box:8000/v1")
        self.server_url_label = QLabel()
        self.server_key = QLineEdit()
        self.server_key.setObjectName("serverKey")
        self.server_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.server_key_label = QLabel()
        self.server_model = QLineEdit()
        self.server_model.setObjectName("serverModel")
        self.server_model_label = QLabel()
        self.test_button = QPushButton()
        self.test_button.setObjectName("testServer")
        self.test_result = QLabel()
        self.test_result.setObjectName("serverTestResult")
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        indent = (self.style().pixelMetric(QStyle.PixelMetric.PM_ExclusiveIndicatorWidth)
                  + self.style().pixelMetric(QStyle.PixelMetric.PM_RadioButtonLabelSpacing))
        local_form = QFormLayout()
        local_form.setContentsMargins(indent, 0, 0, 0)
        local_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        local_form.addRow(self.model_label, model_row)
        server_form = QFormLayout()
        server_form.setContentsMargins(indent, 0, 0, 0)
        server_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        server_form.addRow(self.server_url_label, self.server_url)
        server_form.addRow(self.server_key_label, self.server_key)
        server_form.addRow(self.server_model_label, self.server_model)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignTop)
        test_row.addWidget(self.test_result, 1)
        server_form.addRow(test_row)
        engine_box = QVBoxLayout(self.engine_group)
        engine_box.addWidget(self.local_radio)
        engine_box.addLayout(local_form)
        engine_box.addWidget(self.server_radio)
        engine_box.addLayout(server_form)
        form.addRow(self.engine_group)
        self.codec_combo = QComboBox()
        self.codec_combo.setObjectName("codecCombo")
        self.codec_label = QLabel()
        form.addRow(self.codec_label, self.codec_combo)
        self.provider_combo = QComboBox()
        self.provider_combo.setObjectName("providerCombo")
        self.provider_label = QLabel()
        form.addRow(self.provider_label, self.provider_combo)
        self.llm_threads = QSpinBox()
        self.llm_threads.setRange(0, system.usable_cores())  # 0 = automatic; more than the cores only slows
        self.codec_threads = QSpinBox()
        self.codec_threads.setRange(0, system.usable_cores())
        self.llm_threads_label = QLabel()
        self.codec_threads_label = QLabel()
        form.addRow(self.llm_threads_label, self.llm_threads)
        form.addRow(self.codec_threads_label, self.codec_threads)
        # A titled group box, not a label beside the radios: assistive technology reads its title as
        # the radios' label (a Label relation), which a loose QLabel never becomes.
        self.decode_group = QGroupBox()
        self.streaming = QRadioButton()
        self.full_decode = QRadioButton()
        decode_box = QVBoxLayout(self.decode_group)
        decode_box.addWidget(self.streaming)
        decode_box.addWidget(self.full_decode)
        form.addRow(self.decode_group)
        self.speech_note = QLabel()
        self.speech_note.setWordWrap(True)
        self.speech_note.setObjectName("note")
        form.addRow(self.speech_note)
        self.tabs.addTab(scrolling(speech), "")
        self.speech_page = speech

        # Audio
        audio = QWidget()
        audio_form = QFormLayout(audio)
        audio_form.setVerticalSpacing(10)
        self.device_combo = QComboBox()
        self.device_combo.setObjectName("deviceCombo")
        self.device_label = QLabel()
        audio_form.addRow(self.device_label, self.device_combo)
        self.tabs.addTab(scrolling(audio), "")

        # Interface
        interface = QWidget()
        ui_form = QFormLayout(interface)
        ui_form.setVerticalSpacing(10)
        self.language_combo = QComboBox()
        self.language_combo.setObjectName("languageCombo")
        self.language_label = QLabel()
        ui_form.addRow(self.language_label, self.language_combo)
        self.text_scale = QSpinBox()
        self.text_scale.setObjectName("textScaleSpin")
        self.text_scale.setRange(MIN_TEXT_SCALE, MAX_TEXT_SCALE)
        self.text_scale.setSingleStep(10)
        self.text_scale_label = QLabel()
        ui_form.addRow(self.text_scale_label, self.text_scale)
        self.highlight = QCheckBox()
        self.auto_scroll = QCheckBox()
        self.close_to_tray = QCheckBox()
        self.announce_sentences = QCheckBox()
        for box in (self.highlight, self.auto_scroll, self.close_to_tray, self.announce_sentences):
            ui_form.addRow(box)
        self.announce_note = QLabel()
        self.announce_note.setWordWrap(True)
        self.announce_note.setObjectName("note")
        ui_form.addRow(self.announce_note)
        self.tabs.addTab(scrolling(interface), "")

        # Server: MioDesk's voices for other apps, on this computer only. The port, key and Copy URL
        # follow the checkbox (disabled while it is off, so Tab skips them).
        serving = QWidget()
        server_page = QFormLayout(serving)
        server_page.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        server_page.setVerticalSpacing(10)
        self.serve = QCheckBox()
        self.serve.setObjectName("serveVoices")
        server_page.addRow(self.serve)
        self.serve_port = QSpinBox()
        self.serve_port.setObjectName("servePort")
        self.serve_port.setRange(MIN_SERVER_PORT, MAX_SERVER_PORT)
        self.serve_port.setGroupSeparatorShown(False)  # 8880, not 8,880: a port is a number to type
        self.serve_port_label = QLabel()
        server_page.addRow(self.serve_port_label, self.serve_port)
        self.serve_key = QLineEdit()
        self.serve_key.setObjectName("serveKey")
        self.serve_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.serve_key_label = QLabel()
        server_page.addRow(self.serve_key_label, self.serve_key)
        self.copy_url = QPushButton()
        self.copy_url.setObjectName("copyServerUrl")
        self.copy_result = QLabel()
        self.copy_result.setObjectName("copyUrlResult")
        self.copy_result.setWordWrap(True)
        self.copy_result.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        copy_row = QHBoxLayout()
        copy_row.addWidget(self.copy_url, 0, Qt.AlignmentFlag.AlignTop)
        copy_row.addWidget(self.copy_result, 1)
        server_page.addRow(copy_row)
        self.server_note = QLabel()
        self.server_note.setWordWrap(True)
        self.server_note.setObjectName("note")
        server_page.addRow(self.server_note)
        self.tabs.addTab(scrolling(serving), "")
        self.server_page = serving

        # Voices: a voice per language, or one voice for every sentence. Like the speech model's choice,
        # a titled group (its title labels the radios) with each choice's fields indented under it.
        voicing = QWidget()
        voices_form = QFormLayout(voicing)
        voices_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        voices_form.setVerticalSpacing(10)
        self.voices_group = QGroupBox()
        self.voices_group.setObjectName("readingVoicesGroup")
        self.per_language_radio = QRadioButton()
        self.per_language_radio.setObjectName("voicePerLanguage")
        self.single_voice_radio = QRadioButton()
        self.single_voice_radio.setObjectName("oneVoice")
        self.japanese_voice = QComboBox()
        self.japanese_voice.setObjectName("japaneseVoiceCombo")
        self.japanese_voice_label = QLabel()
        self.english_voice = QComboBox()
        self.english_voice.setObjectName("englishVoiceCombo")
        self.english_voice_label = QLabel()
        self.single_voice = QComboBox()
        self.single_voice.setObjectName("singleVoiceCombo")
        self.single_voice_label = QLabel()
        per_language_form = QFormLayout()
        per_language_form.setContentsMargins(indent, 0, 0, 0)
        per_language_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        per_language_form.addRow(self.japanese_voice_label, self.japanese_voice)
        per_language_form.addRow(self.english_voice_label, self.english_voice)
        single_form = QFormLayout()
        single_form.setContentsMargins(indent, 0, 0, 0)
        single_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        single_form.addRow(self.single_voice_label, self.single_voice)
        voices_box = QVBoxLayout(self.voices_group)
        voices_box.addWidget(self.per_language_radio)
        voices_box.addLayout(per_language_form)
        voices_box.addWidget(self.single_voice_radio)
        voices_box.addLayout(single_form)
        voices_form.addRow(self.voices_group)
        self.voices_note = QLabel()
        self.voices_note.setWordWrap(True)
        self.voices_note.setObjectName("note")
        voices_form.addRow(self.voices_note)
        # Quotes in a voice of their own, whichever way the other sentences get theirs.
        self.dialogue_voice = QComboBox()
        self.dialogue_voice.setObjectName("dialogueVoiceCombo")
        self.dialogue_voice_label = QLabel()
        voices_form.addRow(self.dialogue_voice_label, self.dialogue_voice)
        self.dialogue_note = QLabel()
        self.dialogue_note.setWordWrap(True)
        self.dialogue_note.setObjectName("note")
        voices_form.addRow(self.dialogue_note)
        # Pauses: the silence after a sentence and after a paragraph (a heading: half again a paragraph's).
        self.sentence_pause, self.sentence_pause_label = _pause_field("sentencePauseSpin", MAX_SENTENCE_PAUSE_S, 0.05)
        voices_form.addRow(self.sentence_pause_label, self.sentence_pause)
        self.paragraph_pause, self.paragraph_pause_label = _pause_field("paragraphPauseSpin", MAX_PARAGRAPH_PAUSE_S,
                                                                        0.1)
        voices_form.addRow(self.paragraph_pause_label, self.paragraph_pause)
        self.pauses_note = QLabel()
        self.pauses_note.setWordWrap(True)
        self.pauses_note.setObjectName("note")
        voices_form.addRow(self.pauses_note)
        self.tabs.addTab(scrolling(voicing), "")
        self.voices_page = voicing

        # Shortcuts: the global shortcuts (shortcuts_page.py), their live state from the window's reader.
        self.shortcuts_page = ShortcutsPage(settings, getattr(parent, "global_reader", None))
        self._shortcuts_tab = self.tabs.addTab(scrolling(self.shortcuts_page), "")

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._pages = [speech, audio, interface, serving, voicing, self.shortcuts_page]
        self._sized = False
        self.browse_model.clicked.connect(self._browse_model)
        self.local_radio.toggled.connect(self._side_changed)
        self.test_button.clicked.connect(self.test_server)
        for edit in (self.server_url, self.server_key, self.server_model):
            edit.textEdited.connect(self._server_edited)
        self.serve.toggled.connect(self._serving_changed)
        self.per_language_radio.toggled.connect(self._voice_mode_changed)
        self.serve_port.valueChanged.connect(self._serve_port_changed)
        self.copy_url.clicked.connect(self.copy_server_url)
        self.serve_key.textEdited.connect(lambda _: self._show_copy_result(""))
        self._ui = UiDispatcher(self)
        self.finished.connect(self._ui.close)  # a probe answering after the dialog closed tells no one
        self._probe_generation = 0

        for label, field in ((self.model_label, self.model_combo), (self.server_url_label, self.server_url),
                             (self.server_key_label, self.server_key), (self.server_model_label, self.server_model),
                             (self.codec_label, self.codec_combo),
                             (self.provider_label, self.provider_combo), (self.llm_threads_label, self.llm_threads),
                             (self.codec_threads_label, self.codec_threads), (self.device_label, self.device_combo),
                             (self.language_label, self.language_combo), (self.text_scale_label, self.text_scale),
                             (self.serve_port_label, self.serve_port), (self.serve_key_label, self.serve_key),
                             (self.japanese_voice_label, self.japanese_voice),
                             (self.english_voice_label, self.english_voice),
                             (self.single_voice_label, self.single_voice),
                             (self.dialogue_voice_label, self.dialogue_voice),
                             (self.sentence_pause_label, self.sentence_pause),
                             (self.paragraph_pause_label, self.paragraph_pause)):
            label.setBuddy(field)
        self.retranslate()
        self._load(settings)

    def showEvent(self, event: QShowEvent) -> None:
        if not self._sized:
            # Big enough for the largest page, never bigger than the screen (the pages scroll then).
            # Measured now: the window's style sheet, which sizes the controls, applies from here on.
            self._sized = True
            self.ensurePolished()
            natural = QSize(max(p.sizeHint().width() for p in self._pages),
                            max(p.sizeHint().height() for p in self._pages))
            chrome = self.sizeHint() - self.tabs.currentWidget().sizeHint()  # tab bar, buttons, margins
            self.resize((natural + chrome).expandedTo(self.minimumSize())
                        .boundedTo(self.screen().availableGeometry().size()))
        super().showEvent(event)

    def retranslate(self) -> None:
        # Mnemonics, one letter each on the first four pages: P F B V Y M I E D T A S W U L Z H K R N X G Q
        # (O and C: the OK and Cancel buttons). The server's URL field has none left: Alt+V chooses the
        # server, Tab reaches it; nor has Copy URL, the last control of the Server page. The Voices page has
        # letters of its own (L J E A V D): only the page shown answers its mnemonics (Qt ignores hidden ones).
        self.setWindowTitle(self.tr("Settings"))
        self.tabs.setTabText(0, self.tr("Speech"))
        self.tabs.setTabText(1, self.tr("Audio"))
        self.tabs.setTabText(2, self.tr("Interface"))
        self.tabs.setTabText(3, self.tr("Server"))
        self.tabs.setTabText(4, self.tr("Voices"))
        self.tabs.setTabText(self._shortcuts_tab, self.tr("Shortcuts"))
        self.voices_group.setTitle(self.tr("Reading voices"))
        self.per_language_radio.setText(self.tr("A voice for each &language"))
        self.japanese_voice_label.setText(self.tr("&Japanese sentences:"))
        self.english_voice_label.setText(self.tr("&English sentences:"))
        self.single_voice_radio.setText(self.tr("One voice for &all sentences"))
        self.single_voice_label.setText(self.tr("&Voice:"))
        self.voices_note.setText(self.tr(
            "With a voice for each language, a document that mixes Japanese and English switches voice from "
            "sentence to sentence; sentences of only numbers or symbols keep the voice of the document's main "
            "language. The voice list in the window shows and changes the voice of the open document's "
            "language."))
        self.per_language_radio.setAccessibleDescription(self.voices_note.text())
        self.dialogue_voice_label.setText(self.tr("&Dialogue voice:"))
        self.dialogue_note.setText(self.tr(
            "Text inside 「…」, 『…』 and \"…\" is read in this voice, from the next sentence; the document's "
            "sentences are then split where a quote begins and ends. File › Export Audio… offers the same."))
        self.dialogue_voice.setAccessibleDescription(self.dialogue_note.text())
        if self.dialogue_voice.count():
            self.dialogue_voice.setItemText(0, self.tr("(none)"))
        self.sentence_pause_label.setText(self.tr("Pause between &sentences:"))
        self.paragraph_pause_label.setText(self.tr("Pause between &paragraphs:"))
        for pause_box in (self.sentence_pause, self.paragraph_pause):
            pause_box.setSuffix(self.tr(" s"))
        self.pauses_note.setText(self.tr(
            "After a heading the pause is half again the paragraph pause. Reading takes new pauses from the "
            "next sentence; exports use them too."))
        self.paragraph_pause.setAccessibleDescription(self.pauses_note.text())
        self.engine_group.setTitle(self.tr("Speech model"))
        self.local_radio.setText(self.tr("On this com&puter"))
        self.server_radio.setText(self.tr("On a ser&ver"))
        self.model_label.setText(self.tr("Model &file:"))
        self.server_url_label.setText(self.tr("Server URL:"))
        self.server_key_label.setText(self.tr("API ke&y:"))
        self.server_model_label.setText(self.tr("&Model:"))
        self.server_model.setPlaceholderText(self.tr("first model the server lists"))
        self.test_button.setText(self.tr("Test connect&ion"))
        self.test_button.setToolTip(self.tr("Ask the server which model it serves and whether it speaks"))
        self.browse_model.setText(self.tr("&Browse…"))
        # The button is named by its text; what it does is its description (and tooltip).
        self.browse_model.setToolTip(self.tr("Choose a model file"))
        self.browse_model.setAccessibleDescription(self.tr("Choose a model file"))
        self.codec_label.setText(self.tr("Cod&ec:"))
        self.provider_label.setText(self.tr("Compute &device:"))
        self.llm_threads_label.setText(self.tr("Speech model &threads:"))
        self.codec_threads_label.setText(self.tr("Codec thre&ads:"))
        for box in (self.llm_threads, self.codec_threads):
            box.setSpecialValueText(self.tr("Automatic"))
        self.decode_group.setTitle(self.tr("Decoding"))
        self.streaming.setText(self.tr("&Streaming (sound starts sooner)"))
        self.full_decode.setText(self.tr("&Whole sentences (exact, starts later)"))
        self.speech_note.setText(self.tr("Changes to the model, codec or compute device reload the models."))
        self.device_label.setText(self.tr("O&utput device:"))
        self.language_label.setText(self.tr("&Language:"))
        self.text_scale_label.setText(self.tr("Text si&ze:"))
        self.text_scale.setSuffix(self.tr(" %"))
        self.highlight.setText(self.tr("&Highlight the sentence being read"))
        self.auto_scroll.setText(self.tr("&Keep the sentence being read in view"))
        self.close_to_tray.setText(self.tr("Closing the window keeps reading in the system t&ray"))
        self.announce_sentences.setText(self.tr("A&nnounce each sentence to the screen reader"))
        self.announce_note.setText(self.tr(
            "Off by default: the screen reader would speak each sentence while MioDesk reads it aloud."))
        # The note is the checkbox's description too, so a screen reader says why along with the box.
        self.announce_sentences.setAccessibleDescription(self.announce_note.text())
        self.serve.setText(self.tr("Serve MioDesk's voices to other apps (OpenAI and VOICEVO&X APIs)"))
        self.serve_port_label.setText(self.tr("Listenin&g port:"))
        self.serve_key_label.setText(self.tr("API key for re&quests:"))
        self.serve_key.setPlaceholderText(self.tr("optional on this computer"))
        self.copy_url.setText(self.tr("Copy URL"))
        self.server_note.setText(self.tr(
            "The server listens on this computer only (127.0.0.1): other apps here can use the voices, other "
            "computers cannot. It reads with the models the window uses, one request at a time, and your own "
            "reading goes first. VOICEVOX apps use the address without /v1."))
        self.serve.setAccessibleDescription(self.server_note.text())
        self._serve_port_changed()

    def _load(self, settings: Settings) -> None:
        self.model_combo.addItem(self.tr("Recommended (from the models folder)"), "")
        for path in installed_models():
            self.model_combo.addItem(path.name, str(path))
        if settings.model_path and self.model_combo.findData(settings.model_path) < 0:
            self.model_combo.addItem(Path(settings.model_path).name, settings.model_path)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(settings.model_path)))
        self.server_url.setText(settings.llm_base_url)
        self.server_key.setText(settings.llm_api_key)
        self.server_model.setText(settings.llm_model)
        (self.server_radio if settings.llm_on_server else self.local_radio).setChecked(True)
        self._side_changed()

        labels = {"v2_44k": self.tr("44.1 kHz v2 (recommended)"), "24k": self.tr("24 kHz (lighter)")}
        for key, folder in CODEC_VARIANTS.items():
            installed = registry.codec_folder(folder).exists()
            text = labels[key] if installed else self.tr("{0} — not installed").format(labels[key])
            self.codec_combo.addItem(text, key)
        if settings.codec_path:
            self.codec_combo.addItem(self.tr("{0} (custom folder)").format(Path(settings.codec_path).name), "custom")
            self.codec_combo.setCurrentIndex(self.codec_combo.count() - 1)
        else:
            self.codec_combo.setCurrentIndex(max(0, self.codec_combo.findData(settings.codec_variant)))

        available = available_providers()
        labels = {Provider.AUTO: self.tr("Automatic (GPU if available)"), Provider.CUDA: "NVIDIA CUDA",
                  Provider.DIRECTML: "DirectML", Provider.CPU: "CPU"}
        for key, label in ((provider.value, labels[provider]) for provider in Provider):
            text = label if key == "auto" or key in available else self.tr("{0} — not available").format(label)
            self.provider_combo.addItem(text, key)
        self.provider_combo.setCurrentIndex(max(0, self.provider_combo.findData(settings.provider)))
        self.sentence_pause.setValue(settings.sentence_pause_s)
        self.paragraph_pause.setValue(settings.paragraph_pause_s)
        self.llm_threads.setValue(settings.llm_threads)
        self.codec_threads.setValue(settings.codec_threads)
        (self.full_decode if settings.full_decode else self.streaming).setChecked(True)

        self.device_combo.addItem(self.tr("System default"), "")
        for name in output_devices():
            self.device_combo.addItem(name, name)
        if settings.audio_device and self.device_combo.findData(settings.audio_device) < 0:
            self.device_combo.addItem(self.tr("{0} (not connected)").format(settings.audio_device),
                                      settings.audio_device)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(settings.audio_device)))

        for key, label in (("", self.tr("System language")), ("en", "English"), ("ja", "日本語")):
            self.language_combo.addItem(label, key)
        self.language_combo.setCurrentIndex(max(0, self.language_combo.findData(settings.ui_language)))
        self.highlight.setChecked(settings.highlight)
        self.auto_scroll.setChecked(settings.auto_scroll)
        self.close_to_tray.setChecked(settings.close_to_tray)
        self.text_scale.setValue(settings.text_scale)
        self.announce_sentences.setChecked(settings.announce_sentences)
        self.serve_port.setValue(settings.server_port)
        self.serve_key.setText(settings.server_api_key)
        self.serve.setChecked(settings.server_enabled)
        self._serving_changed()

        # Each list shows the voice that reads now: the chosen one, else the default the reading would use.
        self._shown_voices = {language: choose_voice(settings.language_voice(language), self._voices, language)
                              for language in ("ja", "en")}
        self._fill_voices(self.japanese_voice, self._shown_voices["ja"])
        self._fill_voices(self.english_voice, self._shown_voices["en"])
        self._fill_voices(self.single_voice, choose_voice(settings.voice, self._voices, self._document_language))
        single = settings.voice_mode == VOICE_MODE_SINGLE
        (self.single_voice_radio if single else self.per_language_radio).setChecked(True)
        self.dialogue_voice.addItem(self.tr("(none)"), "")
        if self._voices:
            self._fill_voices(self.dialogue_voice, settings.dialogue_voice)
        if settings.dialogue_voice and self.dialogue_voice.findData(settings.dialogue_voice) < 0:
            # Deleted since: kept (it reads again once installed) and shown as such.
            self.dialogue_voice.addItem(self.tr("{0} (not installed)").format(settings.dialogue_voice),
                                        settings.dialogue_voice)
            self.dialogue_voice.setCurrentIndex(self.dialogue_voice.count() - 1)
        self._voice_mode_changed()

    # --- voices ----------------------------------------------------------------------------------

    def _fill_voices(self, combo: QComboBox, shown: str | None) -> None:
        """List the installed voices in `combo`, `shown` current."""
        for name in self._voices:
            combo.addItem(voice_label(name, self._japanese_ui), name)
            if name in PRESET_LABELS:
                combo.setItemData(combo.count() - 1, self.tr(
                    "Official preset voice: audio made with it may not be used commercially."),
                    Qt.ItemDataRole.ToolTipRole)
        if not self._voices:
            combo.addItem(self.tr("No voices installed"), None)
        combo.setCurrentIndex(max(0, combo.findData(shown)))

    def _voice_mode_changed(self) -> None:
        """Enable the chosen mode's lists; the other radio leaves the Tab chain (one stop per group)."""
        per_language = self.per_language_radio.isChecked()
        self.japanese_voice.setEnabled(per_language)
        self.english_voice.setEnabled(per_language)
        self.single_voice.setEnabled(not per_language)
        for radio in (self.per_language_radio, self.single_voice_radio):
            radio.setFocusPolicy(Qt.FocusPolicy.StrongFocus if radio.isChecked() else Qt.FocusPolicy.ClickFocus)

    def _language_voice(self, language: str) -> str:
        """The voice chosen for `language`: the setting as it was unless the list was changed, so a
        default ("" = the preset) stays a default that follows the voices installed later."""
        combo = self.japanese_voice if language == "ja" else self.english_voice
        chosen = combo.currentData()
        if chosen is None or chosen == self._shown_voices[language]:
            return self.original.language_voice(language)
        return str(chosen)

    # --- MioDesk's own speech server ------------------------------------------------------------

    def serving_url(self) -> str:
        """The OpenAI base URL the Server page describes: http://127.0.0.1:<port>/v1."""
        return speech_server_url(self.serve_port.value())

    def _serving_changed(self) -> None:
        on = self.serve.isChecked()
        for widget in (self.serve_port, self.serve_key, self.copy_url):
            widget.setEnabled(on)
        if not on:
            self.copy_result.setText("")

    def _serve_port_changed(self) -> None:
        """The Copy URL button says what it copies (tooltip and description); an old "Copied" goes."""
        self.copy_result.setText("")
        self.copy_url.setToolTip(self.tr("Copy {0} to the clipboard").format(self.serving_url()))
        self.copy_url.setAccessibleDescription(self.copy_url.toolTip())

    def copy_server_url(self) -> None:
        """Put the OpenAI base URL on the clipboard and say so beside the button (spoken too)."""
        url = self.serving_url()
        QGuiApplication.clipboard().setText(url)
        self._show_copy_result(self.tr("Copied {0}").format(url))

    def _show_copy_result(self, text: str, error: bool = False) -> None:
        self.copy_result.setStyleSheet(f"color: {error_text(self.palette()).name()};" if error else "")
        self.copy_result.setText(text)
        if text:
            accessibility.announce(self, text, urgent=error)

    def serving_problem(self) -> str | None:
        """Why the speech server cannot start with the page's key (clients send it in a header), or None."""
        key = self.serve_key.text().strip()
        if self.serve.isChecked() and key and not (key.isascii() and key.isprintable() and " " not in key):
            return self.tr("The API key must be printable ASCII without spaces (apps send it in a header).")
        return None

    # --- where the speech model runs ------------------------------------------------------------

    def _side_changed(self) -> None:
        """Enable the chosen side's fields; the other radio leaves the Tab chain (one stop per group)."""
        on_server = self.server_radio.isChecked()
        local_side: tuple[QWidget, ...] = (self.model_combo, self.browse_model)
        server_side: tuple[QWidget, ...] = (self.server_url, self.server_key, self.server_model, self.test_button)
        for widget in local_side:
            widget.setEnabled(not on_server)
        for widget in server_side:
            widget.setEnabled(on_server)
        # What Qt does once a radio of the group has had the focus, done now so that Tab skips the
        # unchecked radio from the start too (it sits between the two sides' fields).
        for radio in (self.local_radio, self.server_radio):
            policy = Qt.FocusPolicy.StrongFocus if radio.isChecked() else Qt.FocusPolicy.ClickFocus
            radio.setFocusPolicy(policy)

    def _server_edited(self) -> None:
        """An edited address, key or model: the last test no longer says anything about it."""
        self._probe_generation += 1
        self._show_test_result("")

    def _show_test_result(self, text: str, error: bool = False) -> None:
        self.test_result.setStyleSheet(f"color: {error_text(self.palette()).name()};" if error else "")
        self.test_result.setText(text)
        # The button carries the last answer as its description, for a screen reader that comes back to it.
        self.test_button.setAccessibleDescription(text)
        if text:
            accessibility.announce(self, text, urgent=error)

    def url_problem(self) -> str | None:
        """Why the server URL cannot be used (empty, not http or https, no host), or None."""
        url = self.server_url.text().strip()
        if not url:
            return self.tr("Enter the server's URL, for example http://gpu-box:8000/v1.")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            return self.tr("“{0}” is not a valid URL.").format(url)
        if parts.scheme.lower() not in ("http", "https"):
            return self.tr("The server URL must start with http:// or https:// (not “{0}”).").format(url)
        if not parts.hostname:
            return self.tr("The server URL has no host name: “{0}”.").format(url)
        return None

    def server_problem(self) -> str | None:
        """Why the server fields cannot be used, or None: the common cases in the UI's language, the
        rest (a user name in the URL, a query, a key with spaces) as `ServerConfig` says it."""
        problem = self.url_problem()
        if problem is None:
            try:
                self.server_config()
            except MioDeskError as error:
                problem = " ".join(str(error).split())
        return problem

    def server_config(self) -> ServerConfig:
        """The server the fields describe (ServerError when they cannot be used)."""
        from miodesk.tts.llm_server import ServerConfig

        return ServerConfig(base_url=self.server_url.text().strip(), api_key=self.server_key.text().strip(),
                            model=self.server_model.text().strip())

    def probe_text(self, probe: ServerProbe) -> str:
        """The Test button's answer in one line: server kind, model, round trip, audio tokens."""
        ms = probe.round_trip_s * 1000
        rtt = f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"  # a loopback server answers in well under 1 ms
        if probe.audio_tokens:
            return self.tr("{0}, model {1}, {2} ms round trip, returns audio tokens").format(
                probe.kind, probe.model, rtt)
        if probe.hint:
            return self.tr("{0}, model {1}, {2} ms round trip, returns no audio tokens: {3}").format(
                probe.kind, probe.model, rtt, " ".join(probe.hint.split()))
        return self.tr("{0}, model {1}, {2} ms round trip, returns no audio tokens").format(
            probe.kind, probe.model, rtt)

    def test_server(self) -> None:
        """Probe the server off the UI thread; its answer, or why it failed, shows beside the button."""
        self._probe_generation += 1
        generation = self._probe_generation
        problem = self.server_problem()
        if problem is not None:
            self._show_test_result(problem, error=True)
            return
        config = self.server_config()
        self._show_test_result(self.tr("Testing {0}…").format(config.label()))

        def work() -> ServerProbe:
            from miodesk.tts.llm_server import probe_server

            return probe_server(config, timeout=PROBE_TIMEOUT_S)

        def done(probe: ServerProbe) -> None:
            if generation == self._probe_generation:
                self._show_test_result(self.probe_text(probe), error=not probe.audio_tokens)

        def failed(error: BaseException) -> None:
            if generation == self._probe_generation:
                message = str(error) if isinstance(error, MioDeskError) else f"{type(error).__name__}: {error}"
                self._show_test_result(" ".join(message.split()), error=True)

        run_in_background(self._ui, "server-test", work, done, failed)

    def accept(self) -> None:
        """OK: refused, with the reason beside the Test button, while the chosen server's URL is unusable,
        and with the reason beside Copy URL while the speech server's key cannot be sent in a header."""
        if self.server_radio.isChecked():
            problem = self.server_problem()
            if problem is not None:
                self._probe_generation += 1
                self._show_page(self.speech_page)
                self.server_url.setFocus(Qt.FocusReason.OtherFocusReason)
                self._show_test_result(problem, error=True)
                self.server_url.selectAll()
                return
        problem = self.serving_problem()
        if problem is not None:
            self._show_page(self.server_page)
            self.serve_key.setFocus(Qt.FocusReason.OtherFocusReason)
            self._show_copy_result(problem, error=True)
            self.serve_key.selectAll()
            return
        super().accept()

    def _show_page(self, page: QWidget) -> None:
        """Bring the tab with `page` (inside its scroll area) to the front."""
        for index in range(self.tabs.count()):
            area = self.tabs.widget(index)
            if isinstance(area, QScrollArea) and area.widget() is page:
                self.tabs.setCurrentIndex(index)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Choose a MioTTS model"), str(paths.models_dir()),
                                              self.tr("MioTTS models (*.gguf)"))
        if path:
            if self.model_combo.findData(path) < 0:
                self.model_combo.addItem(Path(path).name, path)
            self.model_combo.setCurrentIndex(self.model_combo.findData(path))

    def result_settings(self) -> Settings:
        """A copy of the settings with the dialog's choices (the caller applies and saves it)."""
        return dataclasses.replace(
            self.original,
            model_path=self.model_combo.currentData() or "",
            llm_on_server=self.server_radio.isChecked(),
            llm_base_url=self.server_url.text().strip(),
            llm_api_key=self.server_key.text().strip(),
            llm_model=self.server_model.text().strip(),
            codec_variant=(self.original.codec_variant if self.codec_combo.currentData() == "custom"
                           else self.codec_combo.currentData() or DEFAULT_CODEC_VARIANT),
            codec_path=self.original.codec_path if self.codec_combo.currentData() == "custom" else "",
            provider=self.provider_combo.currentData() or "auto",
            llm_threads=self.llm_threads.value(),
            codec_threads=self.codec_threads.value(),
            full_decode=self.full_decode.isChecked(),
            audio_device=self.device_combo.currentData() or "",
            ui_language=self.language_combo.currentData() or "",
            highlight=self.highlight.isChecked(),
            auto_scroll=self.auto_scroll.isChecked(),
            close_to_tray=self.close_to_tray.isChecked(),
            text_scale=self.text_scale.value(),
            announce_sentences=self.announce_sentences.isChecked(),
            server_enabled=self.serve.isChecked(),
            server_port=self.serve_port.value(),
            server_api_key=self.serve_key.text().strip(),
            voice_mode=VOICE_MODE_SINGLE if self.single_voice_radio.isChecked() else VOICE_MODE_LANGUAGE,
            # The one voice is what its list shows: the voice heard is the voice seen.
            voice=(self.single_voice.currentData() or self.original.voice) if self.single_voice_radio.isChecked()
            else self.original.voice,
            voice_ja=self._language_voice("ja"),
            voice_en=self._language_voice("en"),
            dialogue_voice=self.dialogue_voice.currentData() or "",
            sentence_pause_s=round(self.sentence_pause.value(), 3),
            paragraph_pause_s=round(self.paragraph_pause.value(), 3),
            selection_shortcut=self.shortcuts_page.selection_shortcut(),
            clipboard_shortcut=self.shortcuts_page.clipboard_shortcut(),
            recent_files=list(self.original.recent_files),
        )


