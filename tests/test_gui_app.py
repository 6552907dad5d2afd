"""Clipboard, settings (round trip, damaged file), tray actions and the Japanese UI."""

from __future__ import annotations

import json

from gui_fixtures import SAMPLE_EN, screenshot, write_sample
from PySide6.QtGui import QAccessible, QGuiApplication

from miodesk.settings import Settings, load_settings, save_settings, settings_path
from miodesk.ui.settings_dialog import SettingsDialog


def test_read_clipboard_from_menu_and_tray(app, qtbot, pulse_sink):
    window, controller = app.window, app.controller
    QGuiApplication.clipboard().setText("Clipboard text is read at once. It has two sentences.")
    started: list[int] = []
    controller.utteranceStarted.connect(lambda index, *_: started.append(index))
    app.tray.read_clipboard.trigger()
    qtbot.waitUntil(lambda: bool(started), timeout=30000)
    assert controller.document.text.startswith("Clipboard text")
    assert window.windowTitle().startswith("Clipboard")

    # Tray: Pause/Resume toggles, Stop stops, Show Window brings the window back.
    app.tray.pause_resume.trigger()
    assert controller.state == "paused" and app.tray.pause_resume.text() == "Resume"
    app.tray.pause_resume.trigger()
    assert controller.state == "playing" and app.tray.pause_resume.text() == "Pause"
    app.tray.stop.trigger()
    assert controller.state == "idle" and not app.tray.stop.isEnabled()
    window.hide()
    app.tray.show_window.trigger()
    assert window.isVisible()

    # An empty clipboard is a message, not a crash.
    QGuiApplication.clipboard().clear()
    window.actions_by_name["paste"].trigger()
    assert window.banner.isVisible() and "no text" in window.banner.label.text()


def test_close_to_tray_keeps_reading_and_quit_quits(app, qtbot, tmp_path, pulse_sink, monkeypatch):
    window, controller = app.window, app.controller
    controller.settings.close_to_tray = True
    monkeypatch.setattr(app.tray, "available", lambda: True)  # Xvfb has no tray; the logic is ours
    with qtbot.waitSignal(controller.documentLoaded, timeout=20000):
        window.open_path(write_sample(tmp_path / "walk.md", SAMPLE_EN))
    window.actions_by_name["play"].trigger()
    qtbot.waitUntil(lambda: window.reader.highlighted() is not None, timeout=30000)
    window.close()
    assert not window.isVisible() and controller.state == "playing"
    app.tray.quit.trigger()
    assert controller._closed
    assert load_settings().close_to_tray


def test_settings_round_trip(app, qtbot):
    window = app.window
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    screenshot(dialog, "04-settings")
    dialog.provider_combo.setCurrentIndex(dialog.provider_combo.findData("cpu"))
    dialog.llm_threads.setValue(2)
    dialog.full_decode.setChecked(True)
    dialog.codec_combo.setCurrentIndex(dialog.codec_combo.findData("24k"))
    dialog.close_to_tray.setChecked(True)
    dialog.highlight.setChecked(False)
    for widget in (dialog.model_combo, dialog.codec_combo, dialog.provider_combo, dialog.device_combo,
                   dialog.language_combo, dialog.llm_threads, dialog.codec_threads, dialog.highlight):
        assert QAccessible.queryAccessibleInterface(widget).text(QAccessible.Text.Name)  # what the bridge sends
    window.apply_settings(dialog.result_settings())
    saved = load_settings()
    assert (saved.provider, saved.llm_threads, saved.full_decode, saved.codec_variant) == ("cpu", 2, True, "24k")
    assert saved.close_to_tray and not saved.highlight
    assert not window.actions_by_name["highlight"].isChecked()
    assert saved.model_path == window.settings.model_path  # untouched fields survive
    # Everything survives a save/load cycle unchanged.
    settings = Settings(voice="jp_male", speed=1.25, volume=0.5, recent_files=["/a.txt", "/b.md"], ui_language="ja")
    save_settings(settings)
    assert load_settings() == settings


def test_damaged_settings_fall_back_to_defaults_with_a_notice(qtbot, gui_settings, voices):
    from miodesk.ui.app import build_app

    path = settings_path()
    path.write_text('{"speed": 1.5, "voice": ', encoding="utf-8")
    settings = load_settings()
    assert settings == Settings() and settings.recovered_from is not None
    assert settings.recovered_from.read_text(encoding="utf-8") == '{"speed": 1.5, "voice": '  # kept for the user
    assert not path.exists()
    parts = build_app(settings, voice_store=voices)
    qtbot.addWidget(parts.window)
    assert parts.window.banner.kind == "warning" and "damaged" in parts.window.banner.label.text()
    parts.window.quit()
    # Wrong types are damage too; out-of-range values are clamped.
    path.write_text(json.dumps({"speed": "fast"}), encoding="utf-8")
    assert load_settings().recovered_from is not None
    path.write_text(json.dumps({"speed": 9.0, "volume": -1}), encoding="utf-8")
    clamped = load_settings()
    assert (clamped.speed, clamped.volume, clamped.recovered_from) == (2.0, 0.0, None)


def test_japanese_ui(qtbot, gui_settings, voices, tmp_path):
    from miodesk.ui.app import build_app

    gui_settings.ui_language = "ja"
    parts = build_app(gui_settings, voice_store=voices)
    window = parts.window
    qtbot.addWidget(window)
    window.resize(1180, 740)
    window.show()
    qtbot.waitExposed(window)
    try:
        assert parts.translations.language == "ja"
        assert window.file_menu.title() == "ファイル(&F)"
        assert window.actions_by_name["open"].text() == "開く(&O)…"
        assert parts.tray.read_clipboard.text() == "クリップボードを読む"
        assert window.transport.voice_combo.itemText(0) in ("英語・女性", "日本語・女性", "英語・男性", "日本語・男性")
        assert window.empty_page.title.text() == "なんでも読み上げ"
        screenshot(window, "05-japanese-empty")
        with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
            window.open_path(write_sample(tmp_path / "walk.md", SAMPLE_EN))
        assert "文" in window.transport.position_label.text()
        # Switching back to English at run time relabels everything.
        english = Settings(**{**gui_settings.to_json(), "ui_language": "en"})
        window.apply_settings(english)
        qtbot.waitUntil(lambda: window.file_menu.title() == "&File")  # LanguageChange is an event
        assert parts.tray.read_clipboard.text() == "Read Clipboard"
        assert window.transport.voice_combo.findText("English, female") >= 0
    finally:
        window.quit()
        parts.translations.apply("en")


def test_installed_models_load_while_the_window_waits(app, qtbot):
    """With models installed, start-up loads them at once: the first Play does not wait for them."""
    from miodesk.ui.app import start_first_run_if_needed

    assert app.controller.engine_state == "none"
    start_first_run_if_needed(app)
    assert app.controller.engine_state == "loading"
    qtbot.waitUntil(lambda: app.controller.engine_state == "ready", timeout=30000)
    assert "CPU" in app.window.model_label.text()


def test_no_models_means_no_load_at_start(qtbot, gui_settings, voices, tmp_path, monkeypatch):
    from dataclasses import replace

    from miodesk.ui import app as app_module

    settings = replace(gui_settings, model_path=str(tmp_path / "missing.gguf"))
    parts = app_module.build_app(settings, voice_store=voices)
    qtbot.addWidget(parts.window)
    offered = []
    monkeypatch.setattr(parts.window, "open_first_run", lambda: offered.append("first run") or True)
    app_module.start_first_run_if_needed(parts)
    assert offered == ["first run"] and parts.controller.engine_state == "none"


def test_quitting_while_the_models_load_waits_for_the_load(qtbot, gui_settings, voices):
    """Leaving while llama.cpp and onnxruntime are still loading would abort the process: shutdown waits."""
    import threading
    import time

    from miodesk.ui.app import build_app
    from miodesk.ui.controller import default_engine_factory

    loading = threading.Event()

    def slow_load(settings):
        loading.set()
        time.sleep(0.5)
        return default_engine_factory(settings)

    parts = build_app(gui_settings, engine_factory=slow_load, voice_store=voices)
    qtbot.addWidget(parts.window)
    parts.controller.ensure_engine()
    assert loading.wait(10)
    parts.controller.shutdown()
    assert not parts.controller._engine_loader.is_alive()
