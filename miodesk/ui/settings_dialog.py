"""Settings: model, codec, compute device and threads, audio output, decoding, language, window.

Accessibility: every field is named by its visible label (a QFormLayout label is the field's buddy,
the decoding choices sit in a titled group box), so a screen reader says what the user sees; only a
control without a visible label gets a name of its own. Each mnemonic letter is used once in the
dialog, and O and C stay free for the OK and Cancel buttons (&OK, &Cancel in GNOME's and KDE's Qt
themes).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from miodesk import paths, runtime, system
from miodesk.models import registry
from miodesk.models.catalog import CODEC_VARIANTS, DEFAULT_CODEC_VARIANT
from miodesk.runtime import Provider
from miodesk.settings import MAX_TEXT_SCALE, MIN_TEXT_SCALE, Settings

log = logging.getLogger(__name__)


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


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.original = settings
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget(self)
        layout.addWidget(self.tabs)

        # Speech
        speech = QWidget()
        form = QFormLayout(speech)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setVerticalSpacing(10)
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("modelCombo")
        self.browse_model = QPushButton()
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.browse_model)
        self.model_label = QLabel()
        form.addRow(self.model_label, model_row)
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
        self.tabs.addTab(speech, "")

        # Audio
        audio = QWidget()
        audio_form = QFormLayout(audio)
        audio_form.setVerticalSpacing(10)
        self.device_combo = QComboBox()
        self.device_combo.setObjectName("deviceCombo")
        self.device_label = QLabel()
        audio_form.addRow(self.device_label, self.device_combo)
        self.tabs.addTab(audio, "")

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
        self.tabs.addTab(interface, "")

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.browse_model.clicked.connect(self._browse_model)

        for label, field in ((self.model_label, self.model_combo), (self.codec_label, self.codec_combo),
                             (self.provider_label, self.provider_combo), (self.llm_threads_label, self.llm_threads),
                             (self.codec_threads_label, self.codec_threads), (self.device_label, self.device_combo),
                             (self.language_label, self.language_combo), (self.text_scale_label, self.text_scale)):
            label.setBuddy(field)
        self.retranslate()
        self._load(settings)

    def retranslate(self) -> None:
        # Mnemonics, one letter each: M B E D T A S W U L Z H K R N (O and C: the OK and Cancel buttons).
        self.setWindowTitle(self.tr("Settings"))
        self.tabs.setTabText(0, self.tr("Speech"))
        self.tabs.setTabText(1, self.tr("Audio"))
        self.tabs.setTabText(2, self.tr("Interface"))
        self.model_label.setText(self.tr("&Model:"))
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

    def _load(self, settings: Settings) -> None:
        self.model_combo.addItem(self.tr("Recommended (from the models folder)"), "")
        for path in installed_models():
            self.model_combo.addItem(path.name, str(path))
        if settings.model_path and self.model_combo.findData(settings.model_path) < 0:
            self.model_combo.addItem(Path(settings.model_path).name, settings.model_path)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(settings.model_path)))

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
            recent_files=list(self.original.recent_files),
        )


