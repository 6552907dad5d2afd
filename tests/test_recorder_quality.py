"""Quality checks, trimming and take combination on known signals (no audio device needed)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from mic_fixtures import speech_wav  # noqa: F401 - fixture

from miodesk.audio.recorder import Recording, analyse, combine_takes, find_input_device, reading_text, trim
from miodesk.errors import VoiceRecordingError

RATE = 22050


@pytest.fixture(scope="module")
def speech(speech_wav) -> np.ndarray:  # noqa: F811 - fixture
    samples, rate = soundfile.read(str(speech_wav), dtype="float32")
    assert rate == RATE
    pad = np.zeros(RATE, np.float32)  # 1 s of silence before and after, to be trimmed
    return np.concatenate([pad, samples, pad])


def test_clean_speech_passes_and_is_trimmed(speech):
    report = analyse(speech, RATE)
    assert report.ok, report.summary()
    assert report.snr_db > 40
    assert 5.0 < report.speech_seconds < 9.0
    trimmed = trim(speech, report)
    # the leading and trailing second of silence is gone, keeping a 0.25 s margin
    assert 0.7 * RATE <= report.start <= 1.0 * RATE
    assert len(speech) - report.end >= 0.7 * RATE
    assert len(trimmed) == report.end - report.start
    assert "short" in report.codes()  # under 10 s of speech: a hint, not a refusal


def test_silence_is_refused():
    report = analyse(np.zeros(RATE * 5, np.float32), RATE)
    assert not report.ok and report.codes() == {"silence"}
    assert "microphone" in report.errors[0].message


def test_clipping_is_refused(speech):
    report = analyse(np.clip(speech * 20, -1, 1), RATE)
    assert "clipping" in {i.code for i in report.errors}


def test_noise_is_refused(speech):
    rng = np.random.default_rng(1)
    report = analyse(rng.normal(0, 0.1, RATE * 10).astype(np.float32), RATE)
    assert "noise" in {i.code for i in report.errors}
    noisy = speech + rng.normal(0, 0.05, len(speech)).astype(np.float32)
    assert "noise" in analyse(noisy, RATE).codes()


def test_too_short_and_too_quiet(speech):
    short = analyse(speech[: 4 * RATE], RATE)
    assert "short" in {i.code for i in short.errors}
    quiet = analyse(speech * 0.003, RATE)
    assert "quiet" in {i.code for i in quiet.errors}
    soft = analyse(speech * 0.05, RATE)
    assert "quiet" in {i.code for i in soft.warnings}


def test_takes_are_joined_best_first_and_bad_takes_dropped(speech):
    rng = np.random.default_rng(2)
    noisy = speech + rng.normal(0, 0.003, len(speech)).astype(np.float32)
    silent = np.zeros(RATE * 3, np.float32)
    takes = [Recording(noisy, RATE), Recording(silent, RATE), Recording(speech, RATE)]
    combined, reports = combine_takes(takes)
    assert [r.ok for r in reports] == [True, False, True]
    first = trim(speech, reports[2])
    np.testing.assert_array_equal(combined.samples[: len(first)], first)  # the cleaner take leads
    assert len(combined.samples) == len(first) + int(0.3 * RATE) + len(trim(noisy, reports[0]))
    with pytest.raises(VoiceRecordingError):
        combine_takes([])


def test_unknown_microphone_is_one_clear_error():
    with pytest.raises(VoiceRecordingError, match="No microphone matches"):
        find_input_device("no such microphone at all")


def test_reading_texts():
    assert "。" in reading_text("ja_JP") and reading_text("en").startswith("On quiet")
