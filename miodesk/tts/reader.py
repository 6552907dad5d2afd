"""A reading session: speak a list of utterances live, gaplessly, reporting what is audible.

Two worker threads form the pipeline, so the LLM, the codec and the audio callback never wait on
each other except through bounded queues:

    LLM thread    generates codes for utterance n+1, n+2 … (at most `lookahead` ahead of playback)
    codec thread  decodes them in chunks as they arrive and writes PCM into the sink
    sink          an AudioPlayer (PortAudio callback), a FileSink (render to a file through the output
                  writer, miodesk.audio.output) or an export's chapter files (miodesk.export)

Position events come from markers in the sink, so "utterance 5 started" fires when its first sample
is heard, not when it was generated. Controls (pause, next, seek, voice, speed) are thread-safe.

A mixed document can be read with a voice per language: `voices` maps an utterance's language ("ja",
"en") to its voice, and `voice` reads the rest. The voice only conditions the codec (the model never
sees it), so it is picked when an utterance starts decoding, and a change applies from the next one.
A `dialogue_voice` reads the utterances inside quotes (`Utterance.quoted`, from
`segment(split_quotes=True)`) the same way, at no extra cost: their codes are the same in any voice.

Renders that are not listened to live (exports) may set a `quality_guard` (miodesk.tts.quality): each
sentence's whole audio is judged before it is written, and a bad one is generated again with other
seeds by the codec thread, which keeps the best candidate.

Several readings may share one engine (the window's and the local speech server's): each sentence is
one generation, and the model serves waiting generations in the order of their `priority`
(miodesk.tts.generation.GenerationGate), so the window's reading goes before the server's requests.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from miodesk import system
from miodesk.audio.output import AudioFileWriter, BookTags, ChapterMark
from miodesk.errors import MioDeskError
from miodesk.text.normalize import text_for_model
from miodesk.text.segment import Utterance
from miodesk.tts.generation import (
    DEFAULT_RETRY,
    CodeGenerator,
    FinishReason,
    Priority,
    RetryPolicy,
    SamplingParams,
    codec_decoding,
    collect_codes,
    describe_failure,
    priority_of_thread,
)
from miodesk.tts.pauses import Pauses, heading_ends
from miodesk.tts.quality import REJECTED, GuardCounts, QualityGuard, Verdict
from miodesk.tts.streaming import ChunkPlan, Decoder, StreamingDecoder

log = logging.getLogger(__name__)



class ReaderEventKind(str, Enum):
    """A str, so handlers may compare it with the plain names (`event.kind == "error"`)."""

    UTTERANCE_STARTED = "utterance_started"  # its first sample is being heard
    UTTERANCE_FINISHED = "utterance_finished"  # its last sample (and the pause after it) was heard
    FINISHED = "finished"  # the whole reading was heard
    WARNING = "warning"  # e.g. an utterance the model could not finish was skipped; reading goes on
    ERROR = "error"  # the reading stopped; `message` says why


@dataclass
class ReaderEvent:
    kind: ReaderEventKind
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
    prompt_s: float = 0.0  # of llm_busy_s: reading the sentences' prompts (prefill)
    codec_busy_s: float = 0.0
    max_lookahead: int = 0
    underruns: int = 0
    codes: int = 0
    runaways: int = 0
    skipped: int = 0  # utterances left out: the model could not finish them
    utterance_codes: dict[int, int] = field(default_factory=dict)  # codes spoken per utterance index
    guard: GuardCounts = field(default_factory=GuardCounts)  # what the quality guard did (when on)

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
            "prompt_rtf": round(self.prompt_s / self.audio_seconds, 4) if self.audio_seconds else 0.0,
            "codec_rtf": round(self.codec_busy_s / self.audio_seconds, 4) if self.audio_seconds else 0.0,
            "audio_s": round(self.audio_seconds, 3),
            "underruns": self.underruns,
            "max_lookahead": self.max_lookahead,
            "codes": self.codes,
            "runaways": self.runaways,
            "skipped": self.skipped,
            "peak_rss_mb": _rounded(self.peak_rss_mb()),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class Sink(Protocol):
    """Where a reading's audio goes (a file, a sound card): what every sink must offer."""

    def set_marker_handler(self, handler: Callable[[Any], None] | None) -> None:
        """`handler(payload)` is called when the audio at a marker is heard (for a file: written)."""

    def add_marker(self, payload: Any) -> None:
        """Mark the point after the audio written so far."""

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> bool:
        """Queue samples, blocking while the sink is full; False when `cancel` was set meanwhile."""

    def end_of_audio(self) -> None:
        """No more audio comes: what is queued may play out without counting as an underrun."""

    @property
    def buffered_seconds(self) -> float:
        """Audio queued and not yet heard; the codec thread times its windows by it (+inf: no hurry)."""

    @property
    def first_audio_time(self) -> float | None:
        """perf_counter() when the first non-silent sample was queued (time to first audio)."""


@runtime_checkable
class LiveSink(Sink, Protocol):
    """A sink that plays as it goes (AudioPlayer): it can pause, drop what it holds, and be waited on.

    ReadingSession checks once whether its sink is one; for a file these controls do nothing.
    """

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    @property
    def paused(self) -> bool: ...

    def flush(self) -> None:
        """Drop the queued audio and its markers at once (stop, seek)."""

    def wait_until_played(self, cancel: threading.Event | None = None) -> bool:
        """Block until the queued audio was heard; False when cancelled or the device failed."""

    @property
    def underruns(self) -> int: ...


class ReadingEngine(Protocol):
    """What a reading needs from the engine (SpeechEngine, or a stand-in in miodesk bench)."""

    @property
    def llm(self) -> CodeGenerator: ...

    @property
    def codec(self) -> Decoder: ...


class MarkersWhenWritten:
    """The marker half of a `Sink` whose audio counts as delivered once written (a file, a stream to a
    client): a marker is reached at once."""

    _on_marker: Callable[[Any], None] | None = None

    def set_marker_handler(self, handler: Callable[[Any], None] | None) -> None:
        self._on_marker = handler

    def add_marker(self, payload: Any) -> None:
        if self._on_marker is not None:
            self._on_marker(payload)


class FileSink(MarkersWhenWritten):
    """Renders to an audio file as the audio arrives (flat memory on a whole book), in any format of
    the output writer (miodesk.audio.output): its own temporary file, the file at `path` only once
    `close(keep=True)` finished it, nothing left behind otherwise. A failed write (disk full) raises
    OutputError with the cause, which ends the reading with that message."""

    def __init__(self, path: Path, sample_rate: int, on_marker: Callable[[Any], None] | None = None,
                 tags: BookTags | None = None):
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._on_marker = on_marker
        self._writer = AudioFileWriter(self.path, sample_rate, tags)
        self.frames_written = 0
        self.first_audio_time: float | None = None
        self.encode_s = 0.0  # time spent encoding and writing

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> bool:
        if cancel is not None and cancel.is_set():
            return False
        if self.first_audio_time is None and np.any(samples):
            self.first_audio_time = time.perf_counter()
        started = time.perf_counter()
        self._writer.write(samples)
        self.encode_s += time.perf_counter() - started
        self.frames_written += len(samples)
        return True

    @property
    def buffered_seconds(self) -> float:
        return math.inf  # a file never runs dry: windows can always wait for a full chunk

    def end_of_audio(self) -> None:
        pass

    def close(self, keep: bool = True, chapters: list[ChapterMark] | None = None) -> None:
        """Finish the file and put it at `path` (`keep`), or throw it away."""
        if keep:
            started = time.perf_counter()
            self._writer.finish(chapters or [])
            self.encode_s += time.perf_counter() - started
        else:
            self._writer.discard()


class Marker(str, Enum):
    """Payloads of the sink's markers are (Marker, utterance index). A sink that counts samples (an
    export's) learns from them where each utterance lies in the audio."""

    START = "start"  # before the utterance's audio
    SPOKEN = "spoken"  # after its audio, before the pause that follows it
    END = "end"  # after the pause


class _Message(Enum):
    """What the LLM thread sends the codec thread for one utterance, as (_Message, value)."""

    CODES = "codes"  # value: a list of codes, in order
    RESTART = "restart"  # value: FinishReason; the attempt failed, its queued codes are void, another follows
    SKIP = "skip"  # value: FinishReason; the last attempt failed too: the utterance is left out
    END = "end"  # value: None; all codes of the utterance are in


_Item = tuple[_Message, list[int] | FinishReason | None]


def _codes_in(items: list[_Item]) -> list[int]:
    return [code for kind, value in items if kind == _Message.CODES and isinstance(value, list) for code in value]


def _voice_vectors(voices: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    return {language: np.asarray(vector, dtype=np.float32) for language, vector in (voices or {}).items()}


class ReadingSession:
    """Speaks `utterances` from `source_text` through `sink`; see the module docstring."""

    def __init__(
        self,
        engine: ReadingEngine,
        utterances: list[Utterance],
        voice: np.ndarray,
        sink: Sink,
        source_text: str = "",
        speed: float = 1.0,
        plan: ChunkPlan | None = None,
        lookahead: int = 2,
        on_event: Callable[[ReaderEvent], None] | None = None,
        sampling: SamplingParams | None = None,  # None: the official defaults
        seed: int | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        priority: Priority = Priority.INTERACTIVE,  # BACKGROUND: the speech server's requests
        # An utterance's text → what the model is given (the readings dictionary, then normalisation).
        prepare_text: Callable[[str], str] = text_for_model,
        # A voice per utterance language ("ja", "en"); utterances in other languages ("auto") get `voice`.
        voices: Mapping[str, np.ndarray] | None = None,
        # The voice of quoted utterances (`Utterance.quoted`); None: they take their language's voice.
        dialogue_voice: np.ndarray | None = None,
        # Judge each sentence's whole audio and generate bad ones again (exports; see miodesk.tts.quality).
        quality_guard: QualityGuard | None = None,
        # The silence after a sentence, a paragraph and a heading (`headings`: their character spans
        # in `source_text`, from the document's heading blocks).
        pauses: Pauses | None = None,
        headings: Sequence[tuple[int, int]] = (),
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
        self._retry = retry
        self._priority = priority
        self._prepare_text = prepare_text
        # The optional controls of a sound card, looked up once; a file sink has none of them.
        self._live: LiveSink | None = sink if isinstance(sink, LiveSink) else None
        self._voice = np.asarray(voice, dtype=np.float32)
        self._voices = _voice_vectors(voices)
        self._dialogue_voice = None if dialogue_voice is None else np.asarray(dialogue_voice, dtype=np.float32)
        self._guard = quality_guard
        self._pauses = pauses or Pauses()
        self._heading_ends = heading_ends([(u.start, u.end) for u in utterances], headings)
        self._speed = speed
        self._lock = threading.Lock()
        self.stats = ReadingStats()
        self.current_index: int | None = None  # the utterance being heard
        self._queues: dict[int, queue.Queue[_Item]] = {}
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
        if self._live is not None:
            self._live.pause()

    def resume(self) -> None:
        if self._live is not None:
            self._live.resume()

    @property
    def paused(self) -> bool:
        return self._live is not None and self._live.paused

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
        """One voice for every utterance, from the next one that starts decoding."""
        self.set_voices(voice, None)

    def set_voices(self, voice: np.ndarray, voices: Mapping[str, np.ndarray] | None) -> None:
        """A voice per language (`voice` for the others), from the next utterance that starts decoding."""
        vector, by_language = np.asarray(voice, dtype=np.float32), _voice_vectors(voices)
        with self._lock:
            self._voice, self._voices = vector, by_language

    def voice_for(self, language: str) -> np.ndarray:
        """The voice an utterance in `language` gets if it starts decoding now."""
        with self._lock:
            return self._voices.get(language, self._voice)

    def set_dialogue_voice(self, voice: np.ndarray | None) -> None:
        """The voice of quoted utterances (None: their language's), from the next one that starts decoding."""
        vector = None if voice is None else np.asarray(voice, dtype=np.float32)
        with self._lock:
            self._dialogue_voice = vector

    def voice_for_utterance(self, utterance: Utterance) -> np.ndarray:
        """The voice `utterance` gets if it starts decoding now: the dialogue voice inside quotes, else its
        language's."""
        with self._lock:
            if utterance.quoted and self._dialogue_voice is not None:
                return self._dialogue_voice
            return self._voices.get(utterance.language, self._voice)

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
        if self._live is not None:
            self._live.flush()
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
        if kind == Marker.START:
            self.current_index = index
            utterance = self.utterances[index]
            self._emit(
                ReaderEvent(ReaderEventKind.UTTERANCE_STARTED, index, utterance.start, utterance.end, utterance.text)
            )
        elif kind == Marker.END:
            self._emit(ReaderEvent(ReaderEventKind.UTTERANCE_FINISHED, index))

    # --- LLM thread -------------------------------------------------------------------------------

    def _queue_for(self, index: int) -> queue.Queue[_Item]:
        with self._lock:
            if index not in self._queues:
                self._queues[index] = queue.Queue()
                self._queues_ready.notify_all()
            return self._queues[index]

    def _generate_loop(self, first: int, cancel: threading.Event) -> None:
        # A model shared with other threads serves this reading's sentences in the order of `priority`.
        with priority_of_thread(self._priority):
            self._generate_all(first, cancel)

    def _generate_all(self, first: int, cancel: threading.Event) -> None:
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
                reason: FinishReason | None = None
                failed = False
                for attempt in range(self._retry.attempts):
                    params = self._retry.params(self._sampling, self._seed, index, attempt)
                    reason, n_codes = self._generate_one(index, text, params, out, cancel)
                    failed = self._retry.failed(reason, n_codes)
                    if not failed:
                        break
                    self.stats.runaways += 1
                    log.warning("utterance %d: %s on attempt %d", index, describe_failure(reason), attempt + 1)
                    retry = self._retry.retry(reason, n_codes, attempt)
                    out.put((_Message.RESTART if retry else _Message.SKIP, reason))
                if cancel.is_set():
                    return
                if reason == FinishReason.EOG and not failed:
                    out.put((_Message.END, None))
        except MioDeskError as error:
            self._fail(str(error), cancel)
        except Exception as error:
            log.exception("speech generation failed")
            self._fail(f"Speech generation failed: {error}", cancel)

    def _generate_one(
        self, index: int, text: str, params: SamplingParams, out: queue.Queue[_Item], cancel: threading.Event
    ) -> tuple[FinishReason | None, int]:
        """One attempt at utterance `index`, its codes streamed into `out`; (why it ended, codes)."""
        started = time.perf_counter()
        generation = self.engine.llm.generate(self._prepare_text(text), params, cancel=cancel)
        codes: list[int] = []
        batch: list[int] = []
        try:
            for code in generation:
                codes.append(code)
                batch.append(code)
                if self.stats.first_code_s is None:
                    self.stats.first_code_s = time.perf_counter() - self.stats.started_at
                    self.stats.first_prefill_s = generation.prompt_seconds
                if self._retry.is_runaway(codes):
                    generation.close()
                    return FinishReason.RUNAWAY, len(codes)
                # Batches of 5 spare the codec thread wake-ups; before the first sound every code
                # counts, so each one goes at once.
                if len(batch) >= 5 or self.stats.first_audio_s is None:
                    out.put((_Message.CODES, batch))
                    batch = []
        finally:
            self.stats.llm_busy_s += time.perf_counter() - started
            self.stats.prompt_s += generation.prompt_seconds
        if batch:
            out.put((_Message.CODES, batch))
        reason = generation.finish_reason
        if reason == FinishReason.EOG and codes:
            self.stats.codes += len(codes)
            self.stats.utterance_codes[index] = len(codes)
        return reason, len(codes)

    # --- codec thread -----------------------------------------------------------------------------

    def _wait_for_queue(self, index: int, cancel: threading.Event) -> queue.Queue[_Item] | None:
        with self._lock:
            while index not in self._queues and not cancel.is_set():
                self._queues_ready.wait(0.05)
            return self._queues.get(index)

    def _decode_loop(self, first: int, cancel: threading.Event) -> None:
        try:
            for index in range(first, len(self.utterances)):
                with self._lock:
                    self._decoding_index = index
                    speed = self._speed
                voice = self.voice_for_utterance(self.utterances[index])
                codes_queue = self._wait_for_queue(index, cancel)
                if codes_queue is None:
                    return
                if not self._decode_utterance(index, codes_queue, voice, speed, cancel):
                    return
                self.sink.add_marker((Marker.SPOKEN, index))
                pause = self._pause_after(index)
                if pause and not self.sink.write(
                    np.zeros(int(pause * self.engine.codec.sample_rate), np.float32), cancel
                ):
                    return
                self.sink.add_marker((Marker.END, index))
                with self._lock:
                    self._queues.pop(index, None)
            self.sink.end_of_audio()
            if self._live is not None and not self._live.wait_until_played(cancel=cancel):
                return
            if not cancel.is_set():
                self.stats.underruns = self._live.underruns if self._live is not None else 0
                self._emit(ReaderEvent(ReaderEventKind.FINISHED))
                self._finished.set()
        except MioDeskError as error:
            self._fail(str(error), cancel)
        except Exception as error:
            log.exception("decoding failed")
            self._fail(f"Decoding failed: {error}", cancel)

    def _decode_utterance(
        self, index: int, codes_queue: queue.Queue[_Item], voice: np.ndarray, speed: float, cancel: threading.Event
    ) -> bool:
        """Stream one utterance into the sink; False when the run was cancelled."""
        codec = self.engine.codec
        decoder = StreamingDecoder(codec, voice, speed, self.plan)
        all_codes: list[int] = []  # of the current attempt, for the quality guard
        self.sink.add_marker((Marker.START, index))
        while True:
            try:
                items = [codes_queue.get(timeout=0.05)]
            except queue.Empty:
                if cancel.is_set():
                    return False
                # No new codes, but the sink may be running low: decode what is already here.
                with self._decoding():
                    pieces = decoder.push([], self._buffered_s())
                if not self._write_pieces(pieces, cancel):
                    return False
                continue
            # Take everything already generated: a backlog becomes one window, and an utterance whose
            # generation has already ended is decoded in a single exact pass.
            while True:
                try:
                    items.append(codes_queue.get_nowait())
                except queue.Empty:
                    break
            codes = _codes_in(items)
            control = [(kind, value) for kind, value in items if kind != _Message.CODES]
            kind, value = control[-1] if control else (_Message.CODES, None)
            if kind == _Message.SKIP:
                assert isinstance(value, FinishReason)
                if self._guard is not None:
                    return self._guarded(index, [], voice, speed, cancel, reason=value)
                self._emit_skipped(index, value)
                return True
            restarts = [i for i, (k, _) in enumerate(items) if k == _Message.RESTART]
            if restarts:
                # Codes queued before the last restart belong to an abandoned attempt (also when the
                # retry has already ended, so END came in the same batch).
                codes = _codes_in(items[restarts[-1] + 1 :])
                decoder = StreamingDecoder(codec, voice, speed, self.plan)
                all_codes = []
            all_codes.extend(codes)
            if self._guard is not None:
                if kind == _Message.END:  # the whole sentence is in: judged before any of it is written
                    return self._guarded(index, all_codes, voice, speed, cancel)
                continue
            started = time.perf_counter()
            with self._decoding():
                if kind == _Message.END:
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
            if kind == _Message.END:
                return True

    def _decoding(self) -> contextlib.AbstractContextManager[None]:
        """Around a decode: the LLM hands back the codec's threads it borrows (`CoreLoan`)."""
        return codec_decoding(getattr(self.engine, "core_loan", None))

    # --- quality guard (codec thread) ---------------------------------------------------------------

    def _decode_whole(self, codes: list[int], voice: np.ndarray, speed: float) -> np.ndarray:
        started = time.perf_counter()
        decoder = StreamingDecoder(self.engine.codec, voice, speed, ChunkPlan(full=True))
        decoder.extend(codes)
        with self._decoding():
            audio = decoder.finish()
        elapsed = time.perf_counter() - started
        self.stats.codec_busy_s += elapsed
        if self.stats.first_window_ready_s is None:
            self.stats.first_window_ready_s = started - self.stats.started_at
            self.stats.first_decode_s = elapsed
        return audio

    def _candidate(self, index: int, attempt: int, cancel: threading.Event) -> list[int] | None:
        """Another generation of utterance `index` with the seed of `attempt`; None if it failed too."""
        params = self._retry.params(self._sampling, self._seed, index, attempt)
        started = time.perf_counter()
        with priority_of_thread(self._priority):
            codes, reason = collect_codes(self.engine.llm, self._prepare_text(self.utterances[index].text), params,
                                          self._retry, cancel)
        self.stats.llm_busy_s += time.perf_counter() - started
        return codes if reason == FinishReason.EOG and codes else None

    def _guarded(self, index: int, codes: list[int], voice: np.ndarray, speed: float, cancel: threading.Event,
                 reason: FinishReason | None = None) -> bool:
        """Judge the sentence's first candidate (`codes`; none when the model could not finish it,
        `reason`), try others while it has problems, and write the best; False when cancelled."""
        assert self._guard is not None
        guard, counts = self._guard, self.stats.guard
        utterance = self.utterances[index]
        text = self._prepare_text(utterance.text)
        rate = self.engine.codec.sample_rate

        def judged(candidate: list[int]) -> tuple[Verdict, list[int], np.ndarray]:
            audio = self._decode_whole(candidate, voice, speed)
            return guard.judge(text, utterance.language, candidate, audio, rate, speed), candidate, audio

        empty = np.zeros(0, np.float32)
        best = judged(codes) if codes else (REJECTED, codes, empty)
        counts.checked += 1
        if not best[0].ok:
            counts.flagged += 1
            log.info("utterance %d: %s; trying another seed", index, ", ".join(best[0].problems))
            # Attempts after the retry policy's own, so no seed of this reading is used twice.
            for extra in range(guard.extra_tries):
                if cancel.is_set():
                    return False
                counts.regenerations += 1
                candidate = self._candidate(index, self._retry.attempts + extra, cancel)
                if cancel.is_set():
                    return False
                verdict = judged(candidate) if candidate else (REJECTED, [], empty)
                if verdict[0].penalty < best[0].penalty:
                    best = verdict
                if best[0].ok:
                    break
            if best[0].ok:
                counts.fixed += 1
            elif best[1]:
                counts.kept_flawed += 1
                log.info("utterance %d: kept the best of %d candidates (%s)", index, guard.extra_tries + 1,
                         ", ".join(best[0].problems))
        if not best[1]:
            self._emit_skipped(index, reason or FinishReason.EOG)
            return True
        if not codes:
            counts.rescued += 1
        self.stats.utterance_codes[index] = len(best[1])
        if best[1] is not codes:
            self.stats.codes += len(best[1]) - len(codes)  # the first candidate's were counted when generated
        return self._write_pieces([best[2]], cancel)

    def _buffered_s(self) -> float:
        """Audio the sink holds (a live player), +inf for a file (never in a hurry)."""
        return float(self.sink.buffered_seconds)

    def _write_pieces(self, pieces: list[np.ndarray], cancel: threading.Event) -> bool:
        for piece in pieces:
            if len(piece):
                if not self.sink.write(piece, cancel):
                    return False
                self.stats.audio_seconds += len(piece) / self.engine.codec.sample_rate
                self._note_first_audio()
        return True

    def _emit_skipped(self, index: int, reason: FinishReason) -> None:
        self.stats.skipped += 1
        utterance = self.utterances[index]
        message = f"Skipped a sentence the speech model could not finish ({describe_failure(reason)})."
        self._emit(
            ReaderEvent(ReaderEventKind.WARNING, index, utterance.start, utterance.end, utterance.text, message=message)
        )

    def _note_first_audio(self) -> None:
        if self.stats.first_audio_s is None:
            first = self.sink.first_audio_time
            if first is not None:
                self.stats.first_audio_s = first - self.stats.started_at

    def _pause_after(self, index: int) -> float:
        if index + 1 >= len(self.utterances):
            return 0.0
        gap = self.source_text[self.utterances[index].end : self.utterances[index + 1].start]
        with self._lock:
            pauses = self._pauses
        return pauses.between(gap, index in self._heading_ends)

    def set_pauses(self, pauses: Pauses) -> None:
        """The pauses from the next utterance on (Settings changed while reading)."""
        with self._lock:
            self._pauses = pauses

    def _fail(self, message: str, cancel: threading.Event) -> None:
        if cancel.is_set():
            return
        cancel.set()
        self._emit(ReaderEvent(ReaderEventKind.ERROR, self.current_index, message=message))
        self._finished.set()
