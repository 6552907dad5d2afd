"""Tensor names and shapes of a MioCodec `model.safetensors`, derived from its config.

Used by the exporter (to validate a download before building) and by the synthetic
codec writer (to produce files with the official layout).
"""

from __future__ import annotations

from miodesk.tts.codec_config import CodecConfig, TransformerConfig

Shape = tuple[int, ...]

# The GlobalEncoder's attentive-pooling width is fixed in the reference (not in the YAML).
POOLING_ATTN_DIM = 128


def _transformer_layers(prefix: str, t: TransformerConfig, *, adaln: bool, ffn_dim: int | None = None
                        ) -> dict[str, Shape]:
    d = t.dim
    hf = ffn_dim or t.ffn_dim
    out: dict[str, Shape] = {}
    for layer in range(t.n_layers):
        p = f"{prefix}.layers.{layer}"
        for w in ("wq", "wk", "wv", "wo"):
            out[f"{p}.attention.{w}.weight"] = (d, d)
        out[f"{p}.feed_forward.w1.weight"] = (hf, d)
        out[f"{p}.feed_forward.w2.weight"] = (d, hf)
        out[f"{p}.feed_forward.w3.weight"] = (hf, d)
        for norm in ("attention_norm", "ffn_norm"):
            if adaln:
                cond = t.adanorm_condition_dim or 128
                out[f"{p}.{norm}.condition_proj.1.weight"] = (3 * d, cond)
                out[f"{p}.{norm}.condition_proj.1.bias"] = (3 * d,)
            else:
                out[f"{p}.{norm}.weight"] = (d,)
                out[f"{p}.{norm}.bias"] = (d,)
    return out


def _resnet_block(prefix: str, ch: int, k: int) -> dict[str, Shape]:
    return {
        f"{prefix}.norm1.weight": (ch,),
        f"{prefix}.norm1.bias": (ch,),
        f"{prefix}.conv1.weight": (ch, ch, k),
        f"{prefix}.conv1.bias": (ch,),
        f"{prefix}.norm2.weight": (ch,),
        f"{prefix}.norm2.bias": (ch,),
        f"{prefix}.conv2.weight": (ch, ch, k),
        f"{prefix}.conv2.bias": (ch,),
    }


def decoder_tensor_shapes(cfg: CodecConfig, ffn_dims: dict[str, int] | None = None) -> dict[str, Shape]:
    """Every tensor the decode path reads, in a stable order.

    `ffn_dims` may override the SwiGLU width per transformer ("wave_prenet"/"wave_decoder").
    """
    ffn_dims = ffn_dims or {}
    c = cfg.decoder_dim
    k = cfg.resnet_kernel_size
    d = cfg.prenet.dim
    out: dict[str, Shape] = {
        "local_quantizer.proj_out.weight": (cfg.fsq_output_dim, len(cfg.fsq_levels)),
        "local_quantizer.proj_out.bias": (cfg.fsq_output_dim,),
    }
    out.update(_transformer_layers("wave_prenet", cfg.prenet, adaln=False,
                                   ffn_dim=ffn_dims.get("wave_prenet")))
    out["wave_prenet.norm.weight"] = (d,)
    out["wave_prenet.norm.bias"] = (d,)
    if cfg.prenet.output_dim is not None:  # without output_dim the reference has no projection
        out["wave_prenet.output_proj.weight"] = (c, d)
        out["wave_prenet.output_proj.bias"] = (c,)
    out["wave_conv_upsample.weight"] = (c, c, cfg.wave_upsample_factor)
    out["wave_conv_upsample.bias"] = (c,)
    for b in range(cfg.resnet_num_blocks):
        out.update(_resnet_block(f"wave_prior_net.blocks.{b}", c, k))
    out.update(_transformer_layers("wave_decoder", cfg.decoder, adaln=True,
                                   ffn_dim=ffn_dims.get("wave_decoder")))
    cond = cfg.decoder.adanorm_condition_dim or 128
    out["wave_decoder.norm.condition_proj.1.weight"] = (2 * c, cond)
    out["wave_decoder.norm.condition_proj.1.bias"] = (2 * c,)
    for b in range(cfg.resnet_num_blocks):
        out.update(_resnet_block(f"wave_post_net.blocks.{b}", c, k))
    if cfg.has_upsampler:
        ch = c
        for i, (u, ks) in enumerate(zip(cfg.upsampler_factors, cfg.upsampler_kernel_sizes, strict=True)):
            del u
            p = f"wave_upsampler.upsample_layers.{i}"
            out[f"{p}.parametrizations.weight.original0"] = (ch, 1, 1)
            out[f"{p}.parametrizations.weight.original1"] = (ch, ch // 2, ks)
            out[f"{p}.bias"] = (ch // 2,)
            out[f"wave_upsampler.snake_activations.{i}.alpha"] = (ch // 2,)
            out[f"wave_upsampler.snake_activations.{i}.beta"] = (ch // 2,)
            out.update(_resnet_block(f"wave_upsampler.resnet_blocks.{i}", ch // 2, k))
            ch //= 2
        out["wave_upsampler.out_proj.weight"] = (c, ch)
        out["wave_upsampler.out_proj.bias"] = (c,)
        out["wave_upsampler.out_snake.alpha"] = (c,)
        out["wave_upsampler.out_snake.beta"] = (c,)
    out["istft_head.out.weight"] = (cfg.n_fft + 2, c)
    out["istft_head.out.bias"] = (cfg.n_fft + 2,)
    return out


def encoder_tensor_shapes(cfg: CodecConfig) -> dict[str, Shape]:
    """Tensors of the real file that decoding does not read (content encoder, global encoder)."""
    out: dict[str, Shape] = {}
    d = cfg.prenet.dim
    out["local_quantizer.proj_in.weight"] = (len(cfg.fsq_levels), d)
    out["local_quantizer.proj_in.bias"] = (len(cfg.fsq_levels),)
    if cfg.local_encoder is not None:
        le = cfg.local_encoder
        out.update(_transformer_layers("local_encoder", le, adaln=False))
        out["local_encoder.norm.weight"] = (le.dim,)
        out["local_encoder.norm.bias"] = (le.dim,)
        out["conv_downsample.weight"] = (le.dim, le.dim, cfg.downsample_factor)
        out["conv_downsample.bias"] = (le.dim,)
    ge = cfg.global_encoder
    if ge is not None:
        g = "global_encoder"
        out[f"{g}.backbone.embed.weight"] = (ge.dim, ge.input_channels, 7)
        out[f"{g}.backbone.embed.bias"] = (ge.dim,)
        for n in ("norm", "final_layer_norm"):
            out[f"{g}.backbone.{n}.weight"] = (ge.dim,)
            out[f"{g}.backbone.{n}.bias"] = (ge.dim,)
        for i in range(ge.num_layers):
            p = f"{g}.backbone.convnext.{i}"
            out[f"{p}.dwconv.weight"] = (ge.dim, 1, 7)
            out[f"{p}.dwconv.bias"] = (ge.dim,)
            out[f"{p}.norm.weight"] = (ge.dim,)
            out[f"{p}.norm.bias"] = (ge.dim,)
            out[f"{p}.gamma"] = (ge.dim,)
            out[f"{p}.pwconv1.weight"] = (ge.intermediate_dim, ge.dim)
            out[f"{p}.pwconv1.bias"] = (ge.intermediate_dim,)
            out[f"{p}.pwconv2.weight"] = (ge.dim, ge.intermediate_dim)
            out[f"{p}.pwconv2.bias"] = (ge.dim,)
        out[f"{g}.pooling.attn.0.weight"] = (POOLING_ATTN_DIM, ge.dim, 1)
        out[f"{g}.pooling.attn.0.bias"] = (POOLING_ATTN_DIM,)
        out[f"{g}.pooling.attn.2.weight"] = (ge.dim, POOLING_ATTN_DIM, 1)
        out[f"{g}.pooling.attn.2.bias"] = (ge.dim,)
        out[f"{g}.pooling.proj.weight"] = (ge.output_channels, 2 * ge.dim)
        out[f"{g}.pooling.proj.bias"] = (ge.output_channels,)
        out[f"{g}.pooling.norm.weight"] = (ge.output_channels,)
        out[f"{g}.pooling.norm.bias"] = (ge.output_channels,)
    return out
