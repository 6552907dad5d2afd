"""The speech pipeline: text → MioTTS codes (llama.cpp) → MioCodec waveform (onnxruntime).

No Qt here: the CLI uses it directly, the desktop app through its controller.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from miodesk import paths, system
from miodesk.errors import GenerationError, ModelError, TextError
from miodesk.text import MAX_MODEL_TEXT_CHARS, text_for_model
from miodesk.tts.voices import Voice

log = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "MioTTS-0.1B-Q8_0.gguf"
DEFAULT_CODEC_FOLDER = "MioCodec-25Hz-44.1kHz-v2"
CODES_PER_SECOND = 25


def llm_gpu_layers(provider: str, offload_supported: bool) -> int:
    """Layers to put on the GPU: all of them when llama.cpp was built with CUDA, Metal or Vulkan,
    unless the user asked for the CPU (`provider` is the same choice as the codec's)."""
    return -1 if offload_supported and provider != "cpu" else 0


def split_threads(cores: int | None = None) -> tuple[int, int]:
    """(llama.cpp threads, onnxruntime threads) for a pipelined reading: together ≤ the cores.

    LLM decoding is memory-bound and gains little past a few threads, the codec runs in bursts;
    on two cores each gets one (reference/performance.md §4c).
    """
    cores = cores or system.usable_cores()
    llm = max(1, min(4, cores // 2))
    return llm, max(1, cores - llm)


def _installed(kind: str) -> list:
    """Installed models of `kind` from the models manifest (no network, sizes checked only on use)."""
    from miodesk.models.download import DownloadManager

    return [m for m in DownloadManager().installed() if m.kind == kind]


def _checked(model) -> Path:
    """The model's file or folder, after a cheap size check (a full sha256 check is on demand)."""
    from miodesk.models.installed import check_model

    problems = check_model(model, full=False)
    if problems:
        raise ModelError(
            f"{problems[0].message} Download it again with `miodesk models download {model.name}`, "
            "or check all models with `miodesk models verify`."
        )
    return model.main_file


def default_model_path() -> Path:
    """The recommended GGUF (installed or in the models folder), else the only MioTTS GGUF there."""
    installed = _installed("llm")
    preferred_name = DEFAULT_MODEL_FILE.removesuffix(".gguf")
    for model in installed:
        if model.name == preferred_name:
            return _checked(model)
    if len(installed) == 1:
        return _checked(installed[0])
    folder = paths.models_dir()
    if installed:
        names = ", ".join(m.name for m in installed)
        raise ModelError(f"Several models in {folder} ({names}); choose one with --model FILE.gguf.")
    # Files put there by hand (before the manifest existed, or copied in).
    preferred = folder / DEFAULT_MODEL_FILE
    if preferred.is_file():
        return preferred
    found = sorted(p for p in folder.rglob("*.gguf") if ".staging" not in p.relative_to(folder).parts)
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelError(
            f"No MioTTS model (.gguf) in {folder}. Download one with `miodesk models download "
            f"{preferred_name}`, import a file with `miodesk models import FILE.gguf`, or pass --model FILE.gguf."
        )
    names = ", ".join(p.name for p in found)
    raise ModelError(f"Several models in {folder} ({names}); choose one with --model FILE.gguf.")


def default_codec_path() -> Path:
    """The default codec if installed, else the only installed codec, else the folder put there by hand."""
    installed = _installed("codec")
    for model in installed:
        if model.name == DEFAULT_CODEC_FOLDER:
            return _checked(model)
    if len(installed) == 1:
        return _checked(installed[0])
    folder = paths.models_dir() / DEFAULT_CODEC_FOLDER
    if folder.is_dir():
        return folder
    raise ModelError(
        f"No MioCodec in {folder}. Download it with `miodesk models download {DEFAULT_CODEC_FOLDER}`, "
        "import a codec folder with `miodesk models import DIR`, or pass --codec DIR_OR_FILE.onnx."
    )


@dataclass
class SpeechResult:
    samples: np.ndarray
    sample_rate: int
    codes: list[int]
    model_text: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


class SpeechEngine:
    """Loads the LLM and the codec once; `synthesize` turns one utterance into audio."""

    def __init__(
        self,
        model_path: Path | None = None,
        codec_path: Path | None = None,
        provider: str = "auto",
        llm_threads: int | None = None,
        codec_threads: int | None = None,
    ) -> None:
        from miodesk.tts.codec import CodecRuntime, ensure_decoder
        from miodesk.tts.llm import MioLLM

        cores = system.usable_cores()
        model_path = Path(model_path) if model_path else default_model_path()
        codec_path = Path(codec_path) if codec_path else default_codec_path()

        started = time.perf_counter()
        decoder_path = ensure_decoder(codec_path)
        # LLM decoding and codec decoding take turns here, so each may use every core.
        self.codec = CodecRuntime(decoder_path, provider=provider, intra_op_threads=codec_threads or cores)
        self.codec.warm_up()
        codec_loaded = time.perf_counter()
        import llama_cpp

        gpu_layers = llm_gpu_layers(provider, bool(llama_cpp.llama_supports_gpu_offload()))
        self.llm = MioLLM(model_path, n_threads=llm_threads or min(cores, 4), n_gpu_layers=gpu_layers)
        self.llm_on_gpu = gpu_layers != 0
        self.load_timings = {
            "codec_load_s": codec_loaded - started,
            "llm_load_s": time.perf_counter() - codec_loaded,
        }
        log.info(
            "engine ready: model %s (%s) on %s, codec %s on %s, %s",
            model_path.name,
            self.llm.architecture,
            "the GPU" if self.llm_on_gpu else "the CPU",
            decoder_path.name,
            self.codec.provider,
            self.load_timings,
        )

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    def synthesize_long(
        self, text: str, voice: Voice, speed: float = 1.0, seed: int | None = None, pause_s: float = 0.25
    ) -> SpeechResult:
        """Text of any length: one utterance when the model can take it whole (as the official server
        does), else split into sentences that are spoken in turn with a short pause between them."""
        from miodesk.text.segment import segment

        if len(text) <= MAX_MODEL_TEXT_CHARS:
            return self.synthesize(text, voice, speed=speed, seed=seed)
        pieces = segment(text)
        if not pieces:
            raise TextError("The text holds nothing that can be spoken.")
        pause = np.zeros(int(pause_s * self.sample_rate), dtype=np.float32)
        results = []
        for number, piece in enumerate(pieces):
            piece_seed = None if seed is None else seed + number
            try:
                result = self.synthesize(piece.text, voice, speed=speed, seed=piece_seed)
            except GenerationError as error:
                # Like the reader: one more try with another seed before giving up on a sentence.
                log.warning("sentence %d failed (%s); retrying with another seed", number, error)
                retry_seed = None if piece_seed is None else piece_seed + 100_000
                result = self.synthesize(piece.text, voice, speed=speed, seed=retry_seed)
            results.append(result)
        samples = np.concatenate([part for result in results for part in (result.samples, pause)][:-1])
        timings = {key: sum(result.timings[key] for result in results) for key in ("llm_s", "codec_s")}
        timings["tokens_per_s"] = sum(len(r.codes) for r in results) / max(timings["llm_s"], 1e-9)
        return SpeechResult(
            samples=samples,
            sample_rate=self.sample_rate,
            codes=[code for result in results for code in result.codes],
            model_text="\n".join(result.model_text for result in results),
            timings=timings,
        )

    def synthesize(
        self,
        text: str,
        voice: Voice,
        speed: float = 1.0,
        seed: int | None = None,
        cancel: threading.Event | None = None,
    ) -> SpeechResult:
        from miodesk.tts.llm import SamplingParams

        if len(text) > MAX_MODEL_TEXT_CHARS:
            raise TextError(
                f"The text is {len(text)} characters long; one utterance can be at most "
                f"{MAX_MODEL_TEXT_CHARS} (the MioTTS limit). Split it into shorter pieces."
            )
        model_text = text_for_model(text)
        started = time.perf_counter()
        generation = self.llm.generate(model_text, SamplingParams(seed=seed), cancel=cancel)
        codes = list(generation)
        generated = time.perf_counter()
        if generation.finish_reason == "cap":
            raise GenerationError(
                f"The speech model did not finish this text within {generation.n_tokens} tokens "
                f"({generation.n_tokens / CODES_PER_SECOND:.0f} s of speech), so it is not used. "
                "Try again with another --seed or a shorter text."
            )
        if generation.finish_reason == "cancelled":
            raise GenerationError("Speech generation was cancelled.")
        if not codes:
            raise GenerationError("The speech model produced no speech for this text.")
        samples = self.codec.decode(np.asarray(codes, dtype=np.int64), voice.vector, speed=speed)
        finished = time.perf_counter()
        return SpeechResult(
            samples=samples,
            sample_rate=self.codec.sample_rate,
            codes=codes,
            model_text=model_text,
            timings={
                "llm_s": generated - started,
                "codec_s": finished - generated,
                "tokens_per_s": len(codes) / max(generated - started, 1e-9),
            },
        )
