"""Tools › Readings Dictionary and the reader's "Add Reading for …", used from the keyboard (Xvfb), and the
window's reading giving the model the new reading while the highlight stays on the document's text."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from gui_fixtures import screenshot, write_sample
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QContextMenuEvent, QInputMethodEvent
from PySide6.QtWidgets import QApplication
from test_gui_dialogs_a11y import assert_named_by_visible_labels, assert_unique, dialog_mnemonics, show_active

from miodesk.text.readings import Entry, ReadingsStore
from miodesk.text.segment import segment
from miodesk.ui.readings_dialog import ReadingsDialog, preview_text

ENTRIES = [Entry("ＭｉｏＴＴＳ", "ミオティーティーエス", "ja"), Entry("AI", "エーアイ", "ja", priority=7, note="artificial"),
           Entry(r"Dr\.\s*(\w+)", r"Doctor \1", "en", True), Entry("本屋", "ほんや", "ja", enabled=False)]


@pytest.fixture
def spoken() -> list[str]:
    return []


@pytest.fixture
def dialog(qtbot, spoken):
    ReadingsStore().add_all(ENTRIES)
    found = ReadingsDialog(speak=spoken.append)
    qtbot.addWidget(found)
    found.resize(780, 520)
    show_active(qtbot, found)
    return found


def rows(dialog: ReadingsDialog) -> list[str]:
    """The words the table shows, top to bottom."""
    return [dialog.table.item(row, 1).text() for row in range(dialog.table.rowCount())
            if not dialog.table.isRowHidden(row)]


def stored() -> dict[str, Entry]:
    return {entry.surface: entry for entry in ReadingsStore().entries()}


def type_text(qtbot, widget, text: str) -> None:
    """Type as a user does: key presses for ASCII, an input method's commit for Japanese (QTest has no keys
    for kana)."""
    if text.isascii():
        qtbot.keyClicks(widget, text)
        return
    event = QInputMethodEvent()
    event.setCommitString(text)
    QApplication.sendEvent(widget, event)


def type_into(qtbot, widget, text: str) -> None:
    widget.setFocus()
    widget.selectAll()
    type_text(qtbot, widget, text)


def test_the_dictionary_from_the_keyboard(dialog, qtbot, spoken, announced):
    # Sorted by word; where kanji and full-width Latin go depends on the locale's collation.
    assert rows(dialog)[:2] == ["AI", r"Dr\.\s*(\w+)"] and set(rows(dialog)[2:]) == {"本屋", "ＭｉｏＴＴＳ"}
    assert dialog.focusWidget() is dialog.table

    # Ctrl+F searches (any width form, also readings and notes).
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert dialog.focusWidget() is dialog.search
    qtbot.keyClicks(dialog.search, "mio")
    assert rows(dialog) == ["ＭｉｏＴＴＳ"]
    dialog.search.clear()

    # Alt+A adds: the reading's language is chosen for the user (kana: Japanese sentences).
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: dialog.form is not None and dialog.form.isVisible())  # a mnemonic clicks after a moment
    form = dialog.form
    assert form is not None and form.isVisible() and form.focusWidget() is form.word
    qtbot.keyClicks(form.word, "GitHub")
    qtbot.keyClick(form.word, Qt.Key.Key_Tab)
    assert form.focusWidget() is form.reading
    type_text(qtbot, form.reading, "ぎっとはぶ")
    assert form.language.currentData() == "ja"
    qtbot.keyClick(form.reading, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not form.isVisible())
    assert stored()["GitHub"] == Entry("GitHub", "ぎっとはぶ", "ja")
    assert dialog.selected_entry().surface == "GitHub" and dialog.focusWidget() is dialog.table
    assert announced[-1] == ("Added “GitHub” → ぎっとはぶ.", False)

    # Enter edits the selected entry.
    qtbot.keyClick(dialog.table, Qt.Key.Key_Return)
    form = dialog.form
    assert form.word.text() == "GitHub"
    type_into(qtbot, form.reading, "ギットハブ")
    form.priority.setFocus()
    qtbot.keyClick(form.priority, Qt.Key.Key_Up)
    qtbot.keyClick(form.priority, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not form.isVisible())
    assert stored()["GitHub"] == Entry("GitHub", "ギットハブ", "ja", priority=6)

    # ▶ Preview says the reading through the window's engine.
    show_active(qtbot, dialog)  # what a window manager does when the form closes (Xvfb has none)
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_V, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: spoken == ["ギットハブ"])

    # Space switches it off and on; the file follows at once.
    qtbot.keyClick(dialog.table, Qt.Key.Key_Space)
    assert not stored()["GitHub"].enabled
    assert dialog.table.item(dialog.table.currentRow(), 0).checkState() == Qt.CheckState.Unchecked
    assert announced[-1] == ("“GitHub” is off.", False)
    qtbot.keyClick(dialog.table, Qt.Key.Key_Space)
    assert stored()["GitHub"].enabled

    # Delete deletes; Ctrl+Z brings it back.
    qtbot.keyClick(dialog.table, Qt.Key.Key_Delete)
    assert "GitHub" not in stored() and "GitHub" not in rows(dialog)
    assert dialog.undo_button.isVisible()
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert stored()["GitHub"] == Entry("GitHub", "ギットハブ", "ja", priority=6)
    screenshot(dialog, "readings-dialog-en")


def test_a_broken_pattern_is_refused_in_the_form_and_spoken(dialog, qtbot, announced):
    before = ReadingsStore().path.read_bytes()
    form = dialog.add_entry()
    qtbot.keyClicks(form.word, "x(")
    type_into(qtbot, form.reading, "y")
    form.is_regex.setChecked(True)
    qtbot.keyClick(form.reading, Qt.Key.Key_Return)
    assert form.isVisible() and form.error_label.isVisible()
    assert "not a valid regular expression" in form.error_label.text()
    assert announced[-1][1] is True and "not a valid regular expression" in announced[-1][0]
    assert form.focusWidget() is form.word
    assert ReadingsStore().path.read_bytes() == before
    screenshot(form, "readings-form-error-en")
    form.reject()


def test_the_dialog_and_its_form_are_named_for_assistive_technology(dialog, qtbot):
    assert_named_by_visible_labels(dialog)
    assert_unique(dialog_mnemonics(dialog))
    form = dialog.add_entry("MioDesk")
    qtbot.waitExposed(form)
    assert form.word.text() == "MioDesk" and form.focusWidget() is form.reading
    assert_named_by_visible_labels(form)
    assert_unique(dialog_mnemonics(form))
    form.reject()


def test_import_and_export_from_the_dialog(dialog, tmp_path, announced):
    export = tmp_path / "voicevox.json"
    export.write_text(json.dumps({"6f0b7c1e-0000-4000-8000-000000000001": {
        "surface": "ＶＯＩＣＥＶＯＸ", "priority": 5, "context_id": 1348, "part_of_speech": "名詞",
        "part_of_speech_detail_1": "固有名詞", "part_of_speech_detail_2": "一般", "part_of_speech_detail_3": "*",
        "inflectional_type": "*", "inflectional_form": "*", "stem": "*", "yomi": "ボイスボックス",
        "pronunciation": "ボイスボックス", "accent_type": 5, "mora_count": 6, "accent_associative_rule": "*"}},
        ensure_ascii=False), encoding="utf-8")
    assert dialog.import_file(export)
    assert "ＶＯＩＣＥＶＯＸ" in rows(dialog)
    assert announced[-1][0] == ("Imported 1 readings from “voicevox.json”: 1 new, 0 replaced. The accent data of 1 "
                                "words was dropped (the speech model takes no accent marks).")
    out = tmp_path / "mine.tsv"
    assert dialog.export_file(out)
    assert out.read_text(encoding="utf-8") == ReadingsStore().path.read_text(encoding="utf-8")
    assert not dialog.import_file(tmp_path / "missing.json")
    assert "does not exist" in dialog.status.text()


def test_preview_text_of_a_pattern_leaves_out_its_groups():
    assert preview_text(Entry(r"Dr\.\s*(\w+)", r"Doctor \1", regex=True)) == "Doctor"
    assert preview_text(Entry("AI", "エーアイ")) == "エーアイ"


def test_japanese_screenshot(qtbot, spoken):
    from miodesk.ui.i18n import Translations

    ReadingsStore().add_all(ENTRIES)
    translations = Translations()
    translations.apply("ja")
    try:
        dialog = ReadingsDialog(speak=spoken.append)
        qtbot.addWidget(dialog)
        dialog.resize(780, 520)
        show_active(qtbot, dialog)
        screenshot(dialog, "readings-dialog-ja")
        form = dialog.add_entry("本屋")
        qtbot.waitExposed(form)
        screenshot(form, "readings-form-ja")
        form.reject()
    finally:
        translations.apply("en")


# --- in the window ----------------------------------------------------------------------------------------


class RecordingLLM:
    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def generate(self, text: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.texts.append(text)
        return self._llm.generate(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


@pytest.fixture
def recording_app(qtbot, gui_settings, voices):
    from miodesk.ui.app import build_app, ensure_application
    from miodesk.ui.controller import default_engine_factory

    llms: list[RecordingLLM] = []

    def factory(settings):
        engine = default_engine_factory(settings)
        engine.llm = RecordingLLM(engine.llm)
        llms.append(engine.llm)
        return engine

    ensure_application()
    parts = build_app(gui_settings, engine_factory=factory, voice_store=voices)
    parts.controller.seed = 7
    qtbot.addWidget(parts.window)
    parts.window.resize(1180, 740)
    parts.window.show()
    qtbot.waitExposed(parts.window)
    parts.window.activateWindow()
    qtbot.waitUntil(lambda: parts.window.isActiveWindow(), timeout=5000)
    yield parts, llms
    parts.window.quit()


def test_add_reading_for_a_selection_then_the_reading_uses_it(recording_app, qtbot, tmp_path, pulse_sink):
    parts, llms = recording_app
    window, controller = parts.window, parts.controller
    text = "MioTTS reads books aloud. It runs offline.\n"
    with qtbot.waitSignal(controller.documentLoaded, timeout=20000):
        window.open_path(write_sample(tmp_path / "doc.txt", text))
    reader = window.reader
    reader.setFocus()
    cursor = reader.textCursor()
    cursor.setPosition(0)
    cursor.setPosition(len("MioTTS"), cursor.MoveMode.KeepAnchor)
    reader.setTextCursor(cursor)
    assert reader.selected_word() == "MioTTS"

    chosen: list[str] = []

    def choose() -> None:
        menu = QApplication.activePopupWidget()
        if menu is None:
            QTimer.singleShot(50, choose)
            return
        action = next(a for a in menu.actions() if a.text().startswith("Add Reading for"))
        chosen.append(action.text())
        screenshot(menu, "readings-reader-menu-en")
        menu.close()
        action.trigger()

    QTimer.singleShot(50, choose)
    # What Qt sends for the Menu key or Shift+F10 (QTest's key events do not reach the window system).
    at = reader.cursorRect().center()
    QApplication.sendEvent(reader, QContextMenuEvent(QContextMenuEvent.Reason.Keyboard, at, reader.mapToGlobal(at)))
    qtbot.waitUntil(lambda: bool(chosen))
    assert chosen == ["Add Reading for “MioTTS”…"]
    dialog = window.readings_dialog
    qtbot.waitUntil(lambda: dialog.form is not None and dialog.form.isVisible())
    form = dialog.form
    assert form.word.text() == "MioTTS"
    type_into(qtbot, form.reading, "Mio T T S")
    assert form.language.currentData() == "en"
    qtbot.keyClick(form.reading, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not form.isVisible())
    assert stored()["MioTTS"] == Entry("MioTTS", "Mio T T S", "en")
    dialog.close()

    heard: list[tuple[int, int]] = []
    controller.utteranceStarted.connect(lambda _index, start, end: heard.append((start, end)))
    with qtbot.waitSignal(controller.readingFinished, timeout=120000):
        controller.play(0)
    assert heard == [(u.start, u.end) for u in segment(text)]  # the highlight is on the document's text
    assert list(dict.fromkeys(llms[0].texts)) == ["Mio T T S reads books aloud.", "It runs offline."]


def test_tools_menu_opens_the_dictionary(app, qtbot):
    window = app.window
    action = window.actions_by_name["readings"]
    assert action in window.tools_menu.actions() and action.text() == "Readings &Dictionary…"
    action.trigger()
    dialog = window.readings_dialog
    qtbot.waitExposed(dialog)
    assert dialog.isModal() and dialog.windowTitle() == "Readings Dictionary"
    dialog.close()


# --- on the real accessibility bus ----------------------------------------------------------------------


def bus_tree(tmp_path, env_home, form: bool) -> list[dict]:
    """What the AT-SPI bus carries for the dialog (tests/atspi_readings_app.py), read back by a pyatspi client
    in the system Python (tests/atspi_tree.py), on a private session bus and Xvfb (as tests/test_atspi.py)."""
    import subprocess
    import sys
    from contextlib import ExitStack
    from pathlib import Path

    from test_atspi import SYSTEM_PYTHON, accessibility_session, read_jsonl, wait_for

    here = Path(__file__).parent
    ready, stop, out = tmp_path / "ready", tmp_path / "stop", tmp_path / "tree.jsonl"
    with ExitStack() as stack:
        children, env = accessibility_session(stack, tmp_path, MIODESK_HOME=str(env_home))
        app = children.start("app", [sys.executable, str(here / "atspi_readings_app.py"), "--ready", str(ready),
                                     "--stop-file", str(stop), *(["--form"] if form else [])],
                             env=dict(env, QT_QPA_PLATFORM="xcb", QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1"))
        wait_for(lambda: ready.exists() or app.poll() is not None, 60, "the dialog did not show", children)
        dumped = subprocess.run([SYSTEM_PYTHON, str(here / "atspi_tree.py"), "--app", "MioDesk", "--out", str(out)],
                                env=env, capture_output=True, text=True, timeout=120)
        stop.touch()
        assert dumped.returncode == 0, dumped.stderr + children.outputs()
        app.wait(timeout=30)
    return read_jsonl(out)


def test_the_bus_carries_the_dialog_s_names_and_states(tmp_path, miodesk_home):
    ReadingsStore().add_all(ENTRIES)
    tree = bus_tree(tmp_path, miodesk_home, form=False)
    by_role: dict[str, list[dict]] = {}
    for node in tree:
        by_role.setdefault(node.get("role", ""), []).append(node)
    assert any(n["name"].startswith("Readings Dictionary") for n in by_role["dialog"]), by_role.get("dialog")
    buttons = {n["name"] for n in by_role["push button"]}
    assert {"Add…", "Edit…", "Delete", "Preview", "Import…", "Export…", "Close"} <= buttons, buttons
    table = next(n for n in by_role["table"] if n["name"] == "Readings")
    assert table["description"].startswith("Enter edits the reading")
    search = next(n for n in by_role["text"] if "Search:" in n.get("labelled_by", []) or n["name"] == "Search:")
    assert "focusable" in search["states"]
    headers = {n["name"] for n in by_role.get("table column header", [])}
    assert {"On", "Word", "Reading", "Sentences", "Priority", "Kind"} <= headers, headers
    cells = [n for n in by_role.get("table cell", []) if n["path"].startswith(table["path"] + ".")]
    assert {"ＭｉｏＴＴＳ", "ミオティーティーエス", "本屋", "ほんや"} <= {n["name"] for n in cells}
    switches = [n for n in cells if "checkable" in n["states"]]  # the On column: a check state per entry
    assert len(switches) == len(ENTRIES)
    assert sorted("checked" in n["states"] for n in switches) == [False, True, True, True]  # 本屋 is off
    assert sorted(n["name"] for n in switches) == ["Off", "On", "On", "On"]  # what a screen reader says


def test_the_bus_carries_the_form_s_labels(tmp_path, miodesk_home):
    tree = bus_tree(tmp_path, miodesk_home, form=True)
    form = next(n for n in tree if n.get("role") == "dialog" and n["name"].startswith("Add Reading"))
    inside = [n for n in tree if n["path"].startswith(form["path"] + ".")]
    controls = [n for n in inside if n.get("role") != "label"]
    fields = {label: next((n for n in controls if label in n.get("labelled_by", [])), None)
              for label in ("Word:", "Reading:", "Sentences:", "Priority:", "Note:")}
    assert all(fields.values()), {k: bool(v) for k, v in fields.items()}
    assert fields["Word:"]["text"] == "MioDesk"
    assert fields["Reading:"]["description"] == "What the speech model is given instead, e.g. in kana"
    checks = {n["name"] for n in inside if n.get("role") == "check box"}
    assert {"The word is a regular expression (the reading may use \\1)", "On"} <= checks, checks
