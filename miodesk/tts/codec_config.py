"""MioCodec `config.yaml` (the official schema) as a typed, validated dataclass."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from miodesk.errors import ModelError

# WavLM front end of the reference: 320-sample hop, 400-sample receptive field, at 16 kHz.
# They fix the target length the reference decodes to when no length is given (stft_length_from).
SSL_HOP = 320
SSL_EXTRA = 80
SSL_RATE = 16000


def stft_length_from(
    n_tokens: int,
    speed: float,
    *,
    sample_rate: int,
    hop_length: int,
    upsample: int,
    downsample_factor: int,
) -> int:
    """Frame count L the reference decodes `n_tokens` into at `speed`: its default target length (the
    audio those tokens stand for at 16 kHz, carried to the codec rate), over the hop and the upsampling."""
    n_frames = downsample_factor * int(n_tokens)
    # float64 maths in the same order as the reference: ceil(n / 16000 * sr)
    default = math.ceil((SSL_HOP * n_frames + SSL_EXTRA) / SSL_RATE * sample_rate)
    target = default if speed == 1.0 else round(default / float(speed))
    return (target // hop_length) // upsample


def ffn_hidden_dim(dim: int) -> int:
    """The reference Transformer's SwiGLU width: 256 * ceil(int(8*dim/3) / 256)."""
    hidden = int(8 * dim / 3)
    return 256 * ((hidden + 255) // 256)


@dataclass(frozen=True)
class TransformerConfig:
    dim: int
    n_layers: int
    n_heads: int
    window_size: int
    rope_theta: float
    max_seq_len: int
    output_dim: int | None = None
    adanorm_condition_dim: int | None = None
    use_adaln_zero: bool = False

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_dim(self) -> int:
        return ffn_hidden_dim(self.dim)


@dataclass(frozen=True)
class GlobalEncoderConfig:
    input_channels: int
    output_channels: int
    num_layers: int
    dim: int
    intermediate_dim: int


@dataclass(frozen=True)
class CodecConfig:
    sample_rate: int
    n_fft: int
    hop_length: int
    istft_padding: str
    wave_upsample_factor: int
    interpolation_mode: str
    decoder_dim: int
    resnet_num_blocks: int
    resnet_kernel_size: int
    resnet_num_groups: int
    upsampler_factors: tuple[int, ...]
    upsampler_kernel_sizes: tuple[int, ...]
    downsample_factor: int
    fsq_levels: tuple[int, ...]
    fsq_output_dim: int
    prenet: TransformerConfig
    decoder: TransformerConfig
    global_encoder: GlobalEncoderConfig | None
    local_encoder: TransformerConfig | None
    global_ssl_layers: tuple[int, ...]
    ssl_output_layer: int | None

    # --- derived values -------------------------------------------------------------------
    @property
    def upsample(self) -> int:
        """U: the iSTFT frames per decoder frame (product of the upsampler factors, 1 without one)."""
        return math.prod(self.upsampler_factors) if self.upsampler_factors else 1

    @property
    def has_upsampler(self) -> bool:
        return bool(self.upsampler_factors)

    @property
    def variant(self) -> str:
        return "v2_44k" if self.has_upsampler else "24k"

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    @property
    def samples_per_token(self) -> int:
        """Output samples per token at speed 1: hop · U · decoder frames per token."""
        return self.hop_length * self.upsample * self.wave_upsample_factor

    def stft_length_for(self, n_tokens: int, speed: float = 1.0) -> int:
        return stft_length_from(
            n_tokens,
            speed,
            sample_rate=self.sample_rate,
            hop_length=self.hop_length,
            upsample=self.upsample,
            downsample_factor=self.downsample_factor,
        )

    # --- parsing ---------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: Path) -> CodecConfig:
        path = Path(path)
        if path.is_dir():
            path = path / "config.yaml"
        if not path.is_file():
            raise ModelError(f"Codec config not found: {path}.")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path.name} is not valid YAML: {first}") from None
        return cls.from_dict(data, source=path.name)

    @classmethod
    def from_dict(cls, data: Any, source: str = "config.yaml") -> CodecConfig:
        try:
            return _parse(data, source)
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"{source} is not a MioCodec config: {_describe(exc)}.") from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc).replace("\n", " ")


def _section(init: dict, name: str) -> dict | None:
    sec = init.get(name)
    if sec is None:
        return None
    if not isinstance(sec, dict):
        raise ValueError(f"section {name!r} is not a mapping")
    args = sec.get("init_args", sec)
    if not isinstance(args, dict):
        raise ValueError(f"section {name!r} has no init_args mapping")
    return args


def _transformer(args: dict) -> TransformerConfig:
    return TransformerConfig(
        dim=int(args["dim"]),
        n_layers=int(args["n_layers"]),
        n_heads=int(args["n_heads"]),
        window_size=int(args.get("window_size", 65)),
        rope_theta=float(args.get("rope_theta", 10000.0)),
        max_seq_len=int(args.get("max_seq_len", 512)),
        output_dim=int(args["output_dim"]) if args.get("output_dim") is not None else None,
        adanorm_condition_dim=(
            int(args["adanorm_condition_dim"]) if args.get("adanorm_condition_dim") is not None else None
        ),
        use_adaln_zero=bool(args.get("use_adaln_zero", False)),
    )


def _parse(data: Any, source: str) -> CodecConfig:
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ModelError(f"{source} is not a MioCodec config: no 'model' section.")
    init = data["model"].get("init_args")
    if not isinstance(init, dict) or not isinstance(init.get("config"), dict):
        raise ModelError(f"{source} is not a MioCodec config: no 'model.init_args.config' section.")
    cfg = init["config"]
    if not cfg["use_wave_decoder"]:
        raise ModelError(f"{source} describes a mel-decoder MioCodec; MioDesk needs a wave-decoder model.")

    prenet_args = _section(init, "wave_prenet")
    decoder_args = _section(init, "wave_decoder")
    fsq_args = _section(init, "local_quantizer")
    if prenet_args is None or decoder_args is None or fsq_args is None:
        raise ModelError(f"{source} lacks one of wave_prenet, wave_decoder, local_quantizer.")
    ge_args = _section(init, "global_encoder")
    le_args = _section(init, "local_encoder")
    ssl_args = _section(init, "ssl_feature_extractor")

    factors = tuple(int(f) for f in (cfg.get("wave_upsampler_factors") or ()))
    kernels = tuple(int(k) for k in (cfg.get("wave_upsampler_kernel_sizes") or ()))
    conf = CodecConfig(
        sample_rate=int(cfg["sample_rate"]),
        n_fft=int(cfg["n_fft"]),
        hop_length=int(cfg["hop_length"]),
        istft_padding=str(cfg.get("istft_padding", "same")),
        wave_upsample_factor=int(cfg.get("wave_upsample_factor", 2)),
        interpolation_mode=str(cfg.get("wave_interpolation_mode", "linear")),
        decoder_dim=int(cfg["wave_decoder_dim"]),
        resnet_num_blocks=int(cfg.get("wave_resnet_num_blocks", 2)),
        resnet_kernel_size=int(cfg.get("wave_resnet_kernel_size", 3)),
        resnet_num_groups=int(cfg.get("wave_resnet_num_groups", 32)),
        upsampler_factors=factors,
        upsampler_kernel_sizes=kernels,
        downsample_factor=int(cfg.get("downsample_factor", 2)),
        fsq_levels=tuple(int(v) for v in fsq_args["levels"]),
        fsq_output_dim=int(fsq_args.get("output_dim", prenet_args["dim"])),
        prenet=_transformer(prenet_args),
        decoder=_transformer(decoder_args),
        global_encoder=(
            GlobalEncoderConfig(
                input_channels=int(ge_args["input_channels"]),
                output_channels=int(ge_args.get("output_channels", 128)),
                num_layers=int(ge_args["num_layers"]),
                dim=int(ge_args["dim"]),
                intermediate_dim=int(ge_args["intermediate_dim"]),
            )
            if ge_args is not None
            else None
        ),
        local_encoder=_transformer(le_args) if le_args is not None else None,
        global_ssl_layers=tuple(int(v) for v in (cfg.get("global_ssl_layers") or (1, 2))),
        ssl_output_layer=(
            int(ssl_args["output_layer"]) if ssl_args and ssl_args.get("output_layer") is not None else None
        ),
    )
    _validate(conf, source)
    return conf


def _validate(c: CodecConfig, source: str) -> None:
    def bad(msg: str) -> ModelError:
        return ModelError(f"{source}: {msg}.")

    if c.sample_rate <= 0 or c.hop_length <= 0 or c.n_fft <= 0:
        raise bad("sample_rate, n_fft and hop_length must be positive")
    if c.n_fft % 2 or c.n_fft < c.hop_length or (c.n_fft - c.hop_length) % 2:
        raise bad(f"unsupported n_fft {c.n_fft} / hop_length {c.hop_length}")
    if c.istft_padding != "same":
        raise bad(f"istft_padding {c.istft_padding!r} is not supported (only 'same')")
    if c.interpolation_mode != "linear":
        raise bad(f"wave_interpolation_mode {c.interpolation_mode!r} is not supported (only 'linear')")
    if len(c.upsampler_factors) != len(c.upsampler_kernel_sizes):
        raise bad("wave_upsampler_factors and wave_upsampler_kernel_sizes differ in length")
    for u, k in zip(c.upsampler_factors, c.upsampler_kernel_sizes, strict=True):
        if u <= 0 or k < u or (k - u) % 2:
            raise bad(f"unsupported upsampler stage (factor {u}, kernel {k})")
    if c.decoder_dim % (2 ** len(c.upsampler_factors)):
        raise bad(f"wave_decoder_dim {c.decoder_dim} cannot be halved for every upsampler stage")
    if c.resnet_kernel_size % 2 == 0:
        raise bad("wave_resnet_kernel_size must be odd")
    if c.resnet_num_groups <= 0 or c.decoder_dim % c.resnet_num_groups:
        raise bad(f"wave_decoder_dim {c.decoder_dim} is not divisible by {c.resnet_num_groups} groups")
    if not c.fsq_levels or any(v < 2 for v in c.fsq_levels):
        raise bad("local_quantizer.levels must be integers >= 2")
    if c.decoder.dim != c.decoder_dim:
        raise bad(f"wave_decoder.dim {c.decoder.dim} differs from wave_decoder_dim {c.decoder_dim}")
    if (c.prenet.output_dim or c.prenet.dim) != c.decoder_dim:
        raise bad("wave_prenet.output_dim must equal wave_decoder_dim")
    if c.fsq_output_dim != c.prenet.dim:
        raise bad("local_quantizer.output_dim must equal wave_prenet.dim")
    if not c.decoder.use_adaln_zero or not c.decoder.adanorm_condition_dim:
        raise bad("wave_decoder must use AdaLN-Zero with adanorm_condition_dim")
    for name, t in (("wave_prenet", c.prenet), ("wave_decoder", c.decoder)):
        if t.n_heads <= 0 or t.dim % t.n_heads or t.head_dim % 2:
            raise bad(f"{name}.dim {t.dim} must split into {t.n_heads} heads of even size")
        if t.n_layers < 0 or t.window_size < 1:
            raise bad(f"{name} has invalid n_layers / window_size")
