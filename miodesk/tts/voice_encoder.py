"""Voice encoder runtime: an audio file or samples → the 128-value voice vector MioCodec uses.

Preprocessing follows the reference's: mono (mean of channels), torchaudio-exact
resample to the codec rate, peak-normalise, keep the first 20 s, symmetric zero padding so WavLM sees
whole frames, resample to 16 kHz; then the exported ONNX graph (miodesk.tts.export.encoder) runs on
the CPU EP by default. The graph is built once per (codec, WavLM) pair and cached like the decoder.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from miodesk import paths
from miodesk.audio.resample import resample
from miodesk.errors import ModelError, VoiceError
from miodesk.models import registry
from miodesk.runtime import Provider, ThreadPlan, open_session
from miodesk.tts.codec_config import SSL_EXTRA, SSL_HOP, SSL_RATE, CodecConfig
from miodesk.tts.voices import Voice, VoiceStore, validate_voice_name

log = logging.getLogger(__name__)

MAX_REFERENCE_SECONDS = 20.0  # the official server keeps the first 20 s of a reference
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
_MAX_AUDIO_BYTES = 500 << 20


def default_wavlm_path() -> Path:
    """The installed WavLM folder, else the one put in the models folder by hand."""
    return registry.default_wavlm_folder()


# ----------------------------------------------------------------------------------------------
# audio loading and preprocessing
# ----------------------------------------------------------------------------------------------
def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """(samples (n, channels) float32, rate) of a WAV/FLAC/OGG (and MP3 where libsndfile can)."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise VoiceError(f"Audio file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".mp3" and "MP3" not in soundfile.available_formats():
        raise VoiceError(f"{path.name}: this system's libsndfile cannot read MP3; convert it to WAV or FLAC first.")
    if path.stat().st_size > _MAX_AUDIO_BYTES:
        raise VoiceError(f"{path.name} is too large for a voice recording; use 10–30 s of speech.")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises LibsndfileError / RuntimeError with its own text
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise VoiceError(f"Cannot read {path.name} as audio (WAV, FLAC, OGG or MP3): {reason}.") from None
    if data.shape[0] == 0:
        raise VoiceError(f"{path.name} holds no audio.")
    return data, int(rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    arr = np.asarray(samples, dtype=np.float32)
    return arr.mean(axis=1, dtype=np.float32) if arr.ndim == 2 else arr.reshape(-1)


def waveform_padding(n: int, sample_rate: int) -> int:
    """Zeros added at each end so WavLM sees ceil(n16 / 320) whole frames (float64, as the reference)."""
    n16 = n / sample_rate * SSL_RATE
    frames = math.ceil(n16 / SSL_HOP)
    need = (SSL_HOP * frames + SSL_EXTRA) / SSL_RATE * sample_rate
    return max(0, math.ceil((need - n) / 2))


@dataclass
class Prepared:
    loaded: np.ndarray  # mono, codec rate, peak-normalised, at most 20 s
    padding: int
    audio_16k: np.ndarray


def prepare(samples: np.ndarray, rate: int, codec_rate: int, max_seconds: float | None = MAX_REFERENCE_SECONDS
            ) -> Prepared:
    mono = to_mono(samples)
    if not np.all(np.isfinite(mono)):
        raise VoiceError("The recording contains invalid (NaN or infinite) samples.")
    if rate != codec_rate:
        mono = resample(mono, rate, codec_rate)
    loaded = (mono / (np.max(np.abs(mono)) + np.float32(1e-8))).astype(np.float32) if len(mono) else mono
    if max_seconds is not None:
        loaded = loaded[: int(max_seconds * codec_rate)]  # after normalising, as the server does
    if len(loaded) == 0:
        raise VoiceError("The recording is empty.")
    pad = waveform_padding(len(loaded), codec_rate)
    padded = np.concatenate([np.zeros(pad, np.float32), loaded, np.zeros(pad, np.float32)])
    audio_16k = resample(padded, codec_rate, SSL_RATE)
    if len(audio_16k) < 400:  # one WavLM frame needs 400 samples at 16 kHz
        raise VoiceError("The recording is far too short to make a voice from.")
    return Prepared(loaded, pad, audio_16k)


# ----------------------------------------------------------------------------------------------
# graph cache and session
# ----------------------------------------------------------------------------------------------
def ensure_encoder(codec_dir: Path, wavlm_dir: Path) -> Path:
    """The voice-encoder graph for this codec + WavLM pair, exported into the cache on first use."""
    from miodesk.tts.export.encoder import ENCODER_EXPORTER_VERSION, export_encoder, wavlm_weights_file
    from miodesk.tts.safetensors_io import file_identity

    codec_dir, wavlm_dir = Path(codec_dir), Path(wavlm_dir)
    if not (codec_dir / "config.yaml").is_file() or not (codec_dir / "model.safetensors").is_file():
        raise ModelError(f"Codec folder {codec_dir} needs config.yaml and model.safetensors.")
    if not wavlm_dir.is_dir():
        raise ModelError(f"WavLM folder not found: {wavlm_dir}.")
    h = hashlib.sha256()
    h.update((codec_dir / "config.yaml").read_bytes())
    h.update(f"model.safetensors|{file_identity(codec_dir / 'model.safetensors')}".encode())
    for name in ("config.json", "torchaudio_wavlm_params.json"):
        if (wavlm_dir / name).is_file():
            h.update((wavlm_dir / name).read_bytes())
    wavlm_weights = wavlm_weights_file(wavlm_dir)
    h.update(f"{wavlm_weights.name}|{file_identity(wavlm_weights)}".encode())
    h.update(f"|{ENCODER_EXPORTER_VERSION}".encode())
    target = paths.onnx_cache_dir() / f"voice-encoder-{h.hexdigest()[:20]}.onnx"
    if target.is_file():
        return target
    log.info("Building the voice encoder graph from %s and %s (one time)", codec_dir, wavlm_dir)
    return export_encoder(codec_dir, wavlm_dir, target)


def open_encoder_session(onnx_path: Path, provider: Provider | str, threads: int) -> tuple[Any, Provider]:
    """An onnxruntime session over the voice-encoder graph on `threads` intra-op threads."""
    choice = Provider.parse(provider)
    session, name, reasons = open_session(onnx_path, choice, threads, f"voice encoder graph {onnx_path.name}")
    if reasons and choice is not Provider.CPU:
        log.info("Voice encoder runs on %s: %s.", name.upper(), "; ".join(reasons))
    return session, name


class VoiceEncoder:
    """Audio → (128,) voice vector for one codec (its rate and GlobalEncoder) and one WavLM.

    `threads`: a ThreadPlan's encoder_threads; None takes the plan's number for this machine.
    """

    def __init__(self, codec_dir: Path | None = None, wavlm_dir: Path | None = None, *,
                 provider: Provider | str = Provider.CPU, threads: int | None = None) -> None:
        from miodesk.tts.engine import default_codec_path

        self.codec_dir = Path(codec_dir) if codec_dir is not None else default_codec_path()
        if self.codec_dir.suffix.lower() == ".onnx":
            raise ModelError("The voice encoder needs the codec folder (config.yaml + model.safetensors), "
                             "not a decoder .onnx file.")
        self.wavlm_dir = Path(wavlm_dir) if wavlm_dir is not None else default_wavlm_path()
        self.config = CodecConfig.from_file(self.codec_dir / "config.yaml")
        self.sample_rate = self.config.sample_rate
        self.onnx_path = ensure_encoder(self.codec_dir, self.wavlm_dir)
        if threads is None:
            threads = ThreadPlan.for_reading().encoder_threads
        self.threads = threads
        self.session, self.provider = open_encoder_session(self.onnx_path, provider, threads)
        self._lock = threading.Lock()  # one run at a time: the UI and a worker may share an encoder

    def run_16k(self, audio_16k: np.ndarray) -> np.ndarray:
        with self._lock:
            out = self.session.run(["global_embedding"], {"audio_16k": np.ascontiguousarray(audio_16k, np.float32)})
        vector = np.asarray(out[0], dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(vector)):
            raise VoiceError("The voice encoder produced invalid values for this audio.")
        return vector

    def encode_samples(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Voice vector (128,) float32 of samples ((n,) or (n, channels)) at `rate` Hz."""
        return self.run_16k(prepare(samples, int(rate), self.sample_rate).audio_16k)

    def encode_file(self, path: Path) -> np.ndarray:
        samples, rate = read_audio(path)
        return self.encode_samples(samples, rate)


# ----------------------------------------------------------------------------------------------
# voices made from audio: the vector in the VoiceStore, the recording as FLAC beside it
# ----------------------------------------------------------------------------------------------
def flac_bytes(samples: np.ndarray, rate: int) -> bytes:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(np.asarray(samples, np.float32).reshape(-1), -1.0, 1.0), int(rate),
                    format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def decode_flac(data: bytes) -> tuple[np.ndarray, int]:
    import io

    import soundfile

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return np.asarray(samples, np.float32).reshape(-1), int(rate)


def recording_path(store: VoiceStore, name: str) -> Path:
    """Where a voice's source recording is kept: `<name>.flac` in the voice folder."""
    return store.recording_path(name)


def make_voice_from_audio(store: VoiceStore, name: str, samples: np.ndarray, rate: int, encoder: VoiceEncoder, *,
                          metadata: dict | None = None, overwrite: bool = False) -> Voice:
    """Encode `samples` and save voice + FLAC; the vector is that of the FLAC as stored.

    The FLAC (16-bit) is written first and the vector computed from its decoded samples, so
    `encode_file(<name>.flac)` reproduces the saved voice exactly. The store writes its json last,
    so a failure anywhere leaves no listed half-voice; a new FLAC left by a failure is removed.
    """
    from miodesk.atomic import atomic_write_bytes

    validate_voice_name(name)
    if not overwrite and name in store:
        raise VoiceError(f"A voice named {name!r} already exists; choose another name or replace it.")
    data = flac_bytes(samples, rate)
    stored, stored_rate = decode_flac(data)
    vector = encoder.encode_samples(stored, stored_rate)
    flac = recording_path(store, name)
    old = flac.read_bytes() if flac.is_file() else None
    meta = dict(metadata or {})
    meta.setdefault("kind", "user")
    meta["recording"] = flac.name
    meta["recording_seconds"] = round(len(stored) / stored_rate, 2)
    meta["encoder"] = {"codec": encoder.config.variant, "codec_sample_rate": encoder.sample_rate,
                       "graph": encoder.onnx_path.name}
    try:
        atomic_write_bytes(flac, data)
    except OSError as exc:
        raise VoiceError(f"Could not save the recording of voice {name!r}: {exc.strerror or exc}.") from None
    try:
        return store.save(Voice(name=name, vector=vector, metadata=meta), overwrite=overwrite)
    except BaseException:
        if old is not None:
            atomic_write_bytes(flac, old)
        else:
            flac.unlink(missing_ok=True)
        raise


