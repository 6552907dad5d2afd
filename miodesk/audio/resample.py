"""Band-limited resampling: a windowed-sinc polyphase filter, the same one torchaudio's `Resample` uses.

MioCodec's reference preprocessing resamples with torchaudio (`sinc_interp_hann`, 6 zero crossings,
roll-off 0.99), so using the identical kernel keeps voice embeddings faithful; playback uses the same
filter in streaming form when a device cannot open the codec's rate.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ZERO_CROSSINGS = 6
ROLLOFF = 0.99


@lru_cache(maxsize=16)
def resample_kernel(orig_rate: int, new_rate: int) -> tuple[np.ndarray, int, int, int]:
    """(kernel (new, taps) float32, width, orig, new) with the rates reduced by their gcd."""
    divisor = math.gcd(orig_rate, new_rate)
    orig, new = orig_rate // divisor, new_rate // divisor
    base = min(orig, new) * ROLLOFF
    width = math.ceil(ZERO_CROSSINGS * orig / base)
    taps = np.arange(-width, width + orig, dtype=np.float64) / orig
    phases = -np.arange(new, dtype=np.float64)[:, None] / new
    t = np.clip((taps[None, :] + phases) * base, -ZERO_CROSSINGS, ZERO_CROSSINGS)
    window = np.cos(t * math.pi / ZERO_CROSSINGS / 2) ** 2
    kernel = np.sinc(t) * window * (base / orig)
    return kernel.astype(np.float32), width, orig, new


def resampled_length(length: int, orig_rate: int, new_rate: int) -> int:
    """torchaudio rounds the quotient to float32 before the ceiling; so do we, to match lengths."""
    _, _, orig, new = resample_kernel(orig_rate, new_rate)
    return math.ceil(float(np.float32(new * length / orig)))


def _filter_blocks(padded: np.ndarray, kernel: np.ndarray, orig: int) -> tuple[np.ndarray, int]:
    """Apply the polyphase kernel to every complete block; returns (output, input samples consumed)."""
    taps = kernel.shape[1]
    if len(padded) < taps:
        return np.zeros(0, dtype=np.float32), 0
    blocks = (len(padded) - taps) // orig + 1
    frames = sliding_window_view(padded, taps)[::orig][:blocks]
    return (frames @ kernel.T).reshape(-1).astype(np.float32), blocks * orig


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a whole mono signal (float32 in, float32 out)."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if orig_rate == new_rate:
        return samples.copy()
    kernel, width, orig, _ = resample_kernel(orig_rate, new_rate)
    padded = np.concatenate([np.zeros(width, np.float32), samples, np.zeros(width + orig, np.float32)])
    out, _ = _filter_blocks(padded, kernel, orig)
    return out[: resampled_length(len(samples), orig_rate, new_rate)]


class StreamResampler:
    """The same filter on a stream delivered in pieces; the concatenated output equals `resample`."""

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        self.orig_rate, self.new_rate = orig_rate, new_rate
        self._kernel, self._width, self._orig, _ = resample_kernel(orig_rate, new_rate)
        self._pending = np.zeros(self._width, dtype=np.float32)
        self._samples_in = 0
        self._samples_out = 0

    def process(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._samples_in += len(samples)
        self._pending = np.concatenate([self._pending, samples])
        out, consumed = _filter_blocks(self._pending, self._kernel, self._orig)
        self._pending = self._pending[consumed:]
        self._samples_out += len(out)
        return out

    def flush(self) -> np.ndarray:
        """Push out the tail; the stream's total length then matches `resampled_length`."""
        tail = self.process(np.zeros(self._width + self._orig, dtype=np.float32))
        self._samples_in -= self._width + self._orig
        self._samples_out -= len(tail)
        total = resampled_length(self._samples_in, self.orig_rate, self.new_rate)
        keep = max(0, total - self._samples_out)
        self._samples_out += keep
        return tail[:keep]
