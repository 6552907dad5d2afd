"""A PulseAudio virtual microphone: a null sink `miodesk_mic` whose monitor is recorded as the mic.

Tests play a WAV into the sink with `pacat` while MioDesk records from `miodesk_mic.monitor`. The
device is chosen explicitly (PortAudio device "pulse" + PULSE_SOURCE), never by changing the
server defaults: `pulse_sink` (conftest) owns those and other tests rely on them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile

MIC_SINK = "miodesk_mic"
MIC_SOURCE = f"{MIC_SINK}.monitor"

SPEECH_TEXT = (
    "Once upon a time there was a little girl who lived in a village near the forest. "
    "Whenever she went out, she wore a red riding cloak."
)


def _pactl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=20)


@dataclass
class VirtualMic:
    sink: str = MIC_SINK
    source: str = MIC_SOURCE
    device: str = "pulse"  # PortAudio's PulseAudio device; PULSE_SOURCE picks the source

    def play(self, wav: Path, delay: float = 0.0) -> subprocess.Popen:
        """Start playing `wav` into the mic (after `delay` s); returns the pacat process."""
        command = f"sleep {delay:.2f}; exec pacat --device={self.sink} --file-format=wav '{wav}'"
        return subprocess.Popen(["sh", "-c", command])

    def env(self) -> dict[str, str]:
        return {"PULSE_SOURCE": self.source}


@pytest.fixture(scope="session")
def virtual_mic(pulse_sink: str) -> VirtualMic:
    """The PulseAudio daemon comes from `pulse_sink`; the mic sink is ours and is unloaded at the end."""
    if shutil.which("pacat") is None:
        pytest.fail("pacat (PulseAudio utilities) is not installed")
    module = None
    if MIC_SINK not in _pactl("list", "short", "sinks").stdout:
        loaded = _pactl("load-module", "module-null-sink", f"sink_name={MIC_SINK}", "rate=44100", "channels=1")
        assert loaded.returncode == 0, loaded.stderr
        module = loaded.stdout.strip()
    time.sleep(0.2)
    yield VirtualMic()
    if module:
        _pactl("unload-module", module)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 8 s (6–7 s of speech) of espeak-ng English speech at 22.05 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), SPEECH_TEXT], check=True,
                   capture_output=True, timeout=60)
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    soundfile.write(str(path), np.asarray(samples, np.float32), rate, subtype="PCM_16")
    return path
