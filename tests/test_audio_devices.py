"""Output devices as users meet them: one that plays 48 kHz only, and one whose name is Japanese.

All real parts. The 48 kHz-only device is a JACK server (dummy backend, fixed at 48 kHz), which
fixes its rate the way WASAPI shared mode fixes the mixer's: PortAudio reaches it through ALSA
(alsa-plugins' `jack` PCM refuses every rate but the server's) and through its own JACK host API.
Both play into the server's loopback port, which a JACK client records back at 48 kHz.
(alsa-lib's `share` plugin can pin a rate in a config file alone, but 1.2.8 corrupts the heap when
it closes, and PortAudio opens and closes every device when it starts. PulseAudio's JACK modules
would bring the audio into a null sink, but a late JACK client there can stall the PulseAudio
daemon that other tests share.)

The Unicode device is an ALSA PCM with a Japanese name that plays into a PulseAudio null sink.

PortAudio reads the ALSA configuration and the JACK server name once, when it starts, so whatever
opens these devices runs in a subprocess with ALSA_CONFIG_PATH and JACK_DEFAULT_SERVER set: this
file run as a script (`_child` at the end), or the real `miodesk` command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
from audio_helpers import (
    JackRecorder,
    MonitorRecorder,
    aligned_similarity,
    dominant_frequency,
    tone,
    voiced_runs,
    windows_found,
)
from conftest import GOLDEN, REPO_ROOT, CliResult, assert_one_line_error
from gguf_fixtures import make_model

from miodesk.audio.resample import resample

DEVICE_RATE = 48000
SOURCE_RATE = 44100  # the default codec's rate
# ß checks full case folding (STRASSE finds it); the katakana also match their half-width forms.
UNICODE_NAME = "スピーカー (Realtek® Audio) — Straße 日本語"


@dataclass
class Jack48k:
    env: dict[str, str]  # what a subprocess needs to see the devices
    server: str  # the JACK server, fixed at 48 kHz
    alsa_name: str  # ALSA PCM → the server's loopback port
    jack_name: str  # the same port, as PortAudio's JACK host API names it


@dataclass
class UnicodeDevice:
    env: dict[str, str]
    sink: str  # PulseAudio null sink behind the Japanese-named ALSA PCM


def _pactl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=20)


def _realtime_allowed() -> bool:
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def jack_48k_device(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("jackd") is None:
        pytest.fail("jackd is not installed; tests/run.sh installs it (package jackd2)")
    # Without realtime threads a busy machine makes JACK drop or repeat whole periods (and
    # alsa-plugins' jack PCM swap them in pairs), so the comparisons here would fail for JACK's sake.
    if not _realtime_allowed():
        pytest.fail("JACK needs realtime scheduling, which this user may not use: run the tests as root "
                    "or raise the limit (`ulimit -r 95`, or `sudo prlimit --rtprio=95 --pid $$` for the shell)")
    folder = tmp_path_factory.mktemp("jack_48k")
    server = f"miodesk_test_{os.getpid()}"  # other test sessions may share this machine
    config = folder / "asound.conf"
    config.write_text(
        "</usr/share/alsa/alsa.conf>\n"  # keep every system device (pulse, default, ...)
        'pcm.miodesk_alsa_48k { type jack playback_ports { 0 "loopback:playback_1" } }\n',
        encoding="utf-8",
    )
    # JACK clients must find this server and never start one of their own.
    env = {"ALSA_CONFIG_PATH": str(config), "JACK_DEFAULT_SERVER": server, "JACK_NO_START_SERVER": "1"}
    jack_log = (folder / "jackd.log").open("w", encoding="utf-8")
    # -R: realtime threads. -S: the server waits for its clients each period.
    # -L 1: a loopback client, whose input comes back out of its output for the recorder.
    jackd = subprocess.Popen(
        ["jackd", "-R", "-P", "10", "-S", "-n", server, "-L", "1",
         "-d", "dummy", "-r", str(DEVICE_RATE), "-p", "1024"],
        stdout=jack_log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"),  # no D-Bus sound-card reservation
    )
    try:
        for _ in range(100):
            ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, env=dict(os.environ, **env))
            if "loopback:playback_1" in ports.stdout:
                break
            assert jackd.poll() is None, (folder / "jackd.log").read_text(encoding="utf-8")
            time.sleep(0.1)
        assert "loopback:playback_1" in ports.stdout, ports
        yield Jack48k(env, server, "miodesk_alsa_48k", "loopback")
    finally:
        jackd.terminate()
        jackd.wait(timeout=10)
        jack_log.close()


@pytest.fixture(scope="module")
def unicode_device(pulse_sink, tmp_path_factory: pytest.TempPathFactory):
    sink = f"miodesk_unicode_{os.getpid()}"  # other test sessions may share this PulseAudio daemon
    config = tmp_path_factory.mktemp("unicode_device") / "asound.conf"
    config.write_text(
        "</usr/share/alsa/alsa.conf>\n"
        f'pcm."{UNICODE_NAME}" {{ type pulse device {sink} }}\n',
        encoding="utf-8",
    )
    loaded = _pactl(
        "load-module", "module-null-sink", f"sink_name={sink}", "rate=44100", "channels=1",
        # module arguments in double quotes, the property value inside them in single quotes
        f"sink_properties=\"device.description='{UNICODE_NAME}'\"",
    )
    assert loaded.returncode == 0, loaded.stderr
    try:
        yield UnicodeDevice({"ALSA_CONFIG_PATH": str(config)}, sink)
    finally:
        _pactl("unload-module", loaded.stdout.strip())


def run_child(env: dict[str, str], *args: str, encoding: str = "utf-8", timeout: float = 60) -> dict:
    """Run this file as a script (see `_child`) with the test devices visible; its JSON answer."""
    completed = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        env=dict(os.environ, **env, PYTHONIOENCODING=encoding),
        cwd=REPO_ROOT,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stderr.decode(encoding, "replace")
    return json.loads(completed.stdout.decode("ascii").splitlines()[-1])


def run_miodesk(env: dict[str, str], *args: str | Path, stdin: str | None = None, encoding: str = "utf-8",
                timeout: float = 300) -> subprocess.CompletedProcess:
    """The real `miodesk` command, as a user with these devices runs it."""
    return subprocess.run(
        [sys.executable, "-m", "miodesk", *map(str, args)],
        input=None if stdin is None else stdin.encode("utf-8"),
        capture_output=True,
        env=dict(os.environ, **env, PYTHONIOENCODING=encoding),
        cwd=REPO_ROOT,
        timeout=timeout,
    )


# --- the device that plays 48 kHz only ------------------------------------------------------------------

FREQUENCIES = [440.0, 1000.0, 660.0]
TONE_S = 1.0


@pytest.mark.parametrize("host_api", ["alsa", "jack"])
def test_a_48khz_only_device_plays_44khz_audio_at_the_right_pitch_and_length(jack_48k_device, host_api):
    device = jack_48k_device
    name = device.alsa_name if host_api == "alsa" else device.jack_name
    with JackRecorder(device.server, DEVICE_RATE) as recorder:
        played = run_child(device.env, "play", name, *map(str, FREQUENCIES))
        recorder.catch_up(0.3)
    recording = recorder.audio()

    # The device really refuses the codec's rate, and the player found the one it takes.
    assert played["name"] == name
    assert played["hostapi"] == {"alsa": "ALSA", "jack": "JACK Audio Connection Kit"}[host_api]
    assert played["accepts"] == {"44100": False, "48000": True}
    assert played["device_rate"] == DEVICE_RATE
    assert played["underruns"] == 0
    assert played["played_all"]

    runs = voiced_runs(recording, DEVICE_RATE)
    assert len(runs) == 1, runs  # one stretch: no gap, nothing dropped by the resampler
    duration = runs[0][1] - runs[0][0]
    assert abs(duration - len(FREQUENCIES) * TONE_S) < 0.05, duration
    start = int(runs[0][0] * DEVICE_RATE)
    for index, frequency in enumerate(FREQUENCIES):
        middle = recording[start + int((index + 0.1) * DEVICE_RATE) :][: int(0.8 * DEVICE_RATE)]
        assert abs(dominant_frequency(middle, DEVICE_RATE) - frequency) < 2.0, (index, frequency)

    # Position events follow the 48 kHz stream: just after each fires, its own tone is being heard.
    assert [index for _, index in played["markers"]] == [0, 1, 2]
    for when, index in played["markers"]:
        heard = dominant_frequency(recorder.around(when + 0.1, 0.2), DEVICE_RATE)
        assert abs(heard - FREQUENCIES[index]) < 15, (index, heard)


@pytest.fixture(scope="module")
def speech_model(tmp_path_factory: pytest.TempPathFactory):
    return make_model(tmp_path_factory.mktemp("device_models"), "devices", "qwen3", eog_probability=0.03, seed=2)


def test_miodesk_read_on_a_48khz_only_device_plays_the_same_speech_as_a_rendered_file(
    jack_48k_device, speech_model, tmp_path
):
    """`miodesk read --device NAME` end to end: generated models, resampled to 48 kHz, through ALSA."""
    text = "Hello there, this is a test. And here is a second sentence, a little longer."
    # --full-decode makes the live audio exactly the rendered file's (streaming windows follow the
    # sink's buffer, so they differ between a file and a device).
    common = ["--voice", GOLDEN / "presets" / "en_female.pt", "--model", speech_model.path,
              "--codec", GOLDEN / "codec" / "v2_44k", "--seed", "5", "--full-decode"]
    rendered = tmp_path / "rendered.wav"
    result = run_miodesk(jack_48k_device.env, "read", "-", "-o", rendered, *common, stdin=text)
    assert result.returncode == 0, result.stderr.decode()
    reference, rate = soundfile.read(str(rendered), dtype="float32")
    assert rate == SOURCE_RATE and len(reference) > 2 * SOURCE_RATE  # seconds of speech

    with JackRecorder(jack_48k_device.server, DEVICE_RATE) as recorder:
        # Upper case: names match case-insensitively.
        result = run_miodesk(jack_48k_device.env, "read", "-", "--device", "ALSA_48K", "--stats", *common, stdin=text)
        recorder.catch_up(0.3)
    assert result.returncode == 0, result.stderr.decode()
    stats = json.loads(result.stdout.decode().splitlines()[-1])
    assert stats["underruns"] == 0
    recording = recorder.audio()

    # The rendered file (16-bit, so clipped like the recording is here) resampled the same way.
    expected = resample(reference, SOURCE_RATE, DEVICE_RATE)
    heard = np.clip(recording, -1.0, 1.0)
    # 50 ms windows, each looked for within two JACK periods: sample for sample at 48 kHz.
    found = windows_found(heard, expected, window=2400, slack=2048)
    assert found >= 0.8, found
    # All of it, the last word included (closing the player no longer cuts what is in flight).
    spoken = voiced_runs(expected, DEVICE_RATE)
    recorded = voiced_runs(recording, DEVICE_RATE)
    end = int(spoken[-1][1] * DEVICE_RATE)
    # Looked for on its own (a period the server dropped earlier under load shifts it), near where it belongs.
    last_word_end = expected[end - 4800 : end]
    offset, _ = aligned_similarity(heard, expected)
    near_the_end = heard[max(0, offset + end - 4800 - DEVICE_RATE) : offset + end + DEVICE_RATE]
    assert aligned_similarity(near_the_end, last_word_end)[1] >= 0.98, (len(heard), offset, len(expected), end)
    length_expected = spoken[-1][1] - spoken[0][0]
    length_recorded = recorded[-1][1] - recorded[0][0]
    assert abs(length_recorded - length_expected) < 0.05 * length_expected, (length_recorded, length_expected)


# --- a device whose name is any Unicode --------------------------------------------------------------


@pytest.mark.parametrize("query", ["スピーカー", "REALTEK® AUDIO) — STRASSE", "ｽﾋﾟｰｶｰ", "日本語"])
def test_a_unicode_device_is_found_by_any_part_of_its_name_and_plays(unicode_device, query):
    with MonitorRecorder(44100, source=f"{unicode_device.sink}.monitor") as recorder:
        played = run_child(unicode_device.env, "play", query, "523.25", encoding="cp1252")
        recorder.catch_up(0.2)
    assert played["name"] == UNICODE_NAME
    assert played["device_rate"] == 44100  # PulseAudio takes the codec's rate: no resampling
    assert played["played_all"] and played["underruns"] == 0
    runs = voiced_runs(recorder.audio())
    assert len(runs) == 1 and abs(runs[0][1] - runs[0][0] - TONE_S) < 0.05, runs
    assert abs(dominant_frequency(recorder.audio()) - 523.25) < 3


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "cp932", "ascii"])
def test_doctor_and_device_errors_show_unicode_names_on_any_console(unicode_device, speech_model, encoding):
    doctor = run_miodesk(unicode_device.env, "doctor", encoding=encoding)
    assert doctor.returncode == 0, doctor.stderr.decode(encoding, "replace")
    assert b"Traceback" not in doctor.stderr
    # Shown as is where the console can, as \uXXXX escapes where it cannot; never lost.
    shown = UNICODE_NAME.encode(encoding, "backslashreplace")
    assert shown in doctor.stdout, doctor.stdout.decode(encoding, "replace")

    missing = run_miodesk(
        unicode_device.env, "read", "-", "--device", "存在しないスピーカー", "--model", speech_model.path,
        "--codec", GOLDEN / "codec" / "24k", "--voice", GOLDEN / "presets" / "en_female.pt",
        stdin="Hello.", encoding=encoding,
    )
    assert missing.returncode == 1
    stderr = missing.stderr.decode(encoding)
    assert_one_line_error(
        CliResult(missing.returncode, "", stderr),
        "No audio output device matches",
        "存在しないスピーカー".encode(encoding, "backslashreplace").decode(encoding),
        UNICODE_NAME.encode(encoding, "backslashreplace").decode(encoding),
    )


# --- the subprocess side -------------------------------------------------------------------------------


def _child(args: list[str]) -> None:
    """`play DEVICE FREQ...`: play 1 s tones at 44.1 kHz through AudioPlayer, a marker before each.

    Prints one JSON line (ASCII, so any console encoding carries it).
    """
    import sounddevice

    from miodesk.audio.player import AudioPlayer, find_output_device

    command, device, *frequencies = args
    assert command == "play"
    index = find_output_device(device)
    info = sounddevice.query_devices(index)
    accepts = {}
    for rate in (44100, 48000):
        try:
            sounddevice.check_output_settings(device=index, samplerate=rate, channels=1, dtype="float32")
            accepts[rate] = True
        except sounddevice.PortAudioError:
            accepts[rate] = False
    markers: list[tuple[float, int]] = []
    player = AudioPlayer(SOURCE_RATE, device=device, on_marker=lambda i: markers.append((time.monotonic(), i)))
    try:
        for number, frequency in enumerate(map(float, frequencies)):
            player.add_marker(number)
            signal = tone(frequency, TONE_S, SOURCE_RATE)
            for start in range(0, len(signal), 4410):  # in pieces, as the streaming decoder delivers
                player.write(signal[start : start + 4410])
        player.end_of_audio()
        played_all = player.wait_until_played(timeout=20)
    finally:  # closing at once: the player itself lets the last audio reach the device
        player.close()
    print(json.dumps({
        "name": info["name"],
        "hostapi": sounddevice.query_hostapis(info["hostapi"])["name"],
        "accepts": accepts,
        "device_rate": player.device_rate,
        "underruns": player.underruns,
        "played_all": played_all,
        "markers": markers,
    }))


if __name__ == "__main__":
    _child(sys.argv[1:])
