"""Microphone recording for personal voices, with plain-language quality checks.

`Recorder` captures mono float32 from a PortAudio input (sounddevice) into a preallocated buffer; the
callback only copies and keeps the last block's level, so the UI or CLI polls `level` for a meter.

Quality thresholds (measured with the golden small codec + WavLM on espeak-ng speech; see
tests/test_recorder_quality.py):
- The voice vector of a clip drifts with what is said. Against a 17 s reference, the L2 distance of
  a prefix's vector was 1.7–2.6 at 1 s, 0.7–0.9 at 3 s, 0.5–0.7 at 5 s, 0.3–0.4 at 10 s, while two
  different espeak voices were 0.57–0.68 apart. Under 5 s of speech the words outweigh the voice:
  refused. 5–10 s: allowed with a hint. The reference uses at most 20 s; recordings stop at 30 s.
- Noise: SNR from 20 ms frame energies (95th percentile = speech, 10th = background). Below 15 dB
  the background dominates the pauses the encoder also sees: refused; below 25 dB: a hint.
- Clipping: samples at full scale (|x| ≥ 0.999). Over 1 % is audibly distorted: refused; over
  0.05 %: a hint. The encoder peak-normalises, so loudness only matters through clipping and noise.
- Too quiet: speech level below −40 dBFS gets a hint, below −55 dBFS it is refused (the mic's own
  hiss then sets the SNR); a peak under −80 dBFS or speech under −70 dBFS counts as silence.
- Mostly silence: speech in under 40 % of the trimmed recording gets a hint.

Takes: several takes are combined by concatenating their trimmed speech (best SNR first, 0.3 s
gaps, up to the encoder's 20 s) and encoding once. Measured on the golden models, the vector of the
concatenation was 3–5× closer to a long reference than the mean of per-take vectors (cosine distance
0.0002–0.0004 vs 0.0008–0.0021); averaging vectors also leaves the LayerNorm output manifold.
Takes with errors are dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from miodesk.errors import VoiceRecordingError

log = logging.getLogger(__name__)

MIN_SPEECH_SECONDS = 5.0
GOOD_SPEECH_SECONDS = 10.0
MAX_RECORD_SECONDS = 30.0
ENCODER_SECONDS = 20.0
FRAME_SECONDS = 0.02
TRIM_MARGIN_SECONDS = 0.25
TAKE_GAP_SECONDS = 0.3
CLIP_LEVEL = 0.999
SILENCE_FLOOR_DB = -100.0


def dbfs(value: float) -> float:
    return float(20.0 * np.log10(max(float(value), 1e-5)))


# ----------------------------------------------------------------------------------------------
# devices
# ----------------------------------------------------------------------------------------------
def list_input_devices() -> list[tuple[int, str]]:
    """(index, name) of every device that can record."""
    import sounddevice

    try:
        devices = sounddevice.query_devices()
    except Exception as error:  # PortAudio missing or broken
        raise VoiceRecordingError(f"Cannot list microphones: {error}") from None
    return [(i, str(info["name"])) for i, info in enumerate(devices) if info["max_input_channels"] > 0]


def find_input_device(device: str | int | None) -> int | None:
    """Resolve an input device index or (part of) a name; None means the system default."""
    if device is None or device == "":
        return None
    inputs = list_input_devices()
    if isinstance(device, int) or str(device).isdigit():
        index = int(device)
        if any(i == index for i, _ in inputs):
            return index
        raise VoiceRecordingError(f"There is no microphone (input device) number {index}.")
    wanted = str(device).lower()
    exact = [i for i, name in inputs if name.lower() == wanted]
    matches = exact or [i for i, name in inputs if wanted in name.lower()]
    if not matches:
        names = ", ".join(name for _, name in inputs)
        raise VoiceRecordingError(f"No microphone matches '{device}'. Available: {names or 'none'}.")
    return matches[0]


# ----------------------------------------------------------------------------------------------
# recording
# ----------------------------------------------------------------------------------------------
@dataclass
class Recording:
    samples: np.ndarray  # mono float32
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0


@dataclass
class Level:
    rms_db: float = SILENCE_FLOOR_DB
    peak_db: float = SILENCE_FLOOR_DB


class Recorder:
    """Mono recording from one input device, up to `max_seconds`; `start()`, then `stop()`."""

    def __init__(self, device: str | int | None = None, sample_rate: int | None = None,
                 max_seconds: float = MAX_RECORD_SECONDS) -> None:
        import sounddevice

        self.device = find_input_device(device)
        try:
            info = sounddevice.query_devices(self.device, "input")
        except Exception as error:
            raise VoiceRecordingError(f"No microphone is available ({error}). Connect one and try again.") from None
        self.sample_rate = int(sample_rate or info["default_samplerate"] or 48000)
        self.max_seconds = float(max_seconds)
        self._buffer = np.zeros(int(self.max_seconds * self.sample_rate), dtype=np.float32)
        self._written = 0
        self._level = Level()
        self._peak_hold = 0.0
        self._stream: Any = None  # a sounddevice.InputStream while recording (sounddevice has no types)
        self._full = threading.Event()
        self._status_errors = 0

    # PortAudio thread: copy and measure only.
    def _callback(self, indata, frames, time_info, status) -> None:  # noqa: ARG002 - PortAudio signature
        if status:
            self._status_errors += 1
        block = indata[:, 0]
        room = len(self._buffer) - self._written
        take = min(room, frames)
        self._buffer[self._written:self._written + take] = block[:take]
        self._written += take
        if frames:
            peak = float(np.max(np.abs(block)))
            self._level = Level(dbfs(float(np.sqrt(np.mean(block * block)))), dbfs(peak))
            self._peak_hold = max(self._peak_hold, peak)
        if take < frames or self._written >= len(self._buffer):
            self._full.set()

    def start(self) -> None:
        import sounddevice

        try:
            self._stream = sounddevice.InputStream(samplerate=self.sample_rate, device=self.device, channels=1,
                                                   dtype="float32", callback=self._callback)
            self._stream.start()
        except Exception as error:  # no device, busy, or permission denied by the OS
            self._stream = None
            raise VoiceRecordingError(
                f"Cannot open the microphone ({' '.join(str(error).split())}). Check that it is connected, "
                "selected and that MioDesk is allowed to use it."
            ) from None
        log.info("recording from %s at %d Hz", self.device if self.device is not None else "default",
                 self.sample_rate)

    @property
    def level(self) -> Level:
        return self._level

    @property
    def elapsed(self) -> float:
        return self._written / self.sample_rate

    @property
    def is_full(self) -> bool:
        return self._full.is_set()

    @property
    def recording(self) -> bool:
        return self._stream is not None

    def wait(self, seconds: float, on_level: Callable[[Level, float], None] | None = None,
             cancel: threading.Event | None = None) -> None:
        """Block until `seconds` have been recorded (or the buffer is full / cancelled), polling the level."""
        deadline = time.monotonic() + seconds + 5.0  # a stalled device must not hang us forever
        while self.elapsed < seconds and not self._full.is_set():
            if cancel is not None and cancel.is_set():
                return
            if time.monotonic() > deadline:
                raise VoiceRecordingError("The microphone stopped delivering sound.")
            if self._stream is not None and not self._stream.active:
                raise VoiceRecordingError("The microphone stopped (was it unplugged?).")
            if on_level is not None:
                on_level(self._level, self.elapsed)
            time.sleep(0.05)

    def stop(self) -> Recording:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as error:  # a vanished device may fail to close
                log.info("closing the input stream failed: %s", error)
        return Recording(self._buffer[: self._written].copy(), self.sample_rate)


def record(seconds: float, device: str | int | None = None,
           on_level: Callable[[Level, float], None] | None = None,
           cancel: threading.Event | None = None) -> Recording:
    recorder = Recorder(device=device, max_seconds=max(seconds, 0.5))
    recorder.start()
    try:
        recorder.wait(seconds, on_level=on_level, cancel=cancel)
    finally:
        result = recorder.stop()
    return result


# ----------------------------------------------------------------------------------------------
# quality checks
# ----------------------------------------------------------------------------------------------
@dataclass
class QualityIssue:
    code: str  # silence, short, quiet, clipping, noise, pauses
    severity: str  # "error" (refused) or "warning" (a hint)
    message: str


@dataclass
class QualityReport:
    issues: list[QualityIssue] = field(default_factory=list)
    start: int = 0  # trimmed speech span in samples
    end: int = 0
    speech_seconds: float = 0.0
    speech_db: float = SILENCE_FLOOR_DB
    noise_db: float = SILENCE_FLOOR_DB
    peak_db: float = SILENCE_FLOOR_DB
    clipped_fraction: float = 0.0

    @property
    def snr_db(self) -> float:
        return self.speech_db - self.noise_db

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    @property
    def errors(self) -> list[QualityIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[QualityIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    def codes(self) -> set[str]:
        return {i.code for i in self.issues}

    def summary(self) -> str:
        return " ".join(i.message for i in self.issues)


def frame_levels(samples: np.ndarray, rate: int) -> np.ndarray:
    """RMS level in dBFS of consecutive 20 ms frames."""
    size = max(1, int(FRAME_SECONDS * rate))
    count = len(samples) // size
    if count == 0:
        return np.full(1, dbfs(float(np.sqrt(np.mean(samples * samples)))) if len(samples) else SILENCE_FLOOR_DB)
    frames = samples[: count * size].reshape(count, size).astype(np.float64)
    return 10.0 * np.log10(np.maximum(np.mean(frames * frames, axis=1), 1e-10))


def analyse(samples: np.ndarray, rate: int) -> QualityReport:
    """Quality checks and the speech span (leading/trailing silence trimmed, with 0.25 s margins)."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    report = QualityReport(end=len(x))
    if len(x) == 0:
        report.issues.append(QualityIssue("silence", "error", "Nothing was recorded."))
        return report
    peak = float(np.max(np.abs(x)))
    report.peak_db = dbfs(peak)
    report.clipped_fraction = float(np.mean(np.abs(x) >= CLIP_LEVEL))
    levels = frame_levels(x, rate)
    report.noise_db = float(np.percentile(levels, 10))
    report.speech_db = float(np.percentile(levels, 95))
    if peak < 1e-4 or report.speech_db < -70.0:
        report.issues.append(QualityIssue(
            "silence", "error",
            "Nothing was heard: check that the right microphone is selected, connected and not muted."))
        return report

    snr = report.snr_db
    threshold = report.noise_db + max(6.0, 0.3 * snr)
    active = levels > threshold
    size = max(1, int(FRAME_SECONDS * rate))
    report.speech_seconds = float(np.count_nonzero(active)) * size / rate
    if np.any(active):
        idx = np.nonzero(active)[0]
        margin = int(TRIM_MARGIN_SECONDS * rate)
        report.start = max(0, int(idx[0]) * size - margin)
        report.end = min(len(x), (int(idx[-1]) + 1) * size + margin)

    if snr < 15.0:
        report.issues.append(QualityIssue(
            "noise", "error",
            f"Too much background noise (speech is only {max(snr, 0):.0f} dB above it): record somewhere quieter."))
    elif snr < 25.0:
        report.issues.append(QualityIssue(
            "noise", "warning",
            f"Some background noise (speech {snr:.0f} dB above it): a quieter room gives a cleaner voice."))
    if report.clipped_fraction > 0.01:
        report.issues.append(QualityIssue(
            "clipping", "error", "The sound is distorted (clipping): move back from the microphone or lower its gain."))
    elif report.clipped_fraction > 0.0005:
        report.issues.append(QualityIssue(
            "clipping", "warning", "Some peaks are clipped: speak a little softer or lower the microphone gain."))
    if report.speech_db < -55.0:
        report.issues.append(QualityIssue(
            "quiet", "error", "Far too quiet: move closer to the microphone or raise its gain, then record again."))
    elif report.speech_db < -40.0:
        report.issues.append(QualityIssue(
            "quiet", "warning", "The recording is quiet: move closer to the microphone or raise its gain."))
    if report.speech_seconds < MIN_SPEECH_SECONDS:
        report.issues.append(QualityIssue(
            "short", "error",
            f"Too short: only {report.speech_seconds:.1f} s of speech; read for at least 10 seconds."))
    elif report.speech_seconds < GOOD_SPEECH_SECONDS:
        report.issues.append(QualityIssue(
            "short", "warning",
            f"Short: {report.speech_seconds:.1f} s of speech; 10–30 seconds give a more faithful voice."))
    span = (report.end - report.start) / rate
    if span > 0 and report.speech_seconds / span < 0.4 and report.speech_seconds >= 1.0:
        report.issues.append(QualityIssue(
            "pauses", "warning", "Mostly silence: keep reading steadily, with only short pauses."))
    return report


def trim(samples: np.ndarray, report: QualityReport) -> np.ndarray:
    return np.asarray(samples, dtype=np.float32).reshape(-1)[report.start:report.end].copy()


def combine_takes(takes: Sequence[Recording]) -> tuple[Recording, list[QualityReport]]:
    """One recording from several takes: trimmed, error-free takes, best SNR first, joined by short gaps."""
    if not takes:
        raise VoiceRecordingError("No recording to use.")
    from miodesk.audio.resample import resample

    rate = takes[0].sample_rate
    reports = [analyse(t.samples, t.sample_rate) for t in takes]
    usable = [(r, t) for r, t in zip(reports, takes, strict=True) if r.ok or len(takes) == 1]
    if not usable:
        raise VoiceRecordingError(reports[0].summary() or "No take is usable.")
    usable.sort(key=lambda pair: -pair[0].snr_db)
    parts: list[np.ndarray] = []
    total = 0
    gap = np.zeros(int(TAKE_GAP_SECONDS * rate), dtype=np.float32)
    for report, take in usable:
        audio = trim(take.samples, report)
        if take.sample_rate != rate:
            audio = resample(audio, take.sample_rate, rate)
        if parts:
            parts.append(gap)
        parts.append(audio)
        total += len(audio)
        if total >= ENCODER_SECONDS * rate:
            break
    return Recording(np.concatenate(parts), rate), reports


READING_TEXTS = {
    "en": (
        "On quiet evenings I like to sit by the window with a cup of tea and a good book. "
        "The street lights come on one by one, a neighbour walks a small dog past the bakery, "
        "and somewhere a radio plays an old song. Reading aloud slows me down: every word gets "
        "its own moment, and even a familiar story starts to sound new again."
    ),
    "ja": (
        "静かな夜には、窓辺でお茶を飲みながら本を読むのが好きです。"
        "街灯がひとつずつ灯り、近所の人が小さな犬を連れてパン屋の前を通り過ぎていきます。"
        "どこかのラジオからは、懐かしい歌が聞こえてきます。"
        "声に出して読むと、一つひとつの言葉をゆっくり味わうことができ、"
        "よく知っている物語も、また新しく聞こえてくるのです。"
    ),
}


def reading_text(language: str) -> str:
    """A passage of about 20 s to read aloud, Japanese or English."""
    return READING_TEXTS["ja" if language.lower().startswith("ja") else "en"]
