"""Speech as the bytes an HTTP client asked for, encoded while it is being spoken.

The encoding itself is `miodesk.audio.encoding` (shared with the files MioDesk writes); this module
adds what HTTP needs: OpenAI's format names and media types, its raw `pcm` at 24 kHz, and
`AudioEncoder`, which hands back the bytes that are ready so a streamed response starts with the
first sentence:

| format | how                                   | rate                                   |
|--------|---------------------------------------|----------------------------------------|
| mp3    | libsndfile (LAME), constant bit rate  | the codec's (44.1 kHz; 24 kHz codec: 24 kHz) |
| opus   | libsndfile, Ogg Opus                  | 48 kHz (Opus takes 8/12/16/24/48 kHz only)   |
| aac    | PyAV (ADTS), optional: `miodesk[aac]` | the codec's                            |
| flac   | libsndfile, 16-bit                    | the codec's                            |
| wav    | a 16-bit PCM header and samples       | the codec's, or what the caller asks   |
| pcm    | raw 16-bit little-endian mono         | 24 kHz, as OpenAI defines it           |

libsndfile seeks back at close to finish a header (MP3's Info frame, FLAC's STREAMINFO totals, WAV's
sizes); a streamed response has sent those bytes already, so the sink drops rewrites of what was sent,
and the streamed file keeps its valid placeholder (FLAC: "length unknown"). A streamed WAV says "size
unknown" (0xFFFFFFFF), as streaming servers do; libsndfile, ffmpeg and browsers read it to the end.
A whole (not streamed) response gets the finished file. Ogg Opus comes out a page at a time (about a
second of speech).

AAC needs FFmpeg's encoder, which only PyAV brings: a 36 MB wheel (103 MB installed) for one of six
formats that none of the usual clients asks for by default, so it is the optional extra `miodesk[aac]`;
without it `aac` is refused with a message that names the extra.
"""

from __future__ import annotations

import numpy as np

from miodesk.audio.encoding import AAC_EXTRA, ByteSink, Encoder, EncoderUnavailable, aac_available
from miodesk.errors import MioDeskError

__all__ = ["AAC_EXTRA", "FORMATS", "MEDIA_TYPES", "PCM_RATE", "AudioEncoder", "FormatUnavailable",
           "aac_available", "check_format", "encode_whole"]

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


class FormatUnavailable(EncoderUnavailable):
    """A response format this installation cannot encode (AAC without PyAV)."""


def check_format(fmt: str) -> None:
    """Raise FormatUnavailable for a known format that this installation cannot make."""
    if fmt == "aac" and not aac_available():
        raise FormatUnavailable(
            f"response_format 'aac' needs the optional extra {AAC_EXTRA} (PyAV): pip install '{AAC_EXTRA}'. "
            "mp3, opus, flac, wav and pcm need nothing more."
        )


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
        self.fmt, self.streaming = fmt, streaming
        self.media_type = MEDIA_TYPES[fmt]
        self._sink = ByteSink(streaming)
        self._encoder = Encoder(fmt, source_rate, self._sink, rate=PCM_RATE if fmt == "pcm" else rate,
                                channels=channels)
        self.rate = self._encoder.rate

    def feed(self, samples: np.ndarray) -> bytes:
        self._encoder.write(samples)
        return self._sink.take()

    def finish(self) -> bytes:
        self._encoder.finish()
        return self._sink.take(final=True)

    def close(self) -> None:
        """Let go of the encoder without finishing (the client left)."""
        self._encoder.close()


def encode_whole(samples: np.ndarray, fmt: str, source_rate: int, rate: int | None = None,
                 channels: int = 1) -> bytes:
    """One finished file of `fmt` (for a response that is not streamed)."""
    encoder = AudioEncoder(fmt, source_rate, streaming=False, rate=rate, channels=channels)
    return encoder.feed(samples) + encoder.finish()
