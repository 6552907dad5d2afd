"""Run the exported MioCodec decoder with onnxruntime: tokens + voice (+ speed) → waveform."""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from miodesk import paths
from miodesk.errors import MioDeskError, ModelError, VoiceError
from miodesk.runtime import Provider, open_session, optimized_graph_path
from miodesk.tts.codec_config import stft_length_from
from miodesk.tts.export import EXPORTER_VERSION, GRAPH_KIND
from miodesk.tts.istft import istft
from miodesk.tts.safetensors_io import file_identity

log = logging.getLogger(__name__)

MIN_SPEED = 0.5
MAX_SPEED = 2.0

_REQUIRED_META = ("sample_rate", "samples_per_token", "hop_length", "n_fft", "upsample_factor")


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("bad varint")


def _scan_model_proto(data: memoryview) -> tuple[dict[str, str], bool]:
    """metadata_props (field 14) of an ONNX ModelProto, and whether it has a graph (field 7).

    Walks only the top-level fields, so a 500 MB graph is skipped, not parsed.
    """
    meta: dict[str, str] = {}
    has_graph = False
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            if field == 7:
                has_graph = True
            elif field == 14:
                entry, sub, k, v = data[pos: pos + size], 0, "", ""
                while sub < len(entry):
                    ekey, sub = _varint(entry, sub)
                    if ekey & 7 != 2:
                        raise ValueError("bad metadata entry")
                    n, sub = _varint(entry, sub)
                    text = bytes(entry[sub: sub + n]).decode("utf-8")
                    sub += n
                    if ekey >> 3 == 1:
                        k = text
                    elif ekey >> 3 == 2:
                        v = text
                meta[k] = v
            pos += size
        else:
            raise ValueError(f"unexpected wire type {wire}")
    if pos != len(data):
        raise ValueError("truncated message")
    return meta, has_graph


def read_decoder_metadata(onnx_path: Path) -> dict[str, str]:
    """The decoder graph's metadata_props; ModelError unless it is a MioDesk decoder graph."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelError(f"Decoder graph not found: {onnx_path}.")
    try:
        with open(onnx_path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise ValueError("empty file")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    meta, has_graph = _scan_model_proto(view)
                finally:
                    view.release()
    except (OSError, ValueError, UnicodeDecodeError):
        raise ModelError(f"{onnx_path.name} is not a valid ONNX file (damaged or truncated).") from None
    if not has_graph or meta.get("kind") != GRAPH_KIND or any(k not in meta for k in _REQUIRED_META):
        raise ModelError(f"{onnx_path.name} is not a MioCodec decoder graph exported by MioDesk.")
    return meta


class CodecRuntime:
    """An onnxruntime session over a decoder graph from `export_decoder`, on `intra_op_threads` threads
    (a ThreadPlan's codec_threads).

    `decode` may be called from several threads at once (the window's reading and the speech server):
    it keeps no state between calls, and onnxruntime's `InferenceSession.run` is thread-safe, except
    under DirectML, which cannot run one session on two threads; there the runs take turns.

    With `load_now=False` the constructor reads only the graph's metadata (sample rate, sizes) and the
    session, the slow part, is opened by a later `load()`, which the caller may run on another thread
    while it gets on with the speech model: `session`, `provider`, `fallback_reason` and `decode` wait
    for it, and raise its error (ModelError) when it failed.
    """

    def __init__(self, onnx_path: Path, provider: Provider | str = Provider.AUTO, *, intra_op_threads: int,
                 load_now: bool = True) -> None:
        self.onnx_path = Path(onnx_path)
        meta = read_decoder_metadata(self.onnx_path)
        try:
            self.sample_rate = int(meta["sample_rate"])
            self.samples_per_token = int(meta["samples_per_token"])
            self.hop_length = int(meta["hop_length"])
            self.n_fft = int(meta["n_fft"])
            self.upsample = int(meta["upsample_factor"])
            self.downsample_factor = int(meta.get("downsample_factor", "2"))
            self.codebook_size = int(meta.get("codebook_size", "12800"))
            self.voice_dim = int(meta.get("voice_dim", "128"))
        except ValueError:
            raise ModelError(f"{self.onnx_path.name} has invalid decoder metadata.") from None
        self.variant = meta.get("variant", "")
        self.istft_in_graph = meta.get("istft", "graph") == "graph"
        self.requested_provider = Provider.parse(provider)
        self.threads = intra_op_threads
        self._session: Any = None
        self._provider = Provider.CPU
        self._fallback_reason = ""
        self._run_lock: AbstractContextManager[object] = nullcontext()
        self._opened = threading.Event()
        self._open_error: BaseException | None = None
        if load_now:
            self.load()

    def load(self) -> None:
        """Open the session (once; ModelError when no provider can load the graph)."""
        if self._opened.is_set():
            self._wait_opened()  # raises the first attempt's error
            return
        try:
            self._open_session()
        except BaseException as error:
            self._open_error = error
            raise
        finally:
            self._opened.set()

    def _open_session(self) -> None:
        choice = self.requested_provider
        try:
            optimized: Path | None = optimized_graph_path(self.onnx_path)
        except OSError as error:  # no cache folder can be made (a read-only home): optimise at every load
            log.info("no cache for the optimised graph: %s", error)
            optimized = None
        self._session, self._provider, reasons = open_session(self.onnx_path, choice, self.threads,
                                                              f"decoder graph {self.onnx_path.name}",
                                                              optimized=optimized)
        if self._provider is Provider.DIRECTML:
            self._run_lock = threading.Lock()
        # why a faster provider was not used ("" when the requested one runs); for doctor/UI
        self._fallback_reason = "; ".join(reasons) if choice is not Provider.CPU else ""
        if self._fallback_reason:
            # An explicit request that cannot be met is a WARNING. Under "auto" it is INFO: every
            # CPU-only Linux install has onnxruntime-gpu (see pyproject), so CUDA failing is normal.
            level = logging.INFO if choice is Provider.AUTO else logging.WARNING
            log.log(level, "Codec decoder runs on %s: %s.", self._provider.upper(), self._fallback_reason)
        log.info("Codec decoder %s on %s, %d intra-op threads", self.onnx_path.name, self._provider, self.threads)

    def _wait_opened(self) -> None:
        self._opened.wait()
        if self._open_error is not None:
            raise self._open_error.with_traceback(None)

    @property
    def session(self) -> Any:
        self._wait_opened()
        return self._session

    @property
    def provider(self) -> Provider:
        self._wait_opened()
        return self._provider

    @property
    def fallback_reason(self) -> str:
        self._wait_opened()
        return self._fallback_reason

    # ------------------------------------------------------------------------------------------
    def stft_length_for(self, n_tokens: int, speed: float = 1.0) -> int:
        return stft_length_from(n_tokens, speed, sample_rate=self.sample_rate, hop_length=self.hop_length,
                                upsample=self.upsample, downsample_factor=self.downsample_factor)

    def _check(self, tokens: np.ndarray, voice: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
        tok = np.asarray(tokens)
        if tok.ndim != 1:
            raise MioDeskError(f"Codec tokens must be a 1-D array, got shape {tok.shape}.")
        if tok.size == 0:
            raise MioDeskError("No speech tokens to decode (the token list is empty).")
        if not np.issubdtype(tok.dtype, np.integer):
            raise MioDeskError(f"Codec tokens must be integers, got {tok.dtype}.")
        lo, hi = int(tok.min()), int(tok.max())
        if lo < 0 or hi >= self.codebook_size:
            bad = lo if lo < 0 else hi
            raise MioDeskError(f"Codec token {bad} is out of range [0, {self.codebook_size}).")
        vec = np.asarray(voice)
        if vec.shape != (self.voice_dim,):
            raise VoiceError(f"Voice vector must have shape ({self.voice_dim},), got {vec.shape}.")
        if not np.issubdtype(vec.dtype, np.number) or not np.all(np.isfinite(vec)):
            raise VoiceError("Voice vector contains NaN, infinity or non-numbers.")
        if not (MIN_SPEED <= float(speed) <= MAX_SPEED) or not np.isfinite(float(speed)):
            raise MioDeskError(f"Speed {speed} is outside [{MIN_SPEED}, {MAX_SPEED}].")
        return tok.astype(np.int64, copy=False), vec.astype(np.float32, copy=False)

    def decode(
        self, tokens: np.ndarray, voice: np.ndarray, speed: float = 1.0, frames: int | None = None
    ) -> np.ndarray:
        """Waveform float32 (samples,) at `sample_rate`; about samples_per_token·T/speed samples.

        `frames` overrides the 50 Hz frame count that `speed` implies (streaming uses it to give every
        window the same time-stretch ratio).
        """
        tok, vec = self._check(tokens, voice, speed)
        length = max(1, frames if frames is not None else self.stft_length_for(len(tok), float(speed)))
        feeds = {"tokens": tok, "voice": vec, "stft_length": np.array(length, dtype=np.int64)}
        session = self.session  # waits for a session opened on another thread
        with self._run_lock:
            out = session.run(None, feeds)[0]
        if not self.istft_in_graph:
            out = istft(out, self.n_fft, self.hop_length)
        return np.ascontiguousarray(out, dtype=np.float32).reshape(-1)

    def warm_up(self) -> None:
        """One short decode, so the first real sentence does not pay for allocator warm-up."""
        self.decode(np.zeros(4, dtype=np.int64), np.zeros(self.voice_dim, dtype=np.float32))


# ----------------------------------------------------------------------------------------------
def _cache_key(codec_dir: Path) -> str:
    h = hashlib.sha256()
    h.update((codec_dir / "config.yaml").read_bytes())
    h.update(f"|{file_identity(codec_dir / 'model.safetensors')}|{EXPORTER_VERSION}".encode())
    return h.hexdigest()[:20]


def ensure_decoder(codec: Path) -> Path:
    """A decoder graph for `codec`: an .onnx file as is, or a codec folder exported into the cache."""
    codec = Path(codec)
    if codec.suffix.lower() == ".onnx":
        read_decoder_metadata(codec)
        return codec
    if not codec.exists():
        raise ModelError(f"Codec not found: {codec}.")
    if not codec.is_dir():
        raise ModelError(f"{codec.name} is neither a decoder .onnx file nor a codec folder.")
    for name in ("config.yaml", "model.safetensors"):
        if not (codec / name).is_file():
            raise ModelError(f"Codec folder {codec} has no {name}.")
    from miodesk.tts.codec_config import CodecConfig

    cfg = CodecConfig.from_file(codec / "config.yaml")
    target = paths.onnx_cache_dir() / f"miocodec-{cfg.variant}-{_cache_key(codec)}.onnx"
    if target.is_file():
        return target
    log.info("Building the codec decoder graph from %s (one time, takes a little while)", codec)
    from miodesk.tts.export.decoder import export_decoder  # onnx: only to build a graph

    return export_decoder(codec, target)
