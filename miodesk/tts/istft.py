"""The MioCodec iSTFT head in numpy, matching the reference's own iSTFT to float32 precision.

`head_out` (frames, n_fft+2): the first n_fft/2+1 channels are log-magnitudes, the rest phases.
Magnitudes are exp()'d and clamped at 100, frames are irfft'd (1/n scaling), windowed with a
periodic Hann window, overlap-added with `hop`, divided by the overlap-added window² envelope,
and `(n_fft - hop) / 2` samples are trimmed from both ends: hop·frames samples come out.
"""

from __future__ import annotations

import numpy as np

MAG_CLAMP = 100.0


def periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n, dtype=np.float64) / n)


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """frames (F, n) → (F-1)·hop + n samples, one vectorised add per hop block of the frame."""
    n_frames, n = frames.shape
    r_blocks = -(-n // hop)
    padded = np.zeros((n_frames, r_blocks * hop), dtype=frames.dtype)
    padded[:, :n] = frames
    blocks = padded.reshape(n_frames, r_blocks, hop)
    out = np.zeros((n_frames + r_blocks - 1, hop), dtype=frames.dtype)
    for r in range(r_blocks):
        out[r: r + n_frames] += blocks[:, r]
    return out.reshape(-1)[: (n_frames - 1) * hop + n]


def istft(head_out: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Waveform float32 (hop·frames,) from the head output (frames, n_fft+2)."""
    head = np.asarray(head_out)
    if head.ndim != 2 or head.shape[1] != n_fft + 2:
        raise ValueError(f"head_out must be (frames, {n_fft + 2}), got {head.shape}")
    n_frames = head.shape[0]
    if n_frames == 0:
        return np.zeros(0, dtype=np.float32)
    k_bins = n_fft // 2 + 1
    # float32 throughout (numpy >= 2 has float32 FFTs): half the time of float64, and still
    # ~1e-6 from the float32 reference, the same as a float64 computation.
    head = head.astype(np.float32, copy=False)
    mag = np.minimum(np.exp(head[:, :k_bins]), np.float32(MAG_CLAMP))
    phase = head[:, k_bins:]
    spec = np.empty(mag.shape, dtype=np.complex64)
    spec.real = mag * np.cos(phase)
    spec.imag = mag * np.sin(phase)
    window = periodic_hann(n_fft)
    frames = np.fft.irfft(spec, n=n_fft, axis=1)
    frames *= window.astype(frames.dtype)
    signal = _overlap_add(frames, hop)
    # the envelope depends on the frame count only; float64 keeps the division exact at the edges
    envelope = _overlap_add(np.broadcast_to(window**2, (n_frames, n_fft)), hop)
    pad = (n_fft - hop) // 2
    end = pad + hop * n_frames
    return (signal[pad:end] / envelope[pad:end]).astype(np.float32)
