"""Real playback: PortAudio → PulseAudio null sink, recorded back from the sink's monitor."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from audio_helpers import MonitorRecorder, dominant_frequency, tone, voiced_runs

from miodesk.audio.player import AudioDeviceError, AudioPlayer, RingBuffer, find_output_device

RATE = 44100


def test_ring_buffer_wraps_and_reports_what_it_took():
    ring = RingBuffer(10)
    assert ring.write(np.arange(8, dtype=np.float32)) == 8
    out = np.empty(5, np.float32)
    assert ring.read_into(out) == 5
    assert ring.write(np.arange(100, 110, dtype=np.float32)) == 7  # 3 left + 7 new fill it
    out = np.empty(12, np.float32)
    assert ring.read_into(out) == 10
    np.testing.assert_array_equal(out[:10], [5, 6, 7, 100, 101, 102, 103, 104, 105, 106])
    np.testing.assert_array_equal(out[10:], [0, 0])


def test_plays_in_order_without_gaps_and_fires_markers_when_audible(pulse_sink):
    heard: list[tuple[float, int]] = []
    frequencies = [440.0, 880.0, 660.0]
    with MonitorRecorder(RATE) as recorder:
        player = AudioPlayer(RATE, on_marker=lambda index: heard.append((time.monotonic(), index)))
        try:
            for index, frequency in enumerate(frequencies):
                player.add_marker(index)
                # Written in small pieces, like a streaming decoder delivers them.
                signal = tone(frequency, 0.6)
                for start in range(0, len(signal), 4410):
                    assert player.write(signal[start : start + 4410])
            player.end_of_audio()
            assert player.wait_until_played(timeout=10)
            recorder.catch_up(0.2)
        finally:
            player.close()
        recording = recorder.audio()

    assert player.underruns == 0
    runs = voiced_runs(recording)
    assert len(runs) == 1, runs  # one continuous stretch: no gap between the pieces
    assert abs((runs[0][1] - runs[0][0]) - 1.8) < 0.05
    start = int(runs[0][0] * RATE)
    for index, frequency in enumerate(frequencies):
        middle = recording[start + int((index * 0.6 + 0.2) * RATE) :][: int(0.2 * RATE)]
        assert abs(dominant_frequency(middle) - frequency) < 10

    assert [index for _, index in heard] == [0, 1, 2]
    # What was being recorded just after each event is that utterance's tone.
    for when, index in heard:
        assert abs(dominant_frequency(recorder.around(when + 0.1, 0.15)) - frequencies[index]) < 15


def test_pause_is_instant_and_resume_continues_the_same_sample(pulse_sink):
    signal = np.concatenate([tone(500.0, 0.5), tone(1000.0, 0.5)])
    with MonitorRecorder(RATE) as recorder:
        player = AudioPlayer(RATE)
        try:
            writer = threading.Thread(target=player.write, args=(signal,))
            writer.start()
            time.sleep(0.35)
            player.pause()
            player.end_of_audio()
            time.sleep(0.5)
            player.resume()
            writer.join()
            player.end_of_audio()
            assert player.wait_until_played(timeout=10)
            recorder.catch_up(0.2)
        finally:
            player.close()
        recording = recorder.audio()

    runs = voiced_runs(recording)
    assert len(runs) == 2, runs
    gap = runs[1][0] - runs[0][1]
    assert 0.4 < gap < 0.65
    played = sum(end - start for start, end in runs)
    assert abs(played - 1.0) < 0.04  # nothing lost, nothing repeated across the pause
    assert player.underruns == 0


def test_flush_drops_queued_audio_and_its_markers(pulse_sink):
    fired: list[int] = []
    player = AudioPlayer(RATE, on_marker=fired.append)
    try:
        player.add_marker(1)
        player.write(tone(440.0, 0.2))
        player.add_marker(2)
        player.write(tone(440.0, 2.0))
        deadline = time.monotonic() + 5
        while not fired and time.monotonic() < deadline:
            time.sleep(0.005)
        player.flush()  # marker 2 is 0.2 s of audio later: it must never fire
        player.add_marker(3)
        player.write(tone(440.0, 0.1))
        assert player.wait_until_played(timeout=5)
        time.sleep(0.05)
    finally:
        player.close()
    assert fired == [1, 3]


def test_stop_leaves_nothing_queued_by_a_writer_caught_between_check_and_write(pulse_sink):
    """Stop sets the writer's cancel event, then flushes: a write that had already passed its cancel check
    must not land after the flush (it would play for seconds after Stop)."""
    player = AudioPlayer(RATE)
    cancel = threading.Event()
    in_window = threading.Event()
    real_check = player.check_device

    def slow_check() -> None:  # widens the gap between the cancel check and the buffer write
        real_check()
        in_window.set()
        time.sleep(0.2)

    player.check_device = slow_check  # type: ignore[method-assign]
    try:
        writer = threading.Thread(target=player.write, args=(tone(440.0, 1.0), cancel))
        writer.start()
        assert in_window.wait(5)
        cancel.set()
        player.flush()
        writer.join(5)
        assert player.buffered_seconds == 0.0
    finally:
        player.close()


def test_volume_scales_the_output(pulse_sink):
    levels = []
    for volume in (1.0, 0.25):
        with MonitorRecorder(RATE) as recorder:
            player = AudioPlayer(RATE, volume=volume)
            try:
                player.write(tone(440.0, 0.4, amplitude=0.8))
                player.wait_until_played(timeout=5)
                time.sleep(0.1)
            finally:
                player.close()
            levels.append(np.max(np.abs(recorder.audio())))
    assert levels[1] == pytest.approx(levels[0] * 0.25, rel=0.1)


def test_unknown_output_device_is_a_clear_error(pulse_sink):
    with pytest.raises(AudioDeviceError, match="No audio output device matches 'no-such-speaker'"):
        find_output_device("no-such-speaker")
    with pytest.raises(AudioDeviceError, match="number 999"):
        find_output_device(999)
