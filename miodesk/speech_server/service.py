"""The speech service under the local speech server: one engine, a bounded queue, the window first.

The HTTP layer (`miodesk serve`, Settings › Server) turns each request into `SpeechService.submit` and
streams `SpeechJob.chunks`. The policy, in short:

* **One engine.** Requests are spoken by the engine the service is given: in the window, the window's
  own loaded engine, so reading and serving share one model, one codec and one queue; under
  `miodesk serve`, an engine of its own, loaded on the first request.
* **A bounded queue.** At most `queue_size` requests are admitted at once, the one being spoken
  included; they are spoken one after another in the order they came. One more gets `ServiceBusy`
  (HTTP 503) with a Retry-After of about the time the request being spoken still needs (measured on
  the requests before it). A request is spoken like `miodesk read` speaks a text: split into sentences
  (`miodesk.text.segment`), the reader's pauses between them, each sentence streamed in codec windows
  as its codes come (the first window after ten codes), the windows timed as for a listener who plays
  the stream as it arrives. The audio of a request waits in memory for its client, so a slow client
  holds up no one else.
* **Cancellation.** A request whose client went away (`SpeechJob.cancel`, also when the consumer
  stops iterating `chunks` early) gives up its place at once if it was waiting; if it was being spoken
  its generation stops at the next token and the next request starts, well within a second.
* **The window's reading is not starved: it goes first, one sentence at a time.** The speech model
  (one llama.cpp context) runs one generation at a time (`miodesk.tts.generation.GenerationGate`),
  and every sentence of a request is a generation of its own. Whenever the window's reading and a
  request both wait for the model, the reading's next sentence goes first (`Priority.INTERACTIVE`
  before `Priority.BACKGROUND`). So the reading waits at most for the one sentence of a request being
  generated at that moment (a few seconds of speech, a fraction of that in time), never for a whole
  long request, and because the reading keeps up to two sentences generated ahead of what is heard,
  on a machine that generates faster than real time that wait does not reach the ear. Requests get the
  model whenever the reading does not need it: while its look-ahead is full, between readings and
  while it is paused.

  Why strict priority rather than taking turns: the person at the window hears every delay as a gap
  in the middle of a sentence, while an app on the other end of a request is waiting for a file or
  buffering a stream; and a reading that keeps up uses the model only part of the time, which is what
  the requests get. The cost: on a machine too slow to keep up with the reading alone, requests wait
  until the reading ends or pauses (their clients may give up first).
* **The codec** decodes for the reading and for a request at the same time: `CodecRuntime.decode`
  keeps no state between calls and onnxruntime sessions run on several threads (DirectML's take
  turns, see CodecRuntime). With the speech model on a server (`RemoteLLM`), its generations run side
  by side on that server, which schedules them; this service still generates one request at a time.
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from miodesk.errors import GenerationError, MioDeskError, TextError, VoiceError
from miodesk.speech_server.options import DEFAULT_QUEUE_SIZE
from miodesk.text import text_for_model
from miodesk.text.segment import Utterance, segment
from miodesk.tts.generation import DEFAULT_RETRY, CodeGenerator, Priority, RetryPolicy
from miodesk.tts.reader import MarkersWhenWritten, ReaderEvent, ReaderEventKind, ReadingSession
from miodesk.tts.streaming import ChunkPlan, Decoder
from miodesk.tts.voices import Voice, VoiceStore

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.05  # how soon the worker notices that the request being spoken was cancelled
FIRST_JOB_ESTIMATE_S = 5.0  # Retry-After before any request was timed
MAX_RETRY_AFTER_S = 120


class ServiceBusy(MioDeskError):
    """The queue is full (HTTP 503): try again after `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceClosed(ServiceBusy):
    """The service is shutting down (also HTTP 503): no new requests, those in hand are cancelled."""


class UnknownVoice(VoiceError):
    """No installed voice by that name; the message lists the ones there are."""


class JobCancelled(MioDeskError):
    """`chunks` of a request that was cancelled (by its own `cancel`, or because the service closed)."""


class ServiceEngine(Protocol):
    """What the service needs of an engine: `SpeechEngine`, or a stand-in (miodesk bench)."""

    @property
    def llm(self) -> CodeGenerator: ...

    @property
    def codec(self) -> Decoder: ...

    @property
    def sample_rate(self) -> int: ...


class _End:
    """The last item of a job's audio queue: how it ended (None: all audio is there)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


_Item = np.ndarray | _End


class SpeechJob:
    """One request: its audio as it is generated. Made by `SpeechService.submit`."""

    _ids = itertools.count(1)

    def __init__(
        self,
        service: SpeechService,
        text: str,
        utterances: list[Utterance],
        voice: Voice,
        speed: float,
        seed: int | None,
        sample_rate: int,
    ) -> None:
        self.id = next(self._ids)
        self.text = text
        self.utterances = utterances
        self.voice = voice
        self.speed = speed
        self.seed = seed
        self.sample_rate = sample_rate
        self.submitted_at = time.perf_counter()
        self.started_at: float | None = None  # its first sentence went to the model
        self.first_audio_at: float | None = None  # its first audio was ready
        self.finished_at: float | None = None  # all its audio was ready, or it failed or was cancelled
        self.samples_ready = 0
        self.error: BaseException | None = None  # why it ended without all its audio (once done)
        self._service = service
        self._audio: queue.Queue[_Item] = queue.Queue()
        self._cancel = threading.Event()
        self._ended = threading.Event()  # the last item is in `_audio`
        self._consumed = False
        self._lock = threading.Lock()

    def chunks(self) -> Iterator[np.ndarray]:
        """float32 mono audio at `sample_rate`, in order, each piece as soon as it is ready; blocks
        while the next one is generated. Raises a MioDeskError when the request fails (JobCancelled when
        it was cancelled); stopping the iteration early cancels the request. Iterate it once."""
        with self._lock:
            if self._consumed:
                raise RuntimeError("SpeechJob.chunks() can be iterated only once")
            self._consumed = True
        complete = False
        try:
            while True:
                item = self._audio.get()
                if isinstance(item, _End):
                    complete = True
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            if not complete:
                self.cancel()  # the consumer stopped listening (the client went away)

    def cancel(self) -> None:
        """The client went away: stop generating this request and give up its place in the queue."""
        if self._cancel.is_set() or self._ended.is_set():
            return
        self._cancel.set()
        self._service._cancelled(self)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        """All its audio is ready, or it failed or was cancelled."""
        return self._ended.is_set()

    @property
    def audio_seconds(self) -> float:
        return self.samples_ready / self.sample_rate

    # --- the service's side ---------------------------------------------------------------------

    def _put(self, samples: np.ndarray) -> None:
        if self.first_audio_at is None and np.any(samples):
            self.first_audio_at = time.perf_counter()
        self.samples_ready += len(samples)
        self._audio.put(samples)

    def _end(self, error: BaseException | None = None) -> None:
        with self._lock:
            if self._ended.is_set():
                return
            self._ended.set()
            self.error = error
            self.finished_at = time.perf_counter()
            self._audio.put(_End(error))


class _JobSink(MarkersWhenWritten):
    """The `Sink` a request's reading writes into: the job's audio queue. Its clock is that of a listener
    who plays the stream from its first sound in real time, so windows are as short as the live reader's
    while the stream is young, and full-size once it is well ahead."""

    def __init__(self, job: SpeechJob, sample_rate: int) -> None:
        self._job = job
        self._rate = sample_rate
        self._written = 0
        self._clock_from: float | None = None
        self.first_audio_time: float | None = None

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> bool:
        if (cancel is not None and cancel.is_set()) or self._job.cancelled:
            return False
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not len(samples):
            return True
        now = time.perf_counter()
        if self._clock_from is None:
            self._clock_from = now
        if self.first_audio_time is None and np.any(samples):
            self.first_audio_time = now
        self._written += len(samples)
        self._job._put(samples)
        return True

    def end_of_audio(self) -> None:
        pass

    @property
    def buffered_seconds(self) -> float:
        if self._clock_from is None:
            return 0.0
        return max(0.0, self._written / self._rate - (time.perf_counter() - self._clock_from))


class _JobEngine:
    """The engine as a request's reading sees it."""

    def __init__(self, engine: ServiceEngine) -> None:
        self.llm = engine.llm
        self.codec = engine.codec


class SpeechService:
    """Speaks requests with one engine, one at a time; see the module docstring for the policy.

    `engine()` returns the loaded engine, loading it on the first call (the window passes its own,
    already loaded one); it is asked again for every request, so a request after the window changed its
    engine uses the new one, and never by two threads at once (so a plain lazy loader loads once).
    `queue_size`: requests admitted at once, the one being spoken included.
    `plan` and `retry` are the reader's (miodesk bench relaxes `retry` for its random stand-ins).
    `prepare_text` turns each sentence into what the model is given, as in the window's reading (the
    readings dictionary, then normalisation).
    """

    def __init__(
        self,
        engine: Callable[[], ServiceEngine],
        voice_store: VoiceStore,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        *,
        plan: ChunkPlan | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        prepare_text: Callable[[str], str] = text_for_model,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, not {queue_size}")
        self._engine_factory = engine
        self._engine_lock = threading.Lock()
        self._voices = voice_store
        self.queue_size = queue_size
        self._plan = plan or ChunkPlan()
        self._retry = retry
        self._prepare_text = prepare_text
        self._cond = threading.Condition()
        self._waiting: deque[SpeechJob] = deque()
        self._speaking: SpeechJob | None = None
        self._closed = False
        self._worker: threading.Thread | None = None
        self._job_seconds: float | None = None  # moving average of the time a request takes to speak
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.refused = 0

    # --- what the HTTP layer calls ----------------------------------------------------------------

    def voice_names(self) -> list[str]:
        return self._voices.names()

    @property
    def sample_rate(self) -> int:
        """The engine's sample rate (loads the engine if it is not loaded yet)."""
        return int(self._engine().sample_rate)

    def submit(self, text: str, voice: str, speed: float = 1.0, seed: int | None = None) -> SpeechJob:
        """Queue `text` in `voice`; its audio comes from the returned job's `chunks`.

        Raises UnknownVoice, TextError (nothing to speak), MioDeskError (speed outside what the codec
        can do), ServiceBusy (the queue is full; ServiceClosed once closed), and whatever loading the
        engine raises on the first request (ModelError).
        """
        found = self._voice(voice)
        speed = check_speed(speed)
        utterances = _utterances(text)
        self._check_room()
        engine = self._engine()
        with self._cond:
            self._check_room()
            job = SpeechJob(self, text, utterances, found, speed, seed, int(engine.sample_rate))
            self._waiting.append(job)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="speech-service", daemon=True)
                self._worker.start()
            self._cond.notify_all()
        log.info("request %d queued: %d sentences, voice %s, %d waiting", job.id, len(utterances), found.name,
                 len(self._waiting))
        return job

    def close(self, timeout: float = 5.0) -> None:
        """Refuse new requests, cancel those in hand, and wait up to `timeout` s for the worker to stop.
        The engine stays loaded (it is the caller's)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            jobs = [*self._waiting, *([self._speaking] if self._speaking else [])]
            self._waiting.clear()
            self._cond.notify_all()
        for job in jobs:
            job._cancel.set()
            job._end(JobCancelled("The speech server is shutting down."))
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    # --- state, for status lines and tests --------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Requests waiting for their turn (not counting the one being spoken)."""
        with self._cond:
            return len(self._waiting)

    @property
    def speaking(self) -> bool:
        """A request is being spoken."""
        return self._speaking is not None

    @property
    def closed(self) -> bool:
        return self._closed

    # --- admission --------------------------------------------------------------------------------

    def _engine(self) -> ServiceEngine:
        with self._engine_lock:  # one load, also when the first requests come together
            return self._engine_factory()

    def _voice(self, name: str) -> Voice:
        try:
            return self._voices.get(name)
        except VoiceError as error:
            raise UnknownVoice(str(error)) from None

    def _check_room(self) -> None:
        """ServiceBusy unless one more request fits (call with or without the lock held)."""
        with self._cond:
            if self._closed:
                raise ServiceClosed("The speech server is shutting down.", retry_after_s=5)
            admitted = len(self._waiting) + (self._speaking is not None)
            if admitted >= self.queue_size:
                self.refused += 1
                retry_after = self._retry_after()
                raise ServiceBusy(
                    f"The speech server is busy ({admitted} requests in hand, at most {self.queue_size}); "
                    f"try again in {retry_after} s.",
                    retry_after_s=retry_after,
                )

    def _retry_after(self) -> int:
        """Seconds until a place is likely free: what the request being spoken still needs."""
        typical = self._job_seconds if self._job_seconds is not None else FIRST_JOB_ESTIMATE_S
        speaking = self._speaking
        elapsed = time.perf_counter() - speaking.started_at if speaking and speaking.started_at else 0.0
        return int(min(MAX_RETRY_AFTER_S, max(1, math.ceil(typical - elapsed))))

    def _cancelled(self, job: SpeechJob) -> None:
        """A job was cancelled: a waiting one leaves the queue now; the worker stops a speaking one."""
        with self._cond:
            was_waiting = job in self._waiting
            if was_waiting:
                self._waiting.remove(job)
                self.cancelled += 1
            self._cond.notify_all()
        if was_waiting:
            job._end(JobCancelled("The request was cancelled."))
            log.info("request %d cancelled while waiting", job.id)

    # --- the worker ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                self._speaking = job
            try:
                self._speak(job)
            except MioDeskError as error:
                job._end(error)
            except Exception as error:  # a bug must not end the service: this request fails, the next goes on
                log.exception("request %d failed", job.id)
                job._end(GenerationError(f"Speech generation failed: {error}"))
            finally:
                self._finished(job)

    def _finished(self, job: SpeechJob) -> None:
        with self._cond:
            self._speaking = None
            if job.cancelled:
                self.cancelled += 1
            elif job.done and job.error is None and job.finished_at is not None and job.started_at is not None:
                self.completed += 1
                took = job.finished_at - job.started_at
                self._job_seconds = took if self._job_seconds is None else 0.7 * self._job_seconds + 0.3 * took
            else:
                self.failed += 1
            self._cond.notify_all()
        job._end(JobCancelled("The request was cancelled."))  # no-op unless it ended without a word

    def _speak(self, job: SpeechJob) -> None:
        if job.cancelled:
            return
        job.started_at = time.perf_counter()
        engine = self._engine()
        if int(engine.sample_rate) != job.sample_rate:
            raise GenerationError("The speech engine changed while the request waited; send it again.")
        sink = _JobSink(job, job.sample_rate)
        errors: list[str] = []

        def on_event(event: ReaderEvent) -> None:
            if event.kind == ReaderEventKind.ERROR:
                errors.append(event.message)
            elif event.kind == ReaderEventKind.WARNING:
                log.warning("request %d: %s", job.id, event.message)

        session = ReadingSession(
            _JobEngine(engine),
            job.utterances,
            job.voice.vector,
            sink,
            source_text=job.text,
            speed=job.speed,
            plan=self._plan,
            on_event=on_event,
            seed=job.seed,
            retry=self._retry,
            priority=Priority.BACKGROUND,
            prepare_text=self._prepare_text,
        )
        session.start()
        try:
            while not session.wait(CANCEL_POLL_S):
                if job.cancelled or self._closed:
                    break
        finally:
            session.stop()  # the generation stops at its next token; joins both threads
        if job.cancelled or self._closed:
            log.info("request %d cancelled after %.1f s of audio", job.id, job.audio_seconds)
            job._end(JobCancelled("The request was cancelled."))
        elif errors:
            job._end(GenerationError(errors[0]))
        else:
            log.info("request %d spoken: %.1f s of audio in %.2f s", job.id, job.audio_seconds,
                     time.perf_counter() - job.started_at)
            job._end()


def check_speed(speed: float) -> float:
    """`speed` as a float if the codec can stretch time by it, else MioDeskError."""
    from miodesk.tts.codec import MAX_SPEED, MIN_SPEED

    try:
        value = float(speed)
    except (TypeError, ValueError):
        raise MioDeskError(f"Speed must be a number from {MIN_SPEED} to {MAX_SPEED}, not {speed!r}.") from None
    if not math.isfinite(value) or not MIN_SPEED <= value <= MAX_SPEED:
        raise MioDeskError(f"Speed {speed} is outside what MioDesk can do: from {MIN_SPEED} to {MAX_SPEED}.")
    return value


def _utterances(text: str) -> list[Utterance]:
    if not text or not text.strip():
        raise TextError("The text is empty.")
    utterances = segment(text)
    if not utterances:
        raise TextError("The text holds nothing that can be spoken (no letters or digits).")
    return utterances
