"""Streaming decode: turn codes into audio while the LLM is still generating them.

MioCodec is non-causal (banded attention, GroupNorm over the whole utterance), so a chunk can only
be approximated: each chunk is decoded inside a window with left context and a look-ahead, only the
chunk's own samples are kept, and consecutive chunks are cross-faded over a few milliseconds. The
sizes come from measuring the error against a full decode (`chunked_snr_db`, see the tests and
`miodesk bench`); `ChunkPlan(full=True)` decodes each utterance in one pass instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import numpy as np


class Decoder(Protocol):
    sample_rate: int
    samples_per_token: int

    def decode(
        self, tokens: np.ndarray, voice: np.ndarray, speed: float = 1.0, frames: int | None = None
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class ChunkPlan:
    """Chunk sizes in codec tokens (25 per second of speech)."""

    # The first window is short, so the first sound comes quickly: 6 + 4 tokens instead of 8 + 6 cut
    # the time to first audio by a fifth (miodesk bench, 0.1B shapes) at the same error against a
    # full decode (golden v2 codec: 16.3 dB over the utterance, 9.8 dB over its first 16 tokens).
    first_chunk: int = 6
    first_lookahead: int = 4  # the first chunk waits for less right context
    # Later chunks: at least this many tokens, more when the codec has fallen behind. 50 tokens with
    # 25 of left context cost half the codec time of 25 with 50 at the same error (miodesk bench).
    chunk: int = 50
    max_chunk: int = 200  # bound on one window (attention memory, latency of the next piece)
    left_context: int = 25
    lookahead: int = 25  # right context of later chunks; the largest single factor in their error
    crossfade_ms: float = 10.0
    # With a clock (the sink's buffered audio), windows wait for a full chunk unless the sink holds
    # less than this; it covers one window's decode on a slow CPU.
    low_water_s: float = 0.5
    full: bool = False  # decode the whole utterance at once (exact, but audio waits for the LLM)


class StreamingDecoder:
    """Feed codes with `push`, collect PCM as it becomes final; `finish` flushes the rest."""

    def __init__(self, codec: Decoder, voice: np.ndarray, speed: float = 1.0, plan: ChunkPlan | None = None):
        self.codec = codec
        self.voice = voice
        self.speed = speed
        self.plan = plan or ChunkPlan()
        self._codes: list[int] = []
        self._done = 0  # tokens whose audio has been emitted
        self._tail = np.zeros(0, dtype=np.float32)  # audio past `_done`, to cross-fade with the next chunk
        fade = int(self.plan.crossfade_ms * codec.sample_rate / 1000)
        self._fade_in = (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)).astype(np.float32)
        self.windows_decoded = 0

    def extend(self, codes: Sequence[int]) -> None:
        """Add codes without decoding (when the whole utterance is known, `finish` decodes it exactly)."""
        self._codes.extend(codes)

    def push(self, codes: Sequence[int], buffered_s: float | None = None) -> list[np.ndarray]:
        """Add codes; return the pieces of audio that became ready.

        `buffered_s` is how much audio the sink still holds. With it, windows are timed by need: full
        size with full right context while the sink is comfortably fed, and whatever the codes allow
        when it is about to run dry, so the audio never stops while the language model is faster than
        real time, however much faster. Without it (no clock, e.g. measuring), a fixed schedule.
        """
        self._codes.extend(codes)
        pieces: list[np.ndarray] = []
        if self.plan.full:
            return pieces
        while True:
            window = self._fixed_window() if buffered_s is None else self._window_by_need(buffered_s)
            if window is None:
                return pieces
            end, window_end = window
            piece = self._emit(end, window_end=window_end)
            pieces.append(piece)
            if buffered_s is not None:
                buffered_s += len(piece) / self.codec.sample_rate

    def _fixed_window(self) -> tuple[int, int] | None:
        # Chunks and look-ahead grow with what has been played (6, 6, 12, 24, 48, 50 … tokens), which
        # needs a language model well ahead of real time (about 1.8x) to avoid gaps early on.
        first = self._done == 0
        size = self.plan.first_chunk if first else min(self.plan.chunk, max(self.plan.first_chunk, self._done))
        lookahead = min(self.plan.lookahead, max(self.plan.first_lookahead, self._done // 2))
        ready = len(self._codes) - lookahead  # codes whose right context is known
        if ready < self._done + size:
            return None
        # A backlog is decoded in one larger window: fewer windows, less overlap to recompute.
        end = self._done + size if first else min(ready, self._done + self.plan.max_chunk)
        return end, end + lookahead

    def _window_by_need(self, buffered_s: float) -> tuple[int, int] | None:
        plan = self.plan
        have, done = len(self._codes), self._done
        ready = have - plan.lookahead
        if ready >= done + plan.chunk:  # a full-size chunk with full right context
            end = min(ready, done + plan.max_chunk)
            return end, end + plan.lookahead
        if buffered_s >= plan.low_water_s:
            return None  # wait: bigger windows cost less and sound closer to the full decode
        # About to run dry: decode what there is, keeping a third of the new codes as right context.
        lookahead = min(plan.lookahead, max(plan.first_lookahead, (have - done) // 3))
        end = have - lookahead
        if end - done < plan.first_chunk:
            return None
        return end, have

    def finish(self) -> np.ndarray:
        """All codes are in: return the audio not yet emitted."""
        if self._done >= len(self._codes):
            return np.zeros(0, dtype=np.float32)
        if self.plan.full or self._done == 0:
            # One window over everything: identical to the full decode.
            return self._emit(len(self._codes), window_end=len(self._codes), window_start=0)
        return self._emit(len(self._codes), window_end=len(self._codes))

    def _emit(self, end: int, window_end: int, window_start: int | None = None) -> np.ndarray:
        start = self._done
        if window_start is None:
            window_start = max(0, start - self.plan.left_context)
        codes = self._codes[window_start:window_end]
        frames = None
        if self.speed != 1.0:
            # Windows start on the stretch grid and span whole grid steps, so every window has the
            # utterance's exact stretch ratio and its frames fall on the full decode's frames. Past
            # the last code the window is padded by repeating it (its audio is cut off below).
            grid = stretch_grid(self.speed)
            window_start -= window_start % grid
            missing = -(window_end - window_start) % grid
            extra = self._codes[window_end : window_end + missing]
            codes = self._codes[window_start:window_end] + extra + [self._codes[-1]] * (missing - len(extra))
            window_end += len(extra)
            frames = round(2 * len(codes) / self.speed)
        tokens = np.asarray(codes, dtype=np.int64)
        audio = self.codec.decode(tokens, self.voice, speed=self.speed, frames=frames)
        self.windows_decoded += 1

        def offset(token: int) -> int:
            # Token k of the window starts at k/n of its audio (exact at speed 1, proportional otherwise).
            return round((token - window_start) * len(audio) / len(tokens))

        begin = offset(start)
        if self.speed == 1.0 and end == len(self._codes):
            stop = len(audio)  # the last piece runs to the end of the utterance
        else:
            # Lengths follow the utterance's own timeline, so rounding inside windows never accumulates
            # into drift when the speed stretches time.
            samples_per_token = self.codec.samples_per_token / self.speed
            stop = begin + round(end * samples_per_token) - round(start * samples_per_token)
        piece = audio[begin:stop].copy()
        fade = min(len(self._fade_in), len(self._tail), len(piece))
        if fade:
            ramp = self._fade_in[:fade] if fade == len(self._fade_in) else np.linspace(0, 1, fade, dtype=np.float32)
            piece[:fade] = self._tail[:fade] * (1 - ramp) + piece[:fade] * ramp
        self._tail = audio[stop : stop + len(self._fade_in)].copy()
        self._done = end
        return piece


def stretch_grid(speed: float) -> int:
    """Tokens per step of the time-stretch grid: windows starting on it share the full decode's frames.

    A stretched window's frames line up with the full decode's only where 2·start/speed is a whole
    number; for speed a/b that is every a/gcd(2b, a) tokens (0.8 → 2, 1.25 → 5, 1.1 → 11).
    """
    ratio = Fraction(speed).limit_denominator(100)
    return ratio.numerator // math.gcd(2 * ratio.denominator, ratio.numerator)


def decode_in_chunks(
    codec: Decoder, tokens: np.ndarray, voice: np.ndarray, speed: float, plan: ChunkPlan
) -> np.ndarray:
    """What streaming produces when codes arrive one at a time (for measuring it against a full decode)."""
    decoder = StreamingDecoder(codec, voice, speed, plan)
    pieces = []
    for code in tokens.tolist():
        pieces.extend(decoder.push([code]))
    pieces.append(decoder.finish())
    return np.concatenate(pieces)


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-noise ratio of `estimate` against `reference` (same length) in dB."""
    length = min(len(reference), len(estimate))
    error = reference[:length] - estimate[:length]
    noise = float(np.sum(error.astype(np.float64) ** 2))
    signal = float(np.sum(reference[:length].astype(np.float64) ** 2))
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-30) / noise)


def chunked_snr_db(codec: Decoder, tokens: np.ndarray, voice: np.ndarray, plan: ChunkPlan, speed: float = 1.0) -> float:
    full = codec.decode(np.asarray(tokens, dtype=np.int64), voice, speed=speed)
    chunked = decode_in_chunks(codec, np.asarray(tokens, dtype=np.int64), voice, speed, plan)
    assert abs(len(full) - len(chunked)) <= codec.samples_per_token, (len(full), len(chunked))
    return snr_db(full, chunked)
