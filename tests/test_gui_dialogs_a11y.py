"""The dialogs as assistive technology and the keyboard see them: Settings, Record Voice, first run.

Names and relations are read through `QAccessible.queryAccessibleInterface` (what the AT-SPI, UI
Automation and NSAccessibility bridges send), not `accessibleName()`. Keys go through `qtbot.keyClick`.
Spoken messages are watched at the one announcement helper, `miodesk.ui.accessibility.announce`,
which still sends them on.
"""

from __future__ import annotations

import re
import sys

import pytest
from mic_fixtures import virtual_mic  # noqa: F401 - fixture
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDialog,
    QGroupBox,
    QLabel,
    QTabWidget,
    QWidget,
)

from miodesk.settings import MAX_TEXT_SCALE, MIN_TEXT_SCALE, Settings
from miodesk.tts.voices import VoiceStore
from miodesk.ui.first_run import FirstRunDialog, models_api
from miodesk.ui.record_voice import RecordVoiceDialog
from miodesk.ui.settings_dialog import SettingsDialog

NAME = QAccessible.Text.Name
DESCRIPTION = QAccessible.Text.Description


# --- helpers ---------------------------------------------------------------------------------------

def iface(widget: QWidget):
    found = QAccessible.queryAccessibleInterface(widget)
    assert found is not None and found.isValid(), widget
    return found


def plain(text: str) -> str:
    """A label as it is seen: without its mnemonic marker."""
    return re.sub(r"&(.)", r"\1", text)


def mnemonics(text: str) -> list[str]:
    return [letter.lower() for letter in re.findall(r"&([^&\s])", text.replace("&&", ""))]


def label_relations(widget: QWidget) -> list[str]:
    """Names of what labels `widget` (AT-SPI labelled-by)."""
    return [other.text(NAME) for other, relation in iface(widget).relations()
            if relation & QAccessible.RelationFlag.Label]


def buddy_label(dialog: QDialog, widget: QWidget) -> QLabel | None:
    return next((label for label in dialog.findChildren(QLabel) if label.buddy() is widget), None)


def focusable_controls(dialog: QDialog) -> list[QWidget]:
    """Controls Tab can reach that are shown now (a spin box's line edit is reached as the spin box)."""
    return [w for w in dialog.findChildren(QWidget)
            if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(dialog) and w.focusProxy() is None]


def all_pages(dialog: QDialog):
    """Yield once per tab page (each shown in turn), or once for a dialog without tabs."""
    tabs = dialog.findChildren(QTabWidget)
    if not tabs:
        yield
        return
    for index in range(tabs[0].count()):
        tabs[0].setCurrentIndex(index)
        yield


def assert_named_by_visible_labels(dialog: QDialog) -> None:
    """Every control has a Name; one with a visible label is named (or labelled-by) exactly that label."""
    checked = 0
    for _ in all_pages(dialog):
        for widget in focusable_controls(dialog):
            name = iface(widget).text(NAME)
            assert name.strip(), f"{type(widget).__name__} {widget.objectName()!r} has no accessible name"
            buddy = buddy_label(dialog, widget)
            if isinstance(widget, QAbstractButton):
                assert name == plain(widget.text()), (name, widget.text())
            elif buddy is not None:
                # Labelled-by for every labelled field; on Linux and macOS Qt names a combo box by its
                # current item and leaves the label to this relation.
                assert plain(buddy.text()) in label_relations(widget), (buddy.text(), label_relations(widget))
                if not (isinstance(widget, QComboBox) and sys.platform != "win32"):
                    assert name == plain(buddy.text()), (name, buddy.text())
            checked += 1
    assert checked >= 3


def dialog_mnemonics(dialog: QDialog) -> list[str]:
    """The mnemonic letters of the dialog's labels (with a buddy), buttons, group boxes and tabs."""
    texts = [label.text() for label in dialog.findChildren(QLabel) if label.buddy() is not None]
    texts += [button.text() for button in dialog.findChildren(QAbstractButton)]
    texts += [group.title() for group in dialog.findChildren(QGroupBox)]
    for tabs in dialog.findChildren(QTabWidget):
        texts += [tabs.tabText(i) for i in range(tabs.count())]
    return [letter for text in texts for letter in mnemonics(text)]


def assert_unique(letters: list[str]) -> None:
    assert len(letters) == len(set(letters)), sorted(letters)


def tab_walk(qtbot, start: QWidget, stop_at: set[QWidget] | None = None, limit: int = 20) -> list[QWidget]:
    """Focus `start`, then press Tab until focus reaches `stop_at` or comes back to `start`."""
    start.setFocus(Qt.FocusReason.TabFocusReason)
    dialog = start.window()
    seen = [start]
    for _ in range(limit):
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
        focused = dialog.focusWidget()
        if focused is start or (stop_at and focused in stop_at):
            return seen
        seen.append(focused)
    raise AssertionError(f"Tab never came back: {seen}")


def show_active(qtbot, dialog: QDialog) -> None:
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()  # no window manager on Xvfb: focus changes need an active window
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)



@pytest.fixture
def settings_dialog(qtbot):
    dialog = SettingsDialog(Settings(ui_language="en", text_scale=180, announce_sentences=False))
    qtbot.addWidget(dialog)
    show_active(qtbot, dialog)
    return dialog


@pytest.fixture
def record_dialog(qtbot, tmp_path):
    dialog = RecordVoiceDialog(VoiceStore(tmp_path / "voices"), lambda: None, language="en")
    qtbot.addWidget(dialog)
    show_active(qtbot, dialog)
    return dialog


@pytest.fixture
def first_run_dialog(qtbot):
    dialog = FirstRunDialog(*models_api())
    qtbot.addWidget(dialog)
    show_active(qtbot, dialog)
    return dialog


# --- Settings ----------------------------------------------------------------------------------------

def test_settings_controls_are_named_by_their_visible_labels(settings_dialog):
    dialog = settings_dialog
    assert_named_by_visible_labels(dialog)
    # The browse button says what it opens as its description, not as a name that differs from "Browse…".
    assert iface(dialog.browse_model).text(NAME) == "Browse…"
    assert iface(dialog.browse_model).text(DESCRIPTION) == "Choose a model file"
    # The announcement option carries its note (why it is off) as its description.
    assert iface(dialog.announce_sentences).text(DESCRIPTION) == dialog.announce_note.text()
    assert "screen reader" in dialog.announce_note.text()


def test_settings_decoding_radios_report_their_group(settings_dialog):
    dialog = settings_dialog
    group = dialog.streaming.parentWidget()
    assert isinstance(group, QGroupBox) and group is dialog.full_decode.parentWidget()
    assert iface(group).text(NAME) == "Decoding"
    for radio in (dialog.streaming, dialog.full_decode):
        assert "Decoding" in label_relations(radio)


def test_settings_text_size_and_sentence_announcements(settings_dialog, qtbot):
    dialog = settings_dialog
    spin = dialog.text_scale
    assert (spin.minimum(), spin.maximum(), spin.singleStep()) == (MIN_TEXT_SCALE, MAX_TEXT_SCALE, 10)
    assert spin.suffix() == " %" and spin.value() == 180
    assert iface(spin).text(NAME) == "Text size:"
    assert not dialog.announce_sentences.isChecked()
    dialog.tabs.setCurrentIndex(2)
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_Up)  # a keyboard user steps the size
    dialog.announce_sentences.setFocus()
    qtbot.keyClick(dialog.announce_sentences, Qt.Key.Key_Space)
    result = dialog.result_settings()
    assert (result.text_scale, result.announce_sentences) == (190, True)


def page_mnemonics(dialog: SettingsDialog) -> list[list[str]]:
    """The mnemonic letters of each tab page's labels (with a buddy), buttons and group boxes."""
    pages = [dialog.tabs.widget(index) for index in range(dialog.tabs.count())]
    found: list[list[str]] = []
    for page in pages:
        texts = [label.text() for label in page.findChildren(QLabel) if label.buddy() is not None]
        texts += [button.text() for button in page.findChildren(QAbstractButton)]
        texts += [group.title() for group in page.findChildren(QGroupBox)]
        found.append([letter for text in texts for letter in mnemonics(text)])
    return found


@pytest.mark.parametrize("language", ["en", "ja"])
def test_settings_mnemonics_are_unique_and_leave_ok_and_cancel_free(qtbot, language):
    """Every page, the speech-model server fields and the Server and Voices pages included, in both
    languages. Only the page shown answers its mnemonics (the next test), so a letter is unique on its
    page together with the dialog's own (buttons, tabs)."""
    from miodesk.ui.i18n import Translations

    translations = Translations()
    translations.apply(language)
    try:
        dialog = SettingsDialog(Settings(ui_language=language))
        qtbot.addWidget(dialog)
        letters = dialog_mnemonics(dialog)
        pages = page_mnemonics(dialog)
        if language == "ja":
            assert dialog.tabs.tabText(3) == "サーバー"  # the Japanese catalogue is in use
    finally:
        translations.apply("en")
    buttons = [m for b in dialog.buttons.buttons() for m in mnemonics(b.text())]
    tabs = [m for i in range(dialog.tabs.count()) for m in mnemonics(dialog.tabs.tabText(i))]
    assert sorted(letters) == sorted(buttons + tabs + [letter for page in pages for letter in page])
    for own in pages:
        assert_unique(own + buttons + tabs)
        # GNOME's and KDE's Qt themes label the standard buttons &OK and &Cancel.
        assert not {"o", "c"} & set(own), own
    assert_unique([letter for page in pages[:4] for letter in page])  # the first four pages share none
    assert sum(len(own) for own in pages) >= 19


def test_settings_mnemonics_of_hidden_pages_do_nothing(qtbot):
    """Why a letter need only be unique on its page: Qt ignores the mnemonics of a page not shown."""
    dialog = SettingsDialog(Settings(ui_language="en"), voices=["en_female", "jp_female"])
    qtbot.addWidget(dialog)
    show_active(qtbot, dialog)
    dialog.tabs.setCurrentIndex(0)
    dialog.model_combo.setFocus()
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_E, Qt.KeyboardModifier.AltModifier)  # "Cod&ec:"
    assert dialog.focusWidget() is dialog.codec_combo
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_J, Qt.KeyboardModifier.AltModifier)  # Voices' "&Japanese"
    assert dialog.focusWidget() is dialog.codec_combo and dialog.tabs.currentIndex() == 0
    dialog._show_page(dialog.voices_page)
    dialog.per_language_radio.setFocus()
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_E, Qt.KeyboardModifier.AltModifier)  # "&English sentences:"
    assert dialog.focusWidget() is dialog.english_voice


def test_settings_tab_order_goes_top_to_bottom(settings_dialog, qtbot):
    dialog = settings_dialog
    buttons = set(dialog.buttons.buttons())
    pages = [
        [dialog.model_combo, dialog.browse_model, dialog.codec_combo, dialog.provider_combo, dialog.llm_threads,
         dialog.codec_threads, dialog.streaming],  # one stop for the radio group: its checked button
        [dialog.device_combo],
        [dialog.language_combo, dialog.text_scale, dialog.highlight, dialog.auto_scroll, dialog.close_to_tray,
         dialog.announce_sentences],
    ]
    for index, expected in enumerate(pages):
        dialog.tabs.setCurrentIndex(index)
        assert tab_walk(qtbot, expected[0], stop_at=buttons) == expected, index


@pytest.mark.parametrize("key", [Qt.Key.Key_Space, Qt.Key.Key_Return])
def test_settings_space_and_enter_activate_the_focused_button(qtbot, key):
    for which, outcome in (("ok", QDialog.DialogCode.Accepted), ("cancel", QDialog.DialogCode.Rejected)):
        dialog = SettingsDialog(Settings(ui_language="en"))
        qtbot.addWidget(dialog)
        show_active(qtbot, dialog)
        button = dialog.buttons.button(dialog.buttons.StandardButton.Ok if which == "ok"
                                       else dialog.buttons.StandardButton.Cancel)
        button.setFocus()
        qtbot.keyClick(button, key)
        assert dialog.result() == outcome and not dialog.isVisible(), (which, key)


# --- Record Voice -----------------------------------------------------------------------------------

def test_record_voice_controls_meter_and_status_expose_their_text(record_dialog, announced, qtbot):
    dialog = record_dialog
    assert_named_by_visible_labels(dialog)
    assert_unique(dialog_mnemonics(dialog))
    meter = iface(dialog.meter)
    assert meter.text(NAME) == "Input level"
    dialog.meter.setValue(42)
    value = meter.valueInterface()
    assert (value.currentValue(), value.minimumValue(), value.maximumValue()) == (42, 0, 60)
    # Tab, top to bottom, past the buttons that cannot be used yet.
    order = tab_walk(qtbot, dialog.device_combo)
    assert order == [dialog.device_combo, dialog.record_button, dialog.name_edit, dialog.cancel_button]
    # A failure (no such microphone) is spoken urgently and stays readable as the label's own text.
    dialog.device_combo.addItem("unplugged", 9999)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.count() - 1)
    dialog.record_button.setFocus()
    qtbot.keyClick(dialog.record_button, Qt.Key.Key_Space)
    status = dialog.status_label.text()
    assert "microphone" in status.lower()
    assert announced == [(status, True)]
    assert status in iface(dialog.status_label).text(NAME) + iface(dialog.status_label).text(DESCRIPTION)
    assert dialog.focusWidget() is dialog.record_button  # still usable, so the focus stays
    assert iface(dialog.time_label).text(NAME) == dialog.time_label.text()


def test_enter_in_the_name_field_saves_not_records(record_dialog):
    dialog = record_dialog
    assert dialog.save_button.isDefault() and not dialog.record_button.isDefault()


def test_keyboard_record_keeps_focus_on_stop_and_a_failing_take_is_announced(
        record_dialog, announced, virtual_mic, monkeypatch, qtbot, request):  # noqa: F811
    monkeypatch.setenv("PULSE_SOURCE", virtual_mic.source)  # nothing plays into it: a silent take
    dialog = record_dialog
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findText(virtual_mic.device))
    focus_path: list[QWidget] = []

    def focus_changed(_old: QWidget, new: QWidget) -> None:
        focus_path.append(new)

    app = QGuiApplication.instance()
    app.focusChanged.connect(focus_changed)
    request.addfinalizer(lambda: app.focusChanged.disconnect(focus_changed))

    dialog.record_button.setFocus()
    qtbot.keyClick(dialog.record_button, Qt.Key.Key_Space)
    assert dialog.stop_button.isEnabled(), dialog.status_label.text()
    assert not dialog.record_button.isEnabled()
    assert dialog.focusWidget() is dialog.stop_button
    assert announced[-1] == ("Recording… read the text aloud, then press Stop.", False)
    qtbot.wait(1200)

    qtbot.keyClick(dialog.stop_button, Qt.Key.Key_Return)
    assert dialog.focusWidget() is dialog.stop_button  # kept while the take is checked
    qtbot.waitUntil(lambda: len(dialog.reports) == 1, timeout=10000)
    assert dialog.focusWidget() is dialog.record_button and not dialog.stop_button.isEnabled()
    assert dialog.name_edit not in focus_path  # it never fell into the name field

    report = dialog.reports[0]
    assert not report.ok and "silence" in report.codes()
    text, urgent = announced[-1]
    assert urgent
    assert text.startswith("Take 1 cannot be used; please record again.")
    assert report.errors[0].message in text and "✗" not in text  # the hint, without the on-screen mark
    assert "Take 1 cannot be used" in iface(dialog.status_label).text(NAME)
    assert report.errors[0].message in iface(dialog.hints_label).text(NAME)


# --- First run ---------------------------------------------------------------------------------------

def test_first_run_focus_names_and_keys(first_run_dialog, qtbot):
    dialog = first_run_dialog
    assert_named_by_visible_labels(dialog)
    assert_unique(dialog_mnemonics(dialog))
    # Download is the default and has the focus; the details text is in the Tab order, named.
    assert dialog.download_button.isDefault()
    assert dialog.focusWidget() is dialog.download_button
    details = dialog.details
    assert iface(details).text(NAME) == "Models to download"
    order = tab_walk(qtbot, details)
    assert order[0] is details and set(order[1:]) == {dialog.download_button, dialog.later_button}
    # The dialog fits a 1280×800 screen at 200 % scale.
    assert dialog.minimumWidth() <= 640 and dialog.minimumHeight() <= 400


def test_first_run_details_show_the_focus(first_run_dialog, qtbot):
    dialog = first_run_dialog
    details = dialog.details
    assert details.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByKeyboard
    hints = QGuiApplication.styleHints()
    flash = hints.cursorFlashTime()
    hints.setCursorFlashTime(0)  # a caret that does not blink, so the picture does not depend on timing
    try:
        dialog.download_button.setFocus()
        qtbot.wait(50)
        unfocused = details.grab().toImage()
        details.setFocus(Qt.FocusReason.TabFocusReason)
        qtbot.wait(50)
        assert details.hasFocus()
        assert details.grab().toImage() != unfocused  # the caret (and the theme's frame) show the focus
        # Down moves through the text (a screen reader reads the line); Tab still leaves it.
        qtbot.keyClick(details, Qt.Key.Key_Down)
        assert details.textCursor().position() > 0
    finally:
        hints.setCursorFlashTime(flash)


@pytest.mark.parametrize("key", [Qt.Key.Key_Space, Qt.Key.Key_Return])
def test_first_run_space_and_enter_activate_later(first_run_dialog, qtbot, key):
    dialog = first_run_dialog
    dialog.later_button.setFocus()
    qtbot.keyClick(dialog.later_button, key)
    assert dialog.result() == QDialog.DialogCode.Rejected and not dialog.isVisible()


def test_record_voice_speaks_japanese_in_the_japanese_ui(qtbot, tmp_path, announced):
    """Its strings are in the catalogue (they were not): title, buttons and spoken messages."""
    from miodesk.ui.i18n import Translations

    translations = Translations()
    translations.apply("ja")
    try:
        dialog = RecordVoiceDialog(VoiceStore(tmp_path / "voices"), lambda: None, language="ja")
        qtbot.addWidget(dialog)
        assert dialog.windowTitle() == "自分の声を録音"
        assert dialog.record_button.text() == "録音(&R)"
        dialog._show_status(dialog.tr("Checking the recording…"))
        assert announced[-1] == ("録音を確認しています…", False)
    finally:
        translations.apply("en")
