"""Speech encoded while it is being made: the one encoder layer under every file MioDesk writes
(`miodesk.audio.output`) and every response its speech server sends (`miodesk.speech_server`).

`Encoder` takes float32 mono pieces at the engine's rate and writes `codec`'s bytes to a target: a
file opened for writing (the output writer), or a `ByteSink` that hands the bytes on as they are
ready (the server's streamed responses):

| codec | how                                              | rate                                         |
|-------|--------------------------------------------------|----------------------------------------------|
| mp3   | LAME, constant bit rate: libsndfile's, or FFmpeg's | the source's (44.1 kHz; a 24 kHz codec: 24) |
| opus  | libopus in Ogg: libsndfile's, or FFmpeg's        | 48 kHz (Opus takes 8/12/16/24/48 kHz only)   |
| aac   | PyAV (FFmpeg), ADTS frames; optional: AAC_EXTRA  | the source's                                 |
| flac  | libsndfile, 16-bit                               | the source's                                 |
| wav   | a 16-bit PCM header and samples                  | the source's, or what the caller asks        |
| pcm   | raw 16-bit little-endian                         | the source's, or what the caller asks        |
| npy   | NumPy's format, float32 as made (not clipped)    | the source's                                 |

Formats whose header holds totals (WAV's sizes, .npy's shape, FLAC's STREAMINFO, MP3's Info frame)
seek back at the end to write them: a file gets them right, a streamed response has sent those bytes
already and keeps its valid placeholder (WAV: "size unknown", 0xFFFFFFFF, which libsndfile, ffmpeg
and browsers read to the end; FLAC: "length unknown").

A write error of the target (disk full) would reach libsndfile as a failed callback and come back as
its "System error"; `OutputFile` keeps the real OSError so the writer can report its cause.

AAC needs FFmpeg's encoder, which only PyAV brings (a 36 MB wheel, 103 MB installed), so it is the
optional extra AAC_EXTRA; `aac_available` tells whether it is installed. Nothing here imports PyAV
before AAC is asked for, or MP3/Opus with `prefer_ffmpeg`.

`prefer_ffmpeg` (the output writer's choice for files) takes FFmpeg's MP3 and Opus encoders where
PyAV is installed: on a 5-minute book they cost a third (Opus) and a half (MP3) of libsndfile's, whose
Opus runs libopus about 3× slower and whose LAME cannot be set to a faster quality level. LAME's
quality 7 halves its time at 64 kbit/s with the same waveform SNR (25.6 dB against 25.3 at its
default, on a voiced test signal). Streamed server responses keep libsndfile's encoders.
"""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any, Protocol

import numpy as np
import soundfile

from miodesk.audio.resample import StreamResampler
from miodesk.errors import MioDeskError

CODECS = ("mp3", "opus", "aac", "flac", "wav", "pcm", "npy")
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
UNKNOWN_SIZE = 0xFFFFFFFF
AAC_EXTRA = "miodesk[aac]"
NPY_HEADER_BYTES = 128  # fixed, so the shape can be written over the placeholder at the end

_SOUNDFILE_FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS"), "flac": ("FLAC", "PCM_16")}
# MP3 at a constant bit rate: a streamed file lacks the Info frame (written at close) and decoders that
# estimate the length from the first frames, libsndfile among them, stop early when the rate varies;
# a long audiobook seeks exactly only at a constant rate. libsndfile's compression level picks the rate
# (mono, 44.1 kHz): 0.7 → 112 kbit/s, 0.86 → 64 kbit/s.
DEFAULT_MP3_LEVEL = 0.7
DEFAULT_MP3_BIT_RATE = 112000  # FFmpeg's LAME: the same default rate as libsndfile's level
FFMPEG_LAME_QUALITY = "7"  # LAME's -q: 0 slowest … 9 fastest; see the module's notes
_FFMPEG_ENCODERS = {"aac": "aac", "mp3": "libmp3lame", "opus": "libopus"}
_FFMPEG_CONTAINERS = {"mp3": "mp3", "opus": "ogg"}


class Target(Protocol):
    """What an encoder writes to: a binary file, or a ByteSink."""

    def write(self, data: bytes) -> int: ...

    def seek(self, offset: int, whence: int = 0) -> int: ...

    def tell(self) -> int: ...

    def read(self, count: int = -1) -> bytes: ...


def aac_available() -> bool:
    """PyAV (FFmpeg's encoders) is installed: AAC can be written, MP3 and Opus faster."""
    return importlib.util.find_spec("av") is not None


_libsndfile_only = False


@contextmanager
def libsndfile_only() -> Iterator[None]:
    """MP3 and Opus encoders made meanwhile use libsndfile, as without PyAV (the bench's "before" and the
    tests of that path); AAC still needs PyAV."""
    global _libsndfile_only
    _libsndfile_only = True
    try:
        yield
    finally:
        _libsndfile_only = False


def output_rate(codec: str, source_rate: int) -> int:
    """The rate `codec` is written at, for speech made at `source_rate`."""
    if codec == "opus" and source_rate not in OPUS_RATES:
        return 48000
    if codec == "mp3" and source_rate not in MP3_RATES:
        return 44100
    return source_rate


def wav_header(rate: int, channels: int, data_bytes: int | None) -> bytes:
    """A 44-byte 16-bit PCM WAV header; `data_bytes=None` (or a size past 4 GiB) says "size unknown"."""
    block = 2 * channels
    known = data_bytes is not None and 36 + data_bytes < UNKNOWN_SIZE
    data_size = data_bytes if known and data_bytes is not None else UNKNOWN_SIZE
    riff_size = 36 + data_size if known else UNKNOWN_SIZE
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
        + b"data" + struct.pack("<I", data_size)
    )


def npy_header(length: int) -> bytes:
    """NumPy's format 1.0 header for a float32 array of shape (length,), padded to NPY_HEADER_BYTES."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({length},), }}"
    body_bytes = NPY_HEADER_BYTES - 10  # magic (6), version (2), header length (2)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body_bytes) + text.ljust(body_bytes - 1).encode("ascii") + b"\n"


def pcm16(samples: np.ndarray, channels: int = 1) -> bytes:
    """Float32 mono in [-1, 1] (clipped) as 16-bit little-endian, interleaved over `channels`."""
    ints = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    if channels > 1:
        ints = np.repeat(ints, channels)
    return ints.tobytes()


class ByteSink:
    """A seekable target that passes on bytes as they are written (`streaming`) or keeps the whole file
    (not streaming). Rewrites of bytes already passed on are dropped."""

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
        """The bytes to pass on now: new ones when streaming; the whole file at the end otherwise."""
        if not (self.streaming or final):
            return b""
        data = bytes(self._data)
        self._base += len(self._data)
        self._data.clear()
        return data


class OutputFile:
    """A binary file as an encoder's target that keeps the first OSError of a write instead of raising
    it: raised inside libsndfile's callback it would be printed as a traceback and come back as
    "System error". The writer looks at `error` after each call and reports the real cause."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        if self.error is not None:
            return 0
        try:
            return self.file.write(data)
        except OSError as error:
            self.error = error
            return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def read(self, count: int = -1) -> bytes:
        return self.file.read(count)

    def flush(self) -> None:
        if self.error is None:
            try:
                self.file.flush()
            except OSError as error:
                self.error = error


class Encoder:
    """Float32 mono pieces at `source_rate` in; `codec`'s bytes written to `target`.

    `rate` overrides the output rate and `channels` 2 writes the same speech on both (WAV and PCM only:
    VOICEVOX's outputSamplingRate and outputStereo). `compression_level` is libsndfile's for MP3 (the
    constant bit rate) and Opus; `bit_rate` is FFmpeg's in bit/s (AAC; MP3 and Opus with `prefer_ffmpeg`),
    its encoder's default when None. `prefer_ffmpeg`: MP3 and Opus through FFmpeg where PyAV is installed.
    `aac_container` "adts" (a stream) or "mp4" (a fragmented MP4: its index is written every 10 s,
    so memory stays flat on a whole book; `aac_priming` tells how many samples the encoder put before
    the first real one, which a player skips once the final MP4 says so).
    """

    def __init__(self, codec: str, source_rate: int, target: Target, *, rate: int | None = None, channels: int = 1,
                 compression_level: float | None = None, bit_rate: int | None = None,
                 aac_container: str = "adts", prefer_ffmpeg: bool = False) -> None:
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}")
        if (rate is not None or channels != 1) and codec not in ("wav", "pcm"):
            raise ValueError("another rate or channel count is offered for WAV and PCM only")
        self.codec, self.channels, self.target = codec, channels, target
        self.rate = rate if rate is not None else output_rate(codec, source_rate)
        self._resampler = StreamResampler(source_rate, self.rate) if self.rate != source_rate else None
        self._data_bytes = 0  # WAV, PCM and .npy: the sample bytes written
        self._file: Any = None  # soundfile.SoundFile, or a PyAV container
        self._stream: Any = None  # the PyAV stream: FFmpeg encodes
        self.frames_written = 0  # at `rate`
        self.aac_priming = 0
        ffmpeg_preferred = prefer_ffmpeg and not _libsndfile_only and codec in _FFMPEG_CONTAINERS
        if codec == "aac" or (ffmpeg_preferred and aac_available()):
            self._open_ffmpeg(bit_rate, aac_container)
        elif codec in _SOUNDFILE_FORMATS:
            container, subtype = _SOUNDFILE_FORMATS[codec]
            options: dict[str, Any] = {}
            if codec == "mp3":
                level = DEFAULT_MP3_LEVEL if compression_level is None else compression_level
                options = {"bitrate_mode": "CONSTANT", "compression_level": level}
            elif codec == "opus" and compression_level is not None:
                options = {"compression_level": compression_level}
            self._file = soundfile.SoundFile(target, "w", samplerate=self.rate, channels=1, format=container,
                                             subtype=subtype, **options)
        elif codec == "wav":
            target.write(wav_header(self.rate, channels, None))
        elif codec == "npy":
            target.write(npy_header(0))

    @property
    def encoder_name(self) -> str:
        """Which library encodes: "ffmpeg", "libsndfile" or "miodesk" (PCM, WAV, .npy)."""
        if self._stream is not None:
            return "ffmpeg"
        return "libsndfile" if self.codec in _SOUNDFILE_FORMATS else "miodesk"

    def _open_ffmpeg(self, bit_rate: int | None, aac_container: str) -> None:
        import av  # the optional extra: AAC's callers check aac_available() first

        if self.codec == "aac":
            container = aac_container
            options = {"movflags": "empty_moov", "frag_duration": "10000000"} if aac_container == "mp4" else {}
        else:
            container, options = _FFMPEG_CONTAINERS[self.codec], {}
        self._file = av.open(self.target, "w", format=container, options=options)
        self._stream = self._file.add_stream(_FFMPEG_ENCODERS[self.codec], rate=self.rate, layout="mono")
        if self.codec == "mp3":
            self._stream.codec_context.options = {"compression_level": FFMPEG_LAME_QUALITY}
            bit_rate = DEFAULT_MP3_BIT_RATE if bit_rate is None else bit_rate
        if bit_rate is not None:
            self._stream.bit_rate = bit_rate

    def _encode(self, samples: np.ndarray) -> None:
        if not len(samples):
            return
        first_frame = self.frames_written
        self.frames_written += len(samples)
        if self.codec in ("pcm", "wav"):
            data = pcm16(samples, self.channels)
        elif self.codec == "npy":
            data = samples.astype("<f4").tobytes()
        elif self._stream is not None:
            import av

            frame = av.AudioFrame.from_ndarray(np.clip(samples, -1.0, 1.0).reshape(1, -1), format="fltp",
                                               layout="mono")
            frame.sample_rate = self.rate
            frame.pts = first_frame  # timestamps let FFmpeg mark the encoder's priming samples
            frame.time_base = Fraction(1, self.rate)
            self._mux(self._stream.encode(frame))
            return
        else:
            self._file.write(np.clip(samples, -1.0, 1.0))
            return
        self.target.write(data)
        self._data_bytes += len(data)

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            if packet.pts is not None and packet.pts < 0:  # before the first real sample: priming
                self.aac_priming = max(self.aac_priming, round(-packet.pts * packet.time_base * self.rate))
            self._file.mux(packet)

    def write(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        self._encode(samples)

    def finish(self) -> None:
        """Write what is left and the totals; the target then holds the whole stream."""
        if self._resampler is not None:
            self._encode(self._resampler.flush())
            self._resampler = None
        if self._stream is not None:
            self._mux(self._stream.encode(None))
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.codec in ("wav", "npy"):
            end = self.target.tell()
            self.target.seek(0)
            if self.codec == "wav":
                self.target.write(wav_header(self.rate, self.channels, self._data_bytes))
            else:
                self.target.write(npy_header(self._data_bytes // 4))
            self.target.seek(end)

    def close(self) -> None:
        """Let go without finishing (the client left, the render failed)."""
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # an abandoned stream: its bytes are thrown away
                pass
            self._file = None


class EncoderUnavailable(MioDeskError):
    """A format whose encoder this installation lacks (AAC without PyAV)."""
