"""Writing speech to files: 16-bit WAV, FLAC or raw float32 .npy, chosen by the extension."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile

from miodesk.atomic import atomic_write_bytes
from miodesk.errors import MioDeskError
from miodesk.filenames import extended_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".npy")


def check_output_path(path: Path) -> Path:
    """Fail before any model work when the output cannot be written as asked."""
    path = Path(path)
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise MioDeskError(f"Cannot write '{path.name}': the output must end in {', '.join(AUDIO_EXTENSIONS)}.")
    on_disk = Path(extended_path(path))  # the form Windows accepts beyond 260 characters
    if on_disk.is_dir():
        raise MioDeskError(f"Cannot write '{path}': it is a folder.")
    if not on_disk.parent.exists():
        raise MioDeskError(f"Cannot write '{path}': the folder '{path.parent}' does not exist.")
    return path


def encode_audio(samples: np.ndarray, sample_rate: int, suffix: str) -> bytes:
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    buffer = io.BytesIO()
    if suffix == ".npy":
        np.save(buffer, samples, allow_pickle=False)
    else:
        # Clip instead of letting libsndfile wrap values beyond full scale into loud clicks.
        clipped = np.clip(samples, -1.0, 1.0)
        fmt, subtype = ("WAV", "PCM_16") if suffix == ".wav" else ("FLAC", "PCM_16")
        soundfile.write(buffer, clipped, sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def write_audio(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write atomically: an existing file is replaced only once the new one is complete."""
    path = check_output_path(path)
    data = encode_audio(samples, sample_rate, path.suffix.lower())
    try:
        atomic_write_bytes(path, data)
    except OSError as error:
        raise MioDeskError(f"Cannot write '{path}': {error.strerror or error}.") from error
    return path
