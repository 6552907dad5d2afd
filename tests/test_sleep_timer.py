"""The sleep timer (issue 22): stop after a listening time or at the end of the chapter, with a fade-out.

Real parts: the player's fade on PortAudio → PulseAudio null sink, recorded back from its monitor; the whole
app with the generated models reading a document through the same sink; the menus driven by keys; the
button read back over a private AT-SPI bus as Orca would. The timer counts seconds here (the menu offers
minutes) and fades over 3 s instead of 8, so each test takes seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import MonitorRecorder, dominant_frequency, tone, voiced_runs
from gui_fixtures import SAMPLE_EN, screenshot, write_sample
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from miodesk.audio.player import FADE_FLOOR, AudioPlayer, Fade
from miodesk.ui.sleep_timer import FADE_SECONDS, Countdown

HERE = Path(__file__).parent
SYSTEM_PYTHON = "/usr/bin/python3"
RATE = 44100
LISTEN_S = 3.0  # the listening time the window tests set
FADE_S = 3.0  # and their fade (the app's is FADE_SECONDS)

TWO_CHAPTERS = """# Chapter One

The tide was out when we arrived. Gulls circled above the harbour.

# Chapter Two

Clouds came in from the west. We found a small café near the lighthouse.
"""


def envelope(samples: np.ndarray, window_s: float = 0.02) -> np.ndarray:
    """RMS of consecutive windows."""
    size = int(window_s * RATE)
    count = len(samples) // size
    return np.sqrt(np.mean(samples[: count * size].reshape(count, size) ** 2, axis=1))


def loudest(recording: np.ndarray) -> float:
    """The RMS of the loudest 50 ms of `recording` (speech has pauses; a level is where it speaks)."""
    levels = envelope(recording, 0.05)
    return float(levels.max()) if len(levels) else 0.0


def wait_for(check, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def open_document(qtbot, parts, path: Path):
    with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
        parts.window.open_path(path)
    return parts.controller.loaded


# --- the countdown ---------------------------------------------------------------------------------------


def test_only_listening_time_counts():
    now = [100.0]
    countdown = Countdown(60.0, clock=lambda: now[0])
    now[0] += 30  # not running yet (idle, loading): nothing counted
    countdown.run(True)
    now[0] += 20
    assert countdown.left() == 40.0
    countdown.run(False)  # paused
    now[0] += 600
    assert countdown.left() == 40.0
    countdown.run(True)
    now[0] += 45
    assert countdown.left() == 0.0  # never below zero
    countdown.restart()
    assert countdown.left() == 60.0 and countdown.running


# --- the player's fade on the real device -------------------------------------------------------------------


def test_fade_falls_evenly_to_silence_stays_silent_and_resume_restores_full_gain(pulse_sink):
    with MonitorRecorder(RATE) as recorder:
        player = AudioPlayer(RATE, volume=0.5)
        try:
            # 450 Hz: whole periods in each 20 ms window, so a steady tone has a steady window level.
            writer = threading.Thread(target=player.write, args=(tone(450.0, 3.0, amplitude=0.8),), daemon=True)
            writer.start()
            wait_for(lambda: player.frames_played >= 0.6 * player.device_rate, 10)
            player.fade_out(1.0)
            assert player.fade_state == Fade.FADING
            wait_for(lambda: player.fade_state == Fade.SILENT, 10)
            writer.join(10)
            player.end_of_audio()
            assert player.wait_until_played(timeout=10)
            assert player.fade_state == Fade.SILENT  # the rest of the tone played, silent
            player.resume()  # what every new reading does
            assert player.fade_state == Fade.NONE
            player.write(tone(450.0, 0.5, amplitude=0.8))
            player.end_of_audio()
            assert player.wait_until_played(timeout=10)
            recorder.catch_up(0.2)
        finally:
            player.close()
        recording = recorder.audio()

    levels = envelope(recording)  # 20 ms windows
    window_s = 0.02
    onset = int(np.argmax(levels > 0.05))
    full = float(np.median(levels[onset + 2 : onset + 20]))
    assert full == pytest.approx(0.8 * 0.5 / np.sqrt(2), rel=0.05)  # the volume applies
    begin = onset + 2 + int(np.argmax(levels[onset + 2 :] < 0.97 * full))  # the first window of the ramp
    ramp = levels[begin : begin + int(1.0 / window_s)]
    # The envelope only falls (a 20 ms window straddling the start may hold a little of the full level) …
    assert np.all(np.diff(ramp) <= 0.02 * full), np.round(ramp / full, 4)
    # … evenly in decibels: half-way through it is at half the depth (-24 dB of -48 dB).
    middle = float(ramp[int(0.5 / window_s)])
    assert middle / full == pytest.approx(FADE_FLOOR**0.5, rel=0.3)
    print(f"\nfade over 1 s: full level {full:.4f} RMS, half-way {20 * np.log10(middle / full):.1f} dB "
          f"(expected {20 * np.log10(FADE_FLOOR**0.5):.1f} dB)")
    # Then silence until the new reading (resume) plays at full gain again.
    after = levels[begin + int(1.05 / window_s) :]
    back = int(np.argmax(after > 0.05))
    assert back * window_s > 1.0  # the tone went on for ~1.4 s more, unheard
    # (The window just before `back` may straddle the new tone's first samples.)
    assert np.all(after[: back - 1] < 1e-3), float(after[: back - 1].max())
    assert float(np.median(after[back + 2 : back + 15])) == pytest.approx(full, rel=0.05)


def test_fade_at_a_marker_starts_exactly_there_asked_ahead_or_once_queued(pulse_sink):
    with MonitorRecorder(RATE) as recorder:
        player = AudioPlayer(RATE)
        try:
            # Asked before the marker exists (the sleep timer arms the chapter's end while it is read).
            player.fade_out(0.02, at_marker=("spoken", 1))
            assert player.fade_state == Fade.ARMED
            player.add_marker(("spoken", 0))
            player.write(tone(440.0, 0.5))
            player.add_marker(("spoken", 1))
            assert player.fade_state == Fade.FADING
            player.write(tone(880.0, 0.5))
            player.end_of_audio()
            assert player.wait_until_played(timeout=10)
            time.sleep(0.3)
            # Asked once the marker is queued, while the audio before it still plays.
            player.resume()
            player.write(tone(660.0, 0.5))
            player.add_marker(("spoken", 2))
            player.write(tone(880.0, 0.5))
            player.fade_out(0.02, at_marker=("spoken", 2))
            player.fade_out(0.02, at_marker=("spoken", 2))  # asked again: the same fade
            player.end_of_audio()
            assert player.wait_until_played(timeout=10)
            recorder.catch_up(0.2)
        finally:
            player.close()
        recording = recorder.audio()

    runs = voiced_runs(recording)
    assert len(runs) == 2, runs  # each time only the tone before the marker
    for (start, end), frequency in zip(runs, (440.0, 660.0), strict=True):
        assert end - start == pytest.approx(0.5, abs=0.04), runs
        assert dominant_frequency(recording[int(start * RATE) : int(end * RATE)]) == pytest.approx(frequency, abs=10)
    assert dominant_frequency(recording[int(runs[0][1] * RATE) + 2205 : int(runs[1][0] * RATE)]) == 0.0


# --- the window: a listening time, the end of a chapter --------------------------------------------------------


def test_time_up_fades_out_and_stops_at_the_sentence_that_faded(app, qtbot, tmp_path, pulse_sink, announced):
    window, controller, timer = app.window, app.controller, app.window.sleep_timer
    loaded = open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    assert timer.fade_seconds == FADE_SECONDS == 8.0
    timer.fade_seconds = FADE_S
    timer.warning_s = 1.0  # "1 minute left" comes at 60 s; here at 1 s
    timer.set_seconds(LISTEN_S)
    assert window.sleep_button.text() == "Sleep 0:03"
    assert window.sleep_button.accessibleName() == "Sleep timer: 1 minute left"
    states: list[tuple[float, str]] = []
    controller.stateChanged.connect(lambda state: states.append((time.monotonic(), state)))
    # Seen in the tick that begins the fade: a later look may already see the next sentence's start.
    fade_seen: list[tuple[float, int]] = []

    def note_fade_start() -> None:
        if timer.fading and not fade_seen:
            fade_seen.append((time.monotonic(), controller.position))

    timer.changed.connect(note_fade_start)
    with MonitorRecorder() as speakers:
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: controller.state == "playing", timeout=60000)
        qtbot.wait(1000)
        window.actions_by_name["play"].trigger()  # pause: the time paused does not count
        assert controller.state == "paused"
        qtbot.wait(1500)
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: timer.fading, timeout=30000)
        [(fade_began, fading_from)] = fade_seen
        screenshot(window, "sleep-timer-fading")
        qtbot.waitUntil(lambda: controller.state == "idle", timeout=20000)
        stopped = time.monotonic()
        qtbot.wait(1000)

    # The fade began after LISTEN_S of playing; the 1.5 s paused did not count.
    played, since = 0.0, None
    for when, state in [(when, state) for when, state in states if when < fade_began]:
        if since is not None:
            played += when - since
        since = when if state == "playing" else None
    played += fade_began - since if since is not None else 0.0
    assert LISTEN_S - 0.05 <= played <= LISTEN_S + 0.6, states
    assert fade_began - states[0][0] > LISTEN_S + 1.4
    # The level falls over the fade (the loudest speech of its first third against its last third), then
    # nothing is heard; the stop came once the fade had been heard to its end.
    heard_from = fade_began + 0.2  # the device's latency
    first = loudest(speakers.around(heard_from, FADE_S / 3))
    last = loudest(speakers.around(heard_from + 2 * FADE_S / 3, FADE_S / 3))
    assert first > 0.02 and first > 5 * last, (first, last)
    print(f"\nplayed {played:.2f} s before the fade (paused 1.5 s not counted); loudest 50 ms of the fade's first "
          f"third {first:.4f}, last third {last:.4f} RMS ({20 * np.log10(last / first):.1f} dB); stopped "
          f"{stopped - fade_began:.2f} s after the fade began")
    assert speakers.silent_since(fade_began + FADE_S + 0.3)
    assert FADE_S <= stopped - fade_began <= FADE_S + 1.5
    # Stopped where the fading sentence starts (kept for the next Play and saved), announced.
    assert controller.state == "idle"
    assert fading_from in [u.start for u in loaded.utterances]
    assert controller.position == fading_from and controller.positions.get(loaded.key) == fading_from
    assert [text for text, _ in announced if text.startswith("Sleep timer")] == [
        "Sleep timer: reading stops after 3 seconds of listening.", "Sleep timer: 1 minute left.",
        "Sleep timer: reading stopped. Play goes on from the sentence that faded out."]
    # Still chosen for this run of the app: the whole time again for the next Play.
    assert timer.time_left() == LISTEN_S and window.sleep_button.text() == "Sleep 0:03"

    started: list[int] = []
    controller.utteranceStarted.connect(lambda index, start, end: started.append(start))
    window.actions_by_name["play"].trigger()
    qtbot.waitUntil(lambda: bool(started), timeout=30000)
    assert started[0] == fading_from  # Play goes on from the sentence that faded: nothing missed
    window.actions_by_name["stop"].trigger()
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=10000)


def test_end_of_chapter_stops_before_anything_of_the_next_chapter_is_heard(app, qtbot, tmp_path, pulse_sink,
                                                                          announced):
    window, controller, timer = app.window, app.controller, app.window.sleep_timer
    loaded = open_document(qtbot, app, write_sample(tmp_path / "two.md", TWO_CHAPTERS))
    second = controller.section_starts()[1]
    first_of_second = next(i for i, u in enumerate(loaded.utterances) if u.start >= second)
    window.sleep_menu.choices["chapter"].trigger()
    assert window.sleep_button.text() == "Sleep: end of chapter"
    assert window.sleep_button.accessibleName() == "Sleep timer: end of chapter"
    heard: list[tuple[float, int]] = []
    controller.utteranceStarted.connect(lambda index, start, end: heard.append((time.monotonic(), index)))
    with MonitorRecorder() as speakers:
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: controller.state == "idle" and bool(heard), timeout=60000)
        stopped = time.monotonic()
        qtbot.wait(1500)

    assert [index for _, index in heard] == list(range(first_of_second))
    last_sentence_heard = heard[-1][0]
    assert speakers.first_sound_after(last_sentence_heard) is not None  # chapter one's last sentence
    # Nothing after it: the stop came with the next chapter's first sample, which the player had muted.
    assert speakers.silent_since(stopped - 0.2), speakers.first_sound_after(stopped - 0.2) - stopped
    print(f"\nchapter one's last sentence heard at +0 s, the stop at +{stopped - last_sentence_heard:.2f} s, "
          f"silent from then on")
    assert controller.position == loaded.utterances[first_of_second].start == second
    assert controller.positions.get(loaded.key) == second
    assert ("Sleep timer: reading stopped at the end of the chapter.", False) in announced
    assert timer.mode == "chapter"  # remembered for the next Play


def test_a_reader_who_acts_during_the_fade_is_awake(app, qtbot, tmp_path, pulse_sink):
    """Next Sentence during the fade: the sound comes back at full level and the whole time starts again."""
    window, controller, timer = app.window, app.controller, app.window.sleep_timer
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    timer.fade_seconds = FADE_S
    timer.set_seconds(2.0)
    with MonitorRecorder() as speakers:
        window.actions_by_name["play"].trigger()
        qtbot.waitUntil(lambda: timer.fading, timeout=60000)
        qtbot.waitUntil(lambda: controller.pipeline.fade_state() == "fading", timeout=5000)
        qtbot.wait(int(FADE_S * 1000 * 0.7))  # well into the fade: quiet
        quiet = loudest(speakers.around(time.monotonic() - 0.4, 0.4))
        window.actions_by_name["next_sentence"].trigger()
        qtbot.waitUntil(lambda: not timer.fading, timeout=5000)
        acted = time.monotonic()
        assert controller.state == "playing" and timer.time_left() > 1.5
        qtbot.wait(800)
        back = loudest(speakers.around(acted + 0.2, 0.6))
        window.actions_by_name["stop"].trigger()
        qtbot.waitUntil(lambda: controller.state == "idle", timeout=10000)
    assert back > 0.02 and back > 8 * quiet, (quiet, back)


# --- keyboard and screen reader ---------------------------------------------------------------------------------


def press_in_popup(qtbot, keys: list[Qt.Key]) -> list[bool]:
    """Press `keys` in the menu that pops up next (a tool button's menu runs its own event loop); the list
    holds True once they have been pressed."""
    pressed: list[bool] = []

    def press() -> None:
        menu = QApplication.activePopupWidget()
        if menu is None:
            QTimer.singleShot(20, press)
            return
        for key in keys:
            qtbot.keyClick(menu, key)
        pressed.append(True)

    QTimer.singleShot(20, press)
    return pressed


def test_the_sleep_timer_from_the_keyboard(app, qtbot, tmp_path, announced):
    window, timer = app.window, app.window.sleep_timer
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    # Playback › Sleep Timer › 10 minutes: Alt+P, T, two down from Off, Enter.
    qtbot.keyClick(window.reader, Qt.Key.Key_P, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None, timeout=3000)
    playback = QApplication.activePopupWidget()
    qtbot.keyClick(playback, Qt.Key.Key_T)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is window.sleep_menu, timeout=3000)
    assert window.sleep_menu.activeAction() is window.sleep_menu.choices["off"]
    for key in (Qt.Key.Key_Down, Qt.Key.Key_Down, Qt.Key.Key_Return):
        qtbot.keyClick(window.sleep_menu, key)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None, timeout=3000)
    assert timer.mode == "time" and timer.length == 600 and window.sleep_menu.choices[10].isChecked()
    button = window.sleep_button
    assert button.text() == "Sleep 10:00" and button.accessibleName() == "Sleep timer: 10 minutes left"
    assert announced[-1] == ("Sleep timer: reading stops after 10 minutes of listening.", False)
    screenshot(window, "sleep-timer-set-en")

    # Tab reaches the button after the play buttons (Stop is off while idle); Space opens its menu, Up (round
    # to the last item) picks End of Chapter.
    window.transport.buttons["next_chapter"].setFocus()
    qtbot.keyClick(window.transport.buttons["next_chapter"], Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is button
    pressed = press_in_popup(qtbot, [Qt.Key.Key_Up, Qt.Key.Key_Return])
    qtbot.keyClick(button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: bool(pressed) and QApplication.activePopupWidget() is None, timeout=5000)
    assert timer.mode == "chapter" and window.sleep_menu.choices["chapter"].isChecked()
    assert button.text() == "Sleep: end of chapter"
    assert announced[-1] == ("Sleep timer: reading stops at the end of this chapter.", False)
    # Off again, and nothing of it is saved in the settings.
    pressed = press_in_popup(qtbot, [Qt.Key.Key_Down, Qt.Key.Key_Return])
    qtbot.keyClick(button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: bool(pressed) and QApplication.activePopupWidget() is None, timeout=5000)
    assert timer.mode == "off" and button.text() == "Sleep timer" and button.accessibleName() == "Sleep timer: off"
    screenshot(window.sleep_menu, "sleep-timer-menu-en")
    assert not [name for name in window.settings.to_json() if "sleep" in name]


def test_the_button_and_its_announcement_on_the_accessibility_bus(tmp_path, miodesk_home):
    """What Orca reads: the button named with the state and the time left, focusable, described; the choice
    announced. The real bridge on a private bus, read back with pyatspi."""
    from test_atspi import accessibility_session, read_jsonl, wait_for

    app_log, tree, events, stop = tmp_path / "app.json", tmp_path / "tree.jsonl", tmp_path / "events.jsonl", \
        tmp_path / "stop"
    with ExitStack() as stack:
        children, env = accessibility_session(stack, tmp_path, MIODESK_HOME=str(miodesk_home))
        listener = children.start("listener", [SYSTEM_PYTHON, str(HERE / "atspi_listener.py"), "--log", str(events),
                                               "--stop-file", str(stop), "--seconds", "90"], env=env)
        wait_for(lambda: any(r["kind"] == "ready" for r in read_jsonl(events)) or listener.poll() is not None, 60,
                 "the listener did not register", children)
        children.start("app", [sys.executable, str(HERE / "atspi_sleep_app.py"), "--minutes", "30",
                               "--log", str(app_log), "--stop-file", str(stop)],
                       env=dict(env, QT_QPA_PLATFORM="xcb", QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1"))
        wait_for(app_log.exists, 60, "the app did not choose a sleep time", children)
        time.sleep(1.0)  # the bridge sends the name change
        dumped = subprocess.run([SYSTEM_PYTHON, str(HERE / "atspi_tree.py"), "--app", "MioDesk", "--out", str(tree)],
                                env=env, capture_output=True, text=True, timeout=120)
        stop.touch()
        outputs = children.outputs()
    shown = json.loads(app_log.read_text(encoding="utf-8"))
    nodes = read_jsonl(tree)
    context = f"\n{json.dumps(shown)}\n{dumped.stderr[-2000:]}\n{outputs[-3000:]}"
    assert dumped.returncode == 0, context
    assert shown["text"] == "Sleep 30:00" and shown["name"] == "Sleep timer: 30 minutes left", shown
    buttons = [n for n in nodes if n.get("name") == "Sleep timer: 30 minutes left"]
    assert len(buttons) == 1, context + "\n" + "\n".join(json.dumps(n) for n in nodes if n.get("name"))
    assert buttons[0]["role"] in ("push button", "toggle button"), buttons[0]
    assert buttons[0]["description"] == shown["description"], buttons[0]
    assert {"focusable", "has popup"} <= set(buttons[0]["states"]), buttons[0]
    announcements = [e for e in read_jsonl(events) if e.get("type") == "object:announcement"
                     and e.get("source", {}).get("app") == "MioDesk"]
    assert [e["any_data"] for e in announcements] == ["Sleep timer: reading stops after 30 minutes of listening."], \
        context

