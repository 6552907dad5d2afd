"""The speech pipeline: text → MioTTS codes (llama.cpp) → MioCodec waveform (onnxruntime).

No Qt here: the CLI uses it directly, the desktop app through its controller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from miodesk.errors import GenerationError, TextError
from miodesk.models import registry
from miodesk.runtime import Provider, ThreadPlan
from miodesk.text import MAX_MODEL_TEXT_CHARS, text_for_model
from miodesk.tts.generation import (
    DEFAULT_RETRY,
    CoreLoan,
    FinishReason,
    RetryPolicy,
    codec_decoding,
    generate_with_retries,
)
from miodesk.tts.pauses import Pauses
from miodesk.tts.voices import Voice

if TYPE_CHECKING:
    from miodesk.tts.llm import MioLLM
    from miodesk.tts.llm_server import RemoteLLM, ServerConfig

log = logging.getLogger(__name__)

CODES_PER_SECOND = 25
CODEC_LOAD_WAIT_S = 120.0  # the longest a codec's background load is waited for at exit


def llm_gpu_layers(provider: Provider | str, offload_supported: bool) -> int:
    """Layers to put on the GPU: all of them when llama.cpp was built with CUDA, Metal or Vulkan,
    unless the user asked for the CPU (`provider` is the same choice as the codec's)."""
    return -1 if offload_supported and Provider.parse(provider) is not Provider.CPU else 0


def default_model_path() -> Path:
    """The recommended GGUF (installed or in the models folder), else the only MioTTS GGUF there."""
    return registry.default_model_file()


def default_codec_path() -> Path:
    """The default codec if installed, else the only installed codec, else the folder put there by hand."""
    return registry.default_codec_folder()


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
    """Loads the LLM and the codec once; `synthesize` turns one utterance into audio.

    With `llm_server` the speech model runs on that OpenAI-compatible server (`RemoteLLM`) and no local
    model is needed or loaded (`model_path` is ignored); the codec and the voices stay on this computer.

    Threads may share one engine (the window's reading and the local speech server): the in-process
    model runs their generations one at a time, by priority (`MioLLM.gate`), and the codec decodes for
    several threads at once (`CodecRuntime`).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        codec_path: Path | None = None,
        provider: Provider | str = Provider.AUTO,
        llm_threads: int | None = None,
        codec_threads: int | None = None,
        thread_plan: ThreadPlan | None = None,
        llm_server: ServerConfig | None = None,
        codec_in_background: bool = False,
    ) -> None:
        """`thread_plan` gives every model its threads (default: one utterance at a time, where the LLM
        and the codec take turns, so each may use every core); `llm_threads` and `codec_threads`
        (settings, command line) override it, clamped to this machine's cores.

        With `codec_in_background` the engine is ready once the local speech model is: the codec goes
        on loading on a thread of its own, so a reading can start generating meanwhile and only its
        first decode waits (a codec that fails to load then fails that decode, with the same message).
        Without a local model (`llm_server`) the codec is loaded before the engine is ready."""
        from miodesk.tts.codec import CodecRuntime, ensure_decoder

        self.provider = Provider.parse(provider)
        plan = thread_plan or ThreadPlan.for_single_utterance()
        self.thread_plan = plan.with_overrides(llm_threads=llm_threads, codec_threads=codec_threads)
        self.llm_server = llm_server
        self.llm: MioLLM | RemoteLLM
        # No local model at all with a server (looking for one would fail where none is installed).
        local_model = None if llm_server else (Path(model_path) if model_path else default_model_path())
        codec_path = Path(codec_path) if codec_path else default_codec_path()

        self.core_loan: CoreLoan | None = None  # the codec's idle threads lent to the local LLM (pipelined)
        started = time.perf_counter()
        if llm_server is not None:
            # The server first: a dead one is reported before the codec's first graph build.
            from miodesk.tts.llm_server import RemoteLLM

            remote = RemoteLLM(llm_server)
            self.llm = remote
            self.llm_on_gpu = False  # on this computer; where the server runs it is the server's business
            self.model_name = remote.display_name
            self.llm_location = f"the server {llm_server.label()} ({remote.server_kind})"
            model_detail = f"{remote.model_name} ({remote.server_kind})"
        llm_ready = time.perf_counter()
        self.load_timings: dict[str, float] = {"llm_load_s": llm_ready - started}

        # The local model loads on a thread while the codec loads here (or on a thread of its own, in
        # the background): both are mostly native code that lets go of the GIL, and on two cores that
        # halves the wait (the LLM's load is mostly its weights' repacking, the codec's its weights'
        # packing for onnxruntime's kernels).
        local_load = _LocalModelLoad(local_model, self.provider, self.thread_plan) if local_model else None
        lent = self.thread_plan.lendable_codec_threads
        # Made before either loads: a codec loading in the background holds it as a decode would.
        loan = CoreLoan(self.thread_plan.llm_threads, lent) if lent and local_load is not None else None
        self.codec_loading: threading.Thread | None = None
        self.codec_ready_at: float | None = None  # time.time() when the codec was ready to decode
        try:
            decoder_path = ensure_decoder(codec_path)
            self.codec = CodecRuntime(decoder_path, provider=self.provider,
                                      intra_op_threads=self.thread_plan.codec_threads, load_now=False)
            if codec_in_background and local_load is not None:
                self.codec_loading = threading.Thread(target=self._open_codec_in_background, args=(loan, llm_ready),
                                                      name="codec-load", daemon=True)
                self.codec_loading.start()
            else:
                self._open_codec(loan, llm_ready)
        except BaseException:
            if local_load is not None:
                local_load.discard()
            raise
        codec_loaded = time.perf_counter()
        if local_load is not None and local_model is not None:
            try:
                local = local_load.result()
            except BaseException:
                self.wait_for_codec()  # not exiting in the middle of onnxruntime's load
                raise
            self.llm = local
            self.llm_on_gpu = local_load.gpu_layers != 0
            if loan is not None and not self.llm_on_gpu:
                self.core_loan = loan
                local.core_loan = loan
            self.model_name = local_model.stem
            self.llm_location = "the GPU" if self.llm_on_gpu else "the CPU"
            model_detail = f"{local_model.name} ({local.architecture})"
            self.load_timings["llm_load_s"] = local_load.seconds
            self.load_timings["llm_wait_s"] = time.perf_counter() - codec_loaded  # beyond the codec's load
        log.info("engine ready: model %s on %s, codec %s%s, %s, %s", model_detail, self.llm_location,
                 decoder_path.name, " (loading)" if self.codec_loading else f" on {self.codec.provider}",
                 self.load_timings, self.thread_plan)

    def _open_codec(self, loan: CoreLoan | None, since: float) -> None:
        """Open the codec's session and warm it up; the LLM borrows none of its threads meanwhile (the
        load uses them), nor ever when the codec runs on a GPU."""
        with codec_decoding(loan):
            self.codec.load()
            self.codec.warm_up()
            if loan is not None and self.codec.provider is not Provider.CPU:
                loan.withdraw()
        self.load_timings["codec_load_s"] = time.perf_counter() - since
        self.codec_ready_at = time.time()

    def _open_codec_in_background(self, loan: CoreLoan | None, since: float) -> None:
        """`_open_codec` on the codec's own thread: an error is kept by the codec for its first decode to
        raise, which is where the user hears of it."""
        try:
            self._open_codec(loan, since)
        except Exception as error:
            log.info("the codec failed to load; its first decode will say so: %s", error)

    def wait_for_codec(self, timeout: float = CODEC_LOAD_WAIT_S) -> None:
        """Wait for a codec loading in the background, before the process exits (one that ends in the
        middle of onnxruntime's load can crash on the way out)."""
        if self.codec_loading is not None:
            self.codec_loading.join(timeout)

    @property
    def model_label(self) -> str:
        """The speech model and where it runs, for status lines: "MioTTS-0.1B-Q8_0" on this computer,
        "MioTTS-1.2B on gpu-box:8000" on a server."""
        if self.llm_server is not None:
            return f"{self.model_name} on {self.llm_server.label()}"
        return self.model_name

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    def synthesize_long(
        self,
        text: str,
        voice: Voice,
        speed: float = 1.0,
        seed: int | None = None,
        pauses: Pauses | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        prepare_text: Callable[[str], str] = text_for_model,
        voices: Mapping[str, Voice] | None = None,
    ) -> SpeechResult:
        """Text of any length: one utterance when the model can take it whole (as the official server
        does), else split into sentences that are spoken in turn with a pause between them (a sentence's,
        or a paragraph's after a blank line). `voices`: a voice per sentence language ("ja", "en"; the
        others get `voice`); a text with sentences of two of them is spoken sentence by sentence."""
        from miodesk.text.segment import segment

        voices = voices or {}
        pieces = segment(text)
        mixed = len({piece.language for piece in pieces} & set(voices)) > 1
        if len(text) <= MAX_MODEL_TEXT_CHARS and not mixed:
            language_voice = voices.get(pieces[0].language, voice) if pieces else voice
            return self.synthesize(text, language_voice, speed=speed, seed=seed, retry=retry,
                                   prepare_text=prepare_text)
        if not pieces:
            raise TextError("The text holds nothing that can be spoken.")
        pauses = pauses or Pauses()
        results = [
            self.synthesize(piece.text, voices.get(piece.language, voice), speed=speed, seed=seed, index=index,
                            retry=retry, prepare_text=prepare_text)
            for index, piece in enumerate(pieces)
        ]
        parts: list[np.ndarray] = []
        for index, result in enumerate(results):
            parts.append(result.samples)
            if index + 1 < len(pieces):
                gap = text[pieces[index].end:pieces[index + 1].start]
                parts.append(np.zeros(int(pauses.between(gap, False) * self.sample_rate), dtype=np.float32))
        timings = {key: sum(result.timings[key] for result in results) for key in ("llm_s", "codec_s")}
        timings["tokens_per_s"] = sum(len(r.codes) for r in results) / max(timings["llm_s"], 1e-9)
        return SpeechResult(
            samples=np.concatenate(parts),
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
        index: int = 0,
        retry: RetryPolicy = DEFAULT_RETRY,
        prepare_text: Callable[[str], str] = text_for_model,
    ) -> SpeechResult:
        """One utterance; `index` is its place in a longer text, which sets its seed (see RetryPolicy).
        `prepare_text` turns it into what the model is given (readings dictionary, normalisation)."""
        if len(text) > MAX_MODEL_TEXT_CHARS:
            raise TextError(
                f"The text is {len(text)} characters long; one utterance can be at most "
                f"{MAX_MODEL_TEXT_CHARS} (the MioTTS limit). Split it into shorter pieces."
            )
        model_text = prepare_text(text)
        started = time.perf_counter()
        codes, reason = generate_with_retries(self.llm, model_text, retry, seed=seed, index=index, cancel=cancel)
        generated = time.perf_counter()
        if reason == FinishReason.CANCELLED:
            raise GenerationError("Speech generation was cancelled.")
        if reason == FinishReason.CAP:
            raise GenerationError(
                f"The speech model did not finish this text within {len(codes)} tokens "
                f"({len(codes) / CODES_PER_SECOND:.0f} s of speech), so it is not used. "
                "Try again with another --seed or a shorter text."
            )
        if reason == FinishReason.RUNAWAY:
            raise GenerationError(
                "The speech model kept repeating itself on this text, so it is not used. "
                "Try again with another --seed or a shorter text."
            )
        if not codes:
            raise GenerationError("The speech model produced no speech for this text.")
        # A reading beside this (the window while the server answers) lends the codec's threads to the LLM:
        # not while this decode runs.
        with codec_decoding(self.core_loan):
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


class _LocalModelLoad:
    """MioLLM(model) loading on a thread of its own; `result()` waits for it (and raises its error)."""

    def __init__(self, model: Path, provider: Provider, plan: ThreadPlan) -> None:
        self.model, self.provider, self.plan = model, provider, plan
        self.gpu_layers = 0
        self.seconds = 0.0
        self._llm: MioLLM | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, name="llm-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            import llama_cpp

            from miodesk.tts.llm import MioLLM

            self.gpu_layers = llm_gpu_layers(self.provider, bool(llama_cpp.llama_supports_gpu_offload()))
            self._llm = MioLLM(self.model, n_threads=self.plan.llm_threads,
                               n_threads_batch=self.plan.llm_batch_threads, n_gpu_layers=self.gpu_layers)
        except BaseException as error:  # handed to result(), on the thread that asked for the engine
            self._error = error
        finally:
            self.seconds = time.perf_counter() - started

    def result(self) -> MioLLM:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._llm is not None
        return self._llm

    def discard(self) -> None:
        """The engine failed elsewhere: free the model once it has loaded."""
        self._thread.join()
        if self._llm is not None:
            self._llm.close()
