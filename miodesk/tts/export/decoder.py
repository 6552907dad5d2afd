"""Export the MioCodec wave decoder from `config.yaml` + `model.safetensors` to ONNX, without torch.

Graph inputs: `tokens` int64 (T,), `voice` float32 (128,), `stft_length` int64 scalar (frames L;
L = 2T at speed 1). Output: `waveform` float32 (hop·U·L,), or with istft_in_graph=False
`head_out` float32 (U·L, n_fft+2), which CodecRuntime turns into the waveform with numpy.
Everything is derived from the config and the tensor shapes; each stage computes what the upstream
PyTorch decoder computes, in float32 (the comments per stage say where that needs care).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from miodesk.errors import ModelError
from miodesk.tts.codec_config import CodecConfig, TransformerConfig
from miodesk.tts.export import EXPORTER_VERSION, GRAPH_KIND
from miodesk.tts.export.graph import (
    FLOAT,
    INT64,
    GraphBuilder,
    channels_first,
    layer_norm,
    linear,
    save_model_atomically,
    time_major,
    value_info,
)
from miodesk.tts.export.layout import decoder_tensor_shapes
from miodesk.tts.safetensors_io import SafeTensorsFile

log = logging.getLogger(__name__)

OPSET = 17
VOICE_DIM = 128
LN_EPS = 1e-5
GN_EPS = 1e-6
MAG_CLAMP = 100.0
ATTN_BLOCK = 32  # query block of the banded attention (see _band_plan); 0 would mean dense
NEG_INF = -1e30  # finite "minus infinity": exp() underflows to exactly 0, and no EP chokes on inf

# Named intermediates exposed with `debug_outputs=True` (names as in the golden case files).
DEBUG_OUTPUTS = (
    "fsq_codes", "content_embedding", "prenet_layer0_out", "prenet_out", "conv_upsample_out",
    "interpolated", "prior_net_out", "decoder_layer0_out", "decoder_out", "post_net_out",
    "upsampler_out", "head_out",
)


@dataclass
class _Ctx:
    g: GraphBuilder
    w: dict[str, np.ndarray]
    cfg: CodecConfig
    debug: dict[str, str]
    attn_block: int = 0  # query block size of the banded attention; 0 = dense (T, T) scores


@dataclass
class _Band:
    """Per-transformer attention plan, shared by its layers (depends on T only)."""

    length: str
    window: int  # window_size // 2
    block: int
    dense_bias: str = ""
    key_index: str = ""  # (nb, B+2w) key positions in the padded sequence
    bias: str = ""  # (nb, B, B+2w)
    q_pads: str = ""
    kv_pads: str = ""


# --------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------
def _load_weights(codec_dir: Path, cfg: CodecConfig) -> dict[str, np.ndarray]:
    st_path = codec_dir / "model.safetensors"
    if not st_path.is_file():
        raise ModelError(f"model.safetensors not found in {codec_dir}.")
    with SafeTensorsFile(st_path) as st:
        # SwiGLU widths come from the file (checked for consistency below), the rest from the config.
        ffn = {}
        for prefix in ("wave_prenet", "wave_decoder"):
            key = f"{prefix}.layers.0.feed_forward.w1.weight"
            if key in st and len(st.shape(key)) == 2:
                ffn[prefix] = st.shape(key)[0]
        expected = decoder_tensor_shapes(cfg, ffn)
        for name, shape in expected.items():
            if name not in st:
                raise ModelError(f"model.safetensors is missing tensor {name} (required by config.yaml).")
            if tuple(st.shape(name)) != tuple(shape):
                raise ModelError(
                    f"model.safetensors: tensor {name} has shape {list(st.shape(name))}, "
                    f"config.yaml implies {list(shape)}."
                )
        weights = {name: st.get(name) for name in expected}
    for name, arr in weights.items():
        if not np.all(np.isfinite(arr)):
            raise ModelError(f"model.safetensors: tensor {name} contains NaN or infinity.")
    return weights


def fsq_table(levels: tuple[int, ...]) -> np.ndarray:
    """codes[id] for every id, float32 (codebook, len(levels)): the mixed-radix digits of id over
    `levels`, each mapped to (digit − level//2) / (level//2), so an 8-level axis never reaches +1."""
    ids = np.arange(int(np.prod(levels)), dtype=np.int64)
    basis = np.cumprod([1, *levels[:-1]]).astype(np.int64)
    lv = np.asarray(levels, dtype=np.int64)
    half = lv // 2
    digits = (ids[:, None] // basis[None, :]) % lv[None, :]
    return ((digits - half).astype(np.float32) / half.astype(np.float32)).astype(np.float32)


def rope_inv_freq(head_dim: int, theta: float) -> np.ndarray:
    """inv_freq in float32 like the reference: 1 / theta^(arange(0, hd, 2)/hd)."""
    exponent = np.arange(0, head_dim, 2, dtype=np.float32)[: head_dim // 2] / np.float32(head_dim)
    return (np.float32(1.0) / np.power(np.float32(theta), exponent, dtype=np.float32)).astype(np.float32)


def istft_basis(n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Real iDFT basis folded with the periodic Hann window, and the window², padded to R·hop.

    frames = [Re | Im] @ basis reproduces irfft(n_fft, norm="backward") · window; the imaginary
    parts of DC and Nyquist get zero rows, as irfft ignores them.
    """
    k_bins = n_fft // 2 + 1
    n = np.arange(n_fft, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)
    k = np.arange(k_bins, dtype=np.float64)[:, None]
    coef = np.full((k_bins, 1), 2.0)
    coef[0] = 1.0
    coef[-1] = 1.0
    ang = 2.0 * np.pi * k * n[None, :] / n_fft
    cos_b = coef * np.cos(ang) / n_fft * window[None, :]
    sin_b = -coef * np.sin(ang) / n_fft * window[None, :]
    sin_b[0] = 0.0
    sin_b[-1] = 0.0
    r_blocks = -(-n_fft // hop)
    width = r_blocks * hop
    basis = np.zeros((2 * k_bins, width), dtype=np.float64)
    basis[:k_bins, :n_fft] = cos_b
    basis[k_bins:, :n_fft] = sin_b
    win_sq = np.zeros(width, dtype=np.float64)
    win_sq[:n_fft] = window**2
    return basis.astype(np.float32), win_sq.astype(np.float32), r_blocks


# --------------------------------------------------------------------------------------------
# building blocks (time-major tensors are (T, C); convolution stacks use (1, C, T))
# --------------------------------------------------------------------------------------------
def _silu(c: _Ctx, x: str) -> str:
    return c.g.op1("Mul", [x, c.g.op1("Sigmoid", [x])])


def _rope_tables(c: _Ctx, length: str, t: TransformerConfig) -> tuple[str, str]:
    """cos/sin of p·inv_freq for p = 0..T-1, float32 angles, shaped (T, 1, hd/2, 1)."""
    g = c.g
    pos = g.op1("Cast", [g.op1("Range", [g.const(0, np.int64), length, g.const(1, np.int64)])], to=FLOAT)
    inv = g.const(rope_inv_freq(t.head_dim, t.rope_theta).reshape(1, -1))
    ang = g.op1("Mul", [g.op1("Unsqueeze", [pos, g.const([1], np.int64)]), inv])
    shape = g.const([-1, 1, t.head_dim // 2, 1], np.int64)
    return (g.op1("Reshape", [g.op1("Cos", [ang]), shape]),
            g.op1("Reshape", [g.op1("Sin", [ang]), shape]))


def _band_plan(c: _Ctx, length: str, window_size: int) -> _Band:
    """Additive band masks: key j is visible from query i iff |i-j| <= window//2.

    Dense: one (T, T) bias. Blocked: queries in blocks of B attend only to the B + 2w keys around
    their block (gathered from zero-padded k/v), so the cost grows as T·(B+2w), not T²; keys
    outside the band or the sequence get the huge negative bias and contribute exactly 0.
    """
    g = c.g
    w = window_size // 2
    band = _Band(length=length, window=w, block=c.attn_block)
    if c.attn_block <= 0:
        idx = g.op1("Range", [g.const(0, np.int64), length, g.const(1, np.int64)])
        diff = g.op1("Abs", [g.op1("Sub", [g.op1("Unsqueeze", [idx, g.const([1], np.int64)]),
                                           g.op1("Unsqueeze", [idx, g.const([0], np.int64)])])])
        visible = g.op1("LessOrEqual", [diff, g.const(w, np.int64)])
        band.dense_bias = g.op1("Where", [visible, g.const(0.0), g.const(NEG_INF)])
        return band
    b = c.attn_block
    span = b + 2 * w
    # block count without integer Div (which some EPs lack): ceil(T / B) in float
    n_blocks = g.op1("Cast", [g.op1("Ceil", [g.op1("Div", [g.op1("Cast", [length], to=FLOAT),
                                                          g.const(float(b))])])], to=INT64)
    extra = g.op1("Reshape", [g.op1("Sub", [g.op1("Mul", [n_blocks, g.const(b, np.int64)]), length]),
                              g.const([1], np.int64)])
    band.q_pads = g.op1("Concat", [g.const([0, 0, 0, 0], np.int64), extra, g.const([0], np.int64)], axis=0)
    band.kv_pads = g.op1("Concat", [g.const([0, w, 0, 0], np.int64),
                                    g.op1("Add", [extra, g.const([w], np.int64)]),
                                    g.const([0], np.int64)], axis=0)
    starts = g.op1("Mul", [g.op1("Range", [g.const(0, np.int64), n_blocks, g.const(1, np.int64)]),
                           g.const(b, np.int64)])
    band.key_index = g.op1("Add", [g.op1("Unsqueeze", [starts, g.const([1], np.int64)]),
                                   g.const(np.arange(span).reshape(1, span), np.int64)])
    key_pos = g.op1("Sub", [band.key_index, g.const(w, np.int64)])
    in_seq = g.op1("And", [g.op1("GreaterOrEqual", [key_pos, g.const(0, np.int64)]),
                           g.op1("Less", [key_pos, length])])
    r = np.arange(b)[:, None]
    m = np.arange(span)[None, :]
    in_band = g.const(np.abs(r - (m - w)) <= w, np.bool_)  # query r of a block vs its key slot m
    visible = g.op1("And", [g.op1("Unsqueeze", [in_seq, g.const([1], np.int64)]), in_band])
    band.bias = g.op1("Where", [visible, g.const(0.0), g.const(NEG_INF)])
    return band


def _attention(c: _Ctx, x: str, p: str, t: TransformerConfig, cos: str, sin: str, band: _Band) -> str:
    g = c.g
    d, h, hd = t.dim, t.n_heads, t.head_dim
    # One MatMul for q, k, v; the softmax scale is folded into Wq (RoPE is linear, so it commutes).
    wq = c.w[f"{p}.attention.wq.weight"].T * np.float32(hd**-0.5)
    wk = c.w[f"{p}.attention.wk.weight"].T
    wv = c.w[f"{p}.attention.wv.weight"].T
    wqkv = g.weight(f"{p}.attention.wqkv.T", np.concatenate([wq, wk, wv], axis=1).astype(np.float32))
    qkv = g.op1("MatMul", [x, wqkv])
    qk, v = g.opn("Split", [qkv, g.const([2 * d, d], np.int64)], n_out=2, axis=1)
    # RoPE on adjacent pairs (2i, 2i+1) of every head of q and k together.
    qk4 = g.op1("Reshape", [qk, g.const([-1, 2 * h, hd // 2, 2], np.int64)])
    xe, xo = g.opn("Split", [qk4, g.const([1, 1], np.int64)], n_out=2, axis=3)
    ye = g.op1("Sub", [g.op1("Mul", [xe, cos]), g.op1("Mul", [xo, sin])])
    yo = g.op1("Add", [g.op1("Mul", [xe, sin]), g.op1("Mul", [xo, cos])])
    rot = g.op1("Reshape", [g.op1("Concat", [ye, yo], axis=3), g.const([-1, 2 * h, hd], np.int64)])
    q, k = g.opn("Split", [g.op1("Transpose", [rot], perm=[1, 0, 2]), g.const([h, h], np.int64)],
                n_out=2, axis=0)
    vh = g.op1("Transpose", [g.op1("Reshape", [v, g.const([-1, h, hd], np.int64)])], perm=[1, 0, 2])
    if band.block <= 0:
        kt = g.op1("Transpose", [k], perm=[0, 2, 1])
        scores = g.op1("Add", [g.op1("MatMul", [q, kt]), band.dense_bias])
        ctx = g.op1("MatMul", [g.op1("Softmax", [scores], axis=-1), vh])  # (H, T, hd)
    else:
        qb = g.op1("Reshape", [g.op1("Pad", [q, band.q_pads]), g.const([h, -1, band.block, hd], np.int64)])
        kw = g.op1("Gather", [g.op1("Pad", [k, band.kv_pads]), band.key_index], axis=1)  # (H, nb, B+2w, hd)
        vw = g.op1("Gather", [g.op1("Pad", [vh, band.kv_pads]), band.key_index], axis=1)
        scores = g.op1("Add", [g.op1("MatMul", [qb, g.op1("Transpose", [kw], perm=[0, 1, 3, 2])]), band.bias])
        ctx = g.op1("MatMul", [g.op1("Softmax", [scores], axis=-1), vw])  # (H, nb, B, hd)
        ctx = g.op1("Reshape", [ctx, g.const([h, -1, hd], np.int64)])
        end = g.op1("Reshape", [band.length, g.const([1], np.int64)])
        ctx = g.op1("Slice", [ctx, g.const([0], np.int64), end, g.const([1], np.int64)])
    ctx = g.op1("Transpose", [ctx], perm=[1, 0, 2])
    ctx = g.op1("Reshape", [ctx, g.const([-1, d], np.int64)])
    return linear(c.g, c.w, ctx, f"{p}.attention.wo.weight")


def _ffn(c: _Ctx, x: str, p: str) -> str:
    g = c.g
    w1 = c.w[f"{p}.feed_forward.w1.weight"].T
    w3 = c.w[f"{p}.feed_forward.w3.weight"].T
    hf = w1.shape[1]
    h13 = g.op1("MatMul", [x, g.weight(f"{p}.feed_forward.w13.T", np.concatenate([w1, w3], axis=1))])
    a, b = g.opn("Split", [h13, g.const([hf, hf], np.int64)], n_out=2, axis=1)
    return linear(c.g, c.w, g.op1("Mul", [_silu(c, a), b]), f"{p}.feed_forward.w2.weight")


def _transformer(c: _Ctx, x: str, prefix: str, t: TransformerConfig, debug_layer0: str,
                 adaln: list[tuple[str, str, str | None]] | None = None) -> str:
    """Pre-norm blocks; `adaln` gives per norm (1+scale, shift, gate) tensors for the decoder."""
    g = c.g
    length = g.op1("Gather", [g.op1("Shape", [x]), g.const(0, np.int64)], axis=0)
    cos, sin = _rope_tables(c, length, t)
    band = _band_plan(c, length, t.window_size)
    for layer in range(t.n_layers):
        p = f"{prefix}.layers.{layer}"
        if adaln is None:
            hn = layer_norm(g, x, g.weight(f"{p}.attention_norm.weight", c.w[f"{p}.attention_norm.weight"]),
                            g.weight(f"{p}.attention_norm.bias", c.w[f"{p}.attention_norm.bias"]), LN_EPS)
            x = g.op1("Add", [x, _attention(c, hn, p, t, cos, sin, band)])
            hn = layer_norm(g, x, g.weight(f"{p}.ffn_norm.weight", c.w[f"{p}.ffn_norm.weight"]),
                            g.weight(f"{p}.ffn_norm.bias", c.w[f"{p}.ffn_norm.bias"]), LN_EPS)
            x = g.op1("Add", [x, _ffn(c, hn, p)])
        else:
            scale_a, shift_a, gate_a = adaln[2 * layer]
            scale_f, shift_f, gate_f = adaln[2 * layer + 1]
            assert gate_a is not None and gate_f is not None
            hn = layer_norm(g, x, scale_a, shift_a, LN_EPS)
            x = g.op1("Add", [x, g.op1("Mul", [_attention(c, hn, p, t, cos, sin, band), gate_a])])
            hn = layer_norm(g, x, scale_f, shift_f, LN_EPS)
            x = g.op1("Add", [x, g.op1("Mul", [_ffn(c, hn, p), gate_f])])
        if layer == 0:
            c.debug[debug_layer0] = x
    return x


def _adaln_params(c: _Ctx, voice: str) -> list[tuple[str, str, str | None]]:
    """All decoder AdaLN-Zero projections of silu(voice) in one MatMul (they depend on the voice only).

    Chunk order per norm is shift, scale, gate, as upstream splits it; the +1 of (1 + scale) is
    folded into the scale bias so LayerNormalization can take it directly as its Scale input.
    """
    g, cfg = c.g, c.cfg
    dim = cfg.decoder_dim
    names = []
    for layer in range(cfg.decoder.n_layers):
        for norm in ("attention_norm", "ffn_norm"):
            names.append((f"wave_decoder.layers.{layer}.{norm}.condition_proj.1", 3))
    names.append(("wave_decoder.norm.condition_proj.1", 2))
    ws, bs, sizes = [], [], []
    for name, chunks in names:
        w = c.w[f"{name}.weight"]
        b = c.w[f"{name}.bias"].copy()
        b[dim: 2 * dim] += np.float32(1.0)
        ws.append(w.T)
        bs.append(b)
        sizes += [dim] * chunks
    w_all = g.weight("wave_decoder.condition_proj.T", np.concatenate(ws, axis=1).astype(np.float32))
    b_all = g.weight("wave_decoder.condition_proj.bias", np.concatenate(bs).astype(np.float32))
    cond = g.op1("Add", [g.op1("MatMul", [g.op1("Unsqueeze", [_silu(c, voice), g.const([0], np.int64)]),
                                          w_all]), b_all])
    cond = g.op1("Reshape", [cond, g.const([-1], np.int64)])
    parts = g.op("Split", [cond, g.const(sizes, np.int64)], n_out=len(sizes), axis=0)
    out: list[tuple[str, str, str | None]] = []
    i = 0
    for _, chunks in names:
        shift, scale = parts[i], parts[i + 1]
        gate = parts[i + 2] if chunks == 3 else None
        out.append((scale, shift, gate))
        i += chunks
    return out


def _group_norm(c: _Ctx, x: str, p: str, channels: int, groups: int) -> str:
    """GroupNorm over the whole time axis (1, C, T): InstanceNorm on (1, G, C/G·T), then affine."""
    g = c.g
    shape = g.op1("Shape", [x])
    grouped = g.op1("Reshape", [x, g.const([1, groups, -1], np.int64)])
    normed = g.op1("InstanceNormalization", [grouped, g.const(np.ones(groups)), g.const(np.zeros(groups))],
                   epsilon=GN_EPS)
    y = g.op1("Reshape", [normed, shape])
    gamma = g.weight(f"{p}.weight", c.w[f"{p}.weight"].reshape(channels, 1))
    beta = g.weight(f"{p}.bias", c.w[f"{p}.bias"].reshape(channels, 1))
    return g.op1("Add", [g.op1("Mul", [y, gamma]), beta])


def _conv(c: _Ctx, x: str, p: str) -> str:
    k = c.w[f"{p}.weight"].shape[2]
    return c.g.op1("Conv", [x, c.g.weight(f"{p}.weight", c.w[f"{p}.weight"]),
                            c.g.weight(f"{p}.bias", c.w[f"{p}.bias"])],
                   kernel_shape=[k], pads=[k // 2, k // 2])


def _resnet_block(c: _Ctx, x: str, p: str, channels: int) -> str:
    groups = min(c.cfg.resnet_num_groups, channels)
    if channels % groups:
        raise ModelError(f"config.yaml: {channels} channels in {p} are not divisible by {groups} groups.")
    h = _conv(c, _silu(c, _group_norm(c, x, f"{p}.norm1", channels, groups)), f"{p}.conv1")
    h = _conv(c, _silu(c, _group_norm(c, h, f"{p}.norm2", channels, groups)), f"{p}.conv2")
    return c.g.op1("Add", [x, h])


def _snake(c: _Ctx, x: str, p: str, channel_axis_shape: tuple[int, ...]) -> str:
    """SnakeBeta: x + 1/(exp(β)+1e-9) · sin²(exp(α)·x); α, β are stored as logs."""
    g = c.g
    alpha = np.exp(c.w[f"{p}.alpha"].astype(np.float32)).astype(np.float32)
    inv_beta = (np.float32(1.0) / (np.exp(c.w[f"{p}.beta"].astype(np.float32)) + np.float32(1e-9))).astype(
        np.float32)
    s = g.op1("Sin", [g.op1("Mul", [x, g.weight(f"{p}.exp_alpha", alpha.reshape(channel_axis_shape))])])
    return g.op1("Add", [x, g.op1("Mul", [g.op1("Mul", [s, s]),
                                          g.weight(f"{p}.inv_beta", inv_beta.reshape(channel_axis_shape))])])


def _interpolate(c: _Ctx, x: str, length: str) -> str:
    """PyTorch linear, align_corners=False, to `length` frames, coordinates in float32 as torch's."""
    g = c.g
    n_in = g.op1("Gather", [g.op1("Shape", [x]), g.const(0, np.int64)], axis=0)
    scale = g.op1("Div", [g.op1("Cast", [n_in], to=FLOAT), g.op1("Cast", [length], to=FLOAT)])
    dst = g.op1("Cast", [g.op1("Range", [g.const(0, np.int64), length, g.const(1, np.int64)])], to=FLOAT)
    src = g.op1("Sub", [g.op1("Mul", [scale, g.op1("Add", [dst, g.const(0.5)])]), g.const(0.5)])
    src = g.op1("Max", [src, g.const(0.0)])
    floor = g.op1("Floor", [src])
    last = g.op1("Sub", [n_in, g.const(1, np.int64)])
    i0 = g.op1("Min", [g.op1("Cast", [floor], to=INT64), last])
    i1 = g.op1("Min", [g.op1("Add", [i0, g.const(1, np.int64)]), last])
    lam = g.op1("Unsqueeze", [g.op1("Sub", [src, g.op1("Cast", [i0], to=FLOAT)]), g.const([1], np.int64)])
    w0 = g.op1("Sub", [g.const(1.0), lam])
    x0 = g.op1("Gather", [x, i0], axis=0)
    x1 = g.op1("Gather", [x, i1], axis=0)
    return g.op1("Add", [g.op1("Mul", [x0, w0]), g.op1("Mul", [x1, lam])])


def _upsampler(c: _Ctx, x: str) -> str:
    """The 44.1 kHz-layout upsampler (50 Hz → 450 Hz) on (1, C, L); returns time-major (U·L, C)."""
    g, cfg = c.g, c.cfg
    ch = cfg.decoder_dim
    for i, (u, k) in enumerate(zip(cfg.upsampler_factors, cfg.upsampler_kernel_sizes, strict=True)):
        p = f"wave_upsampler.upsample_layers.{i}"
        gain = c.w[f"{p}.parametrizations.weight.original0"].astype(np.float64)
        v = c.w[f"{p}.parametrizations.weight.original1"].astype(np.float64)
        # weight norm folded here: W = g · v / ||v||, norm per input channel over (out, k)
        norm = np.sqrt(np.sum(v * v, axis=(1, 2), keepdims=True))
        weight = (gain * v / norm).astype(np.float32)
        pad = (k - u) // 2
        x = g.op1("ConvTranspose",
                  [x, g.weight(f"{p}.weight", weight), g.weight(f"{p}.bias", c.w[f"{p}.bias"])],
                  kernel_shape=[k], strides=[u], pads=[pad, pad])
        ch //= 2
        x = _snake(c, x, f"wave_upsampler.snake_activations.{i}", (ch, 1))
        x = _resnet_block(c, x, f"wave_upsampler.resnet_blocks.{i}", ch)
    x = linear(c.g, c.w, time_major(c.g, x), "wave_upsampler.out_proj.weight", "wave_upsampler.out_proj.bias")
    return _snake(c, x, "wave_upsampler.out_snake", (cfg.decoder_dim,))


def _istft(c: _Ctx, head: str) -> str:
    """iSTFT with "same" padding: basis MatMul, overlap-add by hop blocks, ÷ envelope, trim."""
    g, cfg = c.g, c.cfg
    n_fft, hop = cfg.n_fft, cfg.hop_length
    k_bins = n_fft // 2 + 1
    basis, win_sq, r_blocks = istft_basis(n_fft, hop)
    logmag, phase = g.opn("Split", [head, g.const([k_bins, k_bins], np.int64)], n_out=2, axis=1)
    mag = g.op1("Min", [g.op1("Exp", [logmag]), g.const(MAG_CLAMP)])
    spec = g.op1("Concat", [g.op1("Mul", [mag, g.op1("Cos", [phase])]),
                            g.op1("Mul", [mag, g.op1("Sin", [phase])])], axis=1)
    frames = g.op1("MatMul", [spec, g.weight("istft.basis", basis)])  # (F, R·hop), windowed
    n_frames = g.op1("Gather", [g.op1("Shape", [head]), g.const([0], np.int64)], axis=0)

    def overlap_add(blocks: str) -> str:
        # blocks (F, R, hop): block r of frame f lands on output block f + r
        total = None
        parts = g.op("Split", [blocks, g.const([1] * r_blocks, np.int64)], n_out=r_blocks, axis=1) \
            if r_blocks > 1 else [blocks]
        for r, part in enumerate(parts):
            sq = g.op1("Squeeze", [part, g.const([1], np.int64)])
            padded = g.op1("Pad", [sq, g.const([r, 0, r_blocks - 1 - r, 0], np.int64)])
            total = padded if total is None else g.op1("Add", [total, padded])
        assert total is not None
        return g.op1("Reshape", [total, g.const([-1], np.int64)])

    signal = overlap_add(g.op1("Reshape", [frames, g.const([-1, r_blocks, hop], np.int64)]))
    env_blocks = g.op1("Expand", [g.const(win_sq.reshape(1, r_blocks, hop)),
                                  g.op1("Concat", [n_frames, g.const([r_blocks, hop], np.int64)], axis=0)])
    envelope = overlap_add(env_blocks)
    pad = (n_fft - hop) // 2
    start = g.const([pad], np.int64)
    end = g.op1("Add", [g.op1("Mul", [n_frames, g.const([hop], np.int64)]), start])
    signal = g.op1("Slice", [signal, start, end, g.const([0], np.int64)])
    envelope = g.op1("Slice", [envelope, start, end, g.const([0], np.int64)])
    return g.op1("Div", [signal, envelope])


# --------------------------------------------------------------------------------------------
# the whole decoder
# --------------------------------------------------------------------------------------------
def build_decoder_model(
    cfg: CodecConfig,
    weights: dict[str, np.ndarray],
    *,
    debug_outputs: bool = False,
    istft_in_graph: bool = True,
    metadata: dict[str, str] | None = None,
    attn_block: int | None = None,
) -> onnx.ModelProto:
    g = GraphBuilder()
    c = _Ctx(g=g, w=weights, cfg=cfg, debug={}, attn_block=ATTN_BLOCK if attn_block is None else attn_block)
    tokens, voice, stft_length = "tokens", "voice", "stft_length"

    # FSQ: table Gather (no integer Div/Mod, which some EPs lack), then proj_out.
    codes = g.op1("Gather", [g.weight("fsq.codes", fsq_table(cfg.fsq_levels)), tokens], axis=0)
    c.debug["fsq_codes"] = codes
    x = linear(c.g, c.w, codes, "local_quantizer.proj_out.weight", "local_quantizer.proj_out.bias")
    c.debug["content_embedding"] = x

    x = _transformer(c, x, "wave_prenet", cfg.prenet, "prenet_layer0_out")
    x = layer_norm(g, x, g.weight("wave_prenet.norm.weight", weights["wave_prenet.norm.weight"]),
                   g.weight("wave_prenet.norm.bias", weights["wave_prenet.norm.bias"]), LN_EPS)
    if "wave_prenet.output_proj.weight" in weights:
        x = linear(c.g, c.w, x, "wave_prenet.output_proj.weight", "wave_prenet.output_proj.bias")
    c.debug["prenet_out"] = x

    # ConvTranspose1d with kernel == stride is a per-frame MatMul: (T, Cin) @ (Cin, k·Cout).
    w_up = weights["wave_conv_upsample.weight"]  # (Cin, Cout, k)
    cin, cout, kk = w_up.shape
    w_up2 = np.ascontiguousarray(w_up.transpose(0, 2, 1).reshape(cin, kk * cout))
    x = g.op1("MatMul", [x, g.weight("wave_conv_upsample.weight.matmul", w_up2)])
    x = g.op1("Reshape", [x, g.const([-1, cout], np.int64)])
    x = g.op1("Add", [x, g.weight("wave_conv_upsample.bias", weights["wave_conv_upsample.bias"])])
    c.debug["conv_upsample_out"] = x

    x = _interpolate(c, x, stft_length)
    c.debug["interpolated"] = x

    dim = cfg.decoder_dim
    x = channels_first(c.g, x)
    for b in range(cfg.resnet_num_blocks):
        x = _resnet_block(c, x, f"wave_prior_net.blocks.{b}", dim)
    x = time_major(c.g, x)
    c.debug["prior_net_out"] = x

    adaln = _adaln_params(c, voice)
    x = _transformer(c, x, "wave_decoder", cfg.decoder, "decoder_layer0_out", adaln[:-1])
    final_scale, final_shift, _ = adaln[-1]
    x = layer_norm(g, x, final_scale, final_shift, LN_EPS)
    c.debug["decoder_out"] = x

    x = channels_first(c.g, x)
    for b in range(cfg.resnet_num_blocks):
        x = _resnet_block(c, x, f"wave_post_net.blocks.{b}", dim)
    if cfg.has_upsampler:
        c.debug["post_net_out"] = time_major(c.g, x)
        x = _upsampler(c, x)
        c.debug["upsampler_out"] = x
    else:
        x = time_major(c.g, x)
        c.debug["post_net_out"] = x

    head = linear(c.g, c.w, x, "istft_head.out.weight", "istft_head.out.bias")
    c.debug["head_out"] = head

    outputs = []
    if istft_in_graph:
        g.identity(_istft(c, head), "waveform")
        outputs.append(value_info("waveform", FLOAT, ["samples"]))
    else:
        g.identity(head, "head_out")
        outputs.append(value_info("head_out", FLOAT, ["frames", cfg.n_fft + 2]))
    if debug_outputs:
        for name in DEBUG_OUTPUTS:
            if name in c.debug and not (name == "head_out" and not istft_in_graph):
                g.identity(c.debug[name], "dbg_" + name)
                outputs.append(value_info("dbg_" + name, FLOAT, None))

    inputs = [
        value_info(tokens, INT64, ["tokens"]),
        value_info(voice, FLOAT, [cfg.decoder.adanorm_condition_dim or VOICE_DIM]),
        value_info(stft_length, INT64, []),
    ]
    graph = helper.make_graph(g.nodes, "miocodec_decoder", inputs, outputs, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="miodesk", producer_version=EXPORTER_VERSION)
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    helper.set_model_props(model, metadata or {})
    return model


def decoder_metadata(cfg: CodecConfig, *, istft_in_graph: bool, source_hash: str = "") -> dict[str, str]:
    return {
        "kind": GRAPH_KIND,
        "exporter_version": EXPORTER_VERSION,
        "variant": cfg.variant,
        "sample_rate": str(cfg.sample_rate),
        "samples_per_token": str(cfg.samples_per_token),
        "hop_length": str(cfg.hop_length),
        "n_fft": str(cfg.n_fft),
        "upsample_factor": str(cfg.upsample),
        "downsample_factor": str(cfg.downsample_factor),
        "codebook_size": str(cfg.codebook_size),
        "voice_dim": str(cfg.decoder.adanorm_condition_dim or VOICE_DIM),
        "istft": "graph" if istft_in_graph else "numpy",
        "source_sha256": source_hash,
    }


def export_decoder(codec_dir: Path, out_path: Path, *, debug_outputs: bool = False,
                   istft_in_graph: bool = True, attn_block: int | None = None) -> Path:
    """Build the decoder ONNX for the codec folder (config.yaml + model.safetensors) at `out_path`.

    By default the whole iSTFT is in the graph (output `waveform`): the graph is self-contained
    for any consumer and EP, at a cost of a few % of decode time on the CPU (the iDFT is a
    MatMul; numpy's FFT is faster for n_fft 1920). `istft_in_graph=False` ends the graph at the
    head (`head_out`, frames × (n_fft+2)) and CodecRuntime runs miodesk.tts.istft on it.
    """
    codec_dir = Path(codec_dir)
    out_path = Path(out_path)
    if not codec_dir.is_dir():
        raise ModelError(f"Codec folder not found: {codec_dir}.")
    cfg = CodecConfig.from_file(codec_dir / "config.yaml")
    weights = _load_weights(codec_dir, cfg)
    source_hash = hashlib.sha256((codec_dir / "config.yaml").read_bytes()).hexdigest()
    model = build_decoder_model(cfg, weights, debug_outputs=debug_outputs, istft_in_graph=istft_in_graph,
                                attn_block=attn_block,
                                metadata=decoder_metadata(cfg, istft_in_graph=istft_in_graph,
                                                          source_hash=source_hash))
    del weights
    save_model_atomically(model, out_path)
    log.info("Exported MioCodec decoder (%s) to %s", cfg.variant, out_path)
    return out_path
