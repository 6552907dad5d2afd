"""An independent float64 numpy MioCodec decoder, written from the golden README §3 maths.

Deliberately naive (explicit loops over kernel taps, dense masked attention, np.add.at for the
overlap-add) so it shares no code with the exporter. Tests use it for inputs the goldens do not
cover: long sequences past the RoPE table, other speeds, random codecs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from miodesk.tts.codec_config import CodecConfig
from miodesk.tts.safetensors_io import read_safetensors


def load_codec(codec_dir: Path) -> tuple[CodecConfig, dict[str, np.ndarray]]:
    cfg = CodecConfig.from_file(Path(codec_dir) / "config.yaml")
    weights = {k: v.astype(np.float64) for k, v in read_safetensors(Path(codec_dir) / "model.safetensors").items()}
    return cfg, weights


def _fsq_codes(tokens: np.ndarray, levels: tuple[int, ...]) -> np.ndarray:
    out = np.zeros((len(tokens), len(levels)))
    basis = 1
    for d, level in enumerate(levels):
        digit = (tokens // basis) % level
        half = level // 2
        out[:, d] = (digit - half) / half
        basis *= level
    return out


def _layer_norm(x: np.ndarray, eps: float, w: np.ndarray | None = None, b: np.ndarray | None = None
                ) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if w is not None:
        y = y * w + b
    return y


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _rope(x: np.ndarray, theta: float) -> np.ndarray:
    """x (T, H, hd); adjacent pairs; angles computed in float32 like the reference."""
    t_len, _, hd = x.shape
    inv = (np.float32(1.0) / np.power(np.float32(theta),
                                      np.arange(0, hd, 2, dtype=np.float32)[: hd // 2] / np.float32(hd)))
    ang = (np.arange(t_len, dtype=np.float32)[:, None] * inv[None, :].astype(np.float32)).astype(np.float64)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    xe, xo = x[..., 0::2], x[..., 1::2]
    y = np.empty_like(x)
    y[..., 0::2] = xe * cos - xo * sin
    y[..., 1::2] = xe * sin + xo * cos
    return y


def _attention(x: np.ndarray, w: dict, p: str, n_heads: int, window: int, theta: float) -> np.ndarray:
    t_len, dim = x.shape
    hd = dim // n_heads
    q = (x @ w[f"{p}.attention.wq.weight"].T).reshape(t_len, n_heads, hd)
    k = (x @ w[f"{p}.attention.wk.weight"].T).reshape(t_len, n_heads, hd)
    v = (x @ w[f"{p}.attention.wv.weight"].T).reshape(t_len, n_heads, hd)
    q, k = _rope(q, theta), _rope(k, theta)
    scores = np.einsum("ihd,jhd->hij", q, k) * hd**-0.5
    idx = np.arange(t_len)
    visible = np.abs(idx[:, None] - idx[None, :]) <= window // 2
    scores = np.where(visible[None], scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    ctx = np.einsum("hij,jhd->ihd", probs, v).reshape(t_len, dim)
    return ctx @ w[f"{p}.attention.wo.weight"].T


def _ffn(x: np.ndarray, w: dict, p: str) -> np.ndarray:
    a = x @ w[f"{p}.feed_forward.w1.weight"].T
    b = x @ w[f"{p}.feed_forward.w3.weight"].T
    return (_silu(a) * b) @ w[f"{p}.feed_forward.w2.weight"].T


def _group_norm(x: np.ndarray, groups: int, w: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """x (C, L): statistics over every frame of each channel group."""
    c, length = x.shape
    xg = x.reshape(groups, c // groups * length)
    mu = xg.mean(axis=1, keepdims=True)
    var = ((xg - mu) ** 2).mean(axis=1, keepdims=True)
    y = ((xg - mu) / np.sqrt(var + eps)).reshape(c, length)
    return y * w[:, None] + b[:, None]


def _conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Conv1d 'same' (odd kernel, padding k//2), x (Cin, L), weight (Cout, Cin, k)."""
    k = weight.shape[2]
    pad = k // 2
    length = x.shape[1]
    xp = np.pad(x, ((0, 0), (pad, pad)))
    y = np.zeros((weight.shape[0], length))
    for tap in range(k):
        y += weight[:, :, tap] @ xp[:, tap: tap + length]
    return y + bias[:, None]


def _conv_transpose1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int
                      ) -> np.ndarray:
    """x (Cin, L), weight (Cin, Cout, k): full output (L-1)·stride + k, cropped by `padding` each side."""
    cin, cout, k = weight.shape
    length = x.shape[1]
    full = np.zeros((cout, (length - 1) * stride + k))
    for tap in range(k):
        full[:, tap: tap + (length - 1) * stride + 1: stride] += weight[:, :, tap].T @ x
    end = full.shape[1] - padding
    return full[:, padding:end] + bias[:, None]


def _resnet_block(x: np.ndarray, w: dict, p: str, groups: int) -> np.ndarray:
    h = _silu(_group_norm(x, groups, w[f"{p}.norm1.weight"], w[f"{p}.norm1.bias"]))
    h = _conv1d(h, w[f"{p}.conv1.weight"], w[f"{p}.conv1.bias"])
    h = _silu(_group_norm(h, groups, w[f"{p}.norm2.weight"], w[f"{p}.norm2.bias"]))
    h = _conv1d(h, w[f"{p}.conv2.weight"], w[f"{p}.conv2.bias"])
    return x + h


def _snake(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """x (C, L) with per-channel log-parameters."""
    a = np.exp(alpha)[:, None]
    b = np.exp(beta)[:, None]
    return x + 1.0 / (b + 1e-9) * np.sin(a * x) ** 2


def _interpolate(x: np.ndarray, length: int) -> np.ndarray:
    """x (Lin, C) → (length, C), PyTorch linear align_corners=False, coordinates in float32."""
    n_in = x.shape[0]
    scale = np.float32(n_in) / np.float32(length)
    dst = np.arange(length, dtype=np.float32)
    src = (scale * (dst + np.float32(0.5)) - np.float32(0.5)).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0.astype(np.float32)).astype(np.float64)[:, None]
    return (1.0 - lam) * x[i0] + lam * x[i1]


def _istft(head: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    k_bins = n_fft // 2 + 1
    mag = np.minimum(np.exp(head[:, :k_bins]), 100.0)
    phase = head[:, k_bins:]
    frames = np.fft.irfft(mag * np.exp(1j * phase), n=n_fft, axis=1)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    n_frames = head.shape[0]
    total = (n_frames - 1) * hop + n_fft
    signal = np.zeros(total)
    envelope = np.zeros(total)
    for f in range(n_frames):
        signal[f * hop: f * hop + n_fft] += frames[f] * window
        envelope[f * hop: f * hop + n_fft] += window**2
    pad = (n_fft - hop) // 2
    return signal[pad: pad + hop * n_frames] / envelope[pad: pad + hop * n_frames]


def decode(cfg: CodecConfig, w: dict[str, np.ndarray], tokens: np.ndarray, voice: np.ndarray,
           stft_length: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    tokens = np.asarray(tokens, dtype=np.int64)
    g = np.asarray(voice, dtype=np.float64)
    codes = _fsq_codes(tokens, cfg.fsq_levels)
    out["fsq_codes"] = codes
    x = codes @ w["local_quantizer.proj_out.weight"].T + w["local_quantizer.proj_out.bias"]
    out["content_embedding"] = x

    t = cfg.prenet
    for layer in range(t.n_layers):
        p = f"wave_prenet.layers.{layer}"
        h = _layer_norm(x, 1e-5, w[f"{p}.attention_norm.weight"], w[f"{p}.attention_norm.bias"])
        x = x + _attention(h, w, p, t.n_heads, t.window_size, t.rope_theta)
        h = _layer_norm(x, 1e-5, w[f"{p}.ffn_norm.weight"], w[f"{p}.ffn_norm.bias"])
        x = x + _ffn(h, w, p)
        if layer == 0:
            out["prenet_layer0_out"] = x
    x = _layer_norm(x, 1e-5, w["wave_prenet.norm.weight"], w["wave_prenet.norm.bias"])
    if "wave_prenet.output_proj.weight" in w:
        x = x @ w["wave_prenet.output_proj.weight"].T + w["wave_prenet.output_proj.bias"]
    out["prenet_out"] = x

    up = cfg.wave_upsample_factor
    x = _conv_transpose1d(x.T, w["wave_conv_upsample.weight"], w["wave_conv_upsample.bias"], up, 0).T
    out["conv_upsample_out"] = x
    x = _interpolate(x, int(stft_length))
    out["interpolated"] = x

    groups = cfg.resnet_num_groups
    xc = x.T
    for b in range(cfg.resnet_num_blocks):
        xc = _resnet_block(xc, w, f"wave_prior_net.blocks.{b}", groups)
    x = xc.T
    out["prior_net_out"] = x

    t = cfg.decoder
    c = cfg.decoder_dim
    sg = _silu(g)

    def cond(name: str) -> list[np.ndarray]:
        v = w[f"{name}.condition_proj.1.weight"] @ sg + w[f"{name}.condition_proj.1.bias"]
        return [v[i * c: (i + 1) * c] for i in range(len(v) // c)]

    for layer in range(t.n_layers):
        p = f"wave_decoder.layers.{layer}"
        shift, scale, gate = cond(f"{p}.attention_norm")
        h = _layer_norm(x, 1e-5) * (1 + scale) + shift
        x = x + gate * _attention(h, w, p, t.n_heads, t.window_size, t.rope_theta)
        shift, scale, gate = cond(f"{p}.ffn_norm")
        h = _layer_norm(x, 1e-5) * (1 + scale) + shift
        x = x + gate * _ffn(h, w, p)
        if layer == 0:
            out["decoder_layer0_out"] = x
    shift, scale = cond("wave_decoder.norm")
    x = _layer_norm(x, 1e-5) * (1 + scale) + shift
    out["decoder_out"] = x

    xc = x.T
    for b in range(cfg.resnet_num_blocks):
        xc = _resnet_block(xc, w, f"wave_post_net.blocks.{b}", groups)
    out["post_net_out"] = xc.T

    if cfg.has_upsampler:
        for i, (u, k) in enumerate(zip(cfg.upsampler_factors, cfg.upsampler_kernel_sizes, strict=True)):
            p = f"wave_upsampler.upsample_layers.{i}"
            v = w[f"{p}.parametrizations.weight.original1"]
            gain = w[f"{p}.parametrizations.weight.original0"]
            weight = gain * v / np.sqrt((v**2).sum(axis=(1, 2), keepdims=True))
            xc = _conv_transpose1d(xc, weight, w[f"{p}.bias"], u, (k - u) // 2)
            xc = _snake(xc, w[f"wave_upsampler.snake_activations.{i}.alpha"],
                        w[f"wave_upsampler.snake_activations.{i}.beta"])
            xc = _resnet_block(xc, w, f"wave_upsampler.resnet_blocks.{i}", min(groups, xc.shape[0]))
        xc = w["wave_upsampler.out_proj.weight"] @ xc + w["wave_upsampler.out_proj.bias"][:, None]
        xc = _snake(xc, w["wave_upsampler.out_snake.alpha"], w["wave_upsampler.out_snake.beta"])
        out["upsampler_out"] = xc.T

    head = xc.T @ w["istft_head.out.weight"].T + w["istft_head.out.bias"]
    out["head_out"] = head
    out["waveform"] = _istft(head, cfg.n_fft, cfg.hop_length)
    return out
