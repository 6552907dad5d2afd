"""The window with its speech model on an LLM server: a real `python -m llama_cpp.server` on 127.0.0.1
(tests/llm_server_fixtures.py), the real engine and codec, Xvfb and the PulseAudio null sink.

Settings › Speech model chooses "On a server"; its Test button probes the server off the UI thread and
says what it found in one line. With no MioTTS model on this computer the window reads a document
through the server, the highlight follows what is heard and the status bar names the server. A server
that dies mid-reading is one line in the banner, the reading stops and keeps its place.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from audio_helpers import MonitorRecorder
from gui_fixtures import CODEC, SAMPLE_EN, screenshot, write_sample
from llm_server_fixtures import (  # noqa: F401 - fixtures
    API_KEY,
    free_port,
    llm_server,
    llm_server_model,
    start_llm_server,
)
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible

from miodesk.settings import Settings, load_settings
from miodesk.ui.settings_dialog import SettingsDialog

NAME = QAccessible.Text.Name


def show_active(qtbot, widget) -> None:
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()  # no window manager on Xvfb: mnemonics need an active window
    qtbot.waitUntil(widget.isActiveWindow, timeout=5000)


def no_local_model_settings(**changes) -> Settings:
    """The codec and the presets are here; no MioTTS model is (the test's home has an empty models folder)."""
    return Settings(codec_path=str(CODEC), provider="cpu", llm_threads=1, codec_threads=1, ui_language="en",
                    welcome_done=True, **changes)


@pytest.fixture
def window_parts(qtbot, voices):
    """The whole app (window, controller, tray) with no local speech model; closed afterwards."""
    from miodesk.ui.app import build_app, ensure_application

    ensure_application()
    parts = build_app(no_local_model_settings(), voice_store=voices)
    parts.controller.seed = 7
    qtbot.addWidget(parts.window)
    parts.window.resize(1180, 740)
    show_active(qtbot, parts.window)
    yield parts
    parts.window.quit()


def open_document(qtbot, parts, path):
    with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
        parts.window.open_path(path)
    return parts.controller.loaded


def choose_server(qtbot, dialog: SettingsDialog, url: str, key: str = "") -> None:
    """What a keyboard user does: Alt+V picks "On a server", Tab reaches the URL, then the key."""
    qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_V, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(dialog.server_radio.isChecked, timeout=2000)  # a mnemonic "animates" its click
    assert dialog.server_url.isEnabled() and dialog.focusWidget() is dialog.server_radio
    assert not dialog.model_combo.isEnabled()  # the local model file is not used now
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
    assert dialog.focusWidget() is dialog.server_url
    dialog.server_url.selectAll()
    qtbot.keyClicks(dialog.server_url, url)
    qtbot.keyClick(dialog.server_url, Qt.Key.Key_Tab)
    assert dialog.focusWidget() is dialog.server_key
    qtbot.keyClicks(dialog.server_key, key)


def press_test(qtbot, dialog: SettingsDialog, timeout_ms: int) -> tuple[str, float]:
    """Press Test (Space on the focused button); the one-line answer and how long it took."""
    dialog.test_button.setFocus()
    shown: list[str] = []
    dialog.test_result.setText("")
    started = time.monotonic()
    qtbot.keyClick(dialog.test_button, Qt.Key.Key_Space)
    shown.append(dialog.test_result.text())
    qtbot.waitUntil(lambda: dialog.test_result.text() not in ("", shown[0]) or not shown[0].startswith("Testing"),
                    timeout=timeout_ms)
    # "Testing 127.0.0.1:PORT…" at once (the probe runs off the UI thread), unless the answer came first.
    assert shown[0].startswith("Testing 127.0.0.1:") or shown[0] == dialog.test_result.text(), shown
    return dialog.test_result.text(), time.monotonic() - started


# --- Settings › Speech model ----------------------------------------------------------------------


def test_settings_server_test_button_and_url_check(qtbot, llm_server, announced):  # noqa: F811
    dialog = SettingsDialog(Settings(ui_language="en"))
    qtbot.addWidget(dialog)
    show_active(qtbot, dialog)
    group = dialog.server_radio.parentWidget()
    assert group is dialog.local_radio.parentWidget() and group.title() == "Speech model"
    assert dialog.local_radio.isChecked() and not dialog.server_url.isEnabled()
    assert dialog.server_key.echoMode() == dialog.server_key.EchoMode.Password
    assert dialog.server_model.placeholderText() == "first model the server lists"
    choose_server(qtbot, dialog, llm_server.base_url, llm_server.api_key)
    for field, label in ((dialog.server_url, "Server URL:"), (dialog.server_key, "API key:"),
                         (dialog.server_model, "Model:")):
        assert QAccessible.queryAccessibleInterface(field).text(NAME) == label  # named by its visible label
    # Tab, top to bottom: the chosen radio, the server's fields, Test, then on to the codec (the local
    # radio and the local model's controls are skipped while the server is chosen).
    chain = [dialog.server_radio]
    dialog.server_radio.setFocus(Qt.FocusReason.TabFocusReason)
    for _ in range(5):
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
        chain.append(dialog.focusWidget())
    assert chain == [dialog.server_radio, dialog.server_url, dialog.server_key, dialog.server_model,
                     dialog.test_button, dialog.codec_combo], [w.objectName() for w in chain]
    dialog.server_key.setFocus()

    # The real server: its kind, the model, the round trip and the audio tokens, in one line.
    text, _ = press_test(qtbot, dialog, timeout_ms=60000)
    screenshot(dialog, "server-01-test-ok")
    assert "\n" not in text
    assert text.startswith("llama-cpp-python, model MioTTS-server-test, "), text
    assert re.search(r", model MioTTS-server-test, \d+(\.\d)? ms round trip, returns audio tokens$", text), text
    assert (text, False) in announced  # the screen reader says it too, politely
    assert QAccessible.queryAccessibleInterface(dialog.test_button).text(QAccessible.Text.Description) == text

    # A wrong key: one line naming the problem.
    dialog.server_key.setText("wrong-key")
    text, _ = press_test(qtbot, dialog, timeout_ms=15000)
    assert "\n" not in text and ("401" in text or "key" in text.lower()), text
    assert (text, True) in announced
    dialog.server_key.setText(llm_server.api_key)

    # Nothing listens on the port: one line within 10 s, spoken at once (urgent).
    dialog.server_url.setText(f"http://127.0.0.1:{free_port()}/v1")
    text, seconds = press_test(qtbot, dialog, timeout_ms=10000)
    screenshot(dialog, "server-02-test-refused")
    assert seconds < 10 and "\n" not in text and text, (seconds, text)
    assert "127.0.0.1" in text, text
    assert (text, True) in announced

    # A URL that is not http(s) is refused before saving: the dialog stays open and says why.
    for bad in ("ftp://127.0.0.1:8000/v1", "gpu-box:8000/v1", ""):
        dialog.server_url.setText(bad)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        assert dialog.isVisible() and dialog.result() != dialog.DialogCode.Accepted, bad
        assert dialog.focusWidget() is dialog.server_url, bad
        message = dialog.test_result.text()
        assert ("http://" in message and "\n" not in message), (bad, message)
        assert (message, True) in announced
    # The same URL with the local model chosen is kept, not checked: it is not used.
    dialog.local_radio.setChecked(True)
    assert not dialog.server_url.isEnabled() and dialog.model_combo.isEnabled()
    dialog.server_radio.setChecked(True)
    dialog.server_url.setText(llm_server.base_url + "/")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.result() == dialog.DialogCode.Accepted
    chosen = dialog.result_settings()
    assert (chosen.llm_on_server, chosen.llm_base_url, chosen.llm_api_key, chosen.llm_model) == (
        True, llm_server.base_url + "/", API_KEY, "")


# --- reading through the server -------------------------------------------------------------------


def test_window_reads_through_the_server_without_a_local_model(window_parts, qtbot, tmp_path, pulse_sink,
                                                                llm_server):  # noqa: F811
    window, controller = window_parts.window, window_parts.controller
    from miodesk.ui.controller import models_installed

    assert models_installed(controller.settings) is not None  # no MioTTS model on this computer
    # Settings › Speech model › On a server, as the user does it; OK applies it.
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    show_active(qtbot, dialog)
    choose_server(qtbot, dialog, llm_server.base_url, llm_server.api_key)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.result() == dialog.DialogCode.Accepted
    window.apply_settings(dialog.result_settings())
    assert load_settings().llm_on_server and load_settings().llm_base_url == llm_server.base_url
    assert models_installed(controller.settings) is None  # the codec is all this computer needs now
    port = llm_server.base_url.split(":")[-1].split("/")[0]
    where = f"127.0.0.1:{port}"
    assert window.model_label.text() == f"Speech model on {where} · loads on first Play"

    loaded = open_document(qtbot, window_parts, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    heard: list[tuple[float, int, tuple[int, int] | None]] = []
    controller.utteranceStarted.connect(
        lambda index, start, end: heard.append((time.monotonic(), index, window.reader.highlighted())))
    errors: list[str] = []
    controller.errorOccurred.connect(errors.append)
    with MonitorRecorder() as recorder:
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: len(heard) >= 4 or bool(errors), timeout=90000)
        assert not errors, errors
        screenshot(window, "server-03-reading")
        window.actions_by_name["stop"].trigger()
        qtbot.waitUntil(lambda: controller.state == "idle", timeout=5000)

    assert [index for _, index, _ in heard][:4] == [0, 1, 2, 3]
    for when, index, highlighted in heard:
        utterance = loaded.utterances[index]
        assert highlighted == (utterance.start, utterance.end)
        audio = recorder.around(when, 0.25)  # the sentence is highlighted while its audio plays
        assert len(audio) and np.sqrt(np.mean(audio**2)) > 1e-3, (index, len(audio))
    # The status bar names where the model runs, and the codec's device.
    assert window.model_label.text() == f"MioTTS-server-test on {where} · CPU", window.model_label.text()
    assert controller.engine.llm_server.label() == where
    assert window.ttfa_label.text().startswith("First audio")


def test_server_dying_mid_reading_keeps_the_place(window_parts, qtbot, tmp_path, pulse_sink, monkeypatch,
                                                  llm_server_model):  # noqa: F811
    window, controller = window_parts.window, window_parts.controller
    server = start_llm_server(llm_server_model, tmp_path)  # its own server: this test stops it
    try:
        controller.settings.llm_on_server = True
        controller.settings.llm_base_url = server.base_url
        loaded = open_document(qtbot, window_parts, write_sample(tmp_path / "walk.md", SAMPLE_EN))
        started: list[int] = []
        controller.utteranceStarted.connect(lambda index, *_: started.append(index))
        errors: list[tuple[float, str]] = []
        controller.errorOccurred.connect(lambda message: errors.append((time.monotonic(), message)))

        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: len(started) >= 2 or bool(errors), timeout=90000)
        assert not errors, errors
        server.stop()  # mid-reading: the stream in progress is cut, the next request is refused
        stopped = time.monotonic()
        qtbot.waitUntil(lambda: bool(errors), timeout=30000)
        when, message = errors[0]
        assert when - stopped < 10, when - stopped  # reported within 10 s of the server going away
        qtbot.waitUntil(lambda: controller.state == "idle", timeout=5000)
        screenshot(window, "server-04-died")
        assert window.banner.kind == "error" and window.banner.isVisible()
        banner = window.banner.label.text()
        assert banner == message and "\n" not in banner and "Traceback" not in banner, banner
        assert "127.0.0.1" in banner or "server" in banner.lower(), banner

        # The place is kept: the sentence that was being read, saved for the next start as well.
        qtbot.wait(500)  # nothing more arrives
        last = started[-1]
        assert controller.state == "idle" and started[-1] == last
        assert controller.position == loaded.utterances[last].start
        from miodesk.settings import PositionStore

        assert PositionStore().get(loaded.key) == loaded.utterances[last].start

        # Play while the server is still down: the same one line, soon, and the place stays.
        errors.clear()
        pressed = time.monotonic()
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: bool(errors), timeout=15000)
        assert errors[0][0] - pressed < 10 and "\n" not in errors[0][1], errors
        qtbot.waitUntil(lambda: controller.state == "idle", timeout=5000)
        assert started[-1] == last and controller.position == loaded.utterances[last].start

        # The server comes back at the same address: Play continues from that sentence.
        port = int(server.base_url.split(":")[-1].split("/")[0])
        monkeypatch.setattr("llm_server_fixtures.free_port", lambda: port)
        server = start_llm_server(llm_server_model, tmp_path)
        assert server.base_url == controller.settings.llm_base_url
        count = len(started)
        errors.clear()
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: len(started) > count or bool(errors), timeout=60000)
        assert not errors, errors
        assert started[count] == last, (started, last)
        window.actions_by_name["stop"].trigger()
        qtbot.waitUntil(lambda: controller.state == "idle", timeout=5000)
    finally:
        server.stop()
