"""Record what reaches the PulseAudio null sink (its monitor) while a test plays audio."""

from __future__ import annotations

import subprocess
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

    def audio(self) -> np.ndarray:
        with self._lock:
            return np.concatenate([block for _, block in self._blocks]) if self._blocks else np.zeros(0)

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
