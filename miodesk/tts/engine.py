"""The speech pipeline: text → MioTTS codes (llama.cpp) → MioCodec waveform (onnxruntime).

No Qt here: the CLI uses it directly, the desktop app through its controller.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from miodesk import paths
from miodesk.errors import GenerationError, ModelError, TextError
from miodesk.text import MAX_MODEL_TEXT_CHARS, text_for_model
from miodesk.tts.voices import Voice

log = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "MioTTS-0.1B-Q8_0.gguf"
DEFAULT_CODEC_FOLDER = "MioCodec-25Hz-44.1kHz-v2"
CODES_PER_SECOND = 25


def usable_cores() -> int:
    """Cores this process may run on (affinity-aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # Windows, macOS
        return max(1, os.cpu_count() or 1)


def split_threads(cores: int | None = None) -> tuple[int, int]:
    """(llama.cpp threads, onnxruntime threads) for a pipelined reading: together ≤ the cores.

    LLM decoding is memory-bound and gains little past a few threads, the codec runs in bursts;
    on two cores each gets one (reference/performance.md §4c).
    """
    cores = cores or usable_cores()
    llm = max(1, min(4, cores // 2))
    return llm, max(1, cores - llm)


def default_model_path() -> Path:
    """The recommended GGUF in the models folder, else the only MioTTS GGUF there."""
    folder = paths.models_dir()
    preferred = folder / DEFAULT_MODEL_FILE
    if preferred.is_file():
        return preferred
    found = sorted(folder.rglob("*.gguf"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelError(
            f"No MioTTS model (.gguf) in {folder}. Put one there (e.g. {DEFAULT_MODEL_FILE} "
            "from Aratako/MioTTS-GGUF) or pass --model FILE.gguf."
        )
    names = ", ".join(p.name for p in found)
    raise ModelError(f"Several models in {folder} ({names}); choose one with --model FILE.gguf.")


def default_codec_path() -> Path:
    folder = paths.models_dir() / DEFAULT_CODEC_FOLDER
    if folder.is_dir():
        return folder
    raise ModelError(
        f"No MioCodec in {folder}. Put the official config.yaml and model.safetensors of "
        f"Aratako/{DEFAULT_CODEC_FOLDER} there, or pass --codec DIR_OR_FILE.onnx."
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

        cores = usable_cores()
        model_path = Path(model_path) if model_path else default_model_path()
        codec_path = Path(codec_path) if codec_path else default_codec_path()

        started = time.perf_counter()
        decoder_path = ensure_decoder(codec_path)
        # LLM decoding and codec decoding take turns here, so each may use every core.
        self.codec = CodecRuntime(decoder_path, provider=provider, intra_op_threads=codec_threads or cores)
        self.codec.warm_up()
        codec_loaded = time.perf_counter()
        self.llm = MioLLM(model_path, n_threads=llm_threads or min(cores, 4))
        self.load_timings = {
            "codec_load_s": codec_loaded - started,
            "llm_load_s": time.perf_counter() - codec_loaded,
        }
        log.info(
            "engine ready: model %s (%s), codec %s on %s, %s",
            model_path.name,
            self.llm.architecture,
            decoder_path.name,
            self.codec.provider,
            self.load_timings,
        )

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

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
