"""Adjustable pauses (issue 22): after a sentence, a paragraph and a heading, in Settings and live reading.

Exports and the CLI options are tested in tests/test_export.py (the subtitles' gaps and the samples).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
from gui_fixtures import write_sample
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from test_gui_dialogs_a11y import iface, show_active
from test_gui_export import FilePlayer, open_document

from miodesk.settings import load_settings, settings_path
from miodesk.text.formats.markdown import document_from_markdown
from miodesk.text.segment import segment
from miodesk.tts.pauses import Pauses, heading_ends

PAUSED_BOOK = ("# A heading\n\nThe first sentence is here. The second one follows.\n\n"
               "A new paragraph starts.\n")


def test_the_pause_follows_what_comes_next():
    pauses = Pauses(0.3, 0.8)
    assert pauses.between(" ", after_heading=False) == 0.3
    assert pauses.between("\n", after_heading=False) == 0.3  # a line break inside a paragraph
    assert pauses.between("\n\n", after_heading=False) == 0.8
    assert pauses.between("\n\n", after_heading=True) == pauses.heading_s == 1.2
    assert Pauses.clamped(-1, 99) == Pauses(0.0, 5.0)


def test_only_the_last_sentence_of_a_heading_ends_it():
    document = document_from_markdown("# Part one. The storm\n\nText here. More text.\n\n## Next\n\nEnd.", "t")
    utterances = segment(document.text)
    assert [u.text for u in utterances] == ["Part one.", "The storm", "Text here.", "More text.", "Next", "End."]
    spans = [(u.start, u.end) for u in utterances]
    assert heading_ends(spans, document.heading_spans()) == {1, 4}
    assert heading_ends(spans, []) == set()


def test_hand_edited_pauses_are_clamped(miodesk_home):
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(json.dumps({"sentence_pause_s": -2, "paragraph_pause_s": 60}), encoding="utf-8")
    settings = load_settings()
    assert (settings.sentence_pause_s, settings.paragraph_pause_s) == (0.0, 5.0)


def silent_runs(audio: np.ndarray, rate: int, shortest_s: float = 0.05) -> list[float]:
    """Lengths in seconds of the runs of exact zeros (a pause is written as zeros; speech never is)."""
    silent = np.concatenate([[False], audio == 0.0, [False]])
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))
    runs = (edges[1::2] - edges[::2]) / rate
    return [round(float(run), 3) for run in runs if run >= shortest_s]


def test_settings_pauses_reach_the_reading_from_the_keyboard(qtbot, gui_settings, voices, tmp_path, monkeypatch):
    from miodesk.ui.app import build_app
    from miodesk.ui.controller import ReaderController
    from miodesk.ui.settings_dialog import SettingsDialog

    FilePlayer.folder, FilePlayer.made = tmp_path, []
    monkeypatch.setattr(ReaderController, "_make_player", staticmethod(FilePlayer))
    gui_settings.full_decode = True
    parts = build_app(gui_settings, voice_store=voices)
    window, controller = parts.window, parts.controller
    qtbot.addWidget(window)
    window.show()
    try:
        open_document(qtbot, parts, write_sample(tmp_path / "paused.md", PAUSED_BOOK))
        dialog = SettingsDialog(window.settings, window, voices=controller.voice_names(), language="en")
        qtbot.addWidget(dialog)
        show_active(qtbot, dialog)
        dialog.tabs.setCurrentIndex(4)  # Voices
        for letter, box, value in ((Qt.Key.Key_S, dialog.sentence_pause, "0.4"),
                                   (Qt.Key.Key_P, dialog.paragraph_pause, "1.1")):
            qtbot.keyClick(dialog.focusWidget(), letter, Qt.KeyboardModifier.AltModifier)  # the label's mnemonic
            qtbot.waitUntil(lambda box=box: dialog.focusWidget() is box, timeout=2000)
            qtbot.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
            qtbot.keyClicks(box, value)
        # What a screen reader is given: the label's text as the name, the note as the description.
        assert iface(dialog.sentence_pause).text(QAccessible.Text.Name).startswith("Pause between sentences")
        assert "heading" in iface(dialog.paragraph_pause).text(QAccessible.Text.Description)
        chosen = dialog.result_settings()
        assert (chosen.sentence_pause_s, chosen.paragraph_pause_s) == (0.4, 1.1)
        window.apply_settings(chosen)
        assert (load_settings().sentence_pause_s, load_settings().paragraph_pause_s) == (0.4, 1.1)

        finished: list[bool] = []
        controller.readingFinished.connect(lambda: finished.append(True))
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: bool(finished), timeout=120000)
        controller.pipeline.release_player()
        qtbot.waitUntil(lambda: FilePlayer.made[0].closed, timeout=10000)
        heard, rate = soundfile.read(str(tmp_path / "window-0.wav"), dtype="float32")
    finally:
        window.quit()
    # After the heading 1.65 s (half again 1.1), between the two sentences 0.4 s, between paragraphs 1.1 s.
    assert silent_runs(heard, rate) == pytest.approx([1.65, 0.4, 1.1], abs=0.002)
