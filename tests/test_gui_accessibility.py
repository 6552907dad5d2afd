"""The window as a screen-reader and keyboard user meets it (Xvfb, real models, null sink).

Names, values and selections are read through `QAccessible.queryAccessibleInterface` — what Qt's
AT-SPI/UIA bridge sends — not from the widget properties. Announcements are watched at the one helper
every message goes through (`miodesk.ui.accessibility.announce`) and, for one message, at
`QAccessible.updateAccessibility` itself. tests/test_atspi.py follows the same reading on the real bus.
"""

from __future__ import annotations

import re

import pytest
from gui_fixtures import SAMPLE_EN, screenshot, write_sample
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QGuiApplication, QTextCursor
from PySide6.QtWidgets import QApplication, QLabel, QWidget


def open_document(qtbot, parts, path):
    with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
        parts.window.open_path(path)
    return parts.controller.loaded


def accessible_name(widget: QWidget) -> str:
    return QAccessible.queryAccessibleInterface(widget).text(QAccessible.Text.Name)


def labels_of(widget: QWidget) -> list[str]:
    relations = QAccessible.queryAccessibleInterface(widget).relations(QAccessible.RelationFlag.Label)
    return [label.text(QAccessible.Text.Name) for label, _ in relations]


def accessible_description(widget: QWidget) -> str:
    return QAccessible.queryAccessibleInterface(widget).text(QAccessible.Text.Description)



def focusable_widgets(root: QWidget) -> list[QWidget]:
    return [w for w in root.findChildren(QWidget)
            if w.isVisibleTo(root) and w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isEnabled()]


def test_every_control_is_named_and_labels_expose_their_values(app, qtbot, tmp_path):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    unnamed = [f"{type(w).__name__} {w.objectName()}" for w in focusable_widgets(window) if not accessible_name(w)]
    assert unnamed == []
    # Names are what the screen shows (the label's text without its mnemonic). On Linux Qt names a
    # combo box by its current item and tells its label through the labelled-by relation.
    transport = window.transport
    assert labels_of(transport.voice_combo) == [transport.voice_label.text().replace("&", "")]
    assert accessible_name(transport.speed_slider) == transport.speed_label.text().replace("&", "")
    for button in (window.empty_page.open_button, window.empty_page.paste_button):
        assert accessible_name(button) == button.text().replace("&", "")
    # Status labels: the value is heard, not only what it is ("Sentence 6 of 12", not "Position").
    window._stats_changed({"ttfa_s": 0.31, "rtf": 0.42, "remaining_s": 22.0})
    labels = [transport.position_label, transport.speed_value, window.model_label, window.ttfa_label,
              window.rtf_label, window.remaining_label]
    for label in labels:
        assert label.text()
        spoken = accessible_name(label) + " " + accessible_description(label)
        assert label.text() in spoken, (label.text(), spoken)
    assert accessible_description(transport.position_label) == "Position"


def test_the_sentence_heard_is_the_accessible_selection_and_pause_leaves_the_caret_there(
        app, qtbot, tmp_path, pulse_sink, announced):
    window, controller = app.window, app.controller
    loaded = open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    reader = window.reader
    text = QAccessible.queryAccessibleInterface(reader).textInterface()
    assert text is not None
    checked: list[int] = []

    def check(index: int, start: int, end: int) -> None:
        # Within the signal: the selection is the sentence now heard, caret at its start.
        cursor = reader.textCursor()
        assert (cursor.selectionStart(), cursor.selectionEnd()) == (reader.to_qt(start), reader.to_qt(end))
        assert text.selectionCount() == 1
        assert text.cursorPosition() == reader.to_qt(start)
        checked.append(index)

    controller.utteranceStarted.connect(check)
    reader.setFocus()
    qtbot.keyClick(reader, Qt.Key.Key_Space)  # Space in the text plays
    qtbot.waitUntil(lambda: len(checked) >= 3, timeout=60000)
    controller.utteranceStarted.disconnect(check)
    assert checked[:3] == [0, 1, 2]
    # Off by default: the screen reader is not asked to say every sentence (it would talk over us).
    sentences = {u.text for u in loaded.utterances}
    assert not [t for t, _ in announced if t in sentences]

    qtbot.keyClick(reader, Qt.Key.Key_Space)
    assert controller.state == "paused"
    start, _ = reader.highlighted()
    assert text.cursorPosition() == reader.to_qt(start)
    assert reader.cursor_offset() == start  # "read from here" starts where reading stopped
    index = next(i for i, u in enumerate(loaded.utterances) if u.start == start)
    assert (f"Paused at sentence {index + 1} of {len(loaded.utterances)}.", False) in announced
    assert window.transport.position_label.text() == f"Sentence {index + 1} of {len(loaded.utterances)}"

    # Review while paused: bare arrows move the caret one character; Play resumes where it stopped.
    qtbot.keyClick(reader, Qt.Key.Key_Right)
    assert reader.cursor_offset() == start + 1 and not reader.textCursor().hasSelection()
    screenshot(window, "a11y-paused")
    window.actions_by_name["stop"].trigger()
    assert announced[-1][0].startswith("Stopped at sentence")


def test_reviewing_text_while_reading_is_not_interrupted(app, qtbot, tmp_path, pulse_sink):
    """A caret the user moves during reading stays put: new sentences and auto-scroll leave it."""
    window, controller = app.window, app.controller
    loaded = open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN * 3))
    reader = window.reader
    reader.set_text_scale(300)  # a page shorter than the text: auto-scroll has to scroll
    assert reader.verticalScrollBar().maximum() > 10
    heard: list[int] = []
    controller.utteranceStarted.connect(lambda index, *_: heard.append(index))
    window.actions_by_name["play"].trigger()
    qtbot.waitUntil(lambda: bool(heard), timeout=30000)
    reader.setFocus()
    target = loaded.utterances[-1].start + 2
    reader.set_cursor_offset(target, center=False)
    qtbot.keyClick(reader, Qt.Key.Key_Left)  # the user's own move
    count = len(heard)
    qtbot.waitUntil(lambda: len(heard) >= count + 2, timeout=60000)
    assert reader.cursor_offset() == target - 1
    assert not reader.textCursor().hasSelection()
    # Auto-scroll still brings the sentence heard into view (by scrolling, not by the caret).
    start, _ = reader.highlighted()
    qtbot.waitUntil(lambda: reader.highlighted()[0] != start, timeout=30000)
    spoken = QTextCursor(reader.document())
    spoken.setPosition(reader.to_qt(reader.highlighted()[0]))
    assert reader.viewport().rect().contains(reader.cursorRect(spoken).center())
    assert reader.cursor_offset() == target - 1
    caret = reader.cursorRect()
    assert not reader.viewport().rect().contains(caret.center())  # the page followed the reading
    # Read from here (Enter) follows the reading again.
    qtbot.keyClick(reader, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: heard[-1] == len(loaded.utterances) - 1, timeout=30000)
    assert reader.textCursor().hasSelection()
    window.actions_by_name["stop"].trigger()


def test_announce_each_sentence_is_an_option(app, qtbot, tmp_path, pulse_sink, announced):
    window, controller = app.window, app.controller
    window.settings.announce_sentences = True
    loaded = open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    heard: list[int] = []
    controller.utteranceStarted.connect(lambda index, *_: heard.append(index))
    window.actions_by_name["play"].trigger()
    qtbot.waitUntil(lambda: len(heard) >= 2, timeout=60000)
    window.actions_by_name["stop"].trigger()
    said = [t for t, _ in announced]
    assert loaded.utterances[0].text in said and loaded.utterances[1].text in said


def test_messages_are_announced(app, qtbot, monkeypatch, announced):
    window = app.window
    sent: list[tuple[str, QAccessible.AnnouncementPoliteness]] = []
    real_update = QAccessible.updateAccessibility

    def watching(event):
        if isinstance(event, QAccessibleAnnouncementEvent):
            sent.append((event.message(), event.politeness()))
        real_update(event)

    monkeypatch.setattr(QAccessible, "updateAccessibility", watching)
    QGuiApplication.clipboard().clear()
    assert window.paste_and_read() is False
    assert window.banner.label.text() == "The clipboard holds no text to read."
    assert ("The clipboard holds no text to read.", QAccessible.AnnouncementPoliteness.Polite) in sent
    window.show_error("Cannot open book.txt: the file is damaged.")
    assert ("Cannot open book.txt: the file is damaged.", True) in announced
    assert sent[-1][1] == QAccessible.AnnouncementPoliteness.Assertive
    window.show_status("Voice saved.")
    assert ("Voice saved.", False) in announced
    window.actions_by_name["faster"].trigger()  # Ctrl+]: the focus is elsewhere, the speed is said
    assert announced[-1] == ("Speed 1.10×", False)


def test_japanese_messages_are_announced_in_japanese(app, qtbot, tmp_path, announced):
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    english = app.window.transport.position_label.text()
    app.translations.apply("ja")
    QApplication.processEvents()  # the widgets hear of the language change through posted events
    try:
        japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
        QGuiApplication.clipboard().clear()
        app.window.paste_and_read()
        text, _ = announced[-1]
        assert japanese.search(text), text
        # Values shown before the switch follow the language too.
        assert japanese.search(app.window.transport.position_label.text())
    finally:
        app.translations.apply("en")
        QApplication.processEvents()
    assert app.window.transport.position_label.text() == english


def test_space_and_enter_belong_to_the_focused_control(app, qtbot, tmp_path):
    window, controller = app.window, app.controller
    loaded = open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    next_button = window.transport.buttons["next_sentence"]
    next_button.setFocus()
    assert QApplication.focusWidget() is next_button
    moved: list[int] = []
    controller.cursorRequested.connect(moved.append)
    qtbot.keyClick(next_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: bool(moved), timeout=5000)
    assert controller.state == "idle"  # Space pressed the button, it did not start reading
    assert moved[-1] == loaded.utterances[1].start
    qtbot.keyClick(next_button, Qt.Key.Key_Return)  # Enter presses a tool button too
    qtbot.waitUntil(lambda: len(moved) >= 2, timeout=5000)
    assert moved[-1] == loaded.utterances[2].start
    assert controller.state == "idle"

    combo = window.transport.voice_combo
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: combo.view().isVisible(), timeout=5000)
    assert controller.state == "idle"
    combo.hidePopup()

    reader = window.reader
    reader.setFocus()
    reader.set_cursor_offset(10, center=False)
    qtbot.keyClick(reader, Qt.Key.Key_Right)
    assert reader.cursor_offset() == 11  # one character, not one sentence
    qtbot.keyClick(reader, Qt.Key.Key_Left, Qt.KeyboardModifier.ControlModifier)  # a word back
    assert reader.cursor_offset() < 11


def test_opening_a_document_moves_focus_straight_to_the_text(app, qtbot, tmp_path):
    """No stops on the way (each one a focus event the screen reader would speak)."""
    window = app.window
    window.empty_page.open_button.setFocus()
    assert QApplication.focusWidget() is window.empty_page.open_button
    stops: list[QWidget | None] = []
    QApplication.instance().focusChanged.connect(lambda _old, new: stops.append(new))
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    assert [w for w in stops if w is not None] == [window.reader]


def test_tab_order_and_one_mnemonic_per_letter(app, qtbot, tmp_path):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    window.banner.hide()
    transport = window.transport
    expected = [window.outline, window.reader, *transport.buttons.values(), window.sleep_button, transport.voice_combo,
                transport.preview_button, transport.speed_slider, transport.volume_slider]
    enabled = [w for w in expected if w.isEnabled()]
    order = [enabled[0]]
    while len(order) < len(enabled):
        following = order[-1].nextInFocusChain()
        while following not in enabled and following is not order[0]:
            following = following.nextInFocusChain()
        if following is order[0]:
            break
        order.append(following)
    assert [w.objectName() or type(w).__name__ for w in order] == \
           [w.objectName() or type(w).__name__ for w in enabled]

    for language in ("en", "ja"):
        app.translations.apply(language)
        QApplication.processEvents()  # the widgets hear of the language change through posted events
        assert (window.file_menu.title() == "&File") == (language == "en")
        letters = [re.search(r"&(\w)", menu.title()).group(1).lower() for menu in
                   (window.file_menu, window.play_menu, window.voice_menu, window.view_menu,
                    window.tools_menu, window.help_menu)]
        letters += [re.search(r"&(\w)", label.text()).group(1).lower()
                    for label in window.findChildren(QLabel) if label.buddy() is not None and "&" in label.text()]
        assert len(letters) == len(set(letters)), (language, letters)
    app.translations.apply("en")
    QApplication.processEvents()


def test_ctrl_plus_minus_zero_zoom_the_reader_and_are_remembered(app, qtbot, tmp_path):
    from miodesk.settings import load_settings

    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    reader = window.reader
    size = reader.font().pointSizeF()
    qtbot.keyClick(reader, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(reader, Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier)
    assert window.settings.text_scale == 120
    assert reader.font().pointSizeF() == pytest.approx(size * 1.2)
    assert load_settings().text_scale == 120
    qtbot.keyClick(reader, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert window.settings.text_scale == 110
    qtbot.keyClick(reader, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert window.settings.text_scale == 100
    assert reader.font().pointSizeF() == pytest.approx(size)
    # The text-size setting (Settings dialog) applies too.
    new = type(window.settings)(**window.settings.to_json())
    new.text_scale = 200
    window.apply_settings(new)
    assert reader.font().pointSizeF() == pytest.approx(size * 2)


def test_focus_stays_visible_and_buttons_keep_focus(app, qtbot, tmp_path, pulse_sink):
    """Keyboard-only reading: Play from its button keeps focus on it (now Pause), Stop returns."""
    window, controller = app.window, app.controller
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    play = window.transport.buttons["play"]
    play.setFocus()
    qtbot.keyClick(play, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: controller.state == "playing", timeout=30000)
    assert QApplication.focusWidget() is play
    assert accessible_name(play) == "Pause"
    stop = window.transport.buttons["stop"]
    stop.setFocus()
    qtbot.keyClick(stop, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=10000)
    # Stop disables itself once idle: the keyboard goes back to Play, not somewhere unexpected.
    assert QApplication.focusWidget() is play
    assert accessible_name(play) == "Play"
