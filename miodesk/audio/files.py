"""Speech written to a file in one go (`speak -o`, `codec decode -o`): the format comes from the
extension, and the writing is `miodesk.audio.output`'s (atomic, the user's permissions, one clear
line on failure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from miodesk.audio.encoding import ByteSink, Encoder
from miodesk.audio.metadata import BookTags
from miodesk.audio.output import OUTPUT_EXTENSIONS, AudioFileWriter, check_output_path

__all__ = ["AUDIO_EXTENSIONS", "check_output_path", "encode_audio", "write_audio"]

AUDIO_EXTENSIONS = OUTPUT_EXTENSIONS


def encode_audio(samples: np.ndarray, sample_rate: int, suffix: str) -> bytes:
    """A whole .wav (16-bit), .flac (16-bit) or .npy (float32) file in memory, for short audio."""
    codec = {".wav": "wav", ".flac": "flac", ".npy": "npy"}[suffix.lower()]
    sink = ByteSink(streaming=False)
    encoder = Encoder(codec, sample_rate, sink)
    encoder.write(samples)
    encoder.finish()
    return sink.take(final=True)


def write_audio(path: Path, samples: np.ndarray, sample_rate: int, tags: BookTags | None = None) -> Path:
    """Write atomically: an existing file is replaced only once the new one is complete."""
    with AudioFileWriter(path, sample_rate, tags) as writer:
        writer.write(samples)
        return writer.finish()
