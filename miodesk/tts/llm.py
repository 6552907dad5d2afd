"""The MioTTS language model: text in, MioCodec content codes (0..12799) out, through llama.cpp.

`MioLLM` loads a MioTTS GGUF with llama-cpp-python, finds the audio tokens ``<|s_0|>``..``<|s_12799|>``
in its vocabulary (their ids differ per base model), renders the prompt from the GGUF's own chat
template, and streams codes from `MioLLM.generate`. Sampling runs entirely in llama.cpp's C sampler
chain, so no Python code touches the logits.

Generation runs on the file's audio-only copy (`miodesk.tts.audio_only_model`), whose vocabulary is
only what may be sampled; the prompt is tokenized by this file's own vocabulary and given as
embeddings. Where that copy cannot be made or used, generation runs on the whole file and restricting
the output to audio tokens is a C-side logit bias of -inf on every other non-EOG id.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from miodesk.errors import GenerationError, ModelError
from miodesk.models.gguf_file import check_signature
from miodesk.tts import audio_only_model
from miodesk.tts.generation import CoreLoan, FinishReason, GenerationGate, SamplingParams

if TYPE_CHECKING:
    from jinja2 import Template

log = logging.getLogger(__name__)
_llama_log = logging.getLogger("miodesk.llama_cpp")

N_AUDIO_CODES = 12_800
_AUDIO_TOKEN = re.compile(rb"<\|s_(\d+)\|>")
CHATML_FALLBACK = "<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


# --- llama.cpp log routing ----------------------------------------------------------------------

# Re-entrant: garbage collection may free a model (whose destructor logs through the callback) in the
# middle of the callback, on the same thread; a plain lock deadlocked there.
_log_lock = threading.RLock()
_log_buffer: list[str] = []
_log_state = {"level": logging.DEBUG, "error": False}
_last_error: list[str] = []  # recent llama.cpp error lines, used to explain a failed load
# ggml_log_level: 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line.
# llama.cpp's errors end up as ModelError/GenerationError, so its own lines are detail, not news.
_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.INFO, 4: logging.INFO}
_GGML_ERROR, _GGML_CONT = 4, 5
_log_callback = None  # keeps the ctypes callback alive


def _install_log_callback() -> None:
    """Send llama.cpp/ggml log lines to Python logging instead of stderr (idempotent)."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        try:
            # Loading a model sends ~70,000 debug lines (0.3 s of Python at start-up): unless they are
            # logged, only note that the current message is no error and drop it.
            if level in (0, 1, 2) or (level == _GGML_CONT and not _log_state["error"]
                                      and _log_state["level"] == logging.DEBUG):
                if not _llama_log.isEnabledFor(logging.DEBUG):
                    if level != _GGML_CONT:
                        _log_state["level"], _log_state["error"] = logging.DEBUG, False
                    return
            with _log_lock:
                if level != _GGML_CONT:
                    _log_state["level"] = _LEVELS.get(level, logging.DEBUG)
                    _log_state["error"] = level == _GGML_ERROR
                    if level == _GGML_ERROR:
                        _last_error.append("")
                        del _last_error[:-8]
                chunk = text.decode("utf-8", "replace") if text else ""
                if _log_state["error"] and _last_error:
                    _last_error[-1] += chunk
                _log_buffer.append(chunk)
                line, level = "", _log_state["level"]
                if chunk.endswith("\n"):
                    line = "".join(_log_buffer).rstrip()
                    _log_buffer.clear()
            if line:  # outside the lock: a log handler may do anything, even free a model
                _llama_log.log(level, "%s", line)
        except Exception:  # never let an exception cross back into C
            pass

    _log_callback = _callback
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


def _take_last_error() -> str:
    """The most specific llama.cpp error line since the last call, without function prefixes."""
    with _log_lock:
        lines = [" ".join(e.split()) for e in _last_error if e.strip()]
        _last_error.clear()
    reasons = []
    for line in lines:
        line = line.split("error loading model:", 1)[-1].strip()
        while re.match(r"^[A-Za-z_][\w:]*: ", line):  # "llama_model_loader: ..." prefixes
            line = line.split(": ", 1)[1]
        if line and not line.startswith("failed to load model"):
            reasons.append(line)
    return reasons[0] if reasons else ""


def _import_llama_cpp():
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover - packaging problem
        raise ModelError(f"llama-cpp-python is not installed or failed to load ({e})") from e
    _install_log_callback()
    return llama_cpp


def _check_gguf_file(path: Path) -> None:
    if not path.exists():
        raise ModelError(f"Speech model not found: {path}")
    if not path.is_file():
        raise ModelError(f"Speech model path is not a file: {path}")
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ModelError(f"Cannot read speech model {path}: {e.strerror or e}") from e
    # The header only: llama.cpp reports a damaged body itself (imports check the whole structure).
    check_signature(head, path.name)


def _compile_template(source: str):
    """Compile a GGUF chat template the way Hugging Face does (sandboxed, trimmed blocks)."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
    return env.from_string(source)


# --- the model ----------------------------------------------------------------------------------


class MioLLM:
    """A loaded MioTTS GGUF, the in-process `CodeGenerator`.

    Its llama.cpp context runs one generation at a time. Threads may share the model: each generation
    waits for `gate` before its first code and holds it until it is exhausted or closed, waiting
    generations going in the order of their thread's `Priority` (the window's reading before the speech
    server's requests). Iterate and close a generation on the thread that started it.
    """

    def __init__(
        self,
        model_path: Path,
        n_threads: int,
        n_gpu_layers: int = 0,
        n_ctx: int = 2048,
        n_threads_batch: int | None = None,
        audio_only: bool = True,
    ) -> None:
        self.model_path = Path(model_path)
        _check_gguf_file(self.model_path)
        llama_cpp = _import_llama_cpp()
        self._lc = llama_cpp
        self._load_args = {"n_ctx": n_ctx, "n_threads": n_threads, "n_threads_batch": n_threads_batch or n_threads,
                           "n_gpu_layers": n_gpu_layers, "flash_attn": n_gpu_layers != 0}
        # Generation runs on the audio-only model of this file (see miodesk.tts.audio_only_model; made here
        # at the first load), the prompt's tokenizer staying with this file, loaded for its vocabulary only.
        self._text_llm = self._load(self.model_path, vocab_only=audio_only)
        self._llm = self._text_llm  # the generation model
        self._text_embeddings: audio_only_model.TextEmbeddings | None = None

        self.n_threads = n_threads
        self._vocab = llama_cpp.llama_model_get_vocab(self._text_llm.model)
        self.n_vocab: int = llama_cpp.llama_vocab_n_tokens(self._vocab)
        meta = self._text_llm.metadata
        self.architecture: str = meta.get("general.architecture", "unknown")
        self.chat_template: str | None = meta.get("tokenizer.chat_template") or None
        self.add_bos: bool = meta.get("tokenizer.ggml.add_bos_token", "false").lower() == "true"
        self.bos_id: int = llama_cpp.llama_vocab_bos(self._vocab)
        self.eos_id: int = llama_cpp.llama_vocab_eos(self._vocab)

        t0 = time.perf_counter()
        try:
            self.audio_token_ids, self.eog_ids, self._im_end_id = self._scan_vocab()
        except ModelError:
            self._text_llm.close()  # free the weights now: the caller may try another file
            raise
        self._id_to_code: dict[int, int] = {tid: code for code, tid in enumerate(self.audio_token_ids)}
        log.debug(
            "%s: %s, vocab %d, audio tokens %d..%d, EOG %s, vocab scan %.0f ms",
            self.model_path.name, self.architecture, self.n_vocab, self.audio_token_ids[0],
            self.audio_token_ids[-1], sorted(self.eog_ids), (time.perf_counter() - t0) * 1000,
        )
        # The ids generation samples and is fed: this file's, or the audio-only model's.
        self._gen_id_to_code, self._gen_eog_ids, self._gen_n_vocab = self._id_to_code, self.eog_ids, self.n_vocab
        if audio_only:
            derived = self._audio_only_model()
            if derived is None or not self._use_audio_only_model(derived):
                self._text_llm.close()
                self._text_llm = self._llm = self._load(self.model_path, vocab_only=False)
                self._vocab = llama_cpp.llama_model_get_vocab(self._text_llm.model)
        self.n_ctx = self._llm.n_ctx()
        self._ctx = self._llm.ctx
        self._build_bias_array()
        self.gate = GenerationGate()
        # Set by the engine of a pipelined reading: more threads for tokens while the codec is idle.
        self.core_loan: CoreLoan | None = None
        self._active: dict[int, Generation] = {}  # the unfinished generation of each thread
        self._active_lock = threading.Lock()
        self._template: Template | None = None  # compiled chat template, built on first use

    def _load(self, path: Path, vocab_only: bool):
        """A llama-cpp-python model; a failure is a ModelError that says what llama.cpp said."""
        _take_last_error()
        args = dict(self._load_args)
        if vocab_only:  # the tokenizer of a model whose generation runs on its audio-only model
            args.update(n_ctx=16, n_threads=1, n_threads_batch=1, n_gpu_layers=0, flash_attn=False)
        try:
            return self._lc.Llama(model_path=str(path), vocab_only=vocab_only, logits_all=False, verbose=False,
                                  **args)
        except Exception as e:  # llama-cpp-python raises ValueError/RuntimeError with a generic text
            reason = _take_last_error() or " ".join(str(e).split()) or type(e).__name__
            raise ModelError(
                f"Cannot load speech model {path.name}: {reason} "
                "(the file may be damaged, incomplete, or need a newer llama.cpp)"
            ) from e

    @property
    def end_ids(self) -> tuple[int, ...]:
        """This file's end-of-generation ids in the order the audio-only model gives them ids."""
        return tuple(sorted(self.eog_ids))

    @property
    def audio_only(self) -> bool:
        """Whether generation runs on the audio-only model (a third fewer weights read per token)."""
        return self._text_embeddings is not None

    def _audio_only_model(self) -> Path | None:
        """The audio-only model of this file, made now if there is none; None (logged) when it cannot be."""
        dest: Path | None = None
        try:
            dest = audio_only_model.cached_path(self.model_path)
            if not dest.is_file():
                started = time.perf_counter()
                texts = [self._token_text(tid).decode("utf-8", "replace") for tid in self.end_ids]
                audio_only_model.derive(self.model_path, dest, self.audio_token_ids, self.end_ids, texts)
                log.info("Made %s in %.2f s", dest.name, time.perf_counter() - started)
            return dest
        except (OSError, ValueError, ModelError) as error:
            if dest is not None and dest.is_file():  # another process made it meanwhile
                return dest
            log.warning("Could not make the audio-only model of %s: %s", self.model_path.name, error)
            return None

    def _use_audio_only_model(self, derived: Path) -> bool:
        """Load `derived` for generation; False (logged, the file removed) when it cannot serve this file."""
        lc = self._lc
        model = None
        try:
            model = self._load(derived, vocab_only=False)
            vocab = lc.llama_model_get_vocab(model.model)
            n_gen = lc.llama_vocab_n_tokens(vocab)
            ends = range(N_AUDIO_CODES, n_gen)
            if n_gen != N_AUDIO_CODES + len(self.eog_ids) or {
                tid for tid in range(n_gen) if lc.llama_vocab_is_eog(vocab, tid)
            } != set(ends):
                raise ValueError("its vocabulary does not match this model's")
            embeddings = audio_only_model.TextEmbeddings(self.model_path, model.metadata)
        except (ModelError, ValueError, KeyError, OSError) as error:
            log.warning("Not using the audio-only model %s: %s", derived.name, error)
            if model is not None:
                model.close()
            with contextlib.suppress(OSError):
                derived.unlink()  # remade at the next load
            return False
        self._llm, self._text_embeddings = model, embeddings
        self._gen_id_to_code = {code: code for code in range(N_AUDIO_CODES)}
        self._gen_eog_ids, self._gen_n_vocab = frozenset(ends), n_gen
        return True

    # -- vocabulary --------------------------------------------------------------------------

    def _token_text(self, tid: int) -> bytes:
        return self._lc.llama_vocab_get_text(self._vocab, tid) or b""

    def _scan_vocab(self) -> tuple[tuple[int, ...], frozenset[int], int | None]:
        lc, vocab = self._lc, self._vocab
        get_text, is_eog = lc.llama_vocab_get_text, lc.llama_vocab_is_eog
        codes: dict[int, int] = {}
        duplicate = False
        eog: set[int] = set()
        im_end: int | None = None
        for tid in range(self.n_vocab):
            text = get_text(vocab, tid) or b""
            if is_eog(vocab, tid):
                eog.add(tid)
            if text.startswith(b"<|"):
                m = _AUDIO_TOKEN.fullmatch(text)
                # only canonical spellings of valid codes; others stay banned by the restriction
                if m and m.group(1) == str(int(m.group(1))).encode() and int(m.group(1)) < N_AUDIO_CODES:
                    code = int(m.group(1))
                    duplicate = duplicate or code in codes
                    codes[code] = tid
                elif text == b"<|im_end|>":
                    im_end = tid
        for end_id in (self.eos_id, im_end):
            if end_id is not None and end_id >= 0:
                eog.add(end_id)
        if duplicate or sorted(codes) != list(range(N_AUDIO_CODES)):
            raise ModelError(
                f"{self.model_path.name} has no MioTTS audio tokens (<|s_0|>..<|s_12799|>): "
                "it is not a MioTTS model"
            )
        if not eog:
            raise ModelError(
                f"{self.model_path.name} has no end-of-generation token: it is not a MioTTS model"
            )
        ids = tuple(codes[c] for c in range(N_AUDIO_CODES))
        if eog & set(ids):
            raise ModelError(f"{self.model_path.name} marks audio tokens as end-of-generation")
        return ids, frozenset(eog), im_end

    def _build_bias_array(self) -> None:
        # -inf for every id that is neither audio nor EOG; built once, copied by llama.cpp per chain.
        # The audio-only model has no other ids: no bias at all.
        allowed = np.zeros(self._gen_n_vocab, dtype=bool)
        allowed[list(self._gen_id_to_code)] = True
        allowed[list(self._gen_eog_ids)] = True
        banned = np.flatnonzero(~allowed).astype(np.int32)
        arr = np.zeros(len(banned), dtype=[("token", "<i4"), ("bias", "<f4")])
        arr["token"] = banned
        arr["bias"] = -np.inf
        self._bias_np = arr
        self._bias_c = (self._lc.llama_logit_bias * len(arr)).from_buffer(arr) if len(arr) else None

    def code_of(self, token_id: int) -> int | None:
        """The codec code of an audio token id, or None for any other token."""
        return self._id_to_code.get(token_id)

    # -- prompt ------------------------------------------------------------------------------

    def render_prompt(self, text: str) -> str:
        """The prompt text: the GGUF's chat template with one user message, or ChatML without it."""
        if not self.chat_template:
            return CHATML_FALLBACK.format(text=text)
        from jinja2 import TemplateError

        try:
            if self._template is None:
                self._template = _compile_template(self.chat_template)
            return self._template.render(
                messages=[{"role": "user", "content": text}],
                add_generation_prompt=True,
                bos_token=self._special_text(self.bos_id),
                eos_token=self._special_text(self.eos_id),
            )
        except (TemplateError, TypeError, ValueError, AttributeError, IndexError, KeyError) as e:
            raise ModelError(
                f"The chat template in {self.model_path.name} cannot be used: {' '.join(str(e).split())}"
            ) from e

    def _special_text(self, tid: int) -> str:
        return self._token_text(tid).decode("utf-8", "replace") if tid >= 0 else ""

    def prompt_tokens(self, text: str) -> list[int]:
        """Token ids of the prompt for `text` (special tokens parsed, BOS only where the GGUF asks)."""
        prompt = self.render_prompt(text)
        ids = list(self._text_llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
        if self.chat_template and self.add_bos and self.bos_id >= 0:
            bos_text = self._special_text(self.bos_id)
            if not (bos_text and prompt.startswith(bos_text)):
                ids.insert(0, self.bos_id)
        return ids

    # -- generation --------------------------------------------------------------------------

    def generate(
        self,
        text: str,
        params: SamplingParams | None = None,
        cancel: threading.Event | None = None,
        restrict_to_audio: bool = True,
    ) -> Generation:
        """Start generating codes for `text`; iterate the result to receive them as they come.

        Starting a new generation ends this thread's unfinished previous one; one of another thread
        is waited for (`gate`), when the first code is asked for.
        """
        if not restrict_to_audio and self.audio_only:
            raise ValueError("an unrestricted generation needs the full model: MioLLM(..., audio_only=False)")
        thread = threading.get_ident()
        with self._active_lock:
            previous = self._active.pop(thread, None)
        if previous is not None:
            previous.close()
        prompt = self.prompt_tokens(text)  # the vocabulary only (read-only): no need to wait for the gate
        gen = Generation(self, prompt, params or SamplingParams(), cancel, restrict_to_audio)
        with self._active_lock:
            self._active[thread] = gen
        return gen

    def _forget(self, gen: Generation) -> None:
        with self._active_lock:
            for thread, active in list(self._active.items()):
                if active is gen:
                    del self._active[thread]

    def _make_sampler(self, params: SamplingParams, restrict: bool):
        lc = self._lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())

        def add(s) -> None:
            if not s:
                raise GenerationError("llama.cpp could not create a sampler")
            lc.llama_sampler_chain_add(chain, s)

        try:
            # The bias must come first: it uses a fast path while candidates are still in id order.
            if restrict and self._bias_c is not None:
                add(lc.llama_sampler_init_logit_bias(self._gen_n_vocab, len(self._bias_np), self._bias_c))
            if params.repeat_penalty != 1.0:
                add(lc.llama_sampler_init_penalties(self._gen_n_vocab, 64, params.repeat_penalty, 0.0, 0.0))
            if params.temperature <= 0:
                add(lc.llama_sampler_init_greedy())
                return chain
            if params.top_k > 0:
                add(lc.llama_sampler_init_top_k(params.top_k))
            if params.top_p < 1.0:
                add(lc.llama_sampler_init_top_p(params.top_p, 1))
            if params.min_p > 0.0:
                add(lc.llama_sampler_init_min_p(params.min_p, 1))
            add(lc.llama_sampler_init_temp(params.temperature))
            seed = lc.LLAMA_DEFAULT_SEED if params.seed is None else params.seed & 0xFFFFFFFF
            add(lc.llama_sampler_init_dist(seed))
        except BaseException:
            lc.llama_sampler_free(chain)
            raise
        return chain

    def _reset_context(self) -> None:
        # Every utterance is a fresh prompt; recurrent/hybrid state (falcon-h1, lfm2) must go too.
        self._llm.reset()
        mem = self._lc.llama_get_memory(self._ctx)
        if mem is not None:
            self._lc.llama_memory_clear(mem, True)

    def _eval(self, tokens: list[int]) -> None:
        try:
            self._llm.eval(tokens)
        except Exception as e:
            raise GenerationError(f"The speech model failed while generating: {e}") from e

    def _eval_prompt(self, prompt: list[int]) -> None:
        """Read the prompt into a fresh context: as tokens, or as their embeddings on the audio-only
        model (its vocabulary has no text tokens)."""
        if self._text_embeddings is None:
            self._eval(prompt)
            return
        lc, llm = self._lc, self._llm
        rows = self._text_embeddings.rows(prompt)
        step = llm.n_batch
        batch = lc.llama_batch_init(step, rows.shape[1], 1)
        try:
            for start in range(0, len(prompt), step):
                chunk = rows[start:start + step]
                n = batch.n_tokens = len(chunk)
                ctypes.memmove(batch.embd, chunk.ctypes.data, chunk.nbytes)
                for i in range(n):
                    batch.pos[i] = start + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = start + i == len(prompt) - 1
                status = lc.llama_decode(self._ctx, batch)
                if status != 0:
                    raise GenerationError(f"The speech model failed while reading the prompt (llama_decode {status})")
        finally:
            lc.llama_batch_free(batch)
        llm.n_tokens = len(prompt)  # where Llama.eval goes on from

    def close(self, timeout: float = 10.0) -> None:
        """Free the model now rather than at garbage collection: once this thread's generation is
        closed and another thread's has ended (after `timeout` seconds, garbage collection frees it)."""
        lock = getattr(self, "_active_lock", None)
        if lock is not None:
            with lock:
                own = self._active.pop(threading.get_ident(), None)
            if own is not None:
                own.close()
        llm = getattr(self, "_llm", None)
        if llm is None:
            return
        gate: GenerationGate | None = getattr(self, "gate", None)
        if gate is not None and not gate.acquire(timeout=timeout):
            log.warning("%s is still generating on another thread; it is freed when that ends", self.model_path.name)
            return
        try:
            llm.close()
            if self._text_llm is not llm:
                self._text_llm.close()
            if self._text_embeddings is not None:
                self._text_embeddings.close()
            self._llm = None  # type: ignore[assignment]
        finally:
            if gate is not None:
                gate.release()

    def __enter__(self) -> MioLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Generation(Iterator[int]):
    """Codes (0..12799) as the model produces them.

    After exhaustion: ``finish_reason`` is EOG (the model ended the utterance), CAP (max_tokens
    reached, or the context is full) or CANCELLED; ``n_tokens`` counts sampled tokens other than
    the final EOG (``n_codes`` of them were audio, ``n_skipped`` were other tokens, which only an
    unrestricted run can draw); ``prompt_seconds``/``generate_seconds`` time prefill and decoding.
    """

    def __init__(
        self,
        llm: MioLLM,
        prompt: list[int],
        params: SamplingParams,
        cancel: threading.Event | None,
        restrict: bool,
    ) -> None:
        self._llm = llm
        self.prompt = prompt
        self.params = params
        self._cancel = cancel
        self._restrict = restrict
        self.finish_reason: FinishReason | None = None
        self.n_tokens = 0
        self.n_codes = 0
        self.n_skipped = 0
        self.prompt_seconds = 0.0
        self.generate_seconds = 0.0
        self._gen = self._run()

    def __iter__(self) -> Generation:
        return self

    def __next__(self) -> int:
        return next(self._gen)

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / self.generate_seconds if self.generate_seconds > 0 else 0.0

    def close(self) -> None:
        """Stop early (e.g. superseded by a new generation); frees the sampler and the model (`gate`)."""
        self._gen.close()
        if self.finish_reason is None:
            self.finish_reason = FinishReason.CANCELLED
        self._llm._forget(self)

    def _run(self) -> Generator[int, None, None]:
        llm = self._llm
        cancel = self._cancel
        max_tokens = self.params.max_tokens
        room = llm.n_ctx - len(self.prompt)
        try:
            if room <= 0:
                raise GenerationError(
                    f"The text is too long for the speech model's context ({len(self.prompt)} prompt tokens, "
                    f"context {llm.n_ctx}); split it into shorter sentences"
                )
            if cancel is not None and cancel.is_set():
                return
            # The context is shared: wait until no other thread's generation is running (see MioLLM).
            if not llm.gate.acquire(cancel=cancel):
                return
            try:
                if llm._llm is None:
                    raise GenerationError("The speech model was closed.")
                yield from self._generate(llm, cancel, max_tokens, room)
            finally:
                llm.gate.release()
        finally:
            if self.finish_reason is None:
                self.finish_reason = FinishReason.CANCELLED
            llm._forget(self)

    def _generate(
        self, llm: MioLLM, cancel: threading.Event | None, max_tokens: int, room: int
    ) -> Generator[int, None, None]:
        lc = llm._lc
        chain = llm._make_sampler(self.params, self._restrict)
        ctx, sample, eog, id_to_code = llm._ctx, lc.llama_sampler_sample, llm._gen_eog_ids, llm._gen_id_to_code
        loan, threads, batch_threads = llm.core_loan, llm.n_threads, llm._load_args["n_threads_batch"]
        try:
            t0 = time.perf_counter()
            if loan is not None:  # while the codec works, the prompt keeps to the LLM's own threads
                lc.llama_set_n_threads(ctx, threads, loan.prompt_threads(batch_threads))
            llm._reset_context()
            llm._eval_prompt(self.prompt)
            self.prompt_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            while True:
                if cancel is not None and cancel.is_set():
                    self.finish_reason = FinishReason.CANCELLED
                    break
                if self.n_tokens >= max_tokens or self.n_tokens >= room:
                    self.finish_reason = FinishReason.CAP
                    break
                tok = sample(chain, ctx, -1)
                if tok in eog:
                    self.finish_reason = FinishReason.EOG
                    break
                self.n_tokens += 1
                code = id_to_code.get(tok)
                if code is not None:
                    self.n_codes += 1
                    self.generate_seconds += time.perf_counter() - t0
                    yield code
                    t0 = time.perf_counter()
                else:
                    self.n_skipped += 1
                if self.n_tokens < max_tokens and not (cancel is not None and cancel.is_set()):
                    wanted = loan.llm_threads() if loan is not None else threads
                    if wanted != threads:
                        threads = wanted
                        lc.llama_set_n_threads(ctx, threads, batch_threads)
                    llm._eval([tok])
            self.generate_seconds += time.perf_counter() - t0
        finally:
            lc.llama_sampler_free(chain)
            if loan is not None:  # its own threads for tokens, every core for the next prompt
                lc.llama_set_n_threads(ctx, llm.n_threads, batch_threads)

