"""Read anything, anywhere: global shortcuts, `miodesk --read-selection`, the portal, Windows and macOS.

The real parts, each where this Linux machine has it:
- X11: the app's own XGrabKey on Xvfb, keys pressed by xdotool (XTEST, as a keyboard would), the
  selection owned by another program (xclip owns PRIMARY), the speech heard through the PulseAudio null
  sink: 20 of 20 presses start reading, and the time from press to sound is printed.
- The command: `python -m miodesk --read-selection` handed to a running app, and starting one.
- Wayland: a stand-in for xdg-desktop-portal's GlobalShortcuts (tests/fake_portal.py, python3-dbus) on a
  private session bus; its Activated signal makes the app read the selection.
- Windows and macOS: their native calls behind one seam each (`Win32`, `ObjcRuntime`), replaced by fakes;
  what runs is MioDesk's logic around them, Qt's clipboard and a real MSG structure in memory.
- Settings › Shortcuts: from the keyboard, and over the AT-SPI bus.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from audio_helpers import MonitorRecorder
from conftest import REPO_ROOT
from gui_fixtures import ARTIFACTS, CODEC, private_xvfb, screenshot
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QClipboard, QGuiApplication, QKeySequence

from miodesk.settings import Settings
from miodesk.ui.hotkeys import create_backend
from miodesk.ui.hotkeys.base import READ_CLIPBOARD, READ_SELECTION, ShortcutBackend, Status
from miodesk.ui.hotkeys.keys import (
    KEYS,
    MOD_ALT,
    MOD_CONTROL,
    MOD_NOREPEAT,
    MOD_SHIFT,
    MOD_WIN,
    KeyCombo,
    KeyComboError,
)
from miodesk.ui.selection import MAX_READ_CHARS, clean_text

HERE = Path(__file__).parent
SYSTEM_PYTHON = "/usr/bin/python3"
PRESSES = 20
# Long enough to be still reading when the next press or command comes: then it stops.
LONG = " ".join(f"Sentence {number} of the selection goes on for a while." for number in range(1, 30))


# --- helpers: another app's selection, a keyboard, the speakers -------------------------------------------


def needs(*programs: str) -> None:
    missing = [program for program in programs if shutil.which(program) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; tests/run.sh installs them")


class OtherApp:
    """Another program owning the PRIMARY selection or the clipboard (xclip, as a text editor would)."""

    def __init__(self, display: str) -> None:
        needs("xclip")
        self.display = display
        self.owners: list[subprocess.Popen] = []

    def select(self, text: str | bytes, selection: str = "primary") -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        owner = subprocess.Popen(["xclip", "-quiet", "-selection", selection, "-target", "UTF8_STRING",
                                  "-display", self.display], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        assert owner.stdin is not None
        owner.stdin.write(data)
        owner.stdin.close()
        self.owners.append(owner)
        deadline = time.monotonic() + 10
        while True:  # xclip owns the selection once it has read all of its input
            out = subprocess.run(["xclip", "-o", "-selection", selection, "-target", "UTF8_STRING",
                                  "-display", self.display], capture_output=True, timeout=10).stdout
            if out == data:
                return
            assert time.monotonic() < deadline, f"xclip did not take the {selection} selection"
            time.sleep(0.05)

    def close(self) -> None:
        for owner in self.owners:
            if owner.poll() is None:
                owner.terminate()
                owner.wait(timeout=10)


def press(display: str, keys: str = "ctrl+alt+shift+r") -> float:
    """Press a key combination as a keyboard would (XTEST); the time just before it went out."""
    needs("xdotool")
    started = time.monotonic()
    subprocess.run(["xdotool", "key", keys], env=dict(os.environ, DISPLAY=display), check=True, timeout=20)
    return started


class TrayHost:
    """A system tray as a desktop panel has one: the owner of _NET_SYSTEM_TRAY_S0 (it embeds nothing, but Qt
    then shows its tray icon's notifications as balloon windows, which a test can read)."""

    def __init__(self, display_name: str) -> None:
        from Xlib import X, display
        from Xlib.protocol import event

        self.display = display.Display(display_name)
        screen = self.display.screen()
        self.window = screen.root.create_window(0, 0, 1, 1, 0, screen.root_depth)
        selection = self.display.intern_atom("_NET_SYSTEM_TRAY_S0")
        self.window.set_selection_owner(selection, X.CurrentTime)
        manager = event.ClientMessage(window=screen.root, client_type=self.display.intern_atom("MANAGER"),
                                      data=(32, [X.CurrentTime, selection, self.window.id, 0, 0]))
        screen.root.send_event(manager, event_mask=X.StructureNotifyMask)
        self.display.sync()

    def close(self) -> None:
        self.window.destroy()
        self.display.close()


def notification() -> str:
    """The text of the tray notification on screen ("" when none shows)."""
    from PySide6.QtWidgets import QApplication, QLabel

    for widget in QApplication.topLevelWidgets():
        if widget.isVisible() and widget.metaObject().className() == "QBalloonTip":
            return widget.findChildren(QLabel)[-1].text()
    return ""


@pytest.fixture
def tray_host(app, qtbot, xvfb_display) -> Iterator[TrayHost]:
    host = TrayHost(xvfb_display)
    qtbot.waitUntil(app.tray.available, timeout=5000)
    app.tray.show()
    yield host
    app.tray.hide()
    host.close()
    # Until Qt has seen the tray go (processEvents, not an event loop: the window's deferred deletion
    # by pytest-qt must wait for the app fixture's own teardown).
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + 5
    while app.tray.available() and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)


@pytest.fixture
def other_app(xvfb_display) -> Iterator[OtherApp]:
    owner = OtherApp(xvfb_display)
    yield owner
    owner.close()


@pytest.fixture
def reader_x11(app, xvfb_display):
    """The window's GlobalReader with its shortcuts grabbed on the tests' X server."""
    from miodesk.ui.hotkeys.x11 import X11Backend

    reader = app.window.global_reader
    reader.start(X11Backend(xvfb_display))
    assert reader.state(READ_SELECTION).status == Status.ACTIVE, reader.states()
    yield reader
    reader.close()


# --- keys ------------------------------------------------------------------------------------------


def test_a_shortcut_is_named_for_each_platform():
    combo = KeyCombo.parse("Ctrl+Alt+Shift+R")
    assert combo == KeyCombo.parse("shift+ALT+ctrl+r")
    assert combo.portable() == "Ctrl+Alt+Shift+R"
    assert combo.x11_keysym() == "r"
    assert combo.windows_key() == (MOD_CONTROL | MOD_ALT | MOD_SHIFT | MOD_NOREPEAT, ord("R"))
    assert combo.portal_trigger() == "CTRL+ALT+SHIFT+r"
    meta = KeyCombo.parse("Meta+F5")
    assert meta.windows_key() == (MOD_WIN | MOD_NOREPEAT, 0x74) and meta.portal_trigger() == "LOGO+F5"
    assert KeyCombo.parse("Ctrl+Alt+PgDown").x11_keysym() == "Next"
    # Qt's names for the keys: what a recorded QKeySequence says is what the table knows.
    for name in KEYS:
        text = QKeySequence.fromString(f"Ctrl+Alt+{name}", QKeySequence.SequenceFormat.PortableText).toString(
            QKeySequence.SequenceFormat.PortableText)
        assert KeyCombo.parse(text).key == name, (name, text)


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("R", "no-modifier"), ("Shift+R", "shift-only"), ("Ctrl+Ö", "unknown-key"),
    ("Hyper+R", "unknown-key"), ("Ctrl+A, Ctrl+B", "sequence"),
])
def test_keys_that_cannot_be_global_are_refused(text, reason):
    with pytest.raises(KeyComboError) as refused:
        KeyCombo.parse(text)
    assert refused.value.reason == reason


# --- what is read: cleaned and cut ----------------------------------------------------------------------


def test_binary_is_left_out_and_a_huge_selection_is_cut_at_a_sentence_end():
    text, removed, cut_from = clean_text("Hello\x00\x01 there.\ufffd\nNext line\tend.")
    assert (text, removed, cut_from) == ("Hello there.\nNext line\tend.", 3, 0)
    assert clean_text("\x00\x00\ufffd  ") == ("", 3, 0)
    sentence = "The tide was out when we arrived. "
    huge = sentence * (MAX_READ_CHARS // len(sentence) + 50)
    text, removed, cut_from = clean_text(huge)
    assert cut_from == len(huge) and removed == 0
    assert len(text) <= MAX_READ_CHARS and text.endswith("arrived.")
    japanese = "潮は引いていました。" * (MAX_READ_CHARS // 10 + 10)
    assert clean_text(japanese)[0].endswith("。")
    enormous = "x" * (MAX_READ_CHARS * 50)  # not scanned whole: cut without a sentence end in sight
    started = time.monotonic()
    text, _, cut_from = clean_text(enormous)
    assert len(text) == MAX_READ_CHARS and cut_from == len(enormous) and time.monotonic() - started < 1


# --- X11: the grab itself --------------------------------------------------------------------------------


def test_x11_grabs_reports_a_key_another_app_holds_and_lets_go(qapp, xvfb_display, qtbot):
    from miodesk.ui.hotkeys.x11 import X11Backend

    ours, other = X11Backend(xvfb_display), X11Backend(xvfb_display)  # two X clients
    try:
        other.bind({READ_SELECTION: KeyCombo.parse("Ctrl+Alt+Shift+F11")})
        assert other.state(READ_SELECTION).status == Status.ACTIVE
        ours.bind({READ_SELECTION: KeyCombo.parse("Ctrl+Alt+Shift+F11"),
                   READ_CLIPBOARD: KeyCombo.parse("Ctrl+Alt+Shift+F12")})
        assert ours.state(READ_SELECTION).status == Status.TAKEN
        assert ours.state(READ_CLIPBOARD).status == Status.ACTIVE
        # Settings asks before binding: taken, free, or ours.
        assert ours.probe(KeyCombo.parse("Ctrl+Alt+Shift+F11")) == Status.TAKEN
        assert ours.probe(KeyCombo.parse("Ctrl+Alt+Shift+F10")) == Status.ACTIVE
        assert ours.held_by_us(KeyCombo.parse("Ctrl+Alt+Shift+F12"))
        assert other.probe(KeyCombo.parse("Ctrl+Alt+Shift+F12")) == Status.TAKEN
        pressed: list[str] = []
        ours.activated.connect(pressed.append)
        press(xvfb_display, "ctrl+alt+shift+F12")
        qtbot.waitUntil(lambda: pressed == [READ_CLIPBOARD], timeout=5000)
        # With Num Lock on, the grab still matches (the Num Lock variant).
        press(xvfb_display, "Num_Lock")
        try:
            press(xvfb_display, "ctrl+alt+shift+F12")
            qtbot.waitUntil(lambda: len(pressed) == 2, timeout=5000)
        finally:
            press(xvfb_display, "Num_Lock")
        # Let go: the other client can have it now.
        ours.bind({READ_SELECTION: None, READ_CLIPBOARD: None})
        assert ours.state(READ_CLIPBOARD).status == Status.OFF
        assert other.probe(KeyCombo.parse("Ctrl+Alt+Shift+F12")) == Status.ACTIVE
    finally:
        ours.close()
        other.close()


def test_the_backend_follows_the_desktop(qapp, monkeypatch):
    from miodesk.ui.hotkeys.portal import PortalBackend
    from miodesk.ui.hotkeys.x11 import X11Backend

    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    backend = create_backend()
    assert isinstance(backend, X11Backend)
    backend.close()
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")  # XWayland: a grab would see X11 windows' keys only
    backend = create_backend()
    assert isinstance(backend, PortalBackend)
    backend.close()


# --- X11 end to end: the window, another app's selection, a keyboard, the speakers ------------------------


def test_twenty_presses_read_the_selection_of_another_app(app, qtbot, reader_x11, other_app, xvfb_display,
                                                          tray_host, pulse_sink):
    window, controller = app.window, app.controller
    window.hide()  # in the tray: the window need not come to the front
    latencies: list[float] = []
    with MonitorRecorder() as speakers:
        for number in range(1, PRESSES + 1):
            text = f"Selection number {number}. The tide was out when we arrived. " + LONG
            other_app.select(text)
            pressed = press(xvfb_display)
            qtbot.waitUntil(lambda pressed=pressed: speakers.first_sound_after(pressed) is not None, timeout=60000)
            latencies.append(speakers.first_sound_after(pressed) - pressed)
            assert controller.state == "playing", number
            assert controller.document.text == text and controller.document.title == "Selection"
            assert window.reader.toPlainText() == text  # shown in the reader view
            assert not window.isVisible()
            # The tray says what is being read.
            assert notification().startswith(f"Reading the selection: “Selection number {number}."), notification()
            # Pressed again while reading: it stops.
            stop_pressed = press(xvfb_display)
            qtbot.waitUntil(lambda: controller.state == "idle", timeout=10000)
            assert notification() == "Stopped reading."
            # Silent within moments (the device's own buffer drains), and it stays silent.
            qtbot.waitUntil(lambda stop_pressed=stop_pressed: time.monotonic() > stop_pressed + 2.0
                            and speakers.silent_since(time.monotonic() - 0.5), timeout=10000)
            assert speakers.silent_since(stop_pressed + 1.5), number
    median, worst = statistics.median(latencies), max(latencies)
    warm = latencies[1:]  # the first press also waits for the models to load
    summary = (f"{PRESSES} of {PRESSES} presses started reading; press to sound: median {median * 1000:.0f} ms, "
               f"max {worst * 1000:.0f} ms (first press, loading the models: {latencies[0] * 1000:.0f} ms; the "
               f"other {len(warm)}: median {statistics.median(warm) * 1000:.0f} ms, max {max(warm) * 1000:.0f} ms)")
    print(f"\n{summary}")
    assert len(latencies) == PRESSES
    (ARTIFACTS / "global-shortcut-latency.txt").write_text(
        f"press to sound (xdotool → XGrabKey → PRIMARY → speech → PulseAudio null sink):\n{summary}\n"
        + "".join(f"{number + 1}: {seconds * 1000:.0f} ms\n" for number, seconds in enumerate(latencies)),
        encoding="utf-8")


def test_clipboard_shortcut_empty_selection_binary_and_huge(app, qtbot, reader_x11, other_app, xvfb_display,
                                                             tray_host, pulse_sink, announced):
    controller = app.controller
    # Nothing selected and nothing on the clipboard: a short notice, nothing read.
    other_app.select("")
    other_app.select("", "clipboard")
    with MonitorRecorder() as speakers:
        pressed = press(xvfb_display)
        qtbot.waitUntil(lambda: "Nothing is selected" in notification(), timeout=10000)
        qtbot.wait(1500)
        assert controller.state == "idle" and controller.document is None
        assert speakers.silent_since(pressed)
    assert ("Nothing is selected, and the clipboard holds no text to read.", False) in announced

    # The clipboard key reads the clipboard (another app's).
    other_app.select("Copied earlier. It is on the clipboard.", "clipboard")
    press(xvfb_display, "ctrl+alt+shift+c")
    qtbot.waitUntil(lambda: controller.state == "playing", timeout=30000)
    assert controller.document.text == "Copied earlier. It is on the clipboard."
    assert controller.document.title == "Clipboard"
    press(xvfb_display, "ctrl+alt+shift+c")  # and stops it
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=10000)

    # Binary in the selection is left out, with a notice.
    other_app.select(b"Readable words.\x00\x01\x02\x03\xff\xfe More words.")
    press(xvfb_display)
    qtbot.waitUntil(lambda: controller.state == "playing", timeout=30000)
    assert controller.document.text == "Readable words. More words."
    assert "Binary data in it was left out." in notification()
    press(xvfb_display)
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=10000)

    # A huge selection (through the X selection's INCR transfer) is cut at a sentence end, with a notice.
    sentence = "A wave rolled in and went back out. "
    huge = sentence * (MAX_READ_CHARS // len(sentence) * 3)
    other_app.select(huge)
    press(xvfb_display)
    qtbot.waitUntil(lambda: controller.state == "playing", timeout=60000)
    assert len(controller.document.text) <= MAX_READ_CHARS and controller.document.text.endswith("out.")
    message = notification()
    assert "It is long: MioDesk reads its first" in message, message
    assert any("It is long" in text for text, _ in announced)
    press(xvfb_display)
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=10000)


def test_settings_change_rebinds_and_the_old_key_is_free_again(app, qtbot, reader_x11, xvfb_display):
    from miodesk.ui.hotkeys.x11 import X11Backend

    new = Settings(**{**app.controller.settings.to_json(), "selection_shortcut": "Ctrl+Alt+Shift+F9"})
    app.window.apply_settings(new)
    assert reader_x11.state(READ_SELECTION).status == Status.ACTIVE
    assert reader_x11.state(READ_SELECTION).detail == "Ctrl+Alt+Shift+F9"
    other = X11Backend(xvfb_display)
    try:
        assert other.probe(KeyCombo.parse("Ctrl+Alt+Shift+R")) == Status.ACTIVE  # let go
        assert other.probe(KeyCombo.parse("Ctrl+Alt+Shift+F9")) == Status.TAKEN  # held by MioDesk
    finally:
        other.close()


# --- Settings › Shortcuts ------------------------------------------------------------------------------


def test_shortcuts_page_from_the_keyboard(app, qtbot, reader_x11, xvfb_display, announced):
    from test_gui_dialogs_a11y import assert_named_by_visible_labels, iface, show_active, tab_walk

    from miodesk.ui.hotkeys.x11 import X11Backend
    from miodesk.ui.settings_dialog import SettingsDialog

    other = X11Backend(xvfb_display)  # another app holds Ctrl+Alt+F8
    other.bind({READ_SELECTION: KeyCombo.parse("Ctrl+Alt+F8")})
    dialog = SettingsDialog(app.controller.settings, app.window)
    qtbot.addWidget(dialog)
    try:
        show_active(qtbot, dialog)
        page = dialog.shortcuts_page
        dialog._show_page(page)
        assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Shortcuts"
        selection, clipboard = page.edits[READ_SELECTION], page.edits[READ_CLIPBOARD]
        assert page.state_lines[READ_SELECTION].text() == "Ctrl+Alt+Shift+R works in every app."
        assert iface(selection).text(QAccessible.Text.Name) == "Read the selection:"
        assert iface(selection).text(QAccessible.Text.Description) == "Ctrl+Alt+Shift+R works in every app."
        assert_named_by_visible_labels(dialog)
        buttons = set(dialog.buttons.buttons())
        assert tab_walk(qtbot, selection, stop_at=buttons) == [selection, clipboard, page.defaults_button]
        # Alt+S, the label's mnemonic, reaches the field (from a control that does not record keys).
        page.defaults_button.setFocus()
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_S, Qt.KeyboardModifier.AltModifier)
        assert dialog.focusWidget() is selection

        ctrl_alt = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
        # A key another app holds: said at once (and to the screen reader), the field keeps it.
        qtbot.keyClick(selection, Qt.Key.Key_F8, ctrl_alt)
        qtbot.waitUntil(lambda: "Another app already uses" in page.state_lines[READ_SELECTION].text(), timeout=5000)
        assert any("Another app already uses Ctrl+Alt+F8" in text and urgent for text, urgent in announced)
        # A free key: takes effect on OK.
        qtbot.keyClick(selection, Qt.Key.Key_F7, ctrl_alt)
        qtbot.waitUntil(lambda: page.state_lines[READ_SELECTION].text() == "Ctrl+Alt+F7 takes effect when you press OK.",
                        timeout=5000)
        # A bare key is refused and the field goes back; so is the other shortcut's key.
        qtbot.keyClick(selection, Qt.Key.Key_Q)
        qtbot.waitUntil(lambda: "needs Ctrl, Alt or the Super" in page.state_lines[READ_SELECTION].text(),
                        timeout=5000)
        assert selection.portable() == "Ctrl+Alt+F7"
        qtbot.keyClick(selection, Qt.Key.Key_C, ctrl_alt | Qt.KeyboardModifier.ShiftModifier)
        qtbot.waitUntil(lambda: page.state_lines[READ_SELECTION].text() == "Ctrl+Alt+Shift+C already reads the clipboard.",
                        timeout=5000)
        assert selection.portable() == "Ctrl+Alt+F7"
        # MioDesk's own keys, pressed on the keyboard, reach a field that records keys (its grabs let go
        # meanwhile) and read nothing.
        clipboard.setFocus()
        qtbot.waitUntil(lambda: reader_x11.backend.state(READ_CLIPBOARD).status == Status.OFF, timeout=5000)
        assert page.state_lines[READ_SELECTION].text() == "Ctrl+Alt+F7 takes effect when you press OK."
        press(xvfb_display, "ctrl+alt+shift+r")
        qtbot.waitUntil(lambda: clipboard.portable() == "Ctrl+Alt+Shift+R", timeout=5000)
        assert app.controller.state == "idle"
        assert page.state_lines[READ_CLIPBOARD].text() == "Ctrl+Alt+Shift+R takes effect when you press OK."
        page.defaults_button.setFocus()  # out of the field: the keys are MioDesk's again
        qtbot.waitUntil(lambda: reader_x11.backend.state(READ_CLIPBOARD).status == Status.ACTIVE, timeout=5000)
        # Backspace empties the clipboard's field: no shortcut.
        qtbot.keyClick(clipboard, Qt.Key.Key_Backspace)
        assert clipboard.portable() == "" and page.state_lines[READ_CLIPBOARD].text() == "No shortcut."
        screenshot(dialog, "shortcuts-settings-en")
        result = dialog.result_settings()
        assert (result.selection_shortcut, result.clipboard_shortcut) == ("Ctrl+Alt+F7", "")
        page.defaults_button.setFocus()
        qtbot.keyClick(page.defaults_button, Qt.Key.Key_Space)
        result = dialog.result_settings()
        assert (result.selection_shortcut, result.clipboard_shortcut) == ("Ctrl+Alt+Shift+R", "Ctrl+Alt+Shift+C")
    finally:
        dialog.close()
        other.close()


def test_shortcuts_page_in_japanese(app, qtbot, reader_x11):
    from miodesk.ui.i18n import Translations
    from miodesk.ui.settings_dialog import SettingsDialog

    translations = Translations()
    translations.apply("ja")
    try:
        dialog = SettingsDialog(app.controller.settings, app.window)
        qtbot.addWidget(dialog)
        dialog._show_page(dialog.shortcuts_page)
        dialog.show()
        qtbot.waitExposed(dialog)
        screenshot(dialog, "shortcuts-settings-ja")
        dialog.close()
    finally:
        translations.apply("en")


# --- the command: handed to the running app, or starting one ------------------------------------------------


@pytest.fixture
def desktop_display() -> Iterator[str]:
    needs("xwininfo", "xclip", "xdotool")
    with private_xvfb() as display:
        yield display


def _viewable_windows(display: str) -> list[str]:
    """Titles of the MioDesk main windows that are on screen (mapped) on `display`."""
    tree = subprocess.run(["xwininfo", "-display", display, "-root", "-tree"], capture_output=True, text=True,
                          timeout=20).stdout
    shown = []
    for match in re.finditer(r'^\s*(0x[0-9a-f]+) "(.*)": \("[^"]*" "MioDesk"\)\s+(\d+)x(\d+)', tree, re.M):
        if int(match.group(4)) >= 320:  # the main window's least height; a notification balloon is smaller
            info = subprocess.run(["xwininfo", "-display", display, "-id", match.group(1)], capture_output=True,
                                  text=True, timeout=20).stdout
            if "IsViewable" in info:
                shown.append(match.group(2))
    return shown


def _app_settings(home: Path, model: Path) -> None:
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    settings = {"model_path": str(model), "codec_path": str(CODEC), "provider": "cpu", "llm_threads": 1,
                "codec_threads": 1, "ui_language": "en", "welcome_done": True, "close_to_tray": False}
    (config / "settings.json").write_text(json.dumps(settings), encoding="utf-8")


def _wait_for_log(log_file: Path, pattern: str, process: subprocess.Popen, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
        if re.search(pattern, text):
            return text
        if process.poll() is not None:
            pytest.fail(f"the app exited ({process.returncode}): {process.communicate()}\n{text[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {pattern!r} in the app's log within {timeout:.0f} s:\n{text[-3000:]}")
        time.sleep(0.1)


def test_read_selection_command_reaches_the_running_app_and_starts_one(desktop_display, miodesk_home, gui_model,
                                                                       voices, pulse_sink):
    from miodesk.ui import single_instance

    _app_settings(miodesk_home, gui_model)
    env = dict(os.environ, DISPLAY=desktop_display, QT_QPA_PLATFORM="xcb", MIODESK_HOME=str(miodesk_home),
               XDG_SESSION_TYPE="x11")
    env.pop("WAYLAND_DISPLAY", None)
    log_file = miodesk_home / "logs" / "miodesk.log"
    owner = OtherApp(desktop_display)
    processes: list[subprocess.Popen] = []

    def miodesk(*args: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "miodesk", *args], env=env, cwd=REPO_ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(process)
        return process

    tray = TrayHost(desktop_display)  # the desktop has a system tray
    try:
        with MonitorRecorder() as speakers:
            # None runs: the command starts MioDesk in the tray (no window) and reads.
            text = "Started by the command. It reads at once. " + LONG
            owner.select(text)
            started = time.monotonic()
            first = miodesk("--read-selection")
            _wait_for_log(log_file, rf"global reading: the selection, {len(text)} characters", first)
            deadline = time.monotonic() + 120
            while speakers.first_sound_after(started) is None:
                assert time.monotonic() < deadline, "no sound from the started app"
                time.sleep(0.1)
            cold = speakers.first_sound_after(started) - started
            log = _wait_for_log(log_file, r"global shortcut read-selection: active", first)
            assert "single instance: listening" in log
            assert _viewable_windows(desktop_display) == []  # in the tray only (its notification shows)
            # Running and reading: the command again stops it (as the shortcut does).
            handed = miodesk("--read-selection")
            assert handed.wait(timeout=60) == 0, handed.communicate()
            _wait_for_log(log_file, r"global reading: Stopped reading\.", first)
            time.sleep(1.0)
            # A new selection, handed over by the command: read by the running app.
            text = "Handed over by a second launch. " + LONG
            owner.select(text)
            pressed = time.monotonic()
            handed = miodesk("--read-selection")
            assert handed.wait(timeout=60) == 0, handed.communicate()
            log = _wait_for_log(log_file, rf"global reading: the selection, {len(text)} characters", first)
            assert "another launch asks to read the selection" in log
            deadline = time.monotonic() + 60
            while speakers.first_sound_after(pressed) is None:
                assert time.monotonic() < deadline, "no sound after the hand-over"
                time.sleep(0.1)
            warm = speakers.first_sound_after(pressed) - pressed
            # The app's own shortcut works too (bound by run_app).
            text = "And now by the key."
            owner.select(text)
            press(desktop_display)  # stops the reading of the hand-over
            _wait_for_log(log_file, r"(Stopped reading\.[\s\S]*){2}", first)
            pressed = press(desktop_display)
            _wait_for_log(log_file, rf"global reading: the selection, {len(text)} characters", first)
            assert first.poll() is None
            assert log.count("single instance: listening") == 1
        print(f"\n`miodesk --read-selection` to sound: {cold:.2f} s starting the app, {warm:.2f} s handed to it")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
        owner.close()
        tray.close()
        single_instance.socket_path(single_instance.server_name()).unlink(missing_ok=True)


def test_read_selection_needs_a_display_and_no_command(run_cli, monkeypatch):
    for variable in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(variable, raising=False)
    result = run_cli("--read-selection", timeout=60)
    assert result.returncode == 1 and result.stderr.strip() == (
        "miodesk: error: --read-selection needs a graphical session (none found).")
    result = run_cli("--read-clipboard", "text", "x.txt", timeout=60)
    assert result.returncode == 2 and "--read-clipboard takes no command" in result.stderr


def test_read_requests_on_the_instance_socket(qtbot, tmp_path):
    from test_single_instance import _send, _short_socket_path

    from miodesk.ui import single_instance
    from miodesk.ui.single_instance import InstanceServer, RequestError, parse_request, read_request

    assert parse_request(single_instance.encode(read_request("clipboard"))[:-1]) == {"read": "clipboard"}
    with pytest.raises(RequestError, match="'read' must be one of selection, clipboard"):
        parse_request(b'{"read": "everything"}')
    server = InstanceServer(_short_socket_path(tmp_path))
    assert server.listen()
    try:
        server.start()
        with qtbot.waitSignal(server.readRequested, timeout=5000) as asked:
            assert _send(qtbot, server.name, single_instance.encode(read_request("selection"))) == {"ok": True}
        assert asked.args == ["selection"]
    finally:
        server.close()


# --- Wayland: the GlobalShortcuts portal on a private session bus -----------------------------------------


class FakePortal:
    """tests/fake_portal.py on its own private session bus."""

    def __init__(self, stack: ExitStack, folder: Path, mode: str = "ok", with_portal: bool = True) -> None:
        from test_atspi import processes, session_bus

        needs("dbus-daemon")
        if subprocess.run([SYSTEM_PYTHON, "-c", "import dbus, gi"], capture_output=True, timeout=60).returncode:
            pytest.fail(f"python3-dbus for {SYSTEM_PYTHON} is not installed; tests/run.sh installs it")
        self.folder = folder
        self.children = stack.enter_context(processes(folder))
        self.address = session_bus(self.children, folder)
        self.process: subprocess.Popen | None = None
        self.log = folder / "portal.jsonl"
        if with_portal:
            env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address)
            self.process = subprocess.Popen([SYSTEM_PYTHON, str(HERE / "fake_portal.py"), "--mode", mode],
                                            stdin=subprocess.PIPE, stdout=open(self.log, "wb"),  # noqa: SIM115
                                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
            stack.callback(self.stop)
            self.wait_for("ready")

    def calls(self) -> list[dict]:
        lines = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for(self, call: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls() if c.get("call") == call]
            if found:
                return found[-1]
            assert self.process is None or self.process.poll() is None, self.log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, f"no {call} in {self.calls()}"
            time.sleep(0.05)

    def activate(self, shortcut: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"activate {shortcut}\n".encode())
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _bind_with_portal(qtbot, backend: ShortcutBackend, states: set[Status]) -> None:
    backend.bind({READ_SELECTION: KeyCombo.parse("Ctrl+Alt+Shift+R"), READ_CLIPBOARD: KeyCombo.parse("Ctrl+Alt+Shift+C")})
    qtbot.waitUntil(lambda: backend.state(READ_SELECTION).status in states, timeout=15000)


@pytest.mark.parametrize("mode, status, detail", [
    ("ok", Status.ACTIVE, "CTRL+ALT+SHIFT+r"),
    ("refuse", Status.REFUSED, "BindShortcuts: cancelled by the user"),
    ("no-key", Status.TAKEN, "the desktop assigned no key"),
    ("no-interface", Status.UNAVAILABLE, "the desktop's portal has no GlobalShortcuts interface"),
])
def test_portal_answers(qapp, qtbot, tmp_path, mode, status, detail):
    from miodesk.ui.hotkeys.portal import PortalBackend

    with ExitStack() as stack:
        portal = FakePortal(stack, tmp_path, mode)
        backend = PortalBackend(portal.address)
        stack.callback(backend.close)
        _bind_with_portal(qtbot, backend, {status})
        assert backend.state(READ_SELECTION).detail == detail
        assert portal.wait_for("Register")["app_id"] == "miodesk"  # a host app names itself first
        if mode in ("ok", "no-key", "refuse"):
            bound = portal.wait_for("BindShortcuts")
            assert bound["shortcuts"] == [
                ["read-selection", {"description": "Read the selection aloud", "preferred_trigger": "CTRL+ALT+SHIFT+r"}],
                ["read-clipboard", {"description": "Read the clipboard aloud", "preferred_trigger": "CTRL+ALT+SHIFT+c"}]]
        if mode == "ok":
            # A new binding (Settings) closes the old session and makes a new one.
            first = portal.wait_for("CreateSession")["session"]
            backend.bind({READ_SELECTION: KeyCombo.parse("Ctrl+Alt+F9"), READ_CLIPBOARD: None})
            qtbot.waitUntil(lambda: backend.state(READ_SELECTION).detail == "CTRL+ALT+F9", timeout=15000)
            assert portal.wait_for("Close")["session"] == first
            assert backend.state(READ_CLIPBOARD).status == Status.OFF


def test_no_portal_and_no_bus_are_said(qapp, qtbot, tmp_path):
    from miodesk.ui.hotkeys.portal import NO_PORTAL, NO_SESSION_BUS, PortalBackend

    with ExitStack() as stack:
        bus = FakePortal(stack, tmp_path, with_portal=False)  # a session bus where no portal runs
        backend = PortalBackend(bus.address)
        stack.callback(backend.close)
        _bind_with_portal(qtbot, backend, {Status.UNAVAILABLE})
        assert backend.state(READ_SELECTION).detail == NO_PORTAL
    backend = PortalBackend(f"unix:path={tmp_path / 'no-such-bus'}")
    _bind_with_portal(qtbot, backend, {Status.UNAVAILABLE})
    assert backend.state(READ_CLIPBOARD).detail == NO_SESSION_BUS
    backend.close()


def test_portal_activation_reads_the_selection(app, qtbot, tmp_path, other_app, pulse_sink):
    from miodesk.ui.hotkeys.portal import PortalBackend
    from miodesk.ui.shortcuts_page import ShortcutsPage

    with ExitStack() as stack:
        portal = FakePortal(stack, tmp_path)
        reader = app.window.global_reader
        reader.start(PortalBackend(portal.address))
        stack.callback(reader.close)
        qtbot.waitUntil(lambda: reader.state(READ_SELECTION).status == Status.ACTIVE, timeout=15000)
        page = ShortcutsPage(app.controller.settings, reader)
        assert page.state_lines[READ_SELECTION].text() == "Works in every app: the desktop assigned CTRL+ALT+SHIFT+r."
        other_app.select("Chosen on a Wayland desktop. The portal said so.")
        with MonitorRecorder() as speakers:
            activated = time.monotonic()
            portal.activate(READ_SELECTION)
            qtbot.waitUntil(lambda: app.controller.state == "playing", timeout=30000)
            assert app.controller.document.text == "Chosen on a Wayland desktop. The portal said so."
            qtbot.waitUntil(lambda: speakers.first_sound_after(activated) is not None, timeout=60000)
            portal.activate(READ_SELECTION)  # again: stop
            qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=10000)
        # A shortcut the app did not bind, or another session's, does nothing.
        portal.activate("something-else")
        qtbot.wait(500)
        assert app.controller.state == "idle"


def test_settings_page_names_the_command_when_the_desktop_has_no_portal(app, qtbot, tmp_path):
    from miodesk.ui.hotkeys.portal import PortalBackend
    from miodesk.ui.shortcuts_page import ShortcutsPage

    with ExitStack() as stack:
        bus = FakePortal(stack, tmp_path, with_portal=False)
        reader = app.window.global_reader
        reader.start(PortalBackend(bus.address))
        stack.callback(reader.close)
        qtbot.waitUntil(lambda: reader.state(READ_SELECTION).status == Status.UNAVAILABLE, timeout=15000)
        page = ShortcutsPage(app.controller.settings, reader)
        assert page.state_lines[READ_SELECTION].text().startswith("This desktop lets no app set global shortcuts.")
        assert "miodesk --read-selection" in page.note.text() and "miodesk --read-clipboard" in page.note.text()


# --- Windows: RegisterHotKey and the copy, behind the Win32 seam ---------------------------------------------


class FakeWin32:
    """Windows as the seam sees it: hotkeys registered per process, keys held, a clipboard that an app in
    front fills when it gets Ctrl+C."""

    def __init__(self, clipboard: QClipboard | None = None, selected: str = "", taken: tuple = ()) -> None:
        self.registered: dict[int, tuple[int, int]] = {}
        self.taken = set(taken)  # (modifiers, key) another app registered
        self.calls: list[tuple] = []
        self.held_polls = 0
        self.sequence = 1
        self.clipboard = clipboard
        self.selected = selected
        self.refuse_input = False

    def register_hotkey(self, ident, modifiers, key):
        self.calls.append(("register", ident, modifiers, key))
        if (modifiers, key) in self.taken or (modifiers, key) in self.registered.values():
            return 1409
        self.registered[ident] = (modifiers, key)
        return 0

    def unregister_hotkey(self, ident):
        self.calls.append(("unregister", ident))
        self.registered.pop(ident, None)

    def keys_down(self, keys):
        self.calls.append(("keys_down",))
        if self.held_polls:
            self.held_polls -= 1
            return True
        return False

    def send_keys(self, strokes):
        self.calls.append(("send_keys", tuple(strokes)))
        if self.refuse_input:
            return False
        if self.selected and self.clipboard is not None:  # the app in front copies its selection
            self.clipboard.setText(self.selected)
            self.sequence += 1
        return True

    def clipboard_sequence(self):
        return self.sequence


def _post_hotkey(ident: int) -> int:
    """A WM_HOTKEY message in memory, as Qt's dispatcher hands it to the filter: its address."""
    from ctypes import wintypes

    message = wintypes.MSG()
    message.message, message.wParam = 0x0312, ident
    _post_hotkey.kept = message  # keep it alive while the filter reads it
    return ctypes.addressof(message)


def test_windows_hotkeys_registered_taken_and_pressed(qapp):
    from PySide6.QtCore import QByteArray

    from miodesk.ui.hotkeys.windows import FIRST_HOTKEY_ID, WindowsBackend

    taken = KeyCombo.parse("Ctrl+Alt+Shift+C").windows_key()
    api = FakeWin32(taken=(taken,))
    backend = WindowsBackend(api)
    pressed: list[str] = []
    backend.activated.connect(pressed.append)
    backend.bind({READ_SELECTION: KeyCombo.parse("Ctrl+Alt+Shift+R"), READ_CLIPBOARD: KeyCombo.parse("Ctrl+Alt+Shift+C")})
    assert backend.state(READ_SELECTION).status == Status.ACTIVE
    assert backend.state(READ_CLIPBOARD).status == Status.TAKEN
    assert api.registered == {FIRST_HOTKEY_ID: (MOD_CONTROL | MOD_ALT | MOD_SHIFT | MOD_NOREPEAT, ord("R"))}
    # WM_HOTKEY with our id, as Qt's event dispatcher hands thread messages to the native filters.
    handled = backend._filter.nativeEventFilter(QByteArray(b"windows_dispatcher_MSG"), _post_hotkey(FIRST_HOTKEY_ID))
    assert handled == (True, 0) and pressed == [READ_SELECTION]
    # Another program's hotkey id, or another platform's event: not ours.
    assert backend._filter.nativeEventFilter(QByteArray(b"windows_generic_MSG"), _post_hotkey(7)) == (False, 0)
    assert backend._filter.nativeEventFilter(QByteArray(b"xcb_generic_event_t"), _post_hotkey(FIRST_HOTKEY_ID)) == (
        False, 0)
    assert pressed == [READ_SELECTION]
    assert backend.probe(KeyCombo.parse("Ctrl+Alt+Shift+C")) == Status.TAKEN
    assert backend.probe(KeyCombo.parse("Ctrl+Alt+F2")) == Status.ACTIVE
    assert backend.probe(KeyCombo.parse("Ctrl+Alt+Shift+R")) == Status.ACTIVE and backend.held_by_us(
        KeyCombo.parse("Ctrl+Alt+Shift+R"))
    backend.close()
    assert api.registered == {} and ("unregister", FIRST_HOTKEY_ID) in api.calls


def test_windows_copy_takes_the_selection_and_restores_the_clipboard(qapp, qtbot):
    from PySide6.QtCore import QMimeData

    from miodesk.ui.hotkeys.windows import VK_C, VK_CONTROL, SelectionCopier

    clipboard = QGuiApplication.clipboard()
    mine = QMimeData()
    mine.setText("my own clipboard")
    mine.setHtml("<b>my own clipboard</b>")
    clipboard.setMimeData(mine)
    qtbot.waitUntil(lambda: clipboard.text() == "my own clipboard", timeout=5000)
    api = FakeWin32(clipboard, selected="The words selected in another app.")
    api.held_polls = 5  # the user still holds Ctrl+Alt+Shift for a moment
    copier = SelectionCopier(clipboard, api)
    got: list[str] = []
    copier.copy_selection(got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert got == ["The words selected in another app."]
    sends = [call for call in api.calls if call[0] == "send_keys"]
    assert sends == [("send_keys", ((VK_CONTROL, False), (VK_C, False), (VK_C, True), (VK_CONTROL, True)))]
    # Ctrl+C went out only after the modifiers were let go.
    assert api.calls.index(sends[0]) > 5
    # The user's clipboard is back, with its formats.
    assert clipboard.text() == "my own clipboard" and "<b>my own clipboard</b>" in clipboard.mimeData().html()

    # Nothing selected: the app copies nothing, the clipboard is never touched, the text is "".
    api = FakeWin32(clipboard, selected="")
    copier = SelectionCopier(clipboard, api)
    got.clear()
    copier.copy_selection(got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert got == [""] and clipboard.text() == "my own clipboard"
    # Windows refuses the input (an administrator's window in front): "" as well.
    api = FakeWin32(clipboard, selected="x")
    api.refuse_input = True
    got.clear()
    SelectionCopier(clipboard, api).copy_selection(got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert got == [""]


# --- macOS: the Services menu item, behind the ObjcRuntime seam ---------------------------------------------


class FakeObjc:
    """The Objective-C runtime as MioDesk's provider uses it; a pasteboard holding one string."""

    def __init__(self, pasteboard_text: bytes | None) -> None:
        self.calls: list[tuple] = []
        self.methods: dict[int, tuple] = {}
        self.text = pasteboard_text

    def get_class(self, name):
        return {"NSObject": 1, "NSApplication": 2}[name]

    def selector(self, name):
        return hash(name) & 0xFFFF

    def new_class(self, superclass, name):
        self.calls.append(("new_class", superclass, name))
        return 100

    def add_method(self, cls, selector, implementation, types):
        self.methods[selector] = (cls, implementation, types)
        return True

    def register_class(self, cls):
        self.calls.append(("register_class", cls))

    def send(self, receiver, selector, *args, restype=None, argtypes=()):
        self.calls.append(("send", receiver, selector, *args))
        answers = {"alloc": 101, "init": 102, "sharedApplication": 200, "setServicesProvider:": None,
                   "stringForType:": 300 if self.text is not None else None, "UTF8String": self.text}
        return answers[selector]

    def appkit_string(self, name):
        assert name == "NSPasteboardTypeString"
        return 400

    def update_dynamic_services(self):
        self.calls.append(("update_dynamic_services",))


def test_macos_services_menu_hands_its_text_to_the_reader(app, qtbot, pulse_sink, announced):
    sys.path.insert(0, str(REPO_ROOT / "installer"))
    try:
        import package_info
    finally:
        sys.path.remove(str(REPO_ROOT / "installer"))
    from miodesk.ui.hotkeys import macos

    # Info.plist declares the service the provider answers.
    service = package_info.macos_info_plist("0.1.0")["NSServices"][0]
    assert service["NSMessage"] == macos.SERVICE_MESSAGE and service["NSMenuItem"]["default"] == "Read with MioDesk"
    assert "NSStringPboardType" in service["NSSendTypes"]

    runtime = FakeObjc(b"Selected in Safari. Read it please.")
    backend = macos.ServicesBackend(runtime)
    reader = app.window.global_reader
    reader.start(backend)
    assert reader.state(READ_SELECTION).status == Status.SERVICES
    assert ("new_class", 1, "MioDeskServicesProvider") in runtime.calls
    assert ("send", 200, "setServicesProvider:", 102) in runtime.calls and ("update_dynamic_services",) in runtime.calls
    cls, implementation, types = runtime.methods[runtime.selector("readWithMioDesk:userData:error:")]
    assert (cls, types) == (100, b"v@:@@^@")
    # macOS calls the method (through the real ctypes callback) with the pasteboard: the text is read.
    implementation(102, 0, 500, 0, 0)
    qtbot.waitUntil(lambda: app.controller.state in ("loading", "playing"), timeout=10000)
    assert app.controller.document.text == "Selected in Safari. Read it please."
    assert ("send", 500, "stringForType:", 400) in runtime.calls
    app.controller.stop()
    # A pasteboard with no text: a notice, nothing read.
    runtime.text = None
    qtbot.waitUntil(lambda: app.controller.state == "idle", timeout=10000)
    announced.clear()
    implementation(102, 0, 501, 0, 0)
    assert announced == [("Nothing is selected.", False)] and app.controller.state == "idle"


# --- on the AT-SPI bus -------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ja"])
def test_shortcuts_page_on_the_accessibility_bus(tmp_path, miodesk_home, language):
    """What Orca reads of the page: each key field named by its label, its state (a key another app holds
    included) as its description, focusable; the real bridge, a private bus, read back with pyatspi."""
    from test_atspi import accessibility_session, read_jsonl, wait_for

    app_log, tree, stop = tmp_path / "app.json", tmp_path / "tree.jsonl", tmp_path / "stop"
    with ExitStack() as stack:
        children, env = accessibility_session(stack, tmp_path, MIODESK_HOME=str(miodesk_home))
        children.start("app", [sys.executable, str(HERE / "atspi_shortcuts_app.py"), "--language", language,
                               "--log", str(app_log), "--stop-file", str(stop)],
                       env=dict(env, QT_QPA_PLATFORM="xcb", QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1"))
        wait_for(app_log.exists, 60, "the Settings dialog did not show", children)
        time.sleep(1.0)  # the bridge describes a dialog that has just opened
        dumped = subprocess.run([SYSTEM_PYTHON, str(HERE / "atspi_tree.py"), "--app", "MioDesk", "--out", str(tree)],
                                env=env, capture_output=True, text=True, timeout=120)
        stop.touch()
        outputs = children.outputs()
    shown = json.loads(app_log.read_text(encoding="utf-8"))
    nodes = read_jsonl(tree)
    context = f"\n{json.dumps(shown, ensure_ascii=False)}\n{dumped.stderr[-2000:]}\n{outputs[-3000:]}"
    assert dumped.returncode == 0, context
    assert shown["states"] == {"read-selection": "active", "read-clipboard": "taken"}, context

    def field(label: str) -> dict:
        matching = [n for n in nodes if n.get("name") == label and "showing" in n.get("states", [])
                    and n.get("role") != "label"]
        assert len(matching) == 1, f"one control named {label!r}:{context}\n" + "\n".join(
            json.dumps(n, ensure_ascii=False) for n in nodes if n.get("name"))
        return matching[0]

    selection, clipboard = field(shown["selection_label"]), field(shown["clipboard_label"])
    for node, state in ((selection, shown["selection_state"]), (clipboard, shown["clipboard_state"])):
        assert node["description"] == state and "focusable" in node["states"], (node, context)
    if language == "en":
        assert shown["selection_state"] == "Ctrl+Alt+Shift+R works in every app."
        assert shown["clipboard_state"] == "Another app already uses Ctrl+Alt+Shift+C: choose another key."
    else:  # the Japanese catalogue
        assert shown["tab"] == "ショートカット" and shown["selection_label"] == "選択範囲を読む(S):", shown
        assert shown["clipboard_state"] == "Ctrl+Alt+Shift+C はほかのアプリが使っています。別のキーを選んでください。"
    defaults = [n for n in nodes if n.get("role") == "push button" and n.get("name") == shown["defaults"]]
    assert defaults and "focusable" in defaults[0]["states"], context


# --- Wayland: the selection through wl-clipboard ------------------------------------------------------------


def test_wayland_selection_comes_from_wl_paste_else_the_clipboard(qapp, qtbot, tmp_path, monkeypatch):
    """A background window gets no fresh selection from a Wayland compositor through Qt: wl-paste --primary
    (wl-clipboard) asks for it. A stand-in wl-paste here prints what it was asked and a selection."""
    from miodesk.ui.selection import CLIPBOARD, SELECTION, TextSource

    script = tmp_path / "wl-paste"
    script.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\n'
                      'if [ -e "$(dirname "$0")/empty" ]; then echo "No selection" >&2; exit 1; fi\n'
                      'printf "Selected in a Wayland app.\\000"\n', encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-test")
    QGuiApplication.clipboard().setText("On the clipboard.")
    source = TextSource(QGuiApplication.clipboard())
    got: list = []
    source.take(SELECTION, got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    assert (got[0].text, got[0].source, got[0].binary_removed) == ("Selected in a Wayland app.", SELECTION, 1)
    assert (tmp_path / "args").read_text(encoding="utf-8").split() == ["--primary", "--no-newline", "--type", "text"]
    (tmp_path / "empty").touch()  # nothing selected: the clipboard is read, and said to be
    got.clear()
    source.take(SELECTION, got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    assert (got[0].text, got[0].source, got[0].fell_back) == ("On the clipboard.", CLIPBOARD, True)
