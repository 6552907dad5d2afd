"""Random-weight WavLM folders (Hugging Face config.json + model.safetensors) for the voice encoder.

`size="full"` has the shapes of microsoft/wavlm-base-plus (the model MioCodec's voice encoder uses);
`size="small"` those of the golden test checkpoint. Only the layers the codec reads are written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np

from miodesk.tts.export.encoder import WavLMConfig, wavlm_tensor_shapes
from miodesk.tts.safetensors_io import write_safetensors

Size = Literal["small", "full"]

_CONFIGS: dict[str, dict] = {
    "full": {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072, "conv_dim": [512] * 7},
    "small": {"hidden_size": 96, "num_attention_heads": 4, "intermediate_size": 128, "conv_dim": [32] * 7},
}


def wavlm_config_dict(size: Size) -> dict:
    return {
        "architectures": ["WavLMModel"], "model_type": "wavlm", **_CONFIGS[size],
        "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_bias": False,
        "feat_extract_norm": "group", "num_hidden_layers": 12, "num_buckets": 320, "max_bucket_distance": 800,
        "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16, "layer_norm_eps": 1e-5,
        "do_stable_layer_norm": False,
    }


def write_random_wavlm(out_dir: Path, size: Size = "small", layers: int = 12, seed: int = 0) -> Path:
    """Write config.json + model.safetensors with the first `layers` transformer layers; returns `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = wavlm_config_dict(size)
    (out_dir / "config.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    shapes = wavlm_tensor_shapes(WavLMConfig.from_hf(data), layers)
    rng = np.random.default_rng(seed)
    tensors = []
    for name, shape in sorted(shapes.items()):
        if "norm" in name.rsplit(".", 2)[-2]:  # layer norms: weight 1, bias 0 keep activations O(1)
            value = np.ones(shape, np.float32) if name.endswith(".weight") else np.zeros(shape, np.float32)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.5 / np.sqrt(fan_in))
        tensors.append((name, value))
    write_safetensors(out_dir / "model.safetensors", tensors, metadata={"format": "pt"})
    return out_dir
