"""The desktop app reads a document aloud and the highlight follows what is heard (Xvfb + null sink)."""

from __future__ import annotations

import time

import numpy as np
from audio_helpers import MonitorRecorder
from gui_fixtures import SAMPLE_EN, SAMPLE_JA, screenshot, write_sample
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible

from miodesk.settings import PositionStore


def open_document(qtbot, parts, path):
    with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
        parts.window.open_path(path)
    return parts.controller.loaded


def test_empty_window_has_labelled_controls(app, qtbot):
    window = app.window
    screenshot(window, "01-empty")
    assert window.stack.currentWidget() is window.empty_page
    assert window.windowTitle() == "MioDesk"
    # Every control a keyboard or screen-reader user meets has a name.
    for name, button in window.transport.buttons.items():
        assert button.accessibleName(), name
        assert button.focusPolicy() & Qt.FocusPolicy.TabFocus
    for widget in (window.transport.voice_combo, window.transport.speed_slider, window.transport.volume_slider,
                   window.reader, window.outline):
        # What the accessibility bridge sends, not the property: a buddy label names the slider.
        assert QAccessible.queryAccessibleInterface(widget).text(QAccessible.Text.Name), widget.objectName()
    assert window.transport.voice_combo.count() == 4  # the presets
    assert not window.actions_by_name["play"].isEnabled()  # nothing to read yet


def test_open_play_highlight_follows_audio(app, qtbot, tmp_path, pulse_sink):
    window, controller = app.window, app.controller
    loaded = open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    assert window.stack.currentWidget() is window.splitter
    assert window.outline.topLevelItemCount() == 1  # "A Walk by the Sea" with its three sections
    assert window.windowTitle().startswith("A Walk by the Sea")

    heard: list[tuple[float, int, tuple[int, int] | None]] = []
    controller.utteranceStarted.connect(
        lambda index, start, end: heard.append((time.monotonic(), index, window.reader.highlighted())))
    with MonitorRecorder() as recorder:
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: len(heard) >= 4, timeout=60000)
        screenshot(window, "02-reading")
        window.actions_by_name["stop"].trigger()
        qtbot.waitUntil(lambda: controller.state == "idle", timeout=5000)

    indices = [index for _, index, _ in heard]
    assert indices[:4] == [0, 1, 2, 3]
    for when, index, highlighted in heard:
        utterance = loaded.utterances[index]
        assert highlighted == (utterance.start, utterance.end)
        # The sentence is highlighted while its audio reaches the (null) speakers.
        audio = recorder.around(when, 0.25)
        assert len(audio) and np.sqrt(np.mean(audio**2)) > 1e-3, (index, len(audio))
    # The status line shows the model, the device, time to first audio, RTF and what is left.
    assert "CPU" in window.model_label.text()
    assert window.ttfa_label.text().startswith("First audio")
    assert window.rtf_label.text().startswith("RTF")
    assert "left" in window.remaining_label.text()


def test_pause_next_previous_stop_and_voice_change(app, qtbot, tmp_path, pulse_sink):
    window, controller = app.window, app.controller
    loaded = open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    started: list[int] = []
    controller.utteranceStarted.connect(lambda index, *_: started.append(index))

    window.actions_by_name["play"].trigger()
    qtbot.waitUntil(lambda: bool(started), timeout=30000)
    qtbot.keyClick(window.reader, Qt.Key.Key_Space)  # Space pauses, even with the text focused
    assert controller.state == "paused"
    assert app.tray.pause_resume.text() == "Resume"
    count = len(started)
    qtbot.wait(700)
    assert len(started) == count  # nothing new is heard while paused
    window.actions_by_name["play"].trigger()
    assert controller.state == "playing"

    # Next sentence (Alt+→) skips ahead; previous (Alt+←) goes back; bare arrows move the caret.
    current = started[-1]
    qtbot.keyClick(window.reader, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: started[-1] >= current + 1 and started[-1] != current, timeout=20000)
    after_next = started[-1]
    qtbot.keyClick(window.reader, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: started[-1] == after_next - 1, timeout=20000)

    # Changing the voice mid-reading keeps reading (the next sentence uses the new voice).
    combo = window.transport.voice_combo
    target = combo.findData("en_male")
    combo.setCurrentIndex(target)
    combo.activated.emit(target)
    assert controller.settings.voice_en == "en_male"  # the voice of the English sentences
    count = len(started)
    qtbot.waitUntil(lambda: len(started) > count, timeout=20000)
    assert controller.state == "playing"

    # Next chapter jumps to the next heading.
    position = controller.position
    window.actions_by_name["next_chapter"].trigger()
    starts = controller.section_starts()
    expected = next(s for s in starts if s > position)
    qtbot.waitUntil(lambda: loaded.utterances[started[-1]].start == expected, timeout=20000)

    window.actions_by_name["stop"].trigger()
    assert controller.state == "idle"
    heard_at_stop = len(started)
    qtbot.wait(600)
    assert len(started) == heard_at_stop
    assert window.reader.highlighted() is not None  # the place stays visible after Stop


def test_double_click_reads_from_there_and_resume(app, qtbot, tmp_path, pulse_sink):
    window, controller = app.window, app.controller
    path = write_sample(tmp_path / "umi.md", SAMPLE_JA)
    loaded = open_document(qtbot, app, path)
    target = loaded.utterances[5]
    started: list[int] = []
    controller.utteranceStarted.connect(lambda index, *_: started.append(index))
    window.reader.readFromRequested.emit(target.start + 2)  # what a double-click on it sends
    qtbot.waitUntil(lambda: bool(started), timeout=30000)
    assert started[0] == 5
    screenshot(window, "03-reading-japanese")
    window.actions_by_name["stop"].trigger()
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=5000)
    key = loaded.key
    assert PositionStore().get(key) == loaded.utterances[started[-1]].start

    # Opening the same file again offers to continue there.
    loaded_again = open_document(qtbot, app, path)
    assert loaded_again.resume_offset == loaded.utterances[started[-1]].start
    assert window.banner.isVisible() and "where you stopped" in window.banner.label.text()
    assert window.reader.cursor_offset() == loaded_again.resume_offset
