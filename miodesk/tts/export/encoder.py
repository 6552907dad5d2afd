"""Export the MioCodec voice (global) encoder to ONNX without torch: 16 kHz audio → 128-d voice.

The graph is WavLM-Base+ (CNN feature extractor, feature projection, positional convolution and the
first `max(global_ssl_layers)` transformer layers) followed by the codec's GlobalEncoder (ConvNeXt
backbone, attentive statistics pooling, projection, LayerNorm), computing what torchaudio's WavLM
and the upstream GlobalEncoder compute.

Graph input: `audio_16k` float32 (samples,), already padded and resampled (voice_encoder.py does
that in numpy with the torchaudio-exact resampler). Output: `global_embedding` float32 (128,).

WavLM weights are read from a folder holding the Hugging Face `config.json` of
`microsoft/wavlm-base-plus` plus its weights, under the **HF checkpoint names** (`WavLMModel`, no
prefix; a `wavlm.` prefix is stripped): `feature_extractor.conv_layers.*`, `feature_projection.*`,
`encoder.pos_conv_embed.conv.{weight_g,weight_v}` (old weight-norm naming, as on the hub) or
`…conv.parametrizations.weight.{original0,original1}` (recent transformers), `encoder.layer_norm.*`,
`encoder.layers.{l}.attention.{q,k,v}_proj.*` …. The weights file may be `model.safetensors` or the
hub's `pytorch_model.bin` — a torch pickle, which is parsed symbolically and never unpickled (only
an OrderedDict of plain tensors is accepted). A torchaudio-named checkpoint (`encoder.transformer.*`,
packed `in_proj_weight`; golden `wavlm_torchaudio.safetensors` + `torchaudio_wavlm_params.json`) is
accepted too and mapped onto the HF names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from miodesk.errors import ModelError
from miodesk.torch_pickle import PickleRefused, state_dict_tensors, tensor_array
from miodesk.tts.codec_config import CodecConfig, GlobalEncoderConfig
from miodesk.tts.export.graph import (
    FLOAT,
    GraphBuilder,
    channels_first,
    layer_norm,
    linear,
    save_model_atomically,
    time_major,
    value_info,
)
from miodesk.tts.safetensors_io import SafeTensorsFile

log = logging.getLogger(__name__)

ENCODER_EXPORTER_VERSION = "1"
OPSET = 17
ENCODER_GRAPH_KIND = "miodesk.miocodec.voice_encoder"
GN_EPS = 1e-5  # the WavLM CNN GroupNorm (torch default)
CONVNEXT_EPS = 1e-6
POOL_NORM_EPS = 1e-5
POOL_ATTN_DIM = 128  # fixed in the reference AttentiveStatsPool

DEBUG_OUTPUTS = (
    "cnn_out", "feature_projection_out", "pos_conv_out", "transformer_input", "wavlm_layer1",
    "wavlm_layer2", "position_bias_layer1", "global_ssl_features", "backbone_out",
)

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "wavlm_torchaudio.safetensors")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WavLMConfig:
    conv_dim: tuple[int, ...]
    conv_kernel: tuple[int, ...]
    conv_stride: tuple[int, ...]
    conv_bias: bool
    feat_extract_norm: str  # "group" (Base/Base+) or "layer"
    hidden_size: int
    num_heads: int
    intermediate_size: int
    num_layers: int
    num_buckets: int
    max_bucket_distance: int
    pos_conv_kernel: int
    pos_conv_groups: int
    layer_norm_eps: float

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def from_hf(cls, data: dict[str, Any]) -> WavLMConfig:
        if data.get("do_stable_layer_norm"):
            raise ModelError("config.json: pre-norm WavLM (do_stable_layer_norm) is not supported; "
                             "use microsoft/wavlm-base-plus.")
        return cls(
            conv_dim=tuple(int(v) for v in data["conv_dim"]),
            conv_kernel=tuple(int(v) for v in data["conv_kernel"]),
            conv_stride=tuple(int(v) for v in data["conv_stride"]),
            conv_bias=bool(data.get("conv_bias", False)),
            feat_extract_norm=str(data.get("feat_extract_norm", "group")),
            hidden_size=int(data["hidden_size"]),
            num_heads=int(data["num_attention_heads"]),
            intermediate_size=int(data["intermediate_size"]),
            num_layers=int(data["num_hidden_layers"]),
            num_buckets=int(data.get("num_buckets", 320)),
            max_bucket_distance=int(data.get("max_bucket_distance", 800)),
            pos_conv_kernel=int(data.get("num_conv_pos_embeddings", 128)),
            pos_conv_groups=int(data.get("num_conv_pos_embedding_groups", 16)),
            layer_norm_eps=float(data.get("layer_norm_eps", 1e-5)),
        )

    @classmethod
    def from_torchaudio(cls, data: dict[str, Any]) -> WavLMConfig:
        if data.get("encoder_layer_norm_first"):
            raise ModelError("torchaudio_wavlm_params.json: pre-norm WavLM is not supported.")
        layers = data["extractor_conv_layer_config"]
        return cls(
            conv_dim=tuple(int(v[0]) for v in layers),
            conv_kernel=tuple(int(v[1]) for v in layers),
            conv_stride=tuple(int(v[2]) for v in layers),
            conv_bias=bool(data.get("extractor_conv_bias", False)),
            feat_extract_norm="group" if data.get("extractor_mode", "group_norm") == "group_norm" else "layer",
            hidden_size=int(data["encoder_embed_dim"]),
            num_heads=int(data["encoder_num_heads"]),
            intermediate_size=int(data["encoder_ff_interm_features"]),
            num_layers=int(data["encoder_num_layers"]),
            num_buckets=int(data.get("encoder_num_buckets", 320)),
            max_bucket_distance=int(data.get("encoder_max_distance", 800)),
            pos_conv_kernel=int(data.get("encoder_pos_conv_kernel", 128)),
            pos_conv_groups=int(data.get("encoder_pos_conv_groups", 16)),
            layer_norm_eps=1e-5,
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path.name} in {path.parent} is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path.name} in {path.parent} is not a WavLM config.")
    return data


def load_wavlm_config(wavlm_dir: Path) -> WavLMConfig:
    wavlm_dir = Path(wavlm_dir)
    try:
        if (wavlm_dir / "config.json").is_file():
            return WavLMConfig.from_hf(_read_json(wavlm_dir / "config.json"))
        if (wavlm_dir / "torchaudio_wavlm_params.json").is_file():
            return WavLMConfig.from_torchaudio(_read_json(wavlm_dir / "torchaudio_wavlm_params.json"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"The WavLM config in {wavlm_dir} is incomplete ({exc}).") from None
    raise ModelError(f"No WavLM config.json in {wavlm_dir}. Put the config.json and model.safetensors "
                     "(or pytorch_model.bin) of microsoft/wavlm-base-plus there, or pass --wavlm DIR.")


def wavlm_weights_file(wavlm_dir: Path) -> Path:
    for name in _WEIGHT_FILES:
        if (Path(wavlm_dir) / name).is_file():
            return Path(wavlm_dir) / name
    raise ModelError(f"No WavLM weights in {wavlm_dir}: expected model.safetensors or pytorch_model.bin "
                     "of microsoft/wavlm-base-plus.")


# --------------------------------------------------------------------------------------------
# reading a torch checkpoint (pytorch_model.bin) without unpickling it
# --------------------------------------------------------------------------------------------
def read_torch_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a torch `state_dict` save (zip format) without unpickling anything."""
    path = Path(path)
    refused = ModelError(f"{path.name} is not a plain weights file (it holds more than tensors); "
                         "refusing to load it. Use model.safetensors instead.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ModelError(f"{path.name} is not a readable PyTorch zip checkpoint (old-format .bin files "
                         "are not supported; use model.safetensors).") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise refused
        root = pickles[0][: -len("data.pkl")]
        try:
            specs = state_dict_tensors(archive.read(pickles[0]))
            out = {}
            storages: dict[str, bytes] = {}
            for name, spec in specs.items():
                key = spec.storage.key
                if key not in storages:
                    storages[key] = archive.read(f"{root}data/{key}")
                out[name] = tensor_array(spec, storages[key])
        except PickleRefused as why:
            log.warning("Refused %s: %s", path, why)
            raise refused from None
        except (KeyError, zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ModelError(f"{path.name} is a damaged PyTorch checkpoint ({exc}).") from None
    return out


# --------------------------------------------------------------------------------------------
# WavLM weights under HF names
# --------------------------------------------------------------------------------------------
def _from_torchaudio_names(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map torchaudio WavLM names onto HF names; torchaudio's packed in_proj (q, k, v) is split in three."""
    out: dict[str, np.ndarray] = {}
    for name, arr in raw.items():
        if name.startswith("encoder.feature_projection."):
            out[name[len("encoder."):]] = arr
        elif name.startswith("encoder.transformer.pos_conv_embed.conv."):
            out["encoder.pos_conv_embed.conv." + name.split("conv.", 1)[1]] = arr
        elif name.startswith("encoder.transformer.layers.") and ".attention.attention." in name:
            prefix, suffix = name.split(".attention.attention.")
            base = prefix.replace("encoder.transformer.", "encoder.") + ".attention."
            if suffix in ("in_proj_weight", "in_proj_bias"):
                kind = "weight" if suffix.endswith("weight") else "bias"
                for part, chunk in zip(("q_proj", "k_proj", "v_proj"), np.split(arr, 3, axis=0), strict=True):
                    out[f"{base}{part}.{kind}"] = chunk
            else:
                out[base + suffix] = arr
        elif name.startswith("encoder.transformer."):
            out["encoder." + name[len("encoder.transformer."):]] = arr
        else:
            out[name] = arr
    return out


def _normalise_wavlm_names(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    raw = {(k[len("wavlm."):] if k.startswith("wavlm.") else k): v for k, v in raw.items()}
    if any(k.startswith("encoder.transformer.") for k in raw):
        raw = _from_torchaudio_names(raw)
    conv = "encoder.pos_conv_embed.conv."
    for g_name, v_name in (("weight_g", "weight_v"),
                           ("parametrizations.weight.original0", "parametrizations.weight.original1")):
        if conv + g_name in raw and conv + v_name in raw:
            gain = raw.pop(conv + g_name).astype(np.float64)
            v = raw.pop(conv + v_name).astype(np.float64)
            # weight norm over dim 2 (per kernel tap): the norm runs over dims 0 and 1 of v
            norm = np.sqrt(np.sum(v * v, axis=(0, 1), keepdims=True))
            raw[conv + "weight"] = (gain * v / norm).astype(np.float32)
    return raw


def load_wavlm_weights(wavlm_dir: Path, cfg: WavLMConfig, n_layers: int) -> dict[str, np.ndarray]:
    """The tensors the voice encoder needs (HF names, weight norm folded), shape-checked."""
    path = wavlm_weights_file(wavlm_dir)
    if path.suffix == ".bin":
        raw = read_torch_checkpoint(path)
    else:
        with SafeTensorsFile(path) as st:
            raw = {k: st.get(k) for k in st.keys()
                   if not (".layers." in k and _layer_index(k) >= n_layers)}
    weights = _normalise_wavlm_names(raw)
    expected = wavlm_tensor_shapes(cfg, n_layers)
    out = {}
    for name, shape in expected.items():
        if name not in weights:
            raise ModelError(f"{path.name} in {wavlm_dir} is missing tensor {name}; is it microsoft/wavlm-base-plus?")
        arr = weights[name].astype(np.float32)
        if tuple(arr.shape) != shape:
            raise ModelError(f"{path.name}: tensor {name} has shape {list(arr.shape)}, "
                             f"config.json implies {list(shape)}.")
        if not np.all(np.isfinite(arr)):
            raise ModelError(f"{path.name}: tensor {name} contains NaN or infinity.")
        out[name] = arr
    return out


def _layer_index(name: str) -> int:
    try:
        return int(name.split(".layers.", 1)[1].split(".", 1)[0])
    except (IndexError, ValueError):
        return -1


def wavlm_tensor_shapes(cfg: WavLMConfig, n_layers: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    c_in = 1
    for i, (ch, k) in enumerate(zip(cfg.conv_dim, cfg.conv_kernel, strict=True)):
        p = f"feature_extractor.conv_layers.{i}"
        shapes[f"{p}.conv.weight"] = (ch, c_in, k)
        if cfg.conv_bias:
            shapes[f"{p}.conv.bias"] = (ch,)
        if (cfg.feat_extract_norm == "group" and i == 0) or cfg.feat_extract_norm == "layer":
            shapes[f"{p}.layer_norm.weight"] = (ch,)
            shapes[f"{p}.layer_norm.bias"] = (ch,)
        c_in = ch
    e, f = cfg.hidden_size, cfg.intermediate_size
    shapes["feature_projection.layer_norm.weight"] = (c_in,)
    shapes["feature_projection.layer_norm.bias"] = (c_in,)
    shapes["feature_projection.projection.weight"] = (e, c_in)
    shapes["feature_projection.projection.bias"] = (e,)
    shapes["encoder.pos_conv_embed.conv.weight"] = (e, e // cfg.pos_conv_groups, cfg.pos_conv_kernel)
    shapes["encoder.pos_conv_embed.conv.bias"] = (e,)
    shapes["encoder.layer_norm.weight"] = (e,)
    shapes["encoder.layer_norm.bias"] = (e,)
    for layer in range(n_layers):
        p = f"encoder.layers.{layer}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{p}.attention.{proj}.weight"] = (e, e)
            shapes[f"{p}.attention.{proj}.bias"] = (e,)
        if layer == 0:
            shapes[f"{p}.attention.rel_attn_embed.weight"] = (cfg.num_buckets, cfg.num_heads)
        shapes[f"{p}.attention.gru_rel_pos_linear.weight"] = (8, cfg.head_dim)
        shapes[f"{p}.attention.gru_rel_pos_linear.bias"] = (8,)
        shapes[f"{p}.attention.gru_rel_pos_const"] = (1, cfg.num_heads, 1, 1)
        for norm in ("layer_norm", "final_layer_norm"):
            shapes[f"{p}.{norm}.weight"] = (e,)
            shapes[f"{p}.{norm}.bias"] = (e,)
        shapes[f"{p}.feed_forward.intermediate_dense.weight"] = (f, e)
        shapes[f"{p}.feed_forward.intermediate_dense.bias"] = (f,)
        shapes[f"{p}.feed_forward.output_dense.weight"] = (e, f)
        shapes[f"{p}.feed_forward.output_dense.bias"] = (e,)
    return shapes


def global_encoder_shapes(ge: GlobalEncoderConfig) -> dict[str, tuple[int, ...]]:
    d, e, i = ge.dim, ge.input_channels, ge.intermediate_dim
    p = "global_encoder"
    shapes = {f"{p}.backbone.embed.weight": (d, e, 7), f"{p}.backbone.embed.bias": (d,)}
    for norm in ("norm", "final_layer_norm"):
        shapes[f"{p}.backbone.{norm}.weight"] = (d,)
        shapes[f"{p}.backbone.{norm}.bias"] = (d,)
    for b in range(ge.num_layers):
        q = f"{p}.backbone.convnext.{b}"
        shapes.update({f"{q}.dwconv.weight": (d, 1, 7), f"{q}.dwconv.bias": (d,), f"{q}.norm.weight": (d,),
                       f"{q}.norm.bias": (d,), f"{q}.pwconv1.weight": (i, d), f"{q}.pwconv1.bias": (i,),
                       f"{q}.pwconv2.weight": (d, i), f"{q}.pwconv2.bias": (d,), f"{q}.gamma": (d,)})
    a, o = POOL_ATTN_DIM, ge.output_channels
    shapes.update({f"{p}.pooling.attn.0.weight": (a, d, 1), f"{p}.pooling.attn.0.bias": (a,),
                   f"{p}.pooling.attn.2.weight": (d, a, 1), f"{p}.pooling.attn.2.bias": (d,),
                   f"{p}.pooling.proj.weight": (o, 2 * d), f"{p}.pooling.proj.bias": (o,),
                   f"{p}.pooling.norm.weight": (o,), f"{p}.pooling.norm.bias": (o,)})
    return shapes


def load_global_encoder_weights(codec_dir: Path, cfg: CodecConfig) -> dict[str, np.ndarray]:
    if cfg.global_encoder is None:
        raise ModelError(f"config.yaml in {codec_dir} has no global_encoder section.")
    path = Path(codec_dir) / "model.safetensors"
    out = {}
    with SafeTensorsFile(path) as st:
        for name, shape in global_encoder_shapes(cfg.global_encoder).items():
            if name not in st:
                raise ModelError(f"model.safetensors in {codec_dir} is missing tensor {name}.")
            if tuple(st.shape(name)) != shape:
                raise ModelError(f"model.safetensors: tensor {name} has shape {list(st.shape(name))}, "
                                 f"config.yaml implies {list(shape)}.")
            out[name] = st.get(name)
    return out


# --------------------------------------------------------------------------------------------
# relative position buckets
# --------------------------------------------------------------------------------------------
def relative_bucket_table(num_buckets: int, max_distance: int) -> np.ndarray:
    """bucket(r) for r = -max_distance … +max_distance (key minus query), as the reference computes it.

    The log branch is evaluated in float32 like torch. For |r| >= max_distance every bucket is
    the cap, so clamping r to ±max_distance makes the table exact for any length.
    """
    half = num_buckets // 2
    max_exact = half // 2
    r = np.arange(-max_distance, max_distance + 1, dtype=np.int64)
    n = np.abs(r)
    with np.errstate(divide="ignore"):
        large = np.log(n.astype(np.float32) / np.float32(max_exact))
    large = large / np.float32(math.log(max_distance / max_exact))
    large = large * np.float32(half - max_exact)
    large = np.where(n < max_exact, 0, (np.float32(max_exact) + large)).astype(np.float32)
    large_i = np.minimum(np.where(n < max_exact, 0, large.astype(np.int64)), half - 1)
    return (r > 0).astype(np.int64) * half + np.where(n < max_exact, n, large_i)


# --------------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------------
class _Enc:
    def __init__(self, g: GraphBuilder, w: dict[str, np.ndarray]) -> None:
        self.g, self.w = g, w
        self.debug: dict[str, str] = {}

    def c64(self, value: object) -> str:
        return self.g.const(value, np.int64)

    def wt(self, name: str, arr: np.ndarray | None = None) -> str:
        return self.g.weight(name, self.w[name] if arr is None else arr)

    def gelu(self, x: str) -> str:
        """Exact (erf) GELU; opset 17 has no Gelu op, onnxruntime fuses this pattern."""
        g = self.g
        erf = g.op1("Erf", [g.op1("Mul", [x, g.const(1.0 / math.sqrt(2.0))])])
        return g.op1("Mul", [g.op1("Mul", [x, g.const(0.5)]), g.op1("Add", [erf, g.const(1.0)])])

    def linear(self, x: str, p: str) -> str:
        """The Linear whose weights are `{p}.weight` and `{p}.bias`."""
        return linear(self.g, self.w, x, f"{p}.weight", f"{p}.bias")

    def layer_norm(self, x: str, p: str, eps: float) -> str:
        """The LayerNorm whose weights are `{p}.weight` and `{p}.bias`."""
        return layer_norm(self.g, x, self.wt(f"{p}.weight"), self.wt(f"{p}.bias"), eps)


def _cnn(c: _Enc, audio: str, cfg: WavLMConfig) -> str:
    g = c.g
    x = g.op1("Reshape", [audio, c.c64([1, 1, -1])])
    for i, (ch, k, s) in enumerate(zip(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride, strict=True)):
        p = f"feature_extractor.conv_layers.{i}"
        inputs = [x, c.wt(f"{p}.conv.weight")] + ([c.wt(f"{p}.conv.bias")] if cfg.conv_bias else [])
        x = g.op1("Conv", inputs, kernel_shape=[k], strides=[s])
        if cfg.feat_extract_norm == "group" and i == 0:
            # GroupNorm with one group per channel = per-channel norm over the whole time axis
            x = g.op1("InstanceNormalization", [x, c.wt(f"{p}.layer_norm.weight"), c.wt(f"{p}.layer_norm.bias")],
                      epsilon=GN_EPS)
        elif cfg.feat_extract_norm == "layer":
            x = channels_first(g, c.layer_norm(time_major(g, x), f"{p}.layer_norm", GN_EPS))
        x = c.gelu(x)
        del ch
    return time_major(g, x)


def _position_bias(c: _Enc, length: str, cfg: WavLMConfig) -> str:
    """Un-gated relative position bias (H, T, T) from layer 1's rel_attn_embed."""
    g = c.g
    md = cfg.max_bucket_distance
    buckets = relative_bucket_table(cfg.num_buckets, md)
    embed = c.w["encoder.layers.0.attention.rel_attn_embed.weight"]  # (buckets, H)
    table = np.ascontiguousarray(embed[buckets].T)  # (H, 2·md+1): bias per head per clamped distance
    idx = g.op1("Range", [c.c64(0), length, c.c64(1)])
    rel = g.op1("Sub", [g.op1("Unsqueeze", [idx, c.c64([0])]), g.op1("Unsqueeze", [idx, c.c64([1])])])
    rel = g.op1("Add", [g.op1("Min", [g.op1("Max", [rel, c.c64(-md)]), c.c64(md)]), c.c64(md)])
    return g.op1("Gather", [g.weight("wavlm.position_bias_table", table), rel], axis=1)


def _wavlm_layer(c: _Enc, x: str, layer: int, cfg: WavLMConfig, bias: str) -> str:
    g = c.g
    h, hd, e = cfg.num_heads, cfg.head_dim, cfg.hidden_size
    p = f"encoder.layers.{layer}"
    a = f"{p}.attention"
    # q, k, v in one MatMul; the 1/sqrt(head_dim) scale is folded into q's weight and bias
    scale = np.float32(hd**-0.5)
    w = np.concatenate([c.w[f"{a}.q_proj.weight"].T * scale, c.w[f"{a}.k_proj.weight"].T,
                        c.w[f"{a}.v_proj.weight"].T], axis=1).astype(np.float32)
    b = np.concatenate([c.w[f"{a}.q_proj.bias"] * scale, c.w[f"{a}.k_proj.bias"],
                        c.w[f"{a}.v_proj.bias"]]).astype(np.float32)
    qkv = g.op1("Add", [g.op1("MatMul", [x, g.weight(f"{a}.qkv.weight.T", w)]), g.weight(f"{a}.qkv.bias", b)])
    heads = g.op1("Transpose", [g.op1("Reshape", [qkv, c.c64([-1, 3 * h, hd])])], perm=[1, 0, 2])
    q, k, v = g.opn("Split", [heads, c.c64([h, h, h])], n_out=3, axis=0)

    # gate per head and query from the layer input x (not q): a·(b·const − 1) + 2
    xh = g.op1("Transpose", [g.op1("Reshape", [x, c.c64([-1, h, hd])])], perm=[1, 0, 2])  # (H, T, hd)
    gl = g.op1("Add", [g.op1("MatMul", [xh, c.wt(f"{a}.gru_rel_pos_linear.weight.T",
                                                 c.w[f"{a}.gru_rel_pos_linear.weight"].T.copy())]),
                       c.wt(f"{a}.gru_rel_pos_linear.bias")])
    gl = g.op1("ReduceSum", [g.op1("Reshape", [gl, c.c64([h, -1, 2, 4])]), c.c64([-1])], keepdims=0)
    gate_a, gate_b = g.opn("Split", [g.op1("Sigmoid", [gl]), c.c64([1, 1])], n_out=2, axis=-1)  # (H, T, 1)
    const = c.w[f"{a}.gru_rel_pos_const"].reshape(h, 1, 1)
    gate = g.op1("Add", [g.op1("Mul", [gate_a, g.op1("Sub", [g.op1("Mul", [gate_b, g.weight(f"{a}.gru_const", const)]),
                                                             g.const(1.0)])]), g.const(2.0)])
    scores = g.op1("Add", [g.op1("MatMul", [q, g.op1("Transpose", [k], perm=[0, 2, 1])]),
                           g.op1("Mul", [gate, bias])])
    ctx = g.op1("MatMul", [g.op1("Softmax", [scores], axis=-1), v])  # (H, T, hd)
    ctx = g.op1("Reshape", [g.op1("Transpose", [ctx], perm=[1, 0, 2]), c.c64([-1, e])])
    x = g.op1("Add", [x, c.linear(ctx, f"{a}.out_proj")])
    x = c.layer_norm(x, f"{p}.layer_norm", cfg.layer_norm_eps)
    ff = c.linear(c.gelu(c.linear(x, f"{p}.feed_forward.intermediate_dense")), f"{p}.feed_forward.output_dense")
    return c.layer_norm(g.op1("Add", [x, ff]), f"{p}.final_layer_norm", cfg.layer_norm_eps)


def _global_encoder(c: _Enc, x: str, ge: GlobalEncoderConfig) -> str:
    g = c.g
    p = "global_encoder.backbone"
    h = g.op1("Conv", [channels_first(g, x), c.wt(f"{p}.embed.weight"), c.wt(f"{p}.embed.bias")],
              kernel_shape=[7], pads=[3, 3])
    h = c.layer_norm(time_major(g, h), f"{p}.norm", CONVNEXT_EPS)  # (T, dim)
    for b in range(ge.num_layers):
        q = f"{p}.convnext.{b}"
        y = g.op1("Conv", [channels_first(g, h), c.wt(f"{q}.dwconv.weight"), c.wt(f"{q}.dwconv.bias")],
                  kernel_shape=[7], pads=[3, 3], group=ge.dim)
        y = c.layer_norm(time_major(g, y), f"{q}.norm", CONVNEXT_EPS)
        y = c.linear(c.gelu(c.linear(y, f"{q}.pwconv1")), f"{q}.pwconv2")
        h = g.op1("Add", [h, g.op1("Mul", [y, c.wt(f"{q}.gamma")])])
    h = c.layer_norm(h, f"{p}.final_layer_norm", CONVNEXT_EPS)
    c.debug["backbone_out"] = h

    # attentive statistics pooling over time (axis 0 of the time-major tensor)
    q = "global_encoder.pooling"
    w0 = c.w[f"{q}.attn.0.weight"][:, :, 0].T.copy()
    w2 = c.w[f"{q}.attn.2.weight"][:, :, 0].T.copy()
    a = g.op1("Tanh", [g.op1("Add", [g.op1("MatMul", [h, g.weight(f"{q}.attn.0.weight.T", w0)]),
                                     c.wt(f"{q}.attn.0.bias")])])
    a = g.op1("Add", [g.op1("MatMul", [a, g.weight(f"{q}.attn.2.weight.T", w2)]), c.wt(f"{q}.attn.2.bias")])
    alpha = g.op1("Softmax", [a], axis=0)
    mu = g.op1("ReduceSum", [g.op1("Mul", [alpha, h]), c.c64([0])], keepdims=0)
    ex2 = g.op1("ReduceSum", [g.op1("Mul", [alpha, g.op1("Mul", [h, h])]), c.c64([0])], keepdims=0)
    var = g.op1("Clip", [g.op1("Sub", [ex2, g.op1("Mul", [mu, mu])]), g.const(1e-4), g.const(1e4)])
    stats = g.op1("Unsqueeze", [g.op1("Concat", [mu, g.op1("Sqrt", [var])], axis=0), c.c64([0])])
    emb = c.layer_norm(c.linear(stats, f"{q}.proj"), f"{q}.norm", POOL_NORM_EPS)
    return g.op1("Reshape", [emb, c.c64([-1])])


def build_encoder_model(wcfg: WavLMConfig, codec_cfg: CodecConfig, weights: dict[str, np.ndarray], *,
                        debug_outputs: bool = False, metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    ge = codec_cfg.global_encoder
    if ge is None:
        raise ModelError("config.yaml has no global_encoder section.")
    layers = codec_cfg.global_ssl_layers
    if not layers or min(layers) < 1 or max(layers) > wcfg.num_layers:
        raise ModelError(f"config.yaml: global_ssl_layers {list(layers)} do not fit a {wcfg.num_layers}-layer WavLM.")
    if ge.input_channels != wcfg.hidden_size:
        raise ModelError(f"global_encoder.input_channels {ge.input_channels} differs from the WavLM width "
                         f"{wcfg.hidden_size}: this WavLM does not belong to this codec.")
    g = GraphBuilder()
    c = _Enc(g, weights)
    x = _cnn(c, "audio_16k", wcfg)
    c.debug["cnn_out"] = x
    x = c.linear(c.layer_norm(x, "feature_projection.layer_norm", wcfg.layer_norm_eps), "feature_projection.projection")
    c.debug["feature_projection_out"] = x

    k = wcfg.pos_conv_kernel
    pos = g.op1("Conv", [channels_first(g, x), c.wt("encoder.pos_conv_embed.conv.weight"),
                         c.wt("encoder.pos_conv_embed.conv.bias")],
                kernel_shape=[k], pads=[k // 2, k // 2], group=wcfg.pos_conv_groups)
    if k % 2 == 0:  # an even kernel yields one extra frame: drop the last
        pos = g.op1("Slice", [pos, c.c64([0]), c.c64([-1]), c.c64([2])])
    pos = c.gelu(time_major(g, pos))
    c.debug["pos_conv_out"] = pos
    x = c.layer_norm(g.op1("Add", [x, pos]), "encoder.layer_norm", wcfg.layer_norm_eps)
    c.debug["transformer_input"] = x

    length = g.op1("Gather", [g.op1("Shape", [x]), c.c64(0)], axis=0)
    bias = _position_bias(c, length, wcfg)  # computed once; every layer gates it with its own parameters
    c.debug["position_bias_layer1"] = bias
    outs = []
    for layer in range(max(layers)):
        x = _wavlm_layer(c, x, layer, wcfg, bias)
        outs.append(x)
        if layer < 2:
            c.debug[f"wavlm_layer{layer + 1}"] = x
    feats = outs[layers[0] - 1]
    for idx in layers[1:]:
        feats = g.op1("Add", [feats, outs[idx - 1]])
    if len(layers) > 1:
        feats = g.op1("Mul", [feats, g.const(1.0 / len(layers))])
    c.debug["global_ssl_features"] = feats
    g.identity(_global_encoder(c, feats, ge), "global_embedding")

    outputs = [value_info("global_embedding", FLOAT, [ge.output_channels])]
    if debug_outputs:
        for name in DEBUG_OUTPUTS:
            if name in c.debug:
                g.identity(c.debug[name], "dbg_" + name)
                outputs.append(value_info("dbg_" + name, FLOAT, None))
    graph = helper.make_graph(g.nodes, "miocodec_voice_encoder", [value_info("audio_16k", FLOAT, ["samples"])],
                              outputs, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="miodesk", producer_version=ENCODER_EXPORTER_VERSION)
    model.ir_version = 8
    helper.set_model_props(model, metadata or {})
    return model


def encoder_metadata(codec_cfg: CodecConfig, wcfg: WavLMConfig, source_hash: str = "") -> dict[str, str]:
    return {
        "kind": ENCODER_GRAPH_KIND,
        "exporter_version": ENCODER_EXPORTER_VERSION,
        "sample_rate": str(codec_cfg.sample_rate),
        "voice_dim": str(codec_cfg.global_encoder.output_channels if codec_cfg.global_encoder else 128),
        "wavlm_layers": ",".join(str(v) for v in codec_cfg.global_ssl_layers),
        "wavlm_hop": str(math.prod(wcfg.conv_stride)),
        "source_sha256": source_hash,
    }


def export_encoder(codec_dir: Path, wavlm_dir: Path, out_path: Path, *, debug_outputs: bool = False) -> Path:
    """Build the voice-encoder ONNX from a codec folder and a WavLM folder, written atomically."""
    codec_dir, wavlm_dir, out_path = Path(codec_dir), Path(wavlm_dir), Path(out_path)
    if not codec_dir.is_dir():
        raise ModelError(f"Codec folder not found: {codec_dir}.")
    if not wavlm_dir.is_dir():
        raise ModelError(f"WavLM folder not found: {wavlm_dir}. It needs config.json and model.safetensors "
                         "(or pytorch_model.bin) of microsoft/wavlm-base-plus.")
    codec_cfg = CodecConfig.from_file(codec_dir / "config.yaml")
    wcfg = load_wavlm_config(wavlm_dir)
    n_layers = max(codec_cfg.global_ssl_layers)
    weights = load_wavlm_weights(wavlm_dir, wcfg, n_layers)
    weights.update(load_global_encoder_weights(codec_dir, codec_cfg))
    source_hash = hashlib.sha256((codec_dir / "config.yaml").read_bytes()).hexdigest()
    model = build_encoder_model(wcfg, codec_cfg, weights, debug_outputs=debug_outputs,
                                metadata=encoder_metadata(codec_cfg, wcfg, source_hash))
    del weights
    save_model_atomically(model, out_path)
    log.info("Exported the voice encoder to %s", out_path)
    return out_path
