"""A reading session: speak a list of utterances live, gaplessly, reporting what is audible.

Two worker threads form the pipeline, so the LLM, the codec and the audio callback never wait on
each other except through bounded queues:

    LLM thread    generates codes for utterance n+1, n+2 … (at most `lookahead` ahead of playback)
    codec thread  decodes them in chunks as they arrive and writes PCM into the sink
    sink          an AudioPlayer (PortAudio callback) or a FileSink (render to a file)

Position events come from markers in the sink, so "utterance 5 started" fires when its first sample
is heard, not when it was generated. Controls (pause, next, seek, voice, speed) are thread-safe.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile

from miodesk import system
from miodesk.errors import MioDeskError
from miodesk.text.segment import Utterance
from miodesk.tts.streaming import ChunkPlan, StreamingDecoder

log = logging.getLogger(__name__)

SENTENCE_PAUSE_S = 0.25  # silence between utterances of one paragraph
PARAGRAPH_PAUSE_S = 0.6  # between paragraphs (a blank line between the utterances in the source)
RUNAWAY_REPEAT = 50  # the same code this many times in a row is a runaway
RUNAWAY_WINDOW, RUNAWAY_DISTINCT = 150, 4  # or this few distinct codes in the last window


@dataclass
class ReaderEvent:
    kind: str  # utterance_started | utterance_finished | finished | warning | error
    index: int | None = None
    start: int | None = None
    end: int | None = None
    text: str = ""
    message: str = ""


@dataclass
class ReadingStats:
    started_at: float = field(default_factory=time.perf_counter)
    first_audio_s: float | None = None  # time to first audio: start → first non-silent sample queued
    # Where the time to first audio goes (seconds from start): the first prompt's prefill, the first
    # code, the moment the first window had all its codes, and that window's decode.
    first_prefill_s: float | None = None
    first_code_s: float | None = None
    first_window_ready_s: float | None = None
    first_decode_s: float | None = None
    audio_seconds: float = 0.0
    llm_busy_s: float = 0.0
    codec_busy_s: float = 0.0
    max_lookahead: int = 0
    underruns: int = 0
    codes: int = 0
    runaways: int = 0
    utterance_codes: dict[int, int] = field(default_factory=dict)  # codes spoken per utterance index

    @property
    def rtf(self) -> float:
        """Compute time of the slower pipeline stage per second of audio (< 1 keeps up)."""
        if not self.audio_seconds:
            return 0.0
        return max(self.llm_busy_s, self.codec_busy_s) / self.audio_seconds

    @staticmethod
    def peak_rss_mb() -> float | None:
        return system.peak_rss_mb()

    def as_dict(self) -> dict[str, Any]:
        return {
            "ttfa_s": self.first_audio_s,
            "ttfa_parts_s": {
                "prefill": self.first_prefill_s,
                "first_code": self.first_code_s,
                "first_window_ready": self.first_window_ready_s,
                "first_decode": self.first_decode_s,
            },
            "rtf": round(self.rtf, 4),
            "llm_rtf": round(self.llm_busy_s / self.audio_seconds, 4) if self.audio_seconds else 0.0,
            "codec_rtf": round(self.codec_busy_s / self.audio_seconds, 4) if self.audio_seconds else 0.0,
            "audio_s": round(self.audio_seconds, 3),
            "underruns": self.underruns,
            "max_lookahead": self.max_lookahead,
            "codes": self.codes,
            "runaways": self.runaways,
            "peak_rss_mb": _rounded(self.peak_rss_mb()),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class Sink(Protocol):
    # Optional: a `buffered_seconds` property (audio queued, not yet played) lets the codec thread
    # time its windows by need; without it a fixed schedule is used.
    def set_marker_handler(self, handler: Callable[[Any], None] | None) -> None: ...
    def add_marker(self, payload: Any) -> None: ...
    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> bool: ...
    def end_of_audio(self) -> None: ...


class FileSink:
    """Renders to a WAV/FLAC file as the audio arrives (flat memory on a whole book)."""

    def __init__(self, path: Path, sample_rate: int, on_marker: Callable[[Any], None] | None = None):
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._on_marker = on_marker
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        fmt = "FLAC" if self.path.suffix.lower() == ".flac" else "WAV"
        self._file = soundfile.SoundFile(
            self._partial, "w", samplerate=sample_rate, channels=1, format=fmt, subtype="PCM_16"
        )
        self.frames_written = 0
        self.first_audio_time: float | None = None

    def set_marker_handler(self, handler: Callable[[Any], None] | None) -> None:
        self._on_marker = handler

    def add_marker(self, payload: Any) -> None:
        if self._on_marker is not None:
            self._on_marker(payload)

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> bool:
        if cancel is not None and cancel.is_set():
            return False
        if self.first_audio_time is None and np.any(samples):
            self.first_audio_time = time.perf_counter()
        self._file.write(np.clip(samples, -1.0, 1.0))
        self.frames_written += len(samples)
        return True

    @property
    def buffered_seconds(self) -> float:
        return math.inf  # a file never runs dry: windows can always wait for a full chunk

    def end_of_audio(self) -> None:
        pass

    def close(self, keep: bool = True) -> None:
        self._file.close()
        if keep:
            self._partial.replace(self.path)
        else:
            self._partial.unlink(missing_ok=True)


def is_runaway(codes: list[int]) -> bool:
    """A generation stuck on one code, or cycling through a handful of them."""
    if len(codes) >= RUNAWAY_REPEAT and len(set(codes[-RUNAWAY_REPEAT:])) == 1:
        return True
    return len(codes) >= RUNAWAY_WINDOW and len(set(codes[-RUNAWAY_WINDOW:])) <= RUNAWAY_DISTINCT


class ReadingSession:
    """Speaks `utterances` from `source_text` through `sink`; see the module docstring."""

    def __init__(
        self,
        engine: Any,  # SpeechEngine: .llm, .codec
        utterances: list[Utterance],
        voice: np.ndarray,
        sink: Sink,
        source_text: str = "",
        speed: float = 1.0,
        plan: ChunkPlan | None = None,
        lookahead: int = 2,
        on_event: Callable[[ReaderEvent], None] | None = None,
        sampling: Any = None,  # SamplingParams; None = official defaults
        seed: int | None = None,
        detect_runaways: bool = True,  # off only for random-weight stand-ins (miodesk bench), which repeat codes
    ) -> None:
        self.engine = engine
        self.utterances = utterances
        self.source_text = source_text
        self.sink = sink
        self.plan = plan or ChunkPlan()
        self.lookahead = max(1, lookahead)
        self._on_event = on_event
        self._sampling = sampling
        self._seed = seed
        self._detect_runaways = detect_runaways
        self._voice = np.asarray(voice, dtype=np.float32)
        self._speed = speed
        self._lock = threading.Lock()
        self.stats = ReadingStats()
        self.current_index: int | None = None  # the utterance being heard
        self._queues: dict[int, queue.Queue] = {}
        self._queues_ready = threading.Condition(self._lock)
        self._decoding_index = 0
        self._cancel = threading.Event()
        self._threads: list[threading.Thread] = []
        self._finished = threading.Event()
        sink.set_marker_handler(self.on_marker)

    # --- controls ---------------------------------------------------------------------------------

    def start(self, index: int = 0) -> None:
        self.stats = ReadingStats()
        self._run_from(index)

    def start_at_char(self, offset: int) -> None:
        self.start(self.index_at_char(offset))

    def index_at_char(self, offset: int) -> int:
        """The utterance containing `offset`, else the first one after it."""
        for index, utterance in enumerate(self.utterances):
            if offset < utterance.end:
                return index
        return len(self.utterances)

    def pause(self) -> None:
        pause = getattr(self.sink, "pause", None)
        if pause is not None:
            pause()

    def resume(self) -> None:
        resume = getattr(self.sink, "resume", None)
        if resume is not None:
            resume()

    @property
    def paused(self) -> bool:
        return bool(getattr(self.sink, "paused", False))

    @property
    def position(self) -> int:
        """Character offset to continue from: the start of the utterance being heard."""
        if self.current_index is None or self.current_index >= len(self.utterances):
            return 0
        return self.utterances[self.current_index].start

    def stop(self) -> None:
        self._halt()
        self._finished.set()

    def next(self) -> None:
        self._jump(+1)

    def previous(self) -> None:
        self._jump(-1)

    def seek_char(self, offset: int) -> None:
        self._restart(self.index_at_char(offset))

    def set_voice(self, voice: np.ndarray) -> None:
        """Takes effect from the next utterance that starts decoding."""
        with self._lock:
            self._voice = np.asarray(voice, dtype=np.float32)

    def set_speed(self, speed: float) -> None:
        with self._lock:
            self._speed = speed

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    # --- run management ---------------------------------------------------------------------------

    def _jump(self, step: int) -> None:
        current = self.current_index if self.current_index is not None else self._decoding_index
        self._restart(min(max(0, current + step), len(self.utterances)))

    def _restart(self, index: int) -> None:
        was_paused = self.paused
        self._halt()
        self._run_from(index)
        if was_paused:
            self.resume()

    def _halt(self) -> None:
        self._cancel.set()
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            flush()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def _run_from(self, index: int) -> None:
        self._cancel = threading.Event()
        self._finished.clear()
        with self._lock:
            self._queues = {}
            self._decoding_index = index
        cancel = self._cancel
        self._threads = [
            threading.Thread(target=self._generate_loop, args=(index, cancel), name="llm", daemon=True),
            threading.Thread(target=self._decode_loop, args=(index, cancel), name="codec", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _emit(self, event: ReaderEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("reader event handler failed")

    def on_marker(self, payload: Any) -> None:
        """Called by the sink when marked audio becomes audible."""
        kind, index = payload
        if kind == "start":
            self.current_index = index
            utterance = self.utterances[index]
            self._emit(ReaderEvent("utterance_started", index, utterance.start, utterance.end, utterance.text))
        elif kind == "end":
            self._emit(ReaderEvent("utterance_finished", index))

    # --- LLM thread -------------------------------------------------------------------------------

    def _queue_for(self, index: int) -> queue.Queue:
        with self._lock:
            if index not in self._queues:
                self._queues[index] = queue.Queue()
                self._queues_ready.notify_all()
            return self._queues[index]

    def _generate_loop(self, first: int, cancel: threading.Event) -> None:
        from miodesk.tts.llm import SamplingParams

        try:
            for index in range(first, len(self.utterances)):
                # Bounded look-ahead: memory stays flat on a book, and a voice change applies soon.
                while index - self._decoding_index > self.lookahead and not cancel.is_set():
                    cancel.wait(0.02)
                if cancel.is_set():
                    return
                with self._lock:
                    self.stats.max_lookahead = max(self.stats.max_lookahead, index - self._decoding_index)
                out = self._queue_for(index)
                text = self.utterances[index].text
                params = self._sampling or SamplingParams()
                for attempt in range(2):
                    seed = None if self._seed is None else self._seed + index * 1000 + attempt
                    params = dataclasses.replace(params, seed=seed)
                    verdict = self._generate_one(index, text, params, out, cancel)
                    if verdict in ("ok", "cancelled"):
                        break
                    self.stats.runaways += 1
                    log.warning("utterance %d: runaway generation (%s), attempt %d", index, verdict, attempt + 1)
                    out.put(("restart", verdict) if attempt == 0 else ("skip", verdict))
                if cancel.is_set():
                    return
                if verdict == "ok":
                    out.put(("end", None))
        except MioDeskError as error:
            self._fail(str(error), cancel)
        except Exception as error:
            log.exception("speech generation failed")
            self._fail(f"Speech generation failed: {error}", cancel)

    def _generate_one(self, index: int, text: str, params: Any, out: queue.Queue, cancel: threading.Event) -> str:
        from miodesk.text import text_for_model

        started = time.perf_counter()
        generation = self.engine.llm.generate(text_for_model(text), params, cancel=cancel)
        codes: list[int] = []
        batch: list[int] = []
        try:
            for code in generation:
                codes.append(code)
                batch.append(code)
                if self.stats.first_code_s is None:
                    self.stats.first_code_s = time.perf_counter() - self.stats.started_at
                    self.stats.first_prefill_s = generation.prompt_seconds
                if self._detect_runaways and is_runaway(codes):
                    generation.close()
                    return "repetition"
                # Batches of 5 spare the codec thread wake-ups; before the first sound every code
                # counts, so each one goes at once.
                if len(batch) >= 5 or self.stats.first_audio_s is None:
                    out.put(("codes", batch))
                    batch = []
        finally:
            self.stats.llm_busy_s += time.perf_counter() - started
        if batch:
            out.put(("codes", batch))
        if generation.finish_reason == "cancelled":
            return "cancelled"
        if generation.finish_reason == "cap":
            return "cap"
        self.stats.codes += len(codes)
        self.stats.utterance_codes[index] = len(codes)
        return "ok"

    # --- codec thread -----------------------------------------------------------------------------

    def _wait_for_queue(self, index: int, cancel: threading.Event) -> queue.Queue | None:
        with self._lock:
            while index not in self._queues and not cancel.is_set():
                self._queues_ready.wait(0.05)
            return self._queues.get(index)

    def _decode_loop(self, first: int, cancel: threading.Event) -> None:
        try:
            for index in range(first, len(self.utterances)):
                with self._lock:
                    self._decoding_index = index
                    voice, speed = self._voice, self._speed
                codes_queue = self._wait_for_queue(index, cancel)
                if codes_queue is None:
                    return
                if not self._decode_utterance(index, codes_queue, voice, speed, cancel):
                    return
                pause = self._pause_after(index)
                if pause and not self.sink.write(
                    np.zeros(int(pause * self.engine.codec.sample_rate), np.float32), cancel
                ):
                    return
                self.sink.add_marker(("end", index))
                with self._lock:
                    self._queues.pop(index, None)
            self.sink.end_of_audio()
            wait = getattr(self.sink, "wait_until_played", None)
            if wait is not None and not wait(cancel=cancel):
                return
            if not cancel.is_set():
                self.stats.underruns = getattr(self.sink, "underruns", 0)
                self._emit(ReaderEvent("finished"))
                self._finished.set()
        except MioDeskError as error:
            self._fail(str(error), cancel)
        except Exception as error:
            log.exception("decoding failed")
            self._fail(f"Decoding failed: {error}", cancel)

    def _decode_utterance(
        self, index: int, codes_queue: queue.Queue, voice: np.ndarray, speed: float, cancel: threading.Event
    ) -> bool:
        """Stream one utterance into the sink; False when the run was cancelled."""
        codec = self.engine.codec
        decoder = StreamingDecoder(codec, voice, speed, self.plan)
        self.sink.add_marker(("start", index))
        while True:
            try:
                items = [codes_queue.get(timeout=0.05)]
            except queue.Empty:
                if cancel.is_set():
                    return False
                # No new codes, but the sink may be running low: decode what is already here.
                if not self._write_pieces(decoder.push([], self._buffered_s()), cancel):
                    return False
                continue
            # Take everything already generated: a backlog becomes one window, and an utterance whose
            # generation has already ended is decoded in a single exact pass.
            while True:
                try:
                    items.append(codes_queue.get_nowait())
                except queue.Empty:
                    break
            codes = [code for kind, value in items if kind == "codes" for code in value]
            control = [(kind, value) for kind, value in items if kind != "codes"]
            kind, value = control[-1] if control else ("codes", None)
            if kind == "skip":
                assert isinstance(value, str)  # ("skip", verdict) from the generation thread
                self._emit_skipped(index, value)
                return True
            if kind == "restart":
                # Codes queued before the restart marker belong to the abandoned attempt.
                restart_at = max(i for i, (k, _) in enumerate(items) if k == "restart")
                codes = [code for k, v in items[restart_at + 1 :] if k == "codes" for code in v]
                decoder = StreamingDecoder(codec, voice, speed, self.plan)
            started = time.perf_counter()
            if kind == "end":
                decoder.extend(codes)
                pieces = [decoder.finish()]
            else:
                pieces = decoder.push(codes, self._buffered_s())
            elapsed = time.perf_counter() - started
            self.stats.codec_busy_s += elapsed
            if self.stats.first_window_ready_s is None and any(len(piece) for piece in pieces):
                self.stats.first_window_ready_s = started - self.stats.started_at
                self.stats.first_decode_s = elapsed
            if not self._write_pieces(pieces, cancel):
                return False
            if kind == "end":
                return True

    def _buffered_s(self) -> float | None:
        """Audio the sink holds (a live player), +inf for a file (never in a hurry), None if unknown."""
        buffered = getattr(self.sink, "buffered_seconds", None)
        return float(buffered) if buffered is not None else None

    def _write_pieces(self, pieces: list[np.ndarray], cancel: threading.Event) -> bool:
        for piece in pieces:
            if len(piece):
                if not self.sink.write(piece, cancel):
                    return False
                self.stats.audio_seconds += len(piece) / self.engine.codec.sample_rate
                self._note_first_audio()
        return True

    def _emit_skipped(self, index: int, reason: str) -> None:
        utterance = self.utterances[index]
        message = f"Skipped a sentence the speech model could not finish ({reason})."
        self._emit(ReaderEvent("warning", index, utterance.start, utterance.end, utterance.text, message=message))

    def _note_first_audio(self) -> None:
        if self.stats.first_audio_s is None:
            first = getattr(self.sink, "first_audio_time", None)
            if first is not None:
                self.stats.first_audio_s = first - self.stats.started_at

    def _pause_after(self, index: int) -> float:
        if index + 1 >= len(self.utterances):
            return 0.0
        between = self.source_text[self.utterances[index].end : self.utterances[index + 1].start]
        return PARAGRAPH_PAUSE_S if between.count("\n") >= 2 else SENTENCE_PAUSE_S

    def _fail(self, message: str, cancel: threading.Event) -> None:
        if cancel.is_set():
            return
        cancel.set()
        self._emit(ReaderEvent("error", self.current_index, message=message))
        self._finished.set()
