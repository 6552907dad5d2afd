"""Speech as the bytes an HTTP client asked for, encoded while it is being spoken.

`AudioEncoder` takes the engine's float32 mono pieces as they come and hands back the bytes that are
ready, so a streamed response starts with the first sentence:

| format | how                                   | rate                                   |
|--------|---------------------------------------|----------------------------------------|
| mp3    | libsndfile (LAME), constant bit rate  | the codec's (44.1 kHz; 24 kHz codec: 24 kHz) |
| opus   | libsndfile, Ogg Opus                  | 48 kHz (Opus takes 8/12/16/24/48 kHz only)   |
| aac    | PyAV (ADTS), optional: `miodesk[aac]` | the codec's                            |
| flac   | libsndfile, 16-bit                    | the codec's                            |
| wav    | a 16-bit PCM header and samples       | the codec's, or what the caller asks   |
| pcm    | raw 16-bit little-endian mono         | 24 kHz, as OpenAI defines it           |

libsndfile seeks back at close to finish a header (MP3's Info frame, FLAC's STREAMINFO totals, WAV's
sizes); a streamed response has sent those bytes already, so `_Sink` drops rewrites of what was sent,
and the streamed file keeps its valid placeholder (FLAC: "length unknown"). A streamed WAV says "size
unknown" (0xFFFFFFFF), as streaming servers do; libsndfile, ffmpeg and browsers read it to the end.
A whole (not streamed) response gets the finished file. Ogg Opus comes out a page at a time (about a
second of speech).

AAC needs FFmpeg's encoder, which only PyAV brings: a 36 MB wheel (103 MB installed) for one of six
formats that none of the usual clients asks for by default, so it is the optional extra `miodesk[aac]`;
without it `aac` is refused with a message that names the extra.
"""

from __future__ import annotations

import importlib.util
import struct
from typing import Any

import numpy as np
import soundfile

from miodesk.audio.resample import StreamResampler
from miodesk.errors import MioDeskError

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
PCM_RATE = 24000  # OpenAI's `pcm`: raw 24 kHz 16-bit signed little-endian mono
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
UNKNOWN_SIZE = 0xFFFFFFFF
AAC_EXTRA = "miodesk[aac]"

_SOUNDFILE_FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS"), "flac": ("FLAC", "PCM_16")}
# MP3 at a constant bit rate (112 kbit/s at 44.1 kHz mono, 56 at 24 kHz): with a variable rate a streamed
# file lacks the Info frame (written at close) and decoders that estimate the length from the first
# frames, libsndfile among them, stop early; at a constant rate the estimate is right.
_MP3_OPTIONS = {"bitrate_mode": "CONSTANT", "compression_level": 0.7}


class FormatUnavailable(MioDeskError):
    """A format this installation cannot encode (AAC without PyAV)."""


def aac_available() -> bool:
    return importlib.util.find_spec("av") is not None


def check_format(fmt: str) -> None:
    """Raise FormatUnavailable for a known format that this installation cannot make."""
    if fmt == "aac" and not aac_available():
        raise FormatUnavailable(
            f"response_format 'aac' needs the optional extra {AAC_EXTRA} (PyAV): pip install '{AAC_EXTRA}'. "
            "mp3, opus, flac, wav and pcm need nothing more."
        )


def output_rate(fmt: str, source_rate: int) -> int:
    """The rate `fmt` is sent at, for speech made at `source_rate`."""
    if fmt == "pcm":
        return PCM_RATE
    if fmt == "opus" and source_rate not in OPUS_RATES:
        return 48000
    if fmt == "mp3" and source_rate not in MP3_RATES:
        return 44100
    return source_rate


def wav_header(rate: int, channels: int, data_bytes: int | None) -> bytes:
    """A 44-byte 16-bit PCM WAV header; `data_bytes=None` writes "size unknown" for a stream."""
    block = 2 * channels
    data_size = UNKNOWN_SIZE if data_bytes is None else data_bytes
    riff_size = UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
        + b"data" + struct.pack("<I", data_size)
    )


def pcm16(samples: np.ndarray, channels: int = 1) -> bytes:
    """Float32 mono in [-1, 1] (clipped) as 16-bit little-endian, interleaved over `channels`."""
    ints = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    if channels > 1:
        ints = np.repeat(ints, channels)
    return ints.tobytes()


class _Sink:
    """A seekable file for libsndfile that passes on bytes as they are written (`streaming`) or keeps
    the whole file (not streaming). Rewrites of bytes already passed on are dropped."""

    def __init__(self, streaming: bool) -> None:
        self.streaming = streaming
        self._data = bytearray()  # the file from offset _base on
        self._base = 0  # bytes before this were passed on
        self._length = 0
        self._pos = 0

    def write(self, data: bytes) -> int:
        count = len(data)
        start, end = self._pos, self._pos + count
        self._pos = end
        self._length = max(self._length, end)
        if end <= self._base:
            return count
        if start < self._base:
            data, start = data[self._base - start:], self._base
        offset = start - self._base
        if offset > len(self._data):
            self._data.extend(bytes(offset - len(self._data)))
        self._data[offset:offset + len(data)] = data
        return count

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, count: int = -1) -> bytes:
        end = self._length if count < 0 else min(self._length, self._pos + count)
        out = bytearray(max(0, end - self._pos))  # what was passed on already reads as zeros
        start = max(self._pos, self._base)
        if start < end:
            kept = self._data[start - self._base:end - self._base]
            out[start - self._pos:start - self._pos + len(kept)] = kept
        self._pos += len(out)
        return bytes(out)

    def take(self, final: bool = False) -> bytes:
        """The bytes to send now: new ones when streaming; the whole file at the end otherwise."""
        if not (self.streaming or final):
            return b""
        data = bytes(self._data)
        self._base += len(self._data)
        self._data.clear()
        return data


class AudioEncoder:
    """Float32 mono pieces at `source_rate` in, bytes of `fmt` out.

    `feed` returns what is ready (nothing until `finish` when not `streaming`); `finish` returns the
    rest. `rate` overrides the output rate (WAV only: VOICEVOX's outputSamplingRate); `channels` 2
    sends the same speech on both (WAV only: outputStereo).
    """

    def __init__(
        self, fmt: str, source_rate: int, streaming: bool, rate: int | None = None, channels: int = 1
    ) -> None:
        if fmt not in FORMATS:
            raise MioDeskError(f"Unknown audio format '{fmt}'; one of {', '.join(FORMATS)}.")
        if (rate is not None or channels != 1) and fmt != "wav":
            raise ValueError("another rate or channel count is offered for WAV only")
        check_format(fmt)
        self.fmt, self.streaming, self.channels = fmt, streaming, channels
        self.rate = rate if rate is not None else output_rate(fmt, source_rate)
        self.media_type = MEDIA_TYPES[fmt]
        self._resampler = StreamResampler(source_rate, self.rate) if self.rate != source_rate else None
        self._pcm: list[bytes] = []  # a whole WAV: its samples until the sizes are known
        self._sink: _Sink | None = None
        self._file: Any = None  # soundfile.SoundFile, or the PyAV container for AAC
        self._stream: Any = None
        self._started = False
        if fmt in _SOUNDFILE_FORMATS:
            container, subtype = _SOUNDFILE_FORMATS[fmt]
            self._sink = _Sink(streaming)
            self._file = soundfile.SoundFile(self._sink, "w", samplerate=self.rate, channels=1,
                                             format=container, subtype=subtype,
                                             **(_MP3_OPTIONS if fmt == "mp3" else {}))
        elif fmt == "aac":
            import av  # the optional extra; check_format made sure it is there

            self._sink = _Sink(streaming)
            self._file = av.open(self._sink, "w", format="adts")
            self._stream = self._file.add_stream("aac", rate=self.rate, layout="mono")

    def _encode(self, samples: np.ndarray) -> bytes:
        if not len(samples):
            return b""
        if self.fmt in ("pcm", "wav"):
            data = pcm16(samples, self.channels)
            if self.fmt == "wav" and not self.streaming:
                self._pcm.append(data)
                return b""
            return data
        if self.fmt == "aac":
            import av

            frame = av.AudioFrame.from_ndarray(np.clip(samples, -1.0, 1.0).reshape(1, -1), format="fltp",
                                               layout="mono")
            frame.sample_rate = self.rate
            for packet in self._stream.encode(frame):
                self._file.mux(packet)
        else:
            self._file.write(np.clip(samples, -1.0, 1.0))
        assert self._sink is not None
        return self._sink.take()

    def _header(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return wav_header(self.rate, self.channels, None) if self.fmt == "wav" and self.streaming else b""

    def feed(self, samples: np.ndarray) -> bytes:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        return self._header() + self._encode(samples)

    def finish(self) -> bytes:
        head = self._header()
        tail = self._encode(self._resampler.flush()) if self._resampler is not None else b""
        if self.fmt == "wav" and not self.streaming:
            data = b"".join(self._pcm)
            return wav_header(self.rate, self.channels, len(data)) + data
        if self._file is None:
            return head + tail
        if self.fmt == "aac":
            for packet in self._stream.encode(None):
                self._file.mux(packet)
        self._file.close()
        self._file = None
        assert self._sink is not None
        return head + tail + self._sink.take(final=True)

    def close(self) -> None:
        """Let go of the encoder without finishing (the client left)."""
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # an abandoned file: nothing more is sent
                pass
            self._file = None


def encode_whole(samples: np.ndarray, fmt: str, source_rate: int, rate: int | None = None,
                 channels: int = 1) -> bytes:
    """One finished file of `fmt` (for a response that is not streamed)."""
    encoder = AudioEncoder(fmt, source_rate, streaming=False, rate=rate, channels=channels)
    return encoder.feed(samples) + encoder.finish()
