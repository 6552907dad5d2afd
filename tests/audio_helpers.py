"""Record what reaches the PulseAudio null sink (its monitor) while a test plays audio."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np


class MonitorRecorder:
    """Records the null sink's monitor with `parec`, noting the arrival time of every block.

    (PortAudio's ALSA capture from a PulseAudio monitor delivers nothing until playback starts and
    then drops the first ~100 ms, so the recorder uses PulseAudio's own client.)
    """

    BLOCK = 441  # 10 ms

    def __init__(self, sample_rate: int = 44100, source: str = "miodesk_test_sink.monitor") -> None:
        self.sample_rate = sample_rate
        self._command = [
            "parec", f"--device={source}", "--format=float32le", f"--rate={sample_rate}",
            "--channels=1", "--raw", "--latency-msec=10",
        ]
        self._blocks: list[tuple[float, np.ndarray]] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        size = self.BLOCK * 4
        while True:
            data = self._process.stdout.read(size)
            if not data:
                return
            block = np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4").copy()
            with self._lock:
                self._blocks.append((time.monotonic(), block))

    def __enter__(self) -> MonitorRecorder:
        self._process = subprocess.Popen(self._command, stdout=subprocess.PIPE, bufsize=0)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 5
        while not self._blocks and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # let the capture settle before the test starts playing
        return self

    def __exit__(self, *exc) -> None:
        assert self._process is not None and self._reader is not None
        self._process.terminate()
        self._process.wait(timeout=5)
        self._reader.join(timeout=5)

    def catch_up(self, seconds: float, timeout: float = 5.0) -> None:
        """Record on until the recording holds `seconds` past now.

        A sleep is not enough: under load the recorder's pipe lags behind the server, and what it had
        not passed on when it is stopped would be missing from the end.
        """
        wanted_until = time.monotonic() + seconds
        deadline = wanted_until + timeout
        while time.monotonic() < deadline:
            with self._lock:
                started = self._blocks[0][0] if self._blocks else wanted_until
                recorded = sum(len(block) for _, block in self._blocks)
            if recorded >= (wanted_until - started) * self.sample_rate and time.monotonic() >= wanted_until:
                return
            time.sleep(0.01)

    def audio(self) -> np.ndarray:
        with self._lock:
            return np.concatenate([block for _, block in self._blocks]) if self._blocks else np.zeros(0)

    def first_sound_after(self, when: float, level: float = 3e-3) -> float | None:
        """Arrival time of the first 10 ms block after `when` whose RMS is above `level`."""
        with self._lock:
            blocks = [(t, b) for t, b in self._blocks if t > when]
        for arrived, block in blocks:
            if len(block) and float(np.sqrt(np.mean(block**2))) > level:
                return arrived
        return None

    def silent_since(self, when: float, level: float = 3e-3) -> bool:
        return self.first_sound_after(when, level) is None

    def around(self, when: float, seconds: float = 0.1) -> np.ndarray:
        """The recorded audio that arrived in [when, when + seconds]."""
        with self._lock:
            parts = [block for t, block in self._blocks if when <= t <= when + seconds]
        return np.concatenate(parts) if parts else np.zeros(0)


def tone(frequency: float, seconds: float, sample_rate: int = 44100, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, sample_rate: int = 44100) -> float:
    if len(samples) < 256 or np.max(np.abs(samples)) < 1e-3:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * sample_rate / len(samples))


def voiced_runs(samples: np.ndarray, sample_rate: int = 44100, window: float = 0.01) -> list[tuple[float, float]]:
    """(start, end) seconds of the stretches whose 10 ms RMS is above silence."""
    size = int(window * sample_rate)
    frames = len(samples) // size
    rms = np.sqrt(np.mean(samples[: frames * size].reshape(frames, size) ** 2, axis=1))
    loud = rms > 0.01
    runs, start = [], None
    for index, is_loud in enumerate(loud):
        if is_loud and start is None:
            start = index
        elif not is_loud and start is not None:
            runs.append((start * window, index * window))
            start = None
    if start is not None:
        runs.append((start * window, frames * window))
    return runs


def aligned_similarity(recording: np.ndarray, expected: np.ndarray) -> tuple[int, float]:
    """Where `expected` best lines up inside `recording`, and how alike they are there (cosine, 0..1).

    Cross-correlation through the FFT: a recording of many seconds against a clip of seconds.
    """
    size = 1 << int(np.ceil(np.log2(len(recording) + len(expected))))
    spectrum = np.fft.rfft(recording, size) * np.conj(np.fft.rfft(expected, size))
    correlation = np.fft.irfft(spectrum, size)[: len(recording) - len(expected) + 1]
    offset = int(np.argmax(np.abs(correlation)))
    heard = recording[offset : offset + len(expected)]
    norm = float(np.linalg.norm(heard) * np.linalg.norm(expected))
    return offset, float(abs(np.dot(heard, expected)) / norm) if norm else 0.0


# Records a JACK server's loopback port in a subprocess and writes raw float32 to stdout, like parec.
# The server name is set before sounddevice loads, because PortAudio reads it when it starts.
_JACK_RECORDER = """
import os, queue, sys
os.environ["JACK_DEFAULT_SERVER"] = sys.argv[1]
os.environ["JACK_NO_START_SERVER"] = "1"
import sounddevice
blocks = queue.Queue()
with sounddevice.RawInputStream(device=sys.argv[2], samplerate=int(sys.argv[3]), channels=1, dtype="float32",
                                callback=lambda data, frames, when, status: blocks.put(bytes(data))):
    while True:
        sys.stdout.buffer.write(blocks.get())
        sys.stdout.buffer.flush()
"""


class JackRecorder(MonitorRecorder):
    """Records what reaches a JACK server's `loopback` client (jackd -L), with arrival times."""

    def __init__(self, server: str, sample_rate: int = 48000, device: str = "loopback") -> None:
        super().__init__(sample_rate)
        self._command = [sys.executable, "-c", _JACK_RECORDER, server, device, str(sample_rate)]


def windows_found(recording: np.ndarray, expected: np.ndarray, window: int, slack: int,
                  threshold: float = 0.98) -> float:
    """The share of `expected`'s non-silent windows that `recording` holds sample for sample.

    Each window is looked for within `slack` samples of where the whole clip lines up best, so a
    period a sound server drops or repeats spoils only the windows it touches; a wrong rate or
    wrong audio spoils them all.
    """
    offset, _ = aligned_similarity(recording, expected)
    found = count = 0
    for start in range(0, len(expected) - window + 1, window):
        piece = expected[start : start + window]
        if np.sqrt(np.mean(piece**2)) < 0.01:
            continue
        count += 1
        near = recording[max(0, offset + start - slack) : offset + start + window + slack]
        found += len(near) >= window and aligned_similarity(near, piece)[1] >= threshold
    return found / count if count else 0.0
