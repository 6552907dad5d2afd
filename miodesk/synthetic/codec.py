"""Random-weight MioCodec folders (config.yaml + model.safetensors) with the official layout.

`size="full"` has the real shapes (about 130 M parameters, ~520 MB); `size="small"` has the golden
test sizes. Weights are scaled so activations stay O(1) and the waveform is finite and bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from miodesk.tts.codec_config import CodecConfig
from miodesk.tts.export.layout import decoder_tensor_shapes, encoder_tensor_shapes
from miodesk.tts.safetensors_io import write_safetensors

Variant = Literal["v2_44k", "24k"]
Size = Literal["small", "full"]

_SIZES = {
    # prenet dim/out/layers/heads, decoder layers/heads, resnet groups, global encoder in/dim/inter/layers,
    # local encoder layers/heads
    ("v2_44k", "small"): dict(pd=96, c=64, pl=2, ph=4, dl=2, dh=4, groups=8, gin=96, gd=48, gi=144, gl=2,
                              ll=2, lh=4),
    ("24k", "small"): dict(pd=96, c=48, pl=2, ph=4, dl=2, dh=2, groups=8, gin=96, gd=64, gi=192, gl=3,
                           ll=2, lh=4),
    ("v2_44k", "full"): dict(pd=768, c=512, pl=6, ph=12, dl=8, dh=8, groups=32, gin=768, gd=384, gi=1152,
                             gl=4, ll=6, lh=12),
    ("24k", "full"): dict(pd=768, c=512, pl=6, ph=12, dl=8, dh=8, groups=32, gin=768, gd=384, gi=1152,
                          gl=4, ll=6, lh=12),
}


def _transformer(dim: int, layers: int, heads: int, window: int, max_seq_len: int, **extra: object) -> dict:
    args: dict = {"dim": dim}
    if "output_dim" in extra:
        args["output_dim"] = extra.pop("output_dim")
    args.update(n_layers=layers, n_heads=heads, window_size=window, use_rope=True, rope_theta=10000.0,
                max_seq_len=max_seq_len)
    args.update(extra)
    args["use_flash_attention"] = True
    return {"class_path": "miocodec.module.transformer.Transformer", "init_args": args}


def codec_config_dict(variant: Variant, size: Size, *, max_seq_len: int = 512) -> dict:
    """The official config.yaml structure for a variant and size."""
    if (variant, size) not in _SIZES:
        raise ValueError(f"unknown codec variant/size {variant!r}/{size!r}")
    s = _SIZES[(variant, size)]
    v2 = variant == "v2_44k"
    sr = 44100 if v2 else 24000
    config: dict = {
        "local_ssl_layers": [6, 9],
        "global_ssl_layers": [1, 2],
        "normalize_ssl_features": True,
        "downsample_factor": 2,
        "use_conv_downsample": True,
        "sample_rate": sr,
        "n_fft": 392 if v2 else 1920,
        "hop_length": 98 if v2 else 480,
        "use_wave_decoder": True,
        "wave_upsample_factor": 2,
        "wave_interpolation_mode": "linear",
        "wave_decoder_dim": s["c"],
        "wave_resnet_num_blocks": 2,
        "wave_resnet_kernel_size": 3,
        "wave_resnet_num_groups": s["groups"],
        "wave_resnet_dropout": 0.1,
        "istft_padding": "same",
    }
    if v2:
        config["wave_upsampler_factors"] = [3, 3]
        config["wave_upsampler_kernel_sizes"] = [9, 9]
    init = {
        "config": config,
        "ssl_feature_extractor": {
            "class_path": "miocodec.module.ssl_extractor.SSLFeatureExtractor",
            "init_args": {"model_name": "wavlm_base_plus", "output_layer": 9, "sample_rate": sr},
        },
        "local_encoder": _transformer(s["pd"], s["ll"], s["lh"], 125, max_seq_len),
        "local_quantizer": {
            "class_path": "miocodec.module.fsq.FiniteScalarQuantizer",
            "init_args": {"input_dim": s["pd"], "output_dim": s["pd"], "levels": [8, 8, 8, 5, 5]},
        },
        "feature_decoder": _transformer(s["pd"], 1 if size == "small" else 6, s["lh"], 125, max_seq_len),
        "global_encoder": {
            "class_path": "miocodec.module.global_encoder.GlobalEncoder",
            "init_args": {"input_channels": s["gin"], "output_channels": 128, "num_layers": s["gl"],
                          "dim": s["gd"], "intermediate_dim": s["gi"]},
        },
        "mel_prenet": None,
        "mel_decoder": None,
        "mel_postnet": None,
        "wave_prenet": _transformer(s["pd"], s["pl"], s["ph"], 65, max_seq_len, output_dim=s["c"]),
        "wave_decoder": _transformer(s["c"], s["dl"], s["dh"], 65, max_seq_len, adanorm_condition_dim=128,
                                     use_adaln_zero=True),
    }
    return {"model": {"class_path": "miocodec.model.MioCodecModel", "init_args": init}}


def _random_tensor(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
    def normal(std: float) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    leaf = name.rsplit(".", 1)[-1]
    is_norm = any(f".{n}." in f".{name}" for n in ("norm", "norm1", "norm2", "attention_norm", "ffn_norm",
                                                   "final_layer_norm")) and "condition_proj" not in name
    if leaf in ("alpha", "beta"):  # SnakeBeta parameters are logs: exp(~0) ≈ 1
        return normal(0.1)
    if leaf == "gamma":  # ConvNeXt layer scale
        return np.full(shape, 0.1, dtype=np.float32)
    if is_norm:
        return (1.0 + normal(0.1)) if leaf == "weight" else normal(0.05)
    if leaf == "bias":
        return normal(0.02)
    if leaf == "original0":  # weight-norm gain; set near ||v|| (about std·sqrt(fan)) so W ≈ v
        return np.full(shape, 1.0, dtype=np.float32) + normal(0.05)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
    if leaf == "original1":  # weight-norm direction (C_in, C_out, k): fan-in is C_in·k per output
        fan_in = shape[0] * shape[2]
    return normal(0.5 / np.sqrt(fan_in))


def write_random_codec(out_dir: Path, variant: Variant = "v2_44k", size: Size = "small", seed: int = 0,
                       *, max_seq_len: int = 512) -> Path:
    """Write config.yaml + model.safetensors of a random codec into `out_dir`; returns `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = codec_config_dict(variant, size, max_seq_len=max_seq_len)
    text = "# Synthetic random-weight MioCodec written by MioDesk (official schema).\n"
    text += yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    (out_dir / "config.yaml").write_text(text, encoding="utf-8")
    cfg = CodecConfig.from_dict(data)
    shapes = {**decoder_tensor_shapes(cfg), **encoder_tensor_shapes(cfg)}
    rng = np.random.default_rng(seed)
    tensors = [(name, _random_tensor(rng, name, shape)) for name, shape in sorted(shapes.items())]
    write_safetensors(out_dir / "model.safetensors", tensors, metadata={"format": "pt"})
    return out_dir
