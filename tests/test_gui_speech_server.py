"""Settings › Server: MioDesk's own speech server inside the app, on the window's engine (issue 19).

Real parts: Xvfb, the generated models, the preset voices, the PulseAudio null sink, the app's own
HTTP stack on a free 127.0.0.1 port, and the standard library's HTTP client. The user turns the
server on in Settings with the keyboard; other apps then get the voices over HTTP while the window
keeps reading; a port that is taken is one line in the banner; quitting stops the server.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from contextlib import closing

import numpy as np
import soundfile
from audio_helpers import MonitorRecorder
from gui_fixtures import SAMPLE_EN, screenshot, write_sample
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QGuiApplication

from miodesk.settings import Settings, load_settings
from miodesk.ui.settings_dialog import SettingsDialog

NAME = QAccessible.Text.Name
# Long enough (~40 sentences, ~30 s of speech) that serving it overlaps sentences of the window's reading.
SPEECH_TEXT = " ".join(f"Sentence {n} of the request spoken for another app." for n in range(1, 41))
HTTP_TIMEOUT_S = 60.0


# --- helpers ---------------------------------------------------------------------------------------

def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(port: int, method: str, path: str, body: dict | None = None, key: str = "",
            timeout: float = HTTP_TIMEOUT_S) -> tuple[int, dict[str, str], bytes]:
    """One request to 127.0.0.1:port with the standard library: status, headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def request_while_the_window_runs(qtbot, port: int, method: str, path: str, body: dict | None = None,
                                  key: str = "") -> tuple[int, dict[str, str], bytes]:
    """`request` on a thread of its own while the UI thread keeps turning (it may have to load the models)."""
    answer: list = []

    def ask() -> None:
        try:
            answer.append(request(port, method, path, body, key))
        except BaseException as error:  # noqa: BLE001 - raised below, on the test's thread
            answer.append(error)

    threading.Thread(target=ask, name="http-client", daemon=True).start()
    qtbot.waitUntil(lambda: bool(answer), timeout=int(HTTP_TIMEOUT_S * 1000) + 5000)
    if isinstance(answer[0], BaseException):
        raise answer[0]
    return answer[0]


def status_of(port: int, path: str, key: str = "") -> int:
    """The status of GET path, or 0 when nothing answers (a server between a stop and a start)."""
    try:
        return request(port, "GET", path, key=key, timeout=10)[0]
    except OSError:
        return 0


def refused(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def show_active(qtbot, widget) -> None:
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()  # no window manager on Xvfb: mnemonics need an active window
    qtbot.waitUntil(widget.isActiveWindow, timeout=5000)


def open_server_page(qtbot, window) -> SettingsDialog:
    """Settings, as the window opens it, on the Server page (Ctrl+Tab from the first page)."""
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    show_active(qtbot, dialog)
    for _ in range(3):
        qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert dialog.tabs.currentWidget().widget() is dialog.server_page
    return dialog


def press_ok(qtbot, window, dialog: SettingsDialog) -> None:
    """OK by the keyboard, then what `MainWindow.open_settings` does with an accepted dialog."""
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    ok.setFocus()
    qtbot.keyClick(ok, Qt.Key.Key_Return)
    assert dialog.result() == dialog.DialogCode.Accepted
    window.apply_settings(dialog.result_settings())


def serve(window, port: int, key: str = "", enabled: bool = True) -> None:
    """Change the server settings the way the dialog's OK does (for the tests about what follows)."""
    settings = Settings(**window.settings.to_json())
    settings.server_enabled, settings.server_port, settings.server_api_key = enabled, port, key
    window.apply_settings(settings)


def wait_serving(qtbot, controller, port: int) -> None:
    qtbot.waitUntil(lambda: controller.server_address == f"127.0.0.1:{port}", timeout=30000)


def voice_names(body: bytes) -> set[str]:
    """The voice names in GET /v1/audio/voices, in either shape clients use (names, or objects)."""
    data = json.loads(body)
    voices = data.get("voices", data.get("data", [])) if isinstance(data, dict) else data
    return {v if isinstance(v, str) else str(v.get("id") or v.get("name")) for v in voices}


def open_document(qtbot, parts, path):
    with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
        parts.window.open_path(path)
    return parts.controller.loaded


# --- Settings › Server -----------------------------------------------------------------------------

def test_server_page_turns_the_server_on_and_off(app, qtbot, announced):
    window, controller = app.window, app.controller
    assert not controller.settings.server_enabled and controller.server_address == ""
    assert not window.server_label.isVisible()
    port = free_port()

    dialog = open_server_page(qtbot, window)
    # Off by default: the port, the key and Copy URL follow the checkbox.
    assert not dialog.serve.isChecked()
    assert not any(w.isEnabled() for w in (dialog.serve_port, dialog.serve_key, dialog.copy_url))
    assert dialog.serve_port.value() == 8880
    assert "this computer only" in dialog.server_note.text()
    # Alt+X turns it on, and the fields below come into the Tab chain.
    qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_X, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(dialog.serve.isChecked, timeout=2000)
    assert all(w.isEnabled() for w in (dialog.serve_port, dialog.serve_key, dialog.copy_url))
    # Each field is named by its visible label; the key is not shown.
    assert QAccessible.queryAccessibleInterface(dialog.serve_port).text(NAME) == "Listening port:"
    assert QAccessible.queryAccessibleInterface(dialog.serve_key).text(NAME) == "API key for requests:"
    assert QAccessible.queryAccessibleInterface(dialog.copy_url).text(NAME) == "Copy URL"
    assert dialog.serve_key.echoMode() == dialog.serve_key.EchoMode.Password
    # Tab, top to bottom: the checkbox, the port, the key, Copy URL, then the dialog's buttons.
    chain = [dialog.focusWidget()]
    for _ in range(3):
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
        chain.append(dialog.focusWidget())
    assert chain == [dialog.serve, dialog.serve_port, dialog.serve_key, dialog.copy_url], chain
    # Alt+G reaches the port: type it.
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_G, Qt.KeyboardModifier.AltModifier)
    assert dialog.focusWidget() is dialog.serve_port
    dialog.serve_port.lineEdit().selectAll()
    qtbot.keyClicks(dialog.serve_port, str(port))
    assert dialog.serve_port.value() == port
    # Copy URL (Space on the button) puts the OpenAI base URL on the clipboard and says so.
    QGuiApplication.clipboard().clear()
    dialog.copy_url.setFocus()
    qtbot.keyClick(dialog.copy_url, Qt.Key.Key_Space)
    url = f"http://127.0.0.1:{port}/v1"
    qtbot.waitUntil(lambda: QGuiApplication.clipboard().text() == url, timeout=2000)
    assert dialog.copy_result.text() == f"Copied {url}"
    assert (f"Copied {url}", False) in announced
    screenshot(dialog, "speech-server-01-settings")
    press_ok(qtbot, window, dialog)

    # It listens on 127.0.0.1 and answers an OpenAI client's first questions.
    wait_serving(qtbot, controller, port)
    saved = load_settings()
    assert (saved.server_enabled, saved.server_port, saved.server_api_key) == (True, port, "")
    status, _, body = request(port, "GET", "/v1/models")
    assert status == 200, body
    assert json.loads(body)["data"], body
    status, _, body = request(port, "GET", "/v1/audio/voices")
    assert status == 200, body
    assert {"en_female", "en_male", "jp_female", "jp_male"} <= voice_names(body), body
    # The status bar says so, and a screen reader hears the same words.
    assert window.server_label.isVisible()
    assert window.server_label.text() == f"Serving on 127.0.0.1:{port}"
    assert QAccessible.queryAccessibleInterface(window.server_label).text(NAME) == window.server_label.text()
    screenshot(window, "speech-server-02-status-bar")

    # A key: asked of every request from now on (the server restarts with it).
    dialog = open_server_page(qtbot, window)
    dialog.serve_key.setFocus()
    qtbot.keyClicks(dialog.serve_key, "s3cret-key")
    press_ok(qtbot, window, dialog)
    qtbot.waitUntil(lambda: status_of(port, "/v1/models") == 401, timeout=30000)
    wait_serving(qtbot, controller, port)
    assert request(port, "GET", "/v1/models", key="s3cret-key")[0] == 200

    # Off again (Alt+X): nothing listens any more, and the status bar says nothing.
    dialog = open_server_page(qtbot, window)
    qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_X, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: not dialog.serve.isChecked(), timeout=2000)
    press_ok(qtbot, window, dialog)
    qtbot.waitUntil(lambda: refused(port), timeout=30000)
    assert controller.server_address == "" and not window.server_label.isVisible()
    assert not load_settings().server_enabled


def test_a_key_that_cannot_be_sent_is_refused_before_saving(qtbot, announced):
    dialog = SettingsDialog(Settings(ui_language="en", server_enabled=True))
    qtbot.addWidget(dialog)
    show_active(qtbot, dialog)
    for bad in ("two words", "キー"):
        dialog.serve_key.setText(bad)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        assert dialog.isVisible() and dialog.result() != dialog.DialogCode.Accepted, bad
        assert dialog.tabs.currentIndex() == 3 and dialog.focusWidget() is dialog.serve_key, bad
        message = dialog.copy_result.text()
        assert "ASCII" in message and "\n" not in message, message
        assert (message, True) in announced  # spoken at once
    dialog.serve_key.setText("  good-key  ")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.result() == dialog.DialogCode.Accepted
    assert dialog.result_settings().server_api_key == "good-key"


def test_server_settings_are_saved_and_clamped(tmp_path):
    from miodesk.settings import save_settings

    assert (Settings().server_enabled, Settings().server_port, Settings().server_api_key) == (False, 8880, "")
    path = tmp_path / "settings.json"
    save_settings(Settings(server_enabled=True, server_port=9000, server_api_key="k"), path)
    loaded = load_settings(path)
    assert (loaded.server_enabled, loaded.server_port, loaded.server_api_key) == (True, 9000, "k")
    for port, clamped in ((80, 1024), (70000, 65535)):
        path.write_text(json.dumps({"server_port": port}), encoding="utf-8")
        assert load_settings(path).server_port == clamped
    path.write_text(json.dumps({"server_enabled": "yes"}), encoding="utf-8")
    assert load_settings(path).recovered_from is not None  # a wrong type is damage, as for every setting


# --- reading and serving at once -------------------------------------------------------------------

def test_the_window_keeps_reading_while_a_request_is_served(app, qtbot, tmp_path, pulse_sink):
    window, controller = app.window, app.controller
    port = free_port()
    serve(window, port)
    wait_serving(qtbot, controller, port)
    loaded = open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    heard: list[tuple[float, int, tuple[int, int] | None]] = []
    controller.utteranceStarted.connect(
        lambda index, start, end: heard.append((time.monotonic(), index, window.reader.highlighted())))
    errors: list[str] = []
    controller.errorOccurred.connect(errors.append)
    answer: dict[str, object] = {}

    def ask() -> None:
        try:
            answer["started"] = time.monotonic()
            answer["response"] = request(port, "POST", "/v1/audio/speech", {
                "model": "tts-1", "input": SPEECH_TEXT, "voice": "en_male", "response_format": "wav"})
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            answer["error"] = error
        finally:
            answer["ended"] = time.monotonic()

    def reading_ended() -> bool:
        return controller.state != "playing" or bool(errors)

    with MonitorRecorder() as recorder:
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: len(heard) >= 1 or bool(errors), timeout=60000)
        assert not errors, errors
        # Another app asks for speech while the window reads (on a thread: the UI thread keeps turning).
        client = threading.Thread(target=ask, name="openai-client", daemon=True)
        client.start()
        qtbot.waitUntil(lambda: "ended" in answer, timeout=int(HTTP_TIMEOUT_S * 1000) + 5000)
        # The reading goes on after the request: two more sentences are heard (or the document ends).
        count = len(heard)
        qtbot.waitUntil(lambda: len(heard) >= count + 2 or reading_ended(), timeout=60000)
        screenshot(window, "speech-server-03-reading-and-serving")
        state_after = controller.state
        window.actions_by_name["stop"].trigger()
        qtbot.waitUntil(lambda: controller.state == "idle", timeout=5000)
    client.join(timeout=5)

    # The other app got a decodable WAV of plausible length: 40 sentences of ~20 codes (0.8 s) each on
    # average, with the reader's pauses between them.
    assert "error" not in answer, answer.get("error")
    status, headers, body = answer["response"]  # type: ignore[misc]
    assert status == 200, body[:500]
    assert headers.get("content-type", "").startswith("audio/"), headers
    samples, rate = soundfile.read(io.BytesIO(body), dtype="float32")
    seconds = len(samples) / rate
    assert 10 < seconds < 120, seconds
    assert np.sqrt(np.mean(np.square(samples))) > 1e-3
    # The window's reading did not stop for the request: no error, still playing after it, sentences in
    # order, each highlighted while its sound reached the (null) speakers, during the request and after.
    assert not errors, errors
    assert not (window.banner.isVisible() and window.banner.kind == "error"), window.banner.label.text()
    assert state_after == "playing" or heard[-1][1] == len(loaded.utterances) - 1, state_after
    assert len(heard) >= count + 2 or heard[-1][1] == len(loaded.utterances) - 1, (count, len(heard))
    seconds_served = answer["ended"] - answer["started"]  # type: ignore[operator]
    during = [i for when, i, _ in heard if answer["started"] <= when <= answer["ended"]]  # type: ignore[operator]
    if seconds_served > 3:  # longer than a sentence of the reading: one was heard meanwhile
        assert during, (seconds_served, heard)
    indices = [index for _, index, _ in heard]
    assert indices == list(range(indices[0], indices[0] + len(indices))), indices
    for when, index, highlighted in heard:
        utterance = loaded.utterances[index]
        assert highlighted == (utterance.start, utterance.end), (index, highlighted)
        audio = recorder.around(when, 0.25)
        assert len(audio) and np.sqrt(np.mean(audio**2)) > 1e-3, (index, len(audio))


# --- failures and the end --------------------------------------------------------------------------

def test_a_port_in_use_is_one_line_in_the_banner(app, qtbot, tmp_path):
    window, controller = app.window, app.controller
    errors: list[str] = []
    controller.errorOccurred.connect(errors.append)
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        serve(window, port)
        qtbot.waitUntil(lambda: bool(errors), timeout=30000)
        screenshot(window, "speech-server-04-port-in-use")
        assert len(errors) == 1 and "\n" not in errors[0], errors
        assert errors[0].startswith("MioDesk's speech server did not start: "), errors[0]
        assert str(port) in errors[0], errors[0]
        assert window.banner.isVisible() and window.banner.kind == "error"
        assert window.banner.label.text() == errors[0]
        assert controller.server_address == "" and not window.server_label.isVisible()
        # The app keeps working: a document opens, the window answers.
        open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
        assert window.stack.currentWidget() is window.splitter
    # The port is free again: OK in Settings (the same settings) tries again, and it starts.
    serve(window, port)
    wait_serving(qtbot, controller, port)
    assert request(port, "GET", "/v1/models")[0] == 200


def test_the_server_starts_with_the_app_follows_a_reload_and_stops_on_quit(qtbot, gui_settings, voices):
    from miodesk.ui.app import build_app

    port = free_port()
    gui_settings.server_enabled, gui_settings.server_port = True, port
    parts = build_app(gui_settings, voice_store=voices)
    window, controller = parts.window, parts.controller
    qtbot.addWidget(window)
    try:
        window.show()
        qtbot.waitExposed(window)
        wait_serving(qtbot, controller, port)  # on at start-up, as saved
        assert request(port, "GET", "/v1/models")[0] == 200
        # Settings that reload the engine stop the server first and start it again on the new engine.
        addresses: list[str] = []
        controller.serverChanged.connect(addresses.append)
        changed = Settings(**window.settings.to_json())
        changed.codec_threads = 2
        window.apply_settings(changed)
        qtbot.waitUntil(lambda: addresses[-1:] == [f"127.0.0.1:{port}"], timeout=30000)
        assert addresses[0] == "", addresses
        # No model is loaded yet (nothing was read): the request has the window load it, as Play does.
        assert controller.engine is None
        status, _, body = request_while_the_window_runs(qtbot, port, "POST", "/v1/audio/speech", {
            "model": "tts-1", "input": "Hello again.", "voice": "en_female", "response_format": "wav"})
        assert status == 200, body[:500]
        assert controller.engine is not None and controller.engine_state == "ready"
        assert len(soundfile.read(io.BytesIO(body))[0]) > 0
    finally:
        window.quit()
    # Quitting stops it before the app is gone: nothing listens, its control thread has ended.
    assert refused(port)
    qtbot.waitUntil(lambda: not any(t.name == "speech-server-control" and t.is_alive()
                                    for t in threading.enumerate()), timeout=5000)
