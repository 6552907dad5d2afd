"""First run: no models → the welcome dialog downloads the recommended set from a loopback hub, then
MioDesk loads it and says a welcome sentence. Also the Record Voice dialog opens from the menu."""

from __future__ import annotations

import time

from gui_fixtures import CODEC, PRESETS, SAMPLE_EN, screenshot, write_sample
from hub_server import FakeHub
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from miodesk.settings import Settings
from miodesk.ui.controller import models_installed


def serve_recommended(hub: FakeHub, gguf: bytes) -> list[str]:
    from miodesk.models.catalog import get_entry, recommend

    names = recommend().names
    for name in names:
        entry = get_entry(name)
        if entry.kind == "llm":
            hub.add(entry.repo, entry.files[0], gguf)
        elif entry.kind == "codec":
            for filename in entry.files:
                hub.add(entry.repo, filename, (CODEC / filename).read_bytes())
        elif entry.kind == "preset":
            [preset] = [p for p in PRESETS if p.stem == name]
            hub.add_raw(f"presets/{preset.name}", preset.read_bytes())
    return names


def test_first_run_downloads_then_greets(qtbot, gui_model, monkeypatch, pulse_sink, tmp_path, announced):
    from miodesk.ui.app import build_app
    from miodesk.ui.first_run import WELCOME_DELAY_MS, FirstRunDialog, after_download, models_api


    settings = Settings(ui_language="en", provider="cpu", llm_threads=1, codec_threads=1)
    assert models_installed(settings) is not None  # a fresh home has no models
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub(max_seconds=120, delay_s=0.002) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("MIODESK_PRESETS_BASE_URL", f"{hub.url}/raw/presets/")
        names = serve_recommended(hub, gui_model.read_bytes())
        parts = build_app(settings)
        window = parts.window
        qtbot.addWidget(window)
        window.resize(1180, 740)
        window.show()
        qtbot.waitExposed(window)
        dialog = FirstRunDialog(*models_api(), parent=window)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        dialog.activateWindow()  # no window manager on Xvfb: keys and focus need an active window
        qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)
        assert dialog.names == names
        text = dialog.details.toPlainText()
        assert all(name in text for name in names) and "Apache" in text or "Falcon" in text  # licences shown
        screenshot(dialog, "06-first-run")
        seen: list[object] = []
        dialog.downloadProgress.connect(seen.append)
        # Keyboard: Download has the focus and is the default, so Enter starts it from the text too.
        assert dialog.focusWidget() is dialog.download_button and dialog.download_button.isDefault()
        dialog.details.setFocus()
        qtbot.keyClick(dialog.details, Qt.Key.Key_Return)
        assert dialog.running()
        assert ("Starting the download…", False) in announced
        qtbot.waitUntil(lambda: dialog.result() == QDialog.DialogCode.Accepted, timeout=60000)
        assert seen and dialog.progress.value() == 1000
        assert models_installed(settings) is None

        controller = parts.controller
        states: list[tuple[float, str]] = []
        controller.stateChanged.connect(lambda state: states.append((time.monotonic(), state)))
        started = time.monotonic()
        after_download(window)
        assert window.transport.voice_combo.count() == 4  # the presets came with the download
        qtbot.waitUntil(lambda: controller.engine_state == "ready", timeout=30000)
        qtbot.waitUntil(lambda: "playing" in [s for _, s in states] and controller.state == "idle", timeout=30000)
        assert "CPU" in window.model_label.text()
        # The greeting waited for the screen reader to announce the window that got the focus back.
        assert states[0][0] - started >= WELCOME_DELAY_MS / 1000 - 0.05, states

        # The user starts reading before the greeting is due: the greeting is left out.
        with qtbot.waitSignal(controller.documentLoaded, timeout=20000):
            window.open_path(write_sample(tmp_path / "walk.md", SAMPLE_EN))
        started = time.monotonic()
        after_download(window)
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: controller.state == "playing", timeout=30000)
        qtbot.wait(max(0, int((started + WELCOME_DELAY_MS / 1000 + 0.5 - time.monotonic()) * 1000)))
        assert controller.state == "playing" and controller.reading.reading()  # the document, not a greeting
        window.actions_by_name["stop"].trigger()
        window.quit()


def test_record_voice_dialog_opens_from_the_menu(qtbot, monkeypatch, miodesk_home):
    from miodesk.ui import record_voice
    from miodesk.ui.app import build_app

    parts = build_app(Settings(ui_language="en"))
    window = parts.window
    qtbot.addWidget(window)
    opened: list[QDialog] = []
    monkeypatch.setattr(record_voice.RecordVoiceDialog, "exec", lambda self: opened.append(self) or 0)
    window.actions_by_name["record_voice"].trigger()
    [dialog] = opened
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    screenshot(dialog, "07-record-voice")
    window.quit()
