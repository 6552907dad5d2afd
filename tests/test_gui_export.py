"""File › Export audio… in the window (Xvfb, the generated models): the dialog from the keyboard, the files it
makes read back with mutagen and PyAV, progress, Cancel and the export that continues it, the window reading
while an export runs, quitting during one, and the dialogue voice of Settings › Voices in live reading.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
from gui_fixtures import screenshot, write_sample
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLineEdit
from test_audio_output import chapters_by_mutagen, pyav_chapters
from test_gui_dialogs_a11y import (
    DESCRIPTION,
    NAME,
    assert_named_by_visible_labels,
    assert_unique,
    dialog_mnemonics,
    iface,
    label_relations,
    tab_walk,
)

from miodesk.settings import EXPORT_FORMATS, EXPORT_SUBTITLES, Settings, load_settings
from miodesk.text.segment import segment
from miodesk.ui.export_dialog import ExportDialog, JobState, available_formats

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier

TWO_CHAPTERS = """# The Harbour

The tide was out when we arrived. Gulls circled above the harbour.

# The Lighthouse

We found a small café near the lighthouse. The soup was warm.
"""

SENTENCES = ["The boat rocked at its mooring.", "We walked along the sand.", "The wind smelled of salt.",
             "Clouds came in from the west.", "The bread was fresh.", "The lights came on one by one.",
             "It was time to go home.", "A dog barked in the distance.", "The sea was calm again."]


def book(chapters: int, sentences: int) -> str:
    """A Markdown book of `chapters` chapters of `sentences` sentences each."""
    parts = []
    for number in range(1, chapters + 1):
        body = " ".join(SENTENCES[(number + i) % len(SENTENCES)] for i in range(sentences))
        parts.append(f"# Chapter {number}\n\n{body}\n")
    return "\n".join(parts)


def open_document(qtbot, parts, path: Path):
    with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
        parts.window.open_path(path)
    return parts.controller.loaded


def show_export_dialog(qtbot, window) -> ExportDialog:
    """File › Export audio… by its shortcut, as a keyboard user opens it."""
    window.reader.setFocus()
    qtbot.keyClick(window.reader, Qt.Key.Key_E, CTRL_SHIFT)
    dialog = window.export_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()  # no window manager on Xvfb: mnemonics need an active window
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)
    return dialog


def type_output(qtbot, dialog: ExportDialog, path: Path) -> None:
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_F, ALT)  # "Output &file:"
    assert dialog.focusWidget() is dialog.output
    qtbot.keyClick(dialog.output, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(dialog.output, str(path))


def choose_subtitles(qtbot, dialog: ExportDialog, suffix: str) -> None:
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_T, ALT)  # "Subti&tles:"
    assert dialog.focusWidget() is dialog.subtitles
    while dialog.subtitles.currentData() != suffix:
        qtbot.keyClick(dialog.subtitles, Qt.Key.Key_Down)


def press_start(qtbot, dialog: ExportDialog) -> None:
    """Alt+S ("&Start"); a mnemonic "animates" its click: wait until the export started or was refused."""
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_S, ALT)
    qtbot.waitUntil(lambda: dialog.job.busy or dialog.error.isVisible(), timeout=2000)


def srt_cues(path: Path) -> list[tuple[float, str]]:
    """(start in seconds, text) of each cue of an .srt file."""
    cues = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        lines = block.splitlines()
        hours, minutes, rest = lines[1].split(" --> ")[0].split(":")
        seconds = int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))
        cues.append((seconds, " ".join(lines[2:])))
    return cues


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# --- exporting from the dialog ------------------------------------------------------------------------------


def test_export_a_two_chapter_book_to_flac_from_the_keyboard(app, qtbot, tmp_path, announced):
    window = app.window
    loaded = open_document(qtbot, app, write_sample(tmp_path / "harbour.md", TWO_CHAPTERS))
    assert [chapter.title for chapter in loaded.document.chapters] == ["The Harbour", "The Lighthouse"]
    dialog = show_export_dialog(qtbot, window)
    # Filled for the document: next to it, named as it, in the remembered format (M4B by default).
    expected_suffix = ".m4b" if ".m4b" in available_formats() else ".mp3"
    assert Path(dialog.output.text()) == tmp_path / f"harbour{expected_suffix}"
    assert dialog.from_start.isChecked() and dialog.speed.value() == pytest.approx(1.0)
    assert dialog.voice.currentData() == ""
    assert dialog.voice.currentText() == "Reading voices: Japanese, female · English, female"
    assert not dialog.progress.isVisible()
    screenshot(dialog, "export-dialog-idle")

    out = tmp_path / "out" / "harbour.flac"
    out.parent.mkdir()
    type_output(qtbot, dialog, out)
    choose_subtitles(qtbot, dialog, ".srt")
    assert dialog.subtitles_note.text() == "Written next to the audio: harbour.srt"
    reports: list = []
    dialog.job.progressed.connect(reports.append)
    del announced[:]
    with qtbot.waitSignal(dialog.job.succeeded, timeout=180000) as finished:
        press_start(qtbot, dialog)
        assert dialog.job.busy and not dialog.fields.isEnabled()
        assert dialog.focusWidget() is dialog.cancel_button  # the keyboard stays in the dialog
    result = finished.args[0]

    # The file, read back by libsndfile and mutagen: its audio, its two chapters in order.
    assert result.output == out and files_in(out.parent) == ["harbour.flac", "harbour.srt"]
    info = soundfile.info(str(out))
    assert info.duration == pytest.approx(result.audio_s, abs=0.05) and info.duration > 1
    chapters = chapters_by_mutagen(out)
    assert [title for _, title in chapters] == ["The Harbour", "The Lighthouse"]
    assert chapters[0][0] == 0 and 0 < chapters[1][0] < info.duration
    # One cue a sentence (headings are read too); the second chapter starts where its heading is heard.
    cues = srt_cues(out.with_suffix(".srt"))
    assert [text for _, text in cues] == [u.text for u in segment(loaded.document.text)]
    assert cues[0] == (0.0, "The Harbour")
    second = next(start for start, text in cues if text == "The Lighthouse")
    assert chapters[1][0] == pytest.approx(second, abs=0.05)

    # Progress came as the export went: characters and audio only grow, two chapters.
    assert reports, "no progress"
    assert [r.done_chars for r in reports] == sorted(r.done_chars for r in reports)
    assert [r.audio_s for r in reports] == sorted(r.audio_s for r in reports)
    assert {r.chapters for r in reports} == {2} and {r.chapter for r in reports} <= {1, 2}
    assert reports[-1].total_chars > 0
    # Done: said once at the start and once at the end (the banner, with Open Folder), not every percent.
    messages = [text for text, _ in announced]
    assert messages[0] == "Exporting to harbour.flac."
    done = [text for text in messages if text.startswith("Exported harbour.flac:")]
    assert len(done) == 1 and "2 chapters" in done[0] and done[0].endswith("Open Folder")
    assert len(messages) <= 3, messages
    assert window.banner.isVisible() and window.banner.action.text() == "Open Folder"
    assert dialog.progress.value() == 100 and dialog.open_folder_button.isVisible()
    assert dialog.focusWidget() is dialog.open_folder_button
    assert not dialog.status_progress.isVisible() and dialog.fields.isEnabled()
    # The choices are remembered for the next export.
    saved = load_settings()
    assert (saved.export_folder, saved.export_format, saved.export_subtitles) == (str(out.parent), ".flac", ".srt")
    screenshot(dialog, "export-dialog-finished")


@pytest.mark.parametrize("suffix", [".m4b"])
def test_export_to_an_aac_audiobook(app, qtbot, tmp_path, suffix):
    pytest.importorskip("av")  # the [aac] extra, part of the test extra
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "harbour.md", TWO_CHAPTERS))
    dialog = show_export_dialog(qtbot, window)
    out = tmp_path / f"harbour{suffix}"
    type_output(qtbot, dialog, out)
    with qtbot.waitSignal(dialog.job.succeeded, timeout=180000) as finished:
        assert dialog.start_export()
    result = finished.args[0]
    assert result.output == out and out.exists()
    for reader in (chapters_by_mutagen, pyav_chapters):  # the Nero chpl atom and what FFmpeg reads
        chapters = reader(out)
        assert [title for _, title in chapters] == ["The Harbour", "The Lighthouse"], reader
        assert chapters[0][0] == pytest.approx(0, abs=0.05) and chapters[1][0] > 0.5


def test_cancel_keeps_nothing_at_the_output_and_export_again_continues(app, qtbot, tmp_path, announced):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "long.md", book(4, 9)))
    dialog = show_export_dialog(qtbot, window)
    out = tmp_path / "long.mp3"
    type_output(qtbot, dialog, out)
    cancelled: list[str] = []
    dialog.job.cancelled.connect(cancelled.append)

    def cancel_in_chapter_two(progress) -> None:
        if progress.chapter >= 2 and dialog.cancel_button.isEnabled():
            dialog.cancel_button.setFocus()
            qtbot.keyClick(dialog.cancel_button, Qt.Key.Key_Space)

    dialog.job.progressed.connect(cancel_in_chapter_two)
    with qtbot.waitSignal(dialog.job.cancelled, timeout=180000):
        press_start(qtbot, dialog)
    dialog.job.progressed.disconnect(cancel_in_chapter_two)
    assert cancelled == ["user"]
    # Nothing at the output, nothing half-written beside it; the window says the work is kept.
    assert not out.exists() and files_in(tmp_path) == ["long.md"]
    kept = "Export cancelled. The work done so far is kept: Export again continues it."
    assert window.banner.label.text() == kept and dialog.status.text() == kept
    assert (kept, False) in announced
    assert dialog.start_button.isVisible() and dialog.fields.isEnabled()
    assert dialog.focusWidget() is dialog.start_button

    # Start again, the fields as they were: the finished chapter is taken from the first run.
    with qtbot.waitSignal(dialog.job.succeeded, timeout=180000) as finished:
        press_start(qtbot, dialog)
    result = finished.args[0]
    assert result.chapters == 4 and result.chapters_reused >= 1
    assert [title for _, title in chapters_by_mutagen(out)] == [f"Chapter {n}" for n in range(1, 5)]
    assert f"{result.chapters_reused} chapters from the earlier export" in dialog.status.text()


def test_the_window_reads_while_an_export_runs(app, qtbot, tmp_path, pulse_sink):
    window, controller = app.window, app.controller
    open_document(qtbot, app, write_sample(tmp_path / "long.md", book(40, 9)))  # long enough to outlast the test
    dialog = show_export_dialog(qtbot, window)
    out = tmp_path / "long.flac"
    type_output(qtbot, dialog, out)
    reports: list = []
    dialog.job.progressed.connect(reports.append)
    assert dialog.start_export()
    qtbot.waitUntil(lambda: len(reports) >= 1, timeout=60000)

    # Back in the window, Play: the reading's sentences go first on the model and are heard.
    dialog.close()  # the export goes on; the status bar shows it
    assert dialog.job.state == JobState.RUNNING and dialog.status_progress.isVisible()
    window.activateWindow()
    heard: list[tuple[int, str, int]] = []  # sentence, the export's state, its reports so far
    controller.utteranceStarted.connect(lambda index, *_: heard.append((index, dialog.job.state, len(reports))))
    window.reader.setFocus()
    qtbot.keyClick(window.reader, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(heard) >= 3, timeout=60000)
    assert heard[:3] == [(i, JobState.RUNNING, heard[i][2]) for i in range(3)]
    assert heard[2][2] > heard[0][2]  # the export went on between the reading's sentences
    assert controller.last_stats.get("ttfa_s") is not None
    window.actions_by_name["stop"].trigger()
    before = len(reports)
    qtbot.waitUntil(lambda: len(reports) > before, timeout=60000)  # the export goes on after the reading
    assert re.fullmatch(r"Export \d+ %", dialog.status_progress.text())
    # File › Export audio… shows the running export again; one export at a time.
    window.actions_by_name["export"].trigger()
    assert dialog.isVisible() and dialog.progress.isVisible() and not dialog.start_button.isVisible()
    assert not dialog.start_export()
    with qtbot.waitSignal(dialog.job.cancelled, timeout=60000):
        dialog.cancel_button.click()


def test_a_problem_with_the_output_is_said_in_the_dialog(app, qtbot, tmp_path, announced):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "harbour.md", TWO_CHAPTERS))
    dialog = show_export_dialog(qtbot, window)
    (tmp_path / "a file").write_text("x", encoding="utf-8")
    for path, fragment in ((tmp_path / "a file" / "book.flac", "Not a directory"),
                           (tmp_path / "book.xyz", ".m4b")):
        type_output(qtbot, dialog, path)
        press_start(qtbot, dialog)
        assert not dialog.job.busy
        assert dialog.error.isVisible() and fragment in dialog.error.text(), dialog.error.text()
        assert "\n" not in dialog.error.text() and "Traceback" not in dialog.error.text()
        assert announced[-1] == (dialog.error.text(), True)  # spoken at once
        assert dialog.focusWidget() is dialog.output
    qtbot.keyClicks(dialog.output, "x")  # editing the path clears the message
    assert not dialog.error.isVisible()
    dialog.output.clear()
    assert not dialog.start_export() and "Enter the file to export to" in dialog.error.text()
    assert files_in(tmp_path) == ["a file", "harbour.md"]


def test_a_failed_export_is_one_line_in_the_banner(app, qtbot, tmp_path, announced):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "long.md", book(3, 6)))
    dialog = show_export_dialog(qtbot, window)
    out = tmp_path / "long.flac"
    type_output(qtbot, dialog, out)
    # Something takes the output's place while the export runs: the file cannot be put there at the end.
    dialog.job.progressed.connect(lambda _: out.mkdir(exist_ok=True))
    with qtbot.waitSignal(dialog.job.failed, timeout=120000) as failed:
        press_start(qtbot, dialog)
    message = failed.args[0]
    assert "long.flac" in message and "\n" not in message and "Traceback" not in message
    shown = f"The export failed: {message}"
    assert window.banner.kind == "error" and window.banner.label.text() == shown
    assert announced[-1] == (shown, True)  # the banner speaks it at once
    assert dialog.error.text() == shown and dialog.start_button.isVisible() and out.is_dir()


def test_an_engine_reload_stops_the_export(app, qtbot, tmp_path):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "long.md", book(40, 9)))
    dialog = show_export_dialog(qtbot, window)
    type_output(qtbot, dialog, tmp_path / "long.flac")
    reports: list = []
    dialog.job.progressed.connect(reports.append)
    assert dialog.start_export()
    qtbot.waitUntil(lambda: bool(reports), timeout=60000)
    changed = Settings(**window.settings.to_json())
    changed.codec_threads = 2  # Settings › Speech: the models load again
    with qtbot.waitSignal(dialog.job.cancelled, timeout=60000) as cancelled:
        window.apply_settings(changed)
    assert cancelled.args == ["engine"]
    assert window.banner.label.text() == ("The export stopped because the speech models are reloading. The work done "
                                          "so far is kept: Export again continues it.")
    assert not (tmp_path / "long.flac").exists()


def test_quitting_during_an_export_asks_and_the_staged_work_stays(app, qtbot, tmp_path):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "long.md", book(40, 9)))
    dialog = show_export_dialog(qtbot, window)
    out = tmp_path / "long.flac"
    type_output(qtbot, dialog, out)
    reports: list = []
    dialog.job.progressed.connect(reports.append)
    assert dialog.start_export()
    qtbot.waitUntil(lambda: len(reports) >= 1, timeout=60000)
    asked: list[str] = []

    def answer(button_text: str) -> None:
        box = dialog.quit_question
        if box is None or not box.isVisible():
            QTimer.singleShot(50, lambda: answer(button_text))
            return
        asked.append(box.text())
        next(b for b in box.buttons() if b.text().replace("&", "") == button_text).click()

    QTimer.singleShot(50, lambda: answer("Keep Exporting"))
    window.quit()
    assert window.isVisible() and dialog.job.state == JobState.RUNNING
    QTimer.singleShot(50, lambda: answer("Stop Export and Quit"))
    window.quit()
    assert not window.isVisible() and dialog.job.state == JobState.IDLE
    assert len(asked) == 2 and "The work done so far is kept" in asked[0]
    assert not out.exists() and files_in(tmp_path) == ["long.md"]


# --- the dialog as keyboard and assistive technology meet it ---------------------------------------------


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_dialog_s_controls_names_mnemonics_and_tab_order(app, qtbot, tmp_path, language):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "harbour.md", TWO_CHAPTERS))
    app.translations.apply(language)
    try:
        dialog = show_export_dialog(qtbot, window)
        assert_named_by_visible_labels(dialog)
        letters = dialog_mnemonics(dialog)
        assert_unique(letters)
        assert len(letters) >= 10 and "c" not in letters  # C: Close, in GNOME's and KDE's Qt themes
        dialog.output.setFocus()
        order = tab_walk(qtbot, dialog.output)
        assert order[:8] == [dialog.output, dialog.browse_button, dialog.voice, dialog.dialogue_voice,
                             dialog.speed, dialog.subtitles, dialog.from_start, dialog.start_button]
        assert dialog.close_button in order
        for radio in (dialog.from_start, dialog.from_cursor):
            assert dialog.start_group.title() in label_relations(radio)
        assert iface(dialog.progress).text(NAME) == dialog.progress.accessibleName() != ""
        assert iface(dialog.dialogue_voice).text(DESCRIPTION)
    finally:
        app.translations.apply("en")
        QApplication.processEvents()


def test_the_progress_bar_reaches_assistive_technology(app, qtbot, tmp_path):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "long.md", book(40, 9)))
    dialog = show_export_dialog(qtbot, window)
    type_output(qtbot, dialog, tmp_path / "long.wav")
    reports: list = []
    dialog.job.progressed.connect(reports.append)
    assert dialog.start_export()
    qtbot.waitUntil(lambda: any(r.done_chars for r in reports), timeout=60000)
    value = iface(dialog.progress).valueInterface()
    assert (value.minimumValue(), value.maximumValue()) == (0, 100)
    assert value.currentValue() == dialog.progress.value()
    # "0:07 of audio · 2.1× real time · about 0:40 left · chapter 1 of 3" (speed and time once known)
    assert re.fullmatch(r"\d+:\d\d of audio( · \d+\.\d× real time)?( · about \d+:\d\d left)? · chapter \d+ of 40",
                        dialog.status.text()), dialog.status.text()
    screenshot(dialog, "export-dialog-running")
    with qtbot.waitSignal(dialog.job.cancelled, timeout=60000):
        dialog.cancel_button.click()


def test_the_browse_dialog_lists_the_formats(app, qtbot, tmp_path):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "harbour.md", TWO_CHAPTERS))
    dialog = show_export_dialog(qtbot, window)
    type_output(qtbot, dialog, tmp_path / "harbour.opus")
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_B, ALT)  # "&Browse…"
    qtbot.waitUntil(lambda: dialog.file_dialog is not None, timeout=2000)  # a mnemonic "animates" its click
    files = dialog.file_dialog
    assert files is not None
    qtbot.waitUntil(files.isVisible, timeout=5000)
    filters = files.nameFilters()
    assert [re.search(r"\(\*(\.\w+)\)", f).group(1) for f in filters] == available_formats()
    assert {".mp3", ".opus", ".flac", ".wav"} <= set(available_formats())
    assert files.selectedNameFilter() == dialog.format_filters()[".opus"]
    files.selectNameFilter(dialog.format_filters()[".flac"])
    files.filterSelected.emit(dialog.format_filters()[".flac"])
    # The name changed with the filter (Qt's dialog); a name without an extension gets the filter's.
    name = files.findChild(QLineEdit, "fileNameEdit")
    assert name.text() == "harbour.flac"
    name.setText("chosen")
    qtbot.keyClick(name, Qt.Key.Key_Return)
    assert Path(dialog.output.text()) == tmp_path / "chosen.flac"


def test_the_export_settings_are_checked_when_read(tmp_path):
    from miodesk.audio.output import FORMATS
    from miodesk.audio.subtitles import SUBTITLE_EXTENSIONS
    from miodesk.settings import settings_path

    assert set(EXPORT_FORMATS) <= set(FORMATS) and set(EXPORT_SUBTITLES) - {""} == set(SUBTITLE_EXTENSIONS)
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"export_format": ".exe", "export_subtitles": ".doc", "dialogue_voice": "jp_male"}),
                    encoding="utf-8")
    settings = load_settings()
    assert (settings.export_format, settings.export_subtitles, settings.dialogue_voice) == (
        Settings.export_format, "", "jp_male")


# --- the dialogue voice in live reading ---------------------------------------------------------------------

DIALOGUE = 'She looked at the sea. "It is calm today," she said. He nodded. "Let us go home."'


class FilePlayer:
    """The window's player, writing to a file instead of a sound card: a non-live sink like `FileSink`."""

    made: list[FilePlayer] = []

    def __init__(self, sample_rate: int, device, volume: float) -> None:
        from miodesk.tts.reader import FileSink

        self.source_rate = sample_rate
        self.volume = volume
        self.sink = FileSink(FilePlayer.folder / f"window-{len(FilePlayer.made)}.wav", sample_rate)
        FilePlayer.made.append(self)

    folder: Path = Path()

    def __getattr__(self, name: str):
        return getattr(self.sink, name)

    def resume(self) -> None:
        pass

    def reset_first_audio(self) -> None:
        pass

    closed = False

    def close(self) -> None:
        self.sink.close()
        self.closed = True


def reference(engine, utterances, text: str, vector, path: Path) -> np.ndarray:
    from miodesk.tts.reader import FileSink, ReadingSession
    from miodesk.tts.streaming import ChunkPlan

    sink = FileSink(path, engine.sample_rate)
    session = ReadingSession(engine, utterances, vector, sink, source_text=text, plan=ChunkPlan(full=True), seed=7)
    session.start()
    assert session.wait(120)
    sink.close()
    return soundfile.read(str(path), dtype="float32")[0]


def test_quotes_are_read_in_the_dialogue_voice_from_settings(qtbot, gui_settings, voices, tmp_path, monkeypatch):
    from test_voice_per_language import SettingsDialog, voices_by_sentence

    from miodesk.ui.app import build_app
    from miodesk.ui.controller import ReaderController

    FilePlayer.folder, FilePlayer.made = tmp_path, []
    monkeypatch.setattr(ReaderController, "_make_player", staticmethod(FilePlayer))
    gui_settings.full_decode = True  # whole sentences: a sentence's samples depend on its codes and voice only
    parts = build_app(gui_settings, voice_store=voices)
    parts.controller.seed = 7
    window, controller = parts.window, parts.controller
    qtbot.addWidget(window)
    window.show()
    try:
        loaded = open_document(qtbot, parts, write_sample(tmp_path / "dialogue.txt", DIALOGUE))
        assert len(loaded.utterances) == 4 and not loaded.split_quotes  # no dialogue voice: quotes stay in

        # Settings › Voices: a dialogue voice. The document is cut at its quotes at once.
        dialog = SettingsDialog(window.settings, window, voices=controller.voice_names(), language="en")
        qtbot.addWidget(dialog)
        assert dialog.dialogue_voice.currentData() == "" and dialog.dialogue_voice.currentText() == "(none)"
        dialog.dialogue_voice.setCurrentIndex(dialog.dialogue_voice.findData("jp_male"))
        assert dialog.result_settings().dialogue_voice == "jp_male"
        with qtbot.waitSignal(controller.documentResegmented, timeout=5000):
            window.apply_settings(dialog.result_settings())
        utterances = controller.loaded.utterances
        assert [u.quoted for u in utterances] == [False, True, False, False, True]
        assert window.transport.position_label.text() == "5 sentences"
        assert load_settings().dialogue_voice == "jp_male"

        finished: list[bool] = []
        controller.readingFinished.connect(lambda: finished.append(True))
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: bool(finished), timeout=120000)
        controller.pipeline.release_player()  # closes the file
        qtbot.waitUntil(lambda: FilePlayer.made[0].closed, timeout=10000)
        assert len(FilePlayer.made) == 1
        heard = soundfile.read(str(tmp_path / "window-0.wav"), dtype="float32")[0]
    finally:
        window.quit()
    engine = controller.engine
    references = {name: reference(engine, utterances, DIALOGUE, voices.get(name).vector, tmp_path / f"{name}.wav")
                  for name in ("en_female", "jp_male")}
    # Narration in the English voice, the two quotes in the dialogue voice, sample for sample.
    assert voices_by_sentence(heard, references) == ["en_female", "jp_male", "en_female", "jp_male"]


# --- on the AT-SPI bus -------------------------------------------------------------------------------------


def test_the_export_on_the_accessibility_bus(tmp_path, gui_model, voices):
    """What Orca gets of an export: the real app (tests/atspi_export_app.py) on a private accessibility bus,
    its tree read back while the export runs (tests/atspi_tree.py) and its announcements heard by a listener
    (tests/atspi_listener.py), both in the system Python with pyatspi, as tests/test_atspi.py does."""
    import subprocess
    import sys
    from contextlib import ExitStack

    from gui_fixtures import CODEC
    from test_atspi import HERE, SYSTEM_PYTHON, accessibility_session, read_jsonl, wait_for

    long_document = write_sample(tmp_path / "long.md", book(40, 9))
    short_document = write_sample(tmp_path / "short.md", TWO_CHAPTERS)
    exported = tmp_path / "exported"
    exported.mkdir()
    app_log, events, tree, dumped, stop = (tmp_path / name for name in ("app.jsonl", "events.jsonl", "tree.jsonl",
                                                                        "dumped", "stop"))
    with ExitStack() as stack:
        children, env = accessibility_session(stack, tmp_path)
        listener = children.start("listener", [SYSTEM_PYTHON, str(HERE / "atspi_listener.py"), "--log", str(events),
                                               "--stop-file", str(stop), "--seconds", "400"], env=env)
        wait_for(lambda: any(r["kind"] == "ready" for r in read_jsonl(events)) or listener.poll() is not None, 60,
                 "the listener did not register", children)
        app = children.start("app", [sys.executable, str(HERE / "atspi_export_app.py"), "--model", str(gui_model),
                                     "--codec", str(CODEC), "--document", str(long_document), "--short",
                                     str(short_document), "--output-dir", str(exported), "--log", str(app_log),
                                     "--dumped", str(dumped), "--seconds", "300"],
                             env=dict(env, QT_QPA_PLATFORM="xcb", QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1"))
        wait_for(lambda: any(r["kind"] == "running" for r in read_jsonl(app_log)) or app.poll() is not None, 180,
                 "the export did not start", children)
        dump = subprocess.run([SYSTEM_PYTHON, str(HERE / "atspi_tree.py"), "--app", "MioDesk", "--out", str(tree)],
                              env=env, capture_output=True, text=True, timeout=120)
        dumped.touch()
        try:
            app.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the app did not end by itself\n{children.outputs()}")
        stop.touch()
        listener.wait(timeout=30)
        outputs = children.outputs()
    log = read_jsonl(app_log)
    nodes = read_jsonl(tree)
    heard = [e for e in read_jsonl(events) if e.get("type") == "object:announcement"
             and e.get("source", {}).get("app") == "MioDesk"]
    context = (f"\n{json.dumps(log[-12:], ensure_ascii=False)}\n{json.dumps(heard, ensure_ascii=False)}\n"
               f"{dump.stderr}\n{outputs[-4000:]}")
    assert app.returncode == 0 and dump.returncode == 0, context

    # While it runs: the dialog with its progress bar, named, its value one the dialog showed.
    dialog = next(n for n in nodes if n.get("role") == "dialog" and n.get("name", "").startswith("Export Audio"))
    inside = [n for n in nodes if n["path"].startswith(dialog["path"] + ".") and "showing" in n.get("states", [])]
    bars = [n for n in inside if n.get("role") == "progress bar"]
    assert [bar["name"] for bar in bars] == ["Export progress"], context
    low, value, high = bars[0]["value"]
    shown = {record["value"] for record in log if record["kind"] == "running"
             or (record["kind"] == "progress" and record["stage"] == "dumping")}
    assert (low, high) == (0, 100) and 0 < value <= 100 and round(value) in shown, (bars, shown)
    buttons = {n["name"] for n in inside if n.get("role") == "push button"}
    assert "Cancel Export" in buttons and "Start" not in buttons, buttons
    labels = [n.get("name", "") for n in inside if n.get("role") == "label"]
    assert any(" of audio" in text for text in labels), labels  # the status line, read as it is shown
    # The window's status bar carries it too, for when the dialog is closed.
    outside = [n for n in nodes if n.get("role") == "progress bar" and n not in bars
               and "showing" in n.get("states", [])]
    assert [n["name"] for n in outside] == ["Export progress"], outside

    # Said: each start, the cancel and the end; not each percent (besides: the models load, said by the window).
    said = [e["any_data"] for e in heard if not e["any_data"].startswith("Loading the speech models")]
    kept = "Export cancelled. The work done so far is kept: Export again continues it."
    assert said[:3] == ["Exporting to long.flac.", kept, "Exporting to short.flac."], context
    assert len(said) == 4 and said[3].startswith("Exported short.flac: ") and said[3].endswith("Open Folder"), context
    assert sum(record["kind"] == "progress" for record in log) > len(said)
    assert (exported / "short.flac").exists() and not (exported / "long.flac").exists()


def test_the_dialogue_voice_changes_while_reading(app, qtbot, voices, tmp_path, pulse_sink):
    from test_voice_per_language import SettingsDialog

    window, controller = app.window, app.controller
    text = " ".join(f'He looked at the sea. "The sea is calm today," she said. They walked on, number {n}.'
                     for n in range(8))
    open_document(qtbot, app, write_sample(tmp_path / "walk.txt", text))
    heard: list[tuple[int, int]] = []
    controller.utteranceStarted.connect(lambda index, start, _end: heard.append((index, start)))
    window.actions_by_name["play"].trigger()
    qtbot.waitUntil(lambda: len(heard) >= 2, timeout=60000)

    def session():
        return controller.pipeline._session

    def quoted_voice(name: str) -> bool:
        current = session()
        quoted = next(u for u in controller.loaded.utterances if u.text.startswith('"'))
        return current is not None and np.array_equal(current.voice_for_utterance(quoted), voices.get(name).vector)

    def choose_dialogue_voice(name: str) -> None:
        dialog = SettingsDialog(window.settings, window, voices=controller.voice_names(), language="en")
        qtbot.addWidget(dialog)
        dialog.dialogue_voice.setCurrentIndex(dialog.dialogue_voice.findData(name))
        window.apply_settings(dialog.result_settings())

    # On: the text is cut at its quotes and the reading goes on from the sentence being heard.
    resegmented: list[object] = []
    controller.documentResegmented.connect(resegmented.append)
    position = controller.position
    heard.clear()
    choose_dialogue_voice("jp_male")
    assert len(resegmented) == 1 and len(controller.loaded.utterances) == 8 * 4
    qtbot.waitUntil(lambda: bool(heard), timeout=30000)
    first = controller.loaded.utterances[heard[0][0]]
    assert first.start <= position < first.end or first.start == position
    assert controller.state == "playing" and quoted_voice("jp_male")
    assert window.transport.position_label.text().endswith(f"of {8 * 4}")
    # Another dialogue voice: the same sentences, the new voice from the next one.
    choose_dialogue_voice("en_male")
    qtbot.waitUntil(lambda: quoted_voice("en_male"), timeout=5000)
    assert len(resegmented) == 1 and controller.state == "playing"
    # Off: the quotes are back inside their sentences, read in the English voice.
    choose_dialogue_voice("")
    assert len(resegmented) == 2 and len(controller.loaded.utterances) == 8 * 3
    assert not any(u.quoted for u in controller.loaded.utterances)
    qtbot.waitUntil(lambda: quoted_voice("en_female"), timeout=5000)  # '"The sea is calm today," she said.'
    assert controller.state == "playing"
    window.actions_by_name["stop"].trigger()
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=5000)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_screenshots_of_the_dialog_idle_and_running(app, qtbot, tmp_path, language):
    """For people to look at (tests/artifacts/export-<language>-*.png): the dialog before and during an export,
    and the window's status bar while it runs."""
    from gui_fixtures import SAMPLE_JA

    window = app.window
    app.translations.apply(language)
    try:
        text = SAMPLE_JA if language == "ja" else TWO_CHAPTERS
        open_document(qtbot, app, write_sample(tmp_path / f"book-{language}.md", text * 60))
        dialog = show_export_dialog(qtbot, window)
        if language == "ja":
            assert window.file_menu.title() == "ファイル(&F)"  # the Japanese catalogue is in use
        dialog.subtitles.setCurrentIndex(dialog.subtitles.findData(".srt"))
        dialog.from_cursor.setChecked(True)
        screenshot(dialog, f"export-{language}-idle")
        reports: list = []
        dialog.job.progressed.connect(reports.append)
        assert dialog.start_export()
        qtbot.waitUntil(lambda: any(r.eta_s is not None for r in reports), timeout=60000)
        screenshot(dialog, f"export-{language}-running")
        dialog.close()
        screenshot(window, f"export-{language}-window")
        with qtbot.waitSignal(dialog.job.cancelled, timeout=60000):
            dialog.job.cancel()
    finally:
        app.translations.apply("en")
        QApplication.processEvents()
