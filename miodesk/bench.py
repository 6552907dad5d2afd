"""`miodesk bench`: how fast MioDesk is on this machine, measured on models with the real shapes.

Speed depends on shapes, not weight values, so without the official weights the benchmark builds
random-weight stand-ins once (cached under ``cache_dir()/bench``):

* MioTTS 0.1B: ``falcon-h1`` with the Falcon-H1-Tiny(-R-90M) layout: hidden 512, 24 layers, attention
  8 heads / 2 KV heads of 64, FFN 768, Mamba2 d_ssm 768 in 24 heads, d_state 64, 1 group, conv 4,
  tied embeddings, vocabulary 78,336 (audio at 65,536) → ~114 M parameters, ~125 MB at Q8_0.
* MioTTS 0.6B: ``qwen3`` with the Qwen3-0.6B layout: hidden 1024, 28 layers, 16 / 8 heads of 128,
  FFN 3072, tied embeddings, vocabulary 164,480 (audio at 151,669).
* Both quantised to Q8_0 or Q4_K_M by llama.cpp's own quantiser (``llama_model_quantize``).
* MioCodec decoders at full size (44.1 kHz v2 or 24 kHz) through the project's own exporter.

Random weights almost never stop, so generation lengths are forced: every utterance is capped at
25 codes per second of its expected speech (15 characters a second of English, 8 of Japanese) and
the cap counts as the natural end (`_CappedLLM`). Measured: LLM tokens/s (with and without the
audio-only restriction), codec ms per second of audio (full and chunked, per provider and thread
count), and end to end through `ReadingSession` into `NullSink`, a sound-card stand-in that drains
in real time and counts underruns: time to first audio, RTF, underruns, peak RSS and CPU use, for
several LLM/codec thread splits (the best is chosen automatically). End-to-end runs each happen in
a fresh worker process so memory and CPU figures belong to one configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CODES_PER_SECOND = 25
BENCH_VERSION = 1  # bump when the generated models change shape or content
CHARS_PER_SECOND = {"ja": 8.0, "en": 15.0}
REAL_CHARS_PER_TOKEN = {"ja": 1.5, "en": 4.0}  # of the real MioTTS tokenizers, roughly

# The texts of shared/bench-texts (also used for the peers), so figures compare across tools.
BENCH_TEXT_EN = (
    "The old lighthouse stood at the edge of the cliff for more than a century, guiding fishing boats "
    "safely home through fog and winter storms. Every evening, the keeper climbed the narrow spiral "
    "staircase, trimmed the wick, and polished the great glass lens until it shone. When electric lamps "
    "finally replaced the oil flame in 1962, the town feared that the tower would be torn down. Instead, "
    "a group of volunteers restored it and opened a small museum on the ground floor. Today, visitors "
    "can read the keeper's logbooks, which describe shipwrecks, daring rescues, and long quiet nights "
    "when nothing happened at all."
)
BENCH_TEXT_JA = (
    "昨日の午後、駅前の小さな本屋に立ち寄りました。店の奥には古い地図や旅の本が並んでいて、思わず時間を"
    "忘れて眺めてしまいました。店主のおじいさんは、三十年以上この場所で店を続けているそうです。最近は"
    "インターネットで本を買う人が増えたけれど、紙の手触りを楽しみに来てくれるお客さんもまだ多いと話して"
    "くれました。私は北海道の鉄道について書かれた写真集を一冊買いました。家に帰ってページをめくると、"
    "雪の中を走る列車の写真がとても美しく、いつか実際に乗ってみたいと思いました。こういう店がこれからも"
    "長く残ってほしいと、心から願っています。次の休みには、友人を誘ってもう一度あの本屋を訪ねるつもりです。"
)

# write_test_gguf arguments of the shape-faithful stand-ins (see the module docstring).
MODEL_SHAPES: dict[str, dict[str, Any]] = {
    "0.1B": dict(
        arch="falcon-h1", n_embd=512, n_layer=24, n_head=8, n_head_kv=2, head_dim=64, n_ff=768,
        ssm_d_inner=768, ssm_n_heads=24, ssm_d_state=64, ssm_n_group=1, ssm_d_conv=4,
    ),
    "0.6B": dict(arch="qwen3", n_embd=1024, n_layer=28, n_head=16, n_head_kv=8, head_dim=128, n_ff=3072),
}
# --tiny: the same architectures at toy sizes, so the tool itself can be tested in seconds.
TINY_SHAPES: dict[str, dict[str, Any]] = {
    "0.1B": dict(arch="falcon-h1", n_embd=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ff=128),
    "0.6B": dict(arch="qwen3", n_embd=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ff=128),
}
QUANTS = ("Q8_0", "Q4_K_M")
CODECS = ("v2_44k", "24k")


def _ftype(quant: str) -> int:
    import llama_cpp

    return {"Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}[quant]


# --- machine ------------------------------------------------------------------------------------


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [float(x) for x in handle.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    from miodesk.tts.codec import physical_cores
    from miodesk.tts.engine import usable_cores

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "usable_cores": usable_cores(),
        "physical_cores": physical_cores(),
        "python": sys.version.split()[0],
    }
    try:
        import llama_cpp

        info["llama_cpp"] = llama_cpp.__version__
        info["llama_system"] = llama_cpp.llama_print_system_info().decode().strip(" |")
    except Exception:  # noqa: BLE001 - informational only
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
        info["ort_providers"] = onnxruntime.get_available_providers()
    except Exception:  # noqa: BLE001
        pass
    if hasattr(os, "getloadavg"):
        info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


class LoadMeter:
    """How busy the whole machine was during the benchmark, other processes included."""

    def __init__(self) -> None:
        self.start = _cpu_times()
        self.own_start = _own_cpu_s(children=True)
        self.wall_start = time.perf_counter()

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if hasattr(os, "getloadavg"):
            out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        end = _cpu_times()
        wall = time.perf_counter() - self.wall_start
        if self.start and end and end[1] > self.start[1]:
            ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            busy_cores = (end[0] - self.start[0]) / ticks / wall
            own = (_own_cpu_s(children=True) - self.own_start) / wall
            out["machine_busy_cores"] = round(busy_cores, 2)
            out["other_processes_cores"] = round(max(0.0, busy_cores - own), 2)
        return out


def _own_cpu_s(children: bool = False) -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    if children:
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += kids.ru_utime + kids.ru_stime
    return total


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1024


# --- benchmark models ---------------------------------------------------------------------------


def bench_dir() -> Path:
    from miodesk import paths

    path = paths.cache_dir() / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_model(size: str, quant: str, tiny: bool = False) -> Path:
    """A cached random-weight GGUF with the shapes of MioTTS `size`, quantised to `quant`."""
    from miodesk.synthetic.gguf import REAL_LAYOUTS, write_test_gguf

    shapes = dict((TINY_SHAPES if tiny else MODEL_SHAPES)[size])
    name = f"miotts-{size}-{quant}{'-tiny' if tiny else ''}-v{BENCH_VERSION}.gguf"
    target = bench_dir() / name
    if target.is_file():
        return target
    arch = shapes.pop("arch")
    offset, vocab = REAL_LAYOUTS[arch]
    f16 = target.with_suffix(".f16.tmp")
    started = time.perf_counter()
    print(f"building {name} (one time) ...", file=sys.stderr, flush=True)
    # Tied and unrigged, like the real models (the rigged EOG trick needs an untied lm_head); lengths
    # are forced by `_CappedLLM` instead.
    write_test_gguf(f16, arch, audio_offset=offset, n_vocab=vocab, rigged=False, tied=True,
                    eog_probability=None, seed=1, **shapes)
    tmp = target.with_suffix(".tmp")
    try:
        quantize(f16, tmp, quant)
        tmp.replace(target)
    finally:
        f16.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    log.info("built %s in %.1f s", target, time.perf_counter() - started)
    return target


def quantize(src: Path, dst: Path, quant: str) -> None:
    """llama.cpp's own quantiser, in process (no external binary)."""
    from miodesk.tts.llm import _import_llama_cpp

    llama_cpp = _import_llama_cpp()  # also routes llama.cpp's per-tensor chatter to logging

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _ftype(quant)
    params.nthread = max(1, os.cpu_count() or 1)
    status = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if status != 0 or not dst.is_file():
        raise RuntimeError(f"llama_model_quantize failed for {src.name} ({quant}): status {status}")


def build_codec(variant: str, tiny: bool = False) -> Path:
    """A cached decoder graph of a random full-size (or, tiny, small) MioCodec of `variant`."""
    import shutil

    from miodesk.synthetic.codec import write_random_codec
    from miodesk.tts.codec import ensure_decoder

    size = "small" if tiny else "full"
    target = bench_dir() / f"miocodec-{variant}-{size}-v{BENCH_VERSION}.onnx"
    if target.is_file():
        return target
    print(f"building the {size} {variant} codec decoder (one time) ...", file=sys.stderr, flush=True)
    folder = bench_dir() / f".codec-{variant}-{size}"
    try:
        write_random_codec(folder, variant, size, seed=0)
        exported = ensure_decoder(folder)
        tmp = target.with_suffix(".tmp")
        shutil.move(str(exported), tmp)  # the weights folder (~0.5 GB) is not needed afterwards
        tmp.replace(target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return target


# --- texts --------------------------------------------------------------------------------------


def expected_seconds(text: str) -> float:
    from miodesk.text import detect_language

    rate = CHARS_PER_SECOND["ja"] if detect_language(text) == "ja" else CHARS_PER_SECOND["en"]
    return max(0.5, len(text.strip()) / rate)


def bench_reading(seconds: float) -> tuple[str, list]:
    """The bench texts (English, then Japanese, repeated) cut to about `seconds` of expected speech."""
    from miodesk.text.segment import segment

    pair = BENCH_TEXT_EN + "\n\n" + BENCH_TEXT_JA
    per_pair = sum(expected_seconds(u.text) for u in segment(pair))
    repeats = max(1, int(np.ceil(seconds / per_pair)))
    source = "\n\n".join([pair] * repeats)
    chosen, total = [], 0.0
    for utterance in segment(source):
        if chosen and total >= seconds:
            break
        chosen.append(utterance)
        total += expected_seconds(utterance.text)
    return source, chosen


# --- forcing generation lengths -----------------------------------------------------------------


class _CapAsEnd(Iterator[int]):
    """A Generation whose cap counts as the model's own end of the utterance."""

    def __init__(self, generation: Any) -> None:
        self._generation = generation

    def __next__(self) -> int:
        return next(self._generation)

    def close(self) -> None:
        self._generation.close()

    @property
    def finish_reason(self) -> str | None:
        reason = self._generation.finish_reason
        return "eog" if reason == "cap" else reason

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generation, name)


class _CappedLLM:
    """MioLLM whose generations end after 25 codes per expected second of the text.

    The stand-ins' tokenizer is nearly byte-level (one token per English character, three per Japanese
    one), which would make prompts 3-5x longer than the real tokenizers' (~4 English characters or
    ~1.5 Japanese characters a token) and inflate prefill; the text is therefore cut so the prompt has
    about the real number of tokens.
    """

    def __init__(self, llm: Any, real_prompt_lengths: bool = True) -> None:
        self._llm = llm
        self._real_prompt_lengths = real_prompt_lengths

    def _shortened(self, text: str) -> str:
        from miodesk.text import detect_language

        chars_per_token = REAL_CHARS_PER_TOKEN["ja" if detect_language(text) == "ja" else "en"]
        target = max(1, round(len(text) / chars_per_token))
        overhead = len(self._llm.prompt_tokens("."))
        have = len(self._llm.prompt_tokens(text)) - overhead
        if have <= target:
            return text
        return text[: max(1, round(len(text) * target / have))]

    def generate(self, text: str, params: Any = None, cancel: Any = None, restrict_to_audio: bool = True) -> Any:
        from miodesk.tts.llm import SamplingParams

        cap = max(1, round(CODES_PER_SECOND * expected_seconds(text)))
        params = replace(params or SamplingParams(), max_tokens=cap)
        if self._real_prompt_lengths:
            text = self._shortened(text)
        return _CapAsEnd(self._llm.generate(text, params, cancel=cancel, restrict_to_audio=restrict_to_audio))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


class _BenchEngine:
    def __init__(self, engine: Any, force_lengths: bool) -> None:
        self.codec = engine.codec
        self.llm = _CappedLLM(engine.llm) if force_lengths else engine.llm


# --- the null audio sink ------------------------------------------------------------------------


class NullSink:
    """A sound card that plays nothing: drains `sample_rate` samples a second (times `pace`) from a
    bounded buffer, like AudioPlayer's callback, and counts an underrun whenever a block comes up short
    while more audio is expected. Supports what ReadingSession and AudioPlayer's users call."""

    def __init__(
        self,
        sample_rate: int,
        buffer_seconds: float = 4.0,
        block: int = 1024,
        pace: float = 1.0,
        latency_seconds: float = 0.15,
    ) -> None:
        self.sample_rate = sample_rate
        self.capacity = int(buffer_seconds * sample_rate)
        self.block = block
        self.pace = pace
        self.latency_seconds = latency_seconds
        self._buffered = 0  # samples written and not yet "played"
        self._frames_written = 0
        self.frames_played = 0
        self.underruns = 0
        self.underrun_s = 0.0  # silence inserted while audio was expected
        self.underrun_at: list[float] = []  # seconds of audio played when each underrun happened
        self.first_audio_time: float | None = None
        self._expecting_audio = False
        self._paused = False
        self._markers: deque[tuple[int, Any]] = deque()
        self._on_marker: Callable[[Any], None] | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name="null-sink", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        period = self.block / self.sample_rate / self.pace
        next_tick = time.perf_counter()
        while True:
            next_tick += period
            delay = next_tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:  # we were descheduled for long: do not try to catch up in a burst
                next_tick = time.perf_counter()
            due = []
            with self._cond:
                if self._closed:
                    return
                if not self._paused:
                    got = min(self.block, self._buffered)
                    self._buffered -= got
                    self.frames_played += got
                    if got < self.block and self._expecting_audio:
                        self.underruns += 1
                        self.underrun_s += (self.block - got) / self.sample_rate
                        self.underrun_at.append(self.frames_played / self.sample_rate)
                    while self._markers and self._markers[0][0] <= self.frames_played:
                        due.append(self._markers.popleft()[1])
                self._cond.notify_all()
            for payload in due:
                if self._on_marker is not None:
                    try:
                        self._on_marker(payload)
                    except Exception:  # noqa: BLE001 - like AudioPlayer: a handler never stops the sink
                        log.exception("marker handler failed")

    def set_marker_handler(self, handler: Callable[[Any], None] | None) -> None:
        self._on_marker = handler

    def add_marker(self, payload: Any) -> None:
        with self._cond:
            self._markers.append((self._frames_written, payload))

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> bool:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        offset = 0
        while offset < len(samples):
            with self._cond:
                if self._closed or (cancel is not None and cancel.is_set()):
                    return False
                taken = min(len(samples) - offset, self.capacity - self._buffered)
                if taken:
                    chunk = samples[offset : offset + taken]
                    if self.first_audio_time is None and np.any(chunk):
                        self.first_audio_time = time.perf_counter()
                    self._buffered += taken
                    self._frames_written += taken
                    self._expecting_audio = True
                    offset += taken
                else:
                    self._cond.wait(0.05)
        return True

    def end_of_audio(self) -> None:
        self._expecting_audio = False

    def wait_until_played(self, cancel: threading.Event | None = None, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._buffered or self._markers:
                if cancel is not None and cancel.is_set():
                    return False
                if deadline is not None and time.monotonic() > deadline:
                    return False
                self._cond.wait(0.05)
        return True

    @property
    def buffered_seconds(self) -> float:
        return self._buffered / self.sample_rate

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def flush(self) -> None:
        with self._cond:
            self._buffered = 0
            self._markers.clear()
            self._frames_written = self.frames_played
            self._expecting_audio = False
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget the counters (between a warm-up reading and the measured one)."""
        with self._cond:
            self.underruns = 0
            self.underrun_s = 0.0
            self.first_audio_time = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)


# --- micro-benchmarks -----------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def bench_llm(model_path: Path, threads: list[int], tokens: int, repeats: int) -> dict[str, Any]:
    """LLM decode speed (tokens/s, RTF at 25 tokens per second of audio) and prefill, per thread count."""
    import llama_cpp

    from miodesk.tts.llm import MioLLM, SamplingParams

    started = time.perf_counter()
    llm = MioLLM(model_path, n_threads=threads[0])
    result: dict[str, Any] = {
        "file_mb": round(model_path.stat().st_size / 1e6, 1),
        "load_s": round(time.perf_counter() - started, 3),
        "n_vocab": llm.n_vocab,
        "architecture": llm.architecture,
        "runs": [],
    }
    text = BENCH_TEXT_EN.split(". ")[0] + "."
    try:
        for n in threads:
            llama_cpp.llama_set_n_threads(llm._ctx, n, n)
            for restrict in (True, False):
                rates, prefill = [], []
                for run in range(repeats + 1):  # the first run warms up
                    gen = llm.generate(text, SamplingParams(max_tokens=tokens, seed=run), restrict_to_audio=restrict)
                    for _ in gen:
                        pass
                    if run:
                        rates.append(gen.tokens_per_second)
                        prefill.append(gen.prompt_seconds)
                rate = _median(rates)
                result["runs"].append({
                    "threads": n,
                    "restrict_to_audio": restrict,
                    "tokens_per_s": round(rate, 1),
                    "llm_rtf": round(CODES_PER_SECOND / rate, 4) if rate else None,
                    "prefill_ms": round(_median(prefill) * 1000, 1),
                    "prompt_tokens": len(gen.prompt),
                    "spread": round((max(rates) - min(rates)) / rate, 3) if rate else None,
                })
    finally:
        llm.close()
    return result


def bench_codec(
    onnx_path: Path, providers: list[str], threads: list[int], tokens: int, repeats: int, plan: dict | None = None
) -> list[dict]:
    """Codec ms per second of audio: one full decode, and streaming windows as codes trickle in."""
    from miodesk.tts.codec import CodecRuntime
    from miodesk.tts.streaming import ChunkPlan, decode_in_chunks, snr_db

    rng = np.random.default_rng(0)
    voice = (rng.standard_normal(128) * 0.5).astype(np.float32)
    codes = rng.integers(0, 12_800, tokens).astype(np.int64)
    chunk_plan = ChunkPlan(**(plan or {}))
    seconds = tokens / CODES_PER_SECOND
    out: list[dict] = []
    seen: set[tuple[str, int]] = set()
    for provider in providers:
        for n in threads:
            started = time.perf_counter()
            codec = CodecRuntime(onnx_path, provider=provider, intra_op_threads=n)
            load_s = time.perf_counter() - started
            key = (codec.provider, n if codec.provider == "cpu" else 0)
            if key in seen:
                continue
            seen.add(key)
            first_window = chunk_plan.first_chunk + chunk_plan.first_lookahead
            codec.decode(codes[:first_window], voice)  # warm-up
            full_t, chunk_t, first_t = [], [], []
            full = chunked = np.zeros(0, np.float32)
            for _ in range(repeats):
                t0 = time.perf_counter()
                codec.decode(codes[:first_window], voice)
                first_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                full = codec.decode(codes, voice)
                full_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                chunked = decode_in_chunks(codec, codes, voice, 1.0, chunk_plan)
                chunk_t.append(time.perf_counter() - t0)
            out.append({
                "provider": codec.provider,
                "threads": n,
                "load_s": round(load_s, 3),
                "first_window_ms": round(_median(first_t) * 1000, 1),
                "full_ms_per_audio_s": round(_median(full_t) * 1000 / seconds, 1),
                "chunked_ms_per_audio_s": round(_median(chunk_t) * 1000 / seconds, 1),
                "chunked_snr_db": round(snr_db(full, chunked), 1),
                "sample_rate": codec.sample_rate,
            })
            del codec
    return out


# --- end to end (in a worker process) ---------------------------------------------------------------


@dataclass
class E2EConfig:
    model: str
    codec: str
    provider: str
    llm_threads: int
    codec_threads: int
    seconds: float
    pace: float = 1.0
    seed: int = 0
    force_lengths: bool = True
    voice: str = ""  # a voice name or file; "" = a random vector
    plan: dict | None = None
    batch_threads: int = 0  # llama.cpp threads for prompt processing; 0 = as many as llm_threads
    spawned_at: float = 0.0  # time.time() when the parent started this process


def _voice_vector(name: str) -> np.ndarray:
    if name:
        from miodesk.tts.voices import resolve_voice

        return resolve_voice(name).vector
    return (np.random.default_rng(0).standard_normal(128) * 0.5).astype(np.float32)


def _read(engine: Any, sink: NullSink, source: str, utterances: list, voice: np.ndarray, cfg: E2EConfig) -> dict:
    from miodesk.tts.reader import ReadingSession
    from miodesk.tts.streaming import ChunkPlan

    errors: list[str] = []
    warnings: list[str] = []

    def on_event(event: Any) -> None:
        if event.kind == "error":
            errors.append(event.message)
        elif event.kind == "warning":  # e.g. a skipped runaway sentence: reported, not fatal
            warnings.append(event.message)

    plan = ChunkPlan(**cfg.plan) if cfg.plan else ChunkPlan()
    # Random weights often repeat one code for a while, which the reader would take for a runaway
    # sentence and skip; the stand-ins' lengths are forced instead.
    session = ReadingSession(engine, utterances, voice, sink, source_text=source, plan=plan,
                             on_event=on_event, seed=cfg.seed, detect_runaways=not cfg.force_lengths)
    cpu0, wall0 = _own_cpu_s(), time.perf_counter()
    session.start()
    session.wait()
    wall = time.perf_counter() - wall0
    cpu = _own_cpu_s() - cpu0
    stats = session.stats.as_dict()
    stats["underruns"] = sink.underruns  # also when the session ended early
    stats["underrun_s"] = round(sink.underrun_s, 3)
    stats["first_underruns_at_audio_s"] = [round(t, 2) for t in sink.underrun_at[:8]]
    stats["wall_s"] = round(wall, 2)
    stats["cpu_cores_used"] = round(cpu / wall, 3) if wall else 0.0
    busy = session.stats.llm_busy_s
    stats["llm_tokens_per_s"] = round(session.stats.codes / busy, 1) if busy else 0.0
    stats["utterances"] = len(utterances)
    stats["errors"] = errors[:3]
    stats["warnings"] = warnings[:3]
    session.stop()
    return stats


def run_e2e_worker(cfg: E2EConfig) -> dict[str, Any]:
    """Load the engine, read a short warm-up sentence, then the measured text; returns the figures."""
    from miodesk.tts.engine import SpeechEngine

    ready_from_spawn = None
    engine = SpeechEngine(Path(cfg.model), Path(cfg.codec), provider=cfg.provider,
                          llm_threads=cfg.llm_threads, codec_threads=cfg.codec_threads)
    if cfg.spawned_at:
        ready_from_spawn = time.time() - cfg.spawned_at
    if cfg.batch_threads:
        import llama_cpp

        llama_cpp.llama_set_n_threads(engine.llm._ctx, cfg.llm_threads, cfg.batch_threads)
    bench_engine = _BenchEngine(engine, cfg.force_lengths)
    voice = _voice_vector(cfg.voice)
    sink = NullSink(engine.sample_rate, pace=cfg.pace)
    try:
        warm_source = "Hello world."
        from miodesk.text.segment import segment

        first = _read(bench_engine, sink, warm_source, segment(warm_source), voice, cfg)
        sink.reset()
        source, utterances = bench_reading(cfg.seconds)
        main = _read(bench_engine, sink, source, utterances, voice, cfg)
    finally:
        sink.close()
    main["ttfa_first_reading_s"] = first["ttfa_s"]
    main["startup"] = {
        **{k: round(v, 3) for k, v in engine.load_timings.items()},
        "process_start_to_engine_ready_s": round(ready_from_spawn, 3) if ready_from_spawn else None,
    }
    main["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    main["llm_threads"], main["codec_threads"] = cfg.llm_threads, cfg.codec_threads
    main["provider"] = engine.codec.provider
    return main


def run_e2e(cfg: E2EConfig, env: dict[str, str] | None = None, timeout: float | None = None) -> dict[str, Any]:
    """`run_e2e_worker` in a fresh Python process (clean peak RSS and CPU figures)."""
    cfg = replace(cfg, spawned_at=time.time())
    completed = subprocess.run(
        [sys.executable, "-m", "miodesk.bench", "--_worker", json.dumps(cfg.__dict__)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"benchmark worker failed ({completed.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1])


def parse_splits(text: str, cores: int) -> list[tuple[int, int]]:
    """"1+1,2+1" → [(1, 1), (2, 1)]; "auto" → every llm+codec split worth trying on `cores` cores."""
    if text == "auto":
        from miodesk.tts.engine import split_threads

        default = split_threads(cores)
        if cores <= 1:
            return [(1, 1)]
        options = [default, (cores, 1), (1, cores)]
        if cores > 2:
            options.append((max(1, cores - 1), 1))
        return list(dict.fromkeys(options))
    splits = []
    for part in text.split(","):
        llm, _, codec = part.strip().partition("+")
        splits.append((int(llm), int(codec or llm)))
    return splits


def best_split(results: list[dict]) -> dict:
    """No underruns first, then the lowest RTF; time to first audio breaks near-ties (within 5 %)."""
    clean = [r for r in results if not r.get("underruns") and not r.get("errors")] or results
    lowest = min(r["rtf"] for r in clean)
    near = [r for r in clean if r["rtf"] <= lowest * 1.05]
    return min(near, key=lambda r: (r["ttfa_s"] if r["ttfa_s"] is not None else 1e9, r["rtf"]))


# --- the command --------------------------------------------------------------------------------


def add_bench_parser(commands: Any) -> argparse.ArgumentParser:
    bench = commands.add_parser("bench", help="measure speed and memory on this machine")
    _add_bench_arguments(bench)
    return bench


def _add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    bench.add_argument("--quick", action="store_true", help="shorter runs: ~30 s of text instead of 5 minutes")
    bench.add_argument("--real", action="store_true",
                       help="use the installed official models instead of generated stand-ins")
    bench.add_argument("--model-size", choices=tuple(MODEL_SHAPES), default="0.1B")
    bench.add_argument("--quant", choices=QUANTS, default="Q8_0")
    bench.add_argument("--codec", choices=CODECS, default="v2_44k", help="codec variant (44.1 kHz v2 or 24 kHz)")
    bench.add_argument("--provider", choices=("auto", "cuda", "directml", "cpu"), default="auto",
                       help="codec provider for the end-to-end runs")
    bench.add_argument("--seconds", type=float, default=None,
                       help="seconds of speech in the end-to-end text (default 300, --quick 30)")
    bench.add_argument("--splits", default="auto",
                       help="LLM+codec thread splits to try, e.g. 1+1,2+1,1+2 (default: auto)")
    bench.add_argument("--device", default=None,
                       help="play the end-to-end run on this audio device instead of the null sink")
    bench.add_argument("--voice", default="", help="voice name or file (default: random vector; --real: en_female)")
    bench.add_argument("--skip", default="", help=argparse.SUPPRESS)  # e.g. "llm,codec" while tuning
    bench.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # toy shapes for the tests
    bench.add_argument("--pace", type=float, default=None, help=argparse.SUPPRESS)  # null-sink speed factor
    bench.add_argument("--plan", default="", help=argparse.SUPPRESS)  # ChunkPlan fields as JSON, for tuning
    bench.add_argument("--batch-threads", type=int, default=0, help=argparse.SUPPRESS)  # prefill threads
    bench.add_argument("--peers", action="store_true", help="also run Kokoro and Piper (not available yet)")


def run_bench(args: argparse.Namespace) -> int:
    from miodesk.errors import MioDeskError
    from miodesk.tts.engine import usable_cores

    meter = LoadMeter()
    report: dict[str, Any] = {"machine": machine_info()}
    tiny = bool(getattr(args, "tiny", False))
    quick = args.quick or tiny
    skip = set(filter(None, (args.skip or "").split(",")))
    cores = usable_cores()

    if args.real:
        from miodesk.tts.codec import ensure_decoder
        from miodesk.tts.engine import default_codec_path, default_model_path

        model = default_model_path()
        codec = ensure_decoder(default_codec_path())
        voice = args.voice or "en_female"
        report["set"] = {"kind": "real", "model": model.name, "codec": codec.name}
    else:
        t0 = time.perf_counter()
        model = build_model(args.model_size, args.quant, tiny)
        codec = build_codec(args.codec, tiny)
        voice = args.voice
        report["set"] = {
            "kind": "tiny stand-ins" if tiny else "shape-faithful stand-ins",
            "model_size": args.model_size, "quant": args.quant, "codec": args.codec,
            "model_file": model.name, "model_mb": round(model.stat().st_size / 1e6, 1),
            "codec_file": codec.name, "codec_mb": round(codec.stat().st_size / 1e6, 1),
            "shapes": (TINY_SHAPES if tiny else MODEL_SHAPES)[args.model_size],
            "lengths": "capped at 25 codes per expected second of text (15 chars/s en, 8 chars/s ja)",
            "prepare_s": round(time.perf_counter() - t0, 2),
        }

    thread_counts = sorted({1, min(2, cores)})
    llm_tokens = 50 if tiny else (100 if quick else 250)
    codec_tokens = 50 if tiny else (125 if quick else 250)
    repeats = 1 if tiny else 3
    if "llm" not in skip:
        report["llm"] = bench_llm(model, thread_counts, llm_tokens, repeats)
    if "codec" not in skip:
        import onnxruntime

        available = onnxruntime.get_available_providers()
        # "auto" tries CUDA/DirectML quietly; rows are kept only for providers that really start
        gpu = {"CUDAExecutionProvider", "DmlExecutionProvider"} & set(available)
        providers = ["cpu", "auto"] if gpu else ["cpu"]
        plan = json.loads(args.plan) if args.plan else None
        report["codec"] = bench_codec(codec, providers, thread_counts, codec_tokens, repeats, plan)

    if "e2e" not in skip:
        seconds = args.seconds or (4.0 if tiny else 30.0 if quick else 300.0)
        trial_seconds = min(seconds, 4.0 if tiny else 12.0 if quick else 30.0)
        pace = args.pace or (4.0 if tiny else 1.0)
        splits = parse_splits(args.splits, cores)
        if tiny and args.splits == "auto":
            splits = splits[:1]
        base = E2EConfig(model=str(model), codec=str(codec), provider=args.provider, llm_threads=1,
                         codec_threads=1, seconds=trial_seconds, pace=pace, force_lengths=not args.real,
                         voice=voice, plan=json.loads(args.plan) if args.plan else None,
                         batch_threads=args.batch_threads)
        trials = []
        for llm_threads, codec_threads in splits:
            print(f"end to end: llm {llm_threads} + codec {codec_threads} threads, {trial_seconds:.0f} s of text ...",
                  file=sys.stderr, flush=True)
            cfg = replace(base, llm_threads=llm_threads, codec_threads=codec_threads)
            trials.append(run_e2e(cfg))
        best = best_split(trials) if len(trials) > 1 else trials[0]
        report["splits"] = trials
        report["best_split"] = f"llm {best['llm_threads']} + codec {best['codec_threads']}"
        if seconds > trial_seconds or args.device:
            print(f"end to end: {report['best_split']} on {seconds:.0f} s of text ...", file=sys.stderr, flush=True)
            cfg = replace(base, llm_threads=best["llm_threads"], codec_threads=best["codec_threads"], seconds=seconds)
            final = run_e2e(cfg) if not args.device else _run_on_device(cfg, args.device)
        else:
            final = best
        report["end_to_end"] = final
        report["startup"] = final.get("startup", {})

    if args.peers:
        report["peers"] = "not implemented yet: Kokoro-82M and Piper comparisons come in a later change"

    _summarise(report)
    report["machine"].update(meter.result())
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(format_tables(report))
    if report.get("end_to_end", {}).get("errors"):
        raise MioDeskError(f"the end-to-end run reported: {report['end_to_end']['errors'][0]}")
    return 0


def _run_on_device(cfg: E2EConfig, device: str) -> dict[str, Any]:
    """The final end-to-end run in this process, played on a real audio device."""
    from miodesk.audio.player import AudioPlayer
    from miodesk.tts.engine import SpeechEngine

    engine = SpeechEngine(Path(cfg.model), Path(cfg.codec), provider=cfg.provider,
                          llm_threads=cfg.llm_threads, codec_threads=cfg.codec_threads)
    sink = AudioPlayer(engine.sample_rate, device=device)
    try:
        source, utterances = bench_reading(cfg.seconds)
        result = _read(_BenchEngine(engine, cfg.force_lengths), sink, source, utterances,
                       _voice_vector(cfg.voice), cfg)  # type: ignore[arg-type]
    finally:
        sink.close()
    result["startup"] = {k: round(v, 3) for k, v in engine.load_timings.items()}
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    result["llm_threads"], result["codec_threads"] = cfg.llm_threads, cfg.codec_threads
    result["provider"] = engine.codec.provider
    result["sink"] = f"audio device {device}"
    return result


def _summarise(report: dict[str, Any]) -> None:
    """The headline keys (stable spellings, compared run to run) at the top level."""
    final = report.get("end_to_end", {})
    llm_threads = final.get("llm_threads", 1)
    codec_threads = final.get("codec_threads", 1)
    provider = final.get("provider", "cpu")
    for key in ("ttfa_s", "rtf", "underruns", "peak_rss_mb", "cpu_cores_used"):
        report[key] = final.get(key)
    runs = report.get("llm", {}).get("runs", [])
    chosen = [r for r in runs if r["restrict_to_audio"] and r["threads"] == llm_threads] or runs[:1]
    report["llm_tokens_per_s"] = chosen[0]["tokens_per_s"] if chosen else None
    rows = report.get("codec", [])
    pick = [r for r in rows if r["provider"] == provider and (provider != "cpu" or r["threads"] == codec_threads)]
    pick = pick or rows[:1]
    report["codec_ms_per_audio_s"] = pick[0]["full_ms_per_audio_s"] if pick else None
    report["codec_chunked_ms_per_audio_s"] = pick[0]["chunked_ms_per_audio_s"] if pick else None


def format_tables(report: dict[str, Any]) -> str:
    lines: list[str] = []
    m = report["machine"]
    lines.append(f"Machine: {m.get('cpu')}, {m.get('usable_cores')} usable cores; "
                 f"load average {m.get('loadavg_start')} → {m.get('loadavg_end')}; "
                 f"other processes used {m.get('other_processes_cores', '?')} cores on average")
    s = report["set"]
    if s["kind"] == "real":
        lines.append(f"Models: {s['model']} + {s['codec']} (installed)")
    else:
        lines.append(f"Models: MioTTS {s['model_size']} {s['quant']} stand-in ({s['model_mb']} MB) + "
                     f"{s['codec']} codec ({s['codec_mb']} MB), random weights, {s['lengths']}")
    if "llm" in report:
        llm = report["llm"]
        lines += ["", f"LLM ({llm['architecture']}, {llm['file_mb']} MB, load {llm['load_s']:.2f} s)",
                  f"{'threads':>7} {'audio-only':>10} {'tokens/s':>9} {'LLM RTF':>8} {'prefill ms':>10}"]
        for r in llm["runs"]:
            lines.append(f"{r['threads']:>7} {'yes' if r['restrict_to_audio'] else 'no':>10} "
                         f"{r['tokens_per_s']:>9.1f} {r['llm_rtf'] or 0:>8.3f} {r['prefill_ms']:>10.1f}")
    if "codec" in report:
        lines += ["", "Codec (ms of compute per second of audio)",
                  f"{'provider':>8} {'threads':>7} {'full':>7} {'chunked':>8} {'first window ms':>15} {'load s':>7}"]
        for r in report["codec"]:
            lines.append(f"{r['provider']:>8} {r['threads']:>7} {r['full_ms_per_audio_s']:>7.1f} "
                         f"{r['chunked_ms_per_audio_s']:>8.1f} {r['first_window_ms']:>15.1f} {r['load_s']:>7.2f}")
    if "splits" in report:
        lines += ["", "End to end through the reader (null sink, real-time)",
                  f"{'split':>13} {'audio s':>7} {'TTFA s':>7} {'RTF':>6} {'LLM RTF':>7} {'codec RTF':>9} "
                  f"{'underruns':>9} {'CPU cores':>9} {'RSS MB':>7}"]
        final = report["end_to_end"]
        rows = [*report["splits"]] + ([final] if final not in report["splits"] else [])
        for r in rows:
            label = f"llm {r['llm_threads']}+codec {r['codec_threads']}"
            lines.append(f"{label:>13} {r['audio_s']:>7.1f} {r['ttfa_s'] or 0:>7.3f} {r['rtf']:>6.3f} "
                         f"{r['llm_rtf']:>7.3f} {r['codec_rtf']:>9.3f} {r['underruns']:>9} "
                         f"{r['cpu_cores_used']:>9.2f} {r['peak_rss_mb']:>7.0f}")
        lines.append(f"Best split (chosen automatically): {report['best_split']}")
        st = report.get("startup", {})
        lines.append(f"Startup: codec load {st.get('codec_load_s')} s, LLM load {st.get('llm_load_s')} s, "
                     f"process start → engine ready {st.get('process_start_to_engine_ready_s')} s "
                     "(window shown: comes with the GUI)")
    lines += ["", "Headline: " + ", ".join(f"{k} {report.get(k)}" for k in (
        "ttfa_s", "rtf", "underruns", "peak_rss_mb", "llm_tokens_per_s", "codec_ms_per_audio_s"))]
    if "peers" in report:
        lines.append(f"Peers: {report['peers']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--_worker"]:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        cfg = E2EConfig(**json.loads(argv[1]))
        print(json.dumps(run_e2e_worker(cfg)), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="miodesk bench", description="measure speed and memory on this machine")
    _add_bench_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from miodesk.errors import MioDeskError

    try:
        return run_bench(args)
    except MioDeskError as error:
        print(f"miodesk: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
