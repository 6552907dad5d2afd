"""A voice per language: each sentence of a mixed document in the voice of its language.

The reading goes through the real pipeline (a generated GGUF model, the ONNX codec, the official preset
vectors). With whole-sentence decodes and a fixed seed a sentence's codes are the same whatever the voice
(the model never sees it), so each sentence of a per-language reading must be, sample for sample, what
its language's voice alone makes of it. The settings migration, the voice plan, the window (the voice
list, Settings › Voices from the keyboard and as assistive technology sees it, screenshots) and the
`read`/`speak` commands are tested the way a user meets them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import GOLDEN, assert_one_line_error
from gguf_fixtures import make_model
from gui_fixtures import SAMPLE_EN, SAMPLE_JA, screenshot, write_sample
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox
from test_gui_dialogs_a11y import (
    DESCRIPTION,
    NAME,
    assert_named_by_visible_labels,
    iface,
    label_relations,
    page_mnemonics,
    show_active,
    tab_walk,
)

from miodesk.reading_state import VoicePlan, main_language, plan_voices
from miodesk.settings import VOICE_MODE_LANGUAGE, VOICE_MODE_SINGLE, Settings, load_settings, settings_path
from miodesk.text.segment import segment
from miodesk.tts.engine import SpeechEngine
from miodesk.tts.pauses import DEFAULT_SENTENCE_PAUSE_S
from miodesk.tts.reader import FileSink, ReaderEvent, ReadingSession
from miodesk.tts.streaming import ChunkPlan
from miodesk.ui.settings_dialog import SettingsDialog

PRESETS = ("en_female", "en_male", "jp_female", "jp_male")
VECTORS = {name: np.load(GOLDEN / "presets" / f"{name}.npy") for name in PRESETS}
# Three Japanese sentences, two English, one of digits only ("auto"): the main language is Japanese.
MIXED = "今日は晴れです。Hello there. 2024. 明日は雨でしょう。How are you today? それでは、また。"
LANGUAGES = ["ja", "en", "auto", "ja", "en", "ja"]
SEED = 21


# --- the reading session ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SpeechEngine:
    model = make_model(tmp_path_factory.mktemp("voice_models"), "voices", "qwen3", eog_probability=0.04, seed=3)
    return SpeechEngine(model.path, GOLDEN / "codec" / "v2_44k", provider="cpu", llm_threads=1, codec_threads=1)


def render(engine: SpeechEngine, path: Path, voice: str, voices: dict[str, str] | None = None,
           on_start=None) -> tuple[np.ndarray, ReadingSession]:
    """MIXED read into `path` (whole-sentence decodes, fixed seed); `on_start(session, index)` as each
    sentence starts."""
    utterances = segment(MIXED)
    sink = FileSink(path, engine.sample_rate)
    holder: list[ReadingSession] = []

    def started(event: ReaderEvent) -> None:
        if event.kind == "utterance_started" and on_start is not None:
            on_start(holder[0], event.index)

    session = ReadingSession(engine, utterances, VECTORS[voice], sink, source_text=MIXED, plan=ChunkPlan(full=True),
                             seed=SEED, on_event=started,
                             voices={language: VECTORS[name] for language, name in (voices or {}).items()})
    holder.append(session)
    session.start()
    assert session.wait(120)
    sink.close()
    audio, _ = soundfile.read(str(path), dtype="float32")
    return audio, session


class Alone:
    """The whole of MIXED in one voice (each voice rendered once), and where each sentence lies in it."""

    def __init__(self, engine: SpeechEngine, folder: Path) -> None:
        self.engine, self.folder = engine, folder
        self.rendered: dict[str, np.ndarray] = {}
        _, session = self.render("jp_female")
        self.codes = dict(session.stats.utterance_codes)
        # Each sentence's codes' samples, then a sentence pause (MIXED is one paragraph).
        self.spans, position = [], 0
        pause = int(DEFAULT_SENTENCE_PAUSE_S * engine.codec.sample_rate)
        for index in range(len(LANGUAGES)):
            length = self.codes[index] * engine.codec.samples_per_token
            self.spans.append((position, position + length))
            position += length + pause

    def render(self, voice: str) -> tuple[np.ndarray, ReadingSession]:
        audio, session = render(self.engine, self.folder / f"{voice}.wav", voice)
        self.rendered[voice] = audio
        return audio, session

    def __call__(self, voice: str) -> np.ndarray:
        return self.rendered[voice] if voice in self.rendered else self.render(voice)[0]


@pytest.fixture(scope="module")
def alone(engine: SpeechEngine, tmp_path_factory: pytest.TempPathFactory) -> Alone:
    return Alone(engine, tmp_path_factory.mktemp("alone"))


def assert_sentences_in(audio: np.ndarray, alone: Alone, voices: list[str]) -> None:
    """Sentence k of `audio` is what `voices[k]` alone makes of it, and not what another voice makes."""
    assert len(audio) == len(alone("jp_female"))  # the same codes: only the voices differ
    for index, ((start, end), voice) in enumerate(zip(alone.spans, voices, strict=True)):
        np.testing.assert_allclose(audio[start:end], alone(voice)[start:end], atol=1e-4, err_msg=f"sentence {index}")
        for other in {"jp_female", "en_female"} - {voice}:
            assert np.abs(audio[start:end] - alone(other)[start:end]).max() > 1e-2, (index, other)


def test_the_document_language_and_the_sentence_languages():
    utterances = segment(MIXED)
    assert [u.language for u in utterances] == LANGUAGES
    assert main_language(utterances) == "ja"
    assert main_language(segment(SAMPLE_EN)) == "en" and main_language(segment(SAMPLE_JA)) == "ja"
    assert main_language([], fallback="ja") == "ja"


def test_each_sentence_of_a_mixed_document_is_read_in_the_voice_of_its_language(engine, alone, tmp_path):
    # The digits-only sentence takes the main language's voice (`voice`): Japanese here.
    audio, session = render(engine, tmp_path / "mixed.wav", "jp_female", {"ja": "jp_female", "en": "en_female"})
    assert session.stats.utterance_codes == alone.codes  # the same codes as a reading in one voice
    assert_sentences_in(audio, alone, ["jp_female", "en_female", "jp_female", "jp_female", "en_female", "jp_female"])


def test_voice_changes_mid_reading_apply_from_the_next_sentence(engine, alone, tmp_path):
    def change(session: ReadingSession, index: int) -> None:
        if index == 0:  # the window's voice list, per language: every later sentence by its language
            session.set_voices(VECTORS["jp_male"], {"ja": VECTORS["jp_male"], "en": VECTORS["en_male"]})
        elif index == 3:  # one voice for every sentence from now on
            session.set_voice(VECTORS["en_female"])

    audio, _ = render(engine, tmp_path / "changed.wav", "jp_female", {"ja": "jp_female", "en": "en_female"},
                      on_start=change)
    assert_sentences_in(audio, alone, ["jp_female", "en_male", "jp_male", "jp_male", "en_female", "en_female"])


# --- settings ---------------------------------------------------------------------------------------


def write_settings(data: dict) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_settings_file_from_before_keeps_its_meaning():
    # A voice chosen in the window read every sentence: it still does.
    write_settings({"voice": "mine", "speed": 1.2})
    settings = load_settings()
    assert (settings.voice_mode, settings.voice, settings.speed) == (VOICE_MODE_SINGLE, "mine", 1.2)
    assert plan_voices(settings, ["en_female", "jp_female", "mine"], "ja") == VoicePlan("mine")
    # No voice chosen: the voice followed the document's language; now it follows each sentence's.
    for old in ({"voice": ""}, {"speed": 1.0}):
        write_settings(old)
        settings = load_settings()
        assert settings.voice_mode == VOICE_MODE_LANGUAGE and settings.recovered_from is None
        assert plan_voices(settings, ["en_female", "jp_female"], "ja") == VoicePlan(
            "jp_female", {"ja": "jp_female", "en": "en_female"})
    # A file of this version says its mode; an unknown one is read as an old file.
    write_settings({"voice": "mine", "voice_mode": "language", "voice_ja": "jp_male"})
    assert (load_settings().voice_mode, load_settings().voice_ja) == (VOICE_MODE_LANGUAGE, "jp_male")
    write_settings({"voice": "mine", "voice_mode": "every other sentence"})
    assert load_settings().voice_mode == VOICE_MODE_SINGLE
    # Wrong types are damage, as for every setting.
    path = write_settings({"voice_en": 3})
    assert load_settings(set_aside_damaged=False) == Settings() and path.exists()  # a CLI leaves it alone
    assert load_settings().recovered_from is not None and not path.exists()


def test_the_voice_plan():
    presets = list(PRESETS)
    per_language = Settings()
    assert plan_voices(per_language, presets, "en") == VoicePlan("en_female", {"ja": "jp_female", "en": "en_female"})
    chosen = Settings(voice_ja="jp_male", voice_en="gone")  # a deleted voice: the preset reads again
    plan = plan_voices(chosen, presets, "ja")
    assert plan == VoicePlan("jp_male", {"ja": "jp_male", "en": "en_female"})
    assert plan.names() == ["jp_male", "en_female"]  # each voice is read from its file once
    # Without the presets any installed voice reads; with none there is no plan.
    assert plan_voices(per_language, ["mine"], "ja") == VoicePlan("mine", {"ja": "mine", "en": "mine"})
    assert plan_voices(per_language, [], "ja") is None
    single = Settings(voice_mode=VOICE_MODE_SINGLE, voice="en_male")
    assert plan_voices(single, presets, "ja") == VoicePlan("en_male")
    assert plan_voices(Settings(voice_mode=VOICE_MODE_SINGLE), presets, "ja") == VoicePlan("jp_female")


# --- the window -------------------------------------------------------------------------------------


def start_app(qtbot, settings: Settings, voices):
    from miodesk.ui.app import build_app

    parts = build_app(settings, voice_store=voices)
    parts.controller.seed = 7
    qtbot.addWidget(parts.window)
    parts.window.resize(1180, 740)
    parts.window.show()
    qtbot.waitExposed(parts.window)
    parts.window.activateWindow()
    qtbot.waitUntil(parts.window.isActiveWindow, timeout=5000)
    return parts


def open_document(qtbot, parts, path: Path):
    with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
        parts.window.open_path(path)
    return parts.controller.loaded


def choose_with_keyboard(qtbot, combo: QComboBox, name: str) -> None:
    """Arrow keys on the closed list, as a keyboard user picks a voice (each step is `activated`)."""
    combo.setFocus()
    target = combo.findData(name)
    assert target >= 0, name
    while combo.currentIndex() != target:
        qtbot.keyClick(combo, Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_voice_list_starts_on_the_ui_language_and_follows_the_document(qtbot, gui_settings, voices, tmp_path,
                                                                          language):
    gui_settings.ui_language = language
    parts = start_app(qtbot, gui_settings, voices)
    window, controller, combo = parts.window, parts.controller, parts.window.transport.voice_combo
    try:
        # No document yet: the UI's language picks the voice (a Japanese UI used to start on English).
        preset = "jp_female" if language == "ja" else "en_female"
        assert controller.language() == language and controller.voice_name() == preset
        assert combo.currentData() == preset
        assert combo.currentText() == ("日本語・女性" if language == "ja" else "English, female")
        # An English document: the list shows, and changes, the voice of the English sentences.
        open_document(qtbot, parts, write_sample(tmp_path / "walk.md", SAMPLE_EN))
        assert combo.currentData() == "en_female"
        assert ("英語の文" if language == "ja" else "English sentences") in iface(combo).text(DESCRIPTION)
        choose_with_keyboard(qtbot, combo, "en_male")
        assert (controller.settings.voice_en, controller.settings.voice_ja) == ("en_male", "")
        assert load_settings().voice_en == "en_male"  # saved at once
        # A Japanese document: its own voice, the English choice kept.
        open_document(qtbot, parts, write_sample(tmp_path / "umi.md", SAMPLE_JA))
        assert combo.currentData() == "jp_female"
        assert ("日本語の文" if language == "ja" else "Japanese sentences") in combo.toolTip()
        # Settings › Voices shows the same choices, in the window's style and language.
        dialog = SettingsDialog(window.settings, window, voices=controller.voice_names(),
                                language=controller.language())
        qtbot.addWidget(dialog)
        dialog._show_page(dialog.voices_page)
        dialog.show()
        qtbot.waitExposed(dialog)
        assert (dialog.japanese_voice.currentData(), dialog.english_voice.currentData()) == ("jp_female", "en_male")
        screenshot(dialog, f"settings-voices-{language}")
        dialog.reject()
    finally:
        window.quit()
        parts.translations.apply("en")


def session_voice(controller, language: str) -> np.ndarray:
    session = controller.pipeline._session
    return session.voice_for(language) if session is not None else np.zeros(0)


def hears(controller, voices, language: str, name: str) -> bool:
    return np.array_equal(session_voice(controller, language), voices.get(name).vector)


def test_the_window_reads_a_mixed_document_in_both_voices(app, qtbot, voices, tmp_path, pulse_sink):
    window, controller = app.window, app.controller
    loaded = open_document(qtbot, app, write_sample(tmp_path / "mixed.txt", MIXED))
    assert [u.language for u in loaded.utterances] == LANGUAGES
    combo = window.transport.voice_combo
    assert combo.currentData() == "jp_female"  # the document is mostly Japanese
    started: list[int] = []
    controller.utteranceStarted.connect(lambda index, *_: started.append(index))
    window.actions_by_name["play"].trigger()
    qtbot.waitUntil(lambda: bool(started), timeout=30000)
    assert hears(controller, voices, "ja", "jp_female") and hears(controller, voices, "en", "en_female")
    assert hears(controller, voices, "auto", "jp_female")  # digits: the main language's voice

    # The voice list changes the Japanese voice mid-reading; the English one stays.
    choose_with_keyboard(qtbot, combo, "jp_male")
    qtbot.waitUntil(lambda: hears(controller, voices, "ja", "jp_male"), timeout=5000)
    assert hears(controller, voices, "en", "en_female") and hears(controller, voices, "auto", "jp_male")
    assert controller.state == "playing" and controller.settings.voice_ja == "jp_male"

    # Settings › Voices: one voice for every sentence, applied to the reading at once.
    dialog = SettingsDialog(window.settings, window, voices=controller.voice_names(), language=controller.language())
    qtbot.addWidget(dialog)
    dialog.single_voice_radio.setChecked(True)
    dialog.single_voice.setCurrentIndex(dialog.single_voice.findData("en_male"))
    window.apply_settings(dialog.result_settings())
    qtbot.waitUntil(lambda: hears(controller, voices, "ja", "en_male"), timeout=5000)
    assert hears(controller, voices, "en", "en_male") and combo.currentData() == "en_male"
    assert load_settings().voice_mode == VOICE_MODE_SINGLE
    window.actions_by_name["stop"].trigger()
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=5000)

    # Preview (▶) says its sample in the voice the list shows.
    choose_with_keyboard(qtbot, combo, "jp_male")
    window.actions_by_name["preview"].trigger()
    qtbot.waitUntil(lambda: controller.state == "playing" and hears(controller, voices, "ja", "jp_male"),
                    timeout=30000)
    assert controller.settings.voice == "jp_male"
    window.actions_by_name["stop"].trigger()


# --- Settings › Voices ------------------------------------------------------------------------------


def voices_dialog(qtbot, settings: Settings, language: str = "ja") -> SettingsDialog:
    dialog = SettingsDialog(settings, voices=[*PRESETS, "mine"], language=language)
    qtbot.addWidget(dialog)
    show_active(qtbot, dialog)
    return dialog


def test_the_voices_page_from_the_keyboard(qtbot):
    dialog = voices_dialog(qtbot, Settings(ui_language="en"))
    # Ctrl+Tab goes from page to page; the Voices page is the last.
    dialog.model_combo.setFocus()
    for _ in range(4):
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert dialog.tabs.currentWidget().widget() is dialog.voices_page
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Voices"
    # A voice for each language, the presets by default; the one-voice list is off.
    assert dialog.per_language_radio.isChecked() and not dialog.single_voice.isEnabled()
    assert (dialog.japanese_voice.currentData(), dialog.english_voice.currentData()) == ("jp_female", "en_female")
    buttons = set(dialog.buttons.buttons())
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert tab_walk(qtbot, dialog.per_language_radio, stop_at=buttons) == [
        dialog.per_language_radio, dialog.japanese_voice, dialog.english_voice, dialog.dialogue_voice,
        dialog.sentence_pause, dialog.paragraph_pause]
    assert dialog.focusWidget() is ok
    # Alt+A: one voice; its list comes into the Tab chain, the language lists leave it.
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(dialog.single_voice_radio.isChecked, timeout=2000)  # a mnemonic "animates" its click
    assert dialog.single_voice.isEnabled() and not dialog.japanese_voice.isEnabled()
    assert tab_walk(qtbot, dialog.single_voice_radio, stop_at=buttons) == [
        dialog.single_voice_radio, dialog.single_voice, dialog.dialogue_voice, dialog.sentence_pause,
        dialog.paragraph_pause]
    assert dialog.single_voice.currentData() == "jp_female"  # none chosen: the document's language (ja)
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_V, Qt.KeyboardModifier.AltModifier)
    assert dialog.focusWidget() is dialog.single_voice
    choose_with_keyboard(qtbot, dialog.single_voice, "mine")
    result = dialog.result_settings()
    assert (result.voice_mode, result.voice, result.voice_ja, result.voice_en) == (VOICE_MODE_SINGLE, "mine", "", "")
    # Alt+L back to a voice per language; Alt+J and Alt+E reach the two lists.
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_L, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(dialog.per_language_radio.isChecked, timeout=2000)
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_J, Qt.KeyboardModifier.AltModifier)
    assert dialog.focusWidget() is dialog.japanese_voice
    choose_with_keyboard(qtbot, dialog.japanese_voice, "jp_male")
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_E, Qt.KeyboardModifier.AltModifier)
    assert dialog.focusWidget() is dialog.english_voice
    result = dialog.result_settings()
    # The untouched English list keeps "the preset" (""), which follows the voices installed later.
    assert (result.voice_mode, result.voice, result.voice_ja, result.voice_en) == (
        VOICE_MODE_LANGUAGE, "", "jp_male", "")
    assert sorted(page_mnemonics(dialog)[4]) == ["a", "d", "e", "j", "l", "p", "s", "v"]


def test_the_voices_page_as_assistive_technology_sees_it(qtbot):
    settings = Settings(ui_language="en", voice_ja="mine", voice_en="en_male")
    dialog = voices_dialog(qtbot, settings)
    dialog._show_page(dialog.voices_page)
    assert_named_by_visible_labels(dialog)
    # Each list is labelled by its visible label (on Linux Qt names a combo box by its current item).
    for combo, label, shown in ((dialog.japanese_voice, "Japanese sentences:", "mine"),
                                (dialog.english_voice, "English sentences:", "English, male"),
                                (dialog.single_voice, "Voice:", "Japanese, female")):
        assert label in label_relations(combo), (label, label_relations(combo))
        assert iface(combo).text(NAME) in (label, shown)
    for radio in (dialog.per_language_radio, dialog.single_voice_radio):
        assert "Reading voices" in label_relations(radio)  # the group's title labels both choices
    assert "numbers or symbols" in iface(dialog.per_language_radio).text(DESCRIPTION)  # the note, as its description


def test_the_voices_page_in_japanese(qtbot):
    from miodesk.ui.i18n import Translations

    translations = Translations()
    translations.apply("ja")
    try:
        dialog = voices_dialog(qtbot, Settings(ui_language="ja", voice_en="en_male"))
        dialog._show_page(dialog.voices_page)
        assert dialog.tabs.tabText(3) == "サーバー"  # the Japanese catalogue is in use
        assert dialog.japanese_voice.currentText() == "日本語・女性"
        assert dialog.english_voice.currentText() == "英語・男性"
        assert dialog.english_voice.findText("mine") >= 0  # a voice of one's own keeps its name
    finally:
        translations.apply("en")


# --- the commands -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("cli_voices"), "cli_voices", "qwen3", eog_probability=0.05,
                      seed=1).path


def voices_by_sentence(audio: np.ndarray, references: dict[str, np.ndarray]) -> list[str]:
    """Which reference each stretch of `audio` is, in order: every sample must equal one of them; where
    they differ from each other it names the one it equals, and runs of one name count once."""
    assert {len(audio)} == {len(ref) for ref in references.values()}, "the same codes, the same length"
    names = list(references)
    stacked = np.stack([references[name] for name in names])
    matches = np.abs(stacked - audio) <= 2 / 32768  # a 16-bit step either way
    assert matches.any(axis=0).all(), "some audio is in neither voice"
    telling = (stacked.max(axis=0) - stacked.min(axis=0)) > 1e-2
    order: list[str] = []
    for column in np.flatnonzero(telling):
        found = [name for name, match in zip(names, matches[:, column], strict=True) if match]
        assert len(found) == 1, (column, found)
        if not order or order[-1] != found[0]:
            order.append(found[0])
    return order


def test_read_gives_each_sentence_the_voice_of_its_language(run_cli, cli_model, voices, tmp_path):
    document = write_sample(tmp_path / "mixed.txt", MIXED)
    write_settings({"voice_mode": "single", "voice": "en_male", "voice_ja": "jp_male"})  # the window's choices

    def read(name: str, *options) -> np.ndarray:
        out = tmp_path / f"{name}.wav"
        result = run_cli("read", document, *options, "--model", cli_model, "--codec", GOLDEN / "codec" / "24k",
                         "--full-decode", "--seed", 3, "-o", out)
        assert result.returncode == 0, result.stderr
        assert [line.split("] ", 1)[1] for line in result.stdout.splitlines() if line.startswith("[")] == [
            u.text for u in segment(MIXED)]
        return soundfile.read(str(out), dtype="float32")[0]

    # Without --voice: Japanese sentences in the window's Japanese voice, English in --voice-en (the
    # window's one-voice mode is the window's: the command reads per language unless --voice says so).
    mixed = read("mixed", "--voice-en", "en_female")
    forced = {name: read(name, "--voice", name) for name in ("jp_male", "en_female")}
    # ja, en, auto+ja (the main language's voice), en, ja
    assert voices_by_sentence(mixed, forced) == ["jp_male", "en_female", "jp_male", "en_female", "jp_male"]
    assert voices_by_sentence(forced["en_female"], forced) == ["en_female"]  # --voice still reads everything


def test_speak_gives_each_sentence_of_mixed_text_the_voice_of_its_language(run_cli, cli_model, voices, tmp_path):
    text = "今日は晴れです。Hello there. 明日は雨でしょう。"

    def speak(name: str, *options) -> np.ndarray:
        out = tmp_path / f"{name}.wav"
        result = run_cli("speak", text, *options, "--model", cli_model, "--codec", GOLDEN / "codec" / "24k",
                         "--seed", 3, "-o", out)
        assert result.returncode == 0, result.stderr
        return soundfile.read(str(out), dtype="float32")[0]

    mixed = speak("mixed")  # the presets: jp_female and en_female
    same = {name: speak(name, "--voice-ja", name, "--voice-en", name) for name in ("jp_female", "en_female")}
    assert voices_by_sentence(mixed, same) == ["jp_female", "en_female", "jp_female"]


def test_one_voice_or_voices_per_language_not_both(run_cli, tmp_path):
    document = write_sample(tmp_path / "doc.txt", MIXED)
    result = run_cli("read", document, "--voice", "en_female", "--voice-ja", "jp_male", "-o", tmp_path / "x.wav")
    assert_one_line_error(result, "--voice", "--voice-ja")
    assert not (tmp_path / "x.wav").exists()


# --- on the AT-SPI bus ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_voices_page_on_the_accessibility_bus(tmp_path, language):
    """What Orca reads of the page: the real bridge, a private bus, the tree read back with pyatspi."""
    import sys
    from contextlib import ExitStack

    from test_atspi import HERE, SYSTEM_PYTHON, accessibility_session, read_jsonl, wait_for

    app_log, tree, stop = tmp_path / "app.json", tmp_path / "tree.jsonl", tmp_path / "stop"
    with ExitStack() as stack:
        children, env = accessibility_session(stack, tmp_path)
        children.start("app", [sys.executable, str(HERE / "atspi_settings_app.py"), "--language", language,
                               "--log", str(app_log), "--stop-file", str(stop)],
                       env=dict(env, QT_QPA_PLATFORM="xcb", QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1"))
        wait_for(app_log.exists, 60, "the Settings dialog did not show", children)
        reader = children.start("controls", [SYSTEM_PYTHON, str(HERE / "atspi_controls.py"), "--app", "MioDesk",
                                          "--roles", "combo box,radio button", "--out", str(tree)], env=env)
        reader.wait(timeout=60)
        stop.touch()
        outputs = children.outputs()
    shown = json.loads(app_log.read_text(encoding="utf-8"))
    found = read_jsonl(tree)
    context = f"\n{json.dumps(found, ensure_ascii=False, indent=1)}\n{outputs[-4000:]}"
    assert reader.returncode == 0, context

    def control(role: str, label: str) -> dict:
        matching = [c for c in found if c["role"] == role and label in c["labelled_by"]]
        assert len(matching) == 1, f"{role} labelled {label!r}{context}"
        return matching[0]

    # Each voice list: labelled by its visible label, named by the voice it shows (what Orca says on Tab).
    for label, item, enabled in (("japanese_label", "japanese_item", True), ("english_label", "english_item", True),
                                 ("single_label", "single_item", False)):
        combo = control("combo box", shown[label])
        assert combo["name"] in (shown[item], shown[label]) and combo["enabled"] == enabled, (combo, context)
    assert control("combo box", shown["english_label"])["name"] in ("English, male", "英語・男性",
                                                                    shown["english_label"])
    # The two ways to choose voices: named by their text, labelled by the group's title.
    radios = {c["name"]: c for c in found if c["role"] == "radio button"}
    assert radios.keys() == {shown["per_language"], shown["single"]}, context
    assert all(shown["group"] in radio["labelled_by"] for radio in radios.values()), context
    assert radios[shown["per_language"]]["description"], context  # the page's note: what the choice does
    if language == "ja":
        assert shown["japanese_item"] == "日本語・女性" and shown["english_item"] == "英語・男性"
