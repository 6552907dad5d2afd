"""The speech service under the local server: one engine, a bounded queue, cancellation, and the window's
reading first, on real generated models (llama.cpp and the golden codec through onnxruntime)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN
from gguf_fixtures import make_model

from miodesk.bench import NullSink
from miodesk.errors import MioDeskError, TextError
from miodesk.speech_server.service import (
    JobCancelled,
    ServiceBusy,
    ServiceClosed,
    SpeechService,
    UnknownVoice,
)
from miodesk.text.segment import segment
from miodesk.tts.codec import MAX_SPEED, MIN_SPEED
from miodesk.tts.engine import SpeechEngine
from miodesk.tts.generation import GenerationGate, Priority, SamplingParams, priority_of_thread
from miodesk.tts.pauses import DEFAULT_SENTENCE_PAUSE_S
from miodesk.tts.reader import ReaderEvent, ReadingSession
from miodesk.tts.streaming import ChunkPlan
from miodesk.tts.voices import VoiceStore

CODEC = GOLDEN / "codec" / "v2_44k"
TEXT = "Hello there. How are you today? 今日は晴れです。明日は雨でしょう。Fine, thanks."
LONG = " ".join(f"This is sentence number {n}." for n in range(1, 41))
LONGER = " ".join(f"This is sentence number {n}." for n in range(1, 201))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SpeechEngine:
    """~20 codes a sentence."""
    model = make_model(tmp_path_factory.mktemp("service_models"), "service", "qwen3", eog_probability=0.05, seed=1)
    return SpeechEngine(model.path, CODEC, provider="cpu", llm_threads=1, codec_threads=1)


@pytest.fixture(scope="module")
def slow_engine(tmp_path_factory: pytest.TempPathFactory) -> SpeechEngine:
    """A model that never ends a sentence: every sentence runs to the 700-token cap, twice (a retry)."""
    model = make_model(tmp_path_factory.mktemp("service_nostop"), "service_nostop", "qwen3", eog_probability=None)
    return SpeechEngine(model.path, CODEC, provider="cpu", llm_threads=1, codec_threads=1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> VoiceStore:
    voices = VoiceStore(tmp_path_factory.mktemp("service_voices"))
    for preset in sorted((GOLDEN / "presets").glob("*.pt")):
        voices.import_file(preset)
    return voices


@pytest.fixture
def make_service():
    services: list[SpeechService] = []

    def make(engine: SpeechEngine, store: VoiceStore, **kwargs) -> SpeechService:
        service = SpeechService(lambda: engine, store, **kwargs)
        services.append(service)
        return service

    yield make
    for service in services:
        service.close()


def collect(job) -> np.ndarray:
    pieces = list(job.chunks())
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_text_comes_sentence_by_sentence_in_order_with_the_readers_pauses(engine, store, make_service):
    """With whole-sentence decodes the stream is exactly `speak` of each sentence (same seeds), in order,
    with the reader's pause between them; streamed windows give the same length in more pieces."""
    voice = store.get("en_female")
    utterances = segment(TEXT)
    pause = np.zeros(int(DEFAULT_SENTENCE_PAUSE_S * engine.sample_rate), np.float32)
    sentences = [engine.synthesize(u.text, voice, seed=11, index=i).samples for i, u in enumerate(utterances)]
    expected = np.concatenate([part for s in sentences for part in (s, pause)][:-1])

    exact = make_service(engine, store, plan=ChunkPlan(full=True))
    assert exact.voice_names() == ["en_female", "en_male", "jp_female", "jp_male"]
    assert exact.sample_rate == engine.sample_rate == 44100
    job = exact.submit(TEXT, "en_female", seed=11)
    assert job.sample_rate == engine.sample_rate
    np.testing.assert_allclose(collect(job), expected, atol=1e-5)
    assert job.done and job.error is None

    streamed = make_service(engine, store)
    job = streamed.submit(TEXT, "en_female", seed=11)
    pieces = list(job.chunks())
    assert all(piece.dtype == np.float32 and piece.ndim == 1 for piece in pieces)
    total = sum(len(piece) for piece in pieces)
    assert abs(total - len(expected)) <= len(utterances) * engine.codec.samples_per_token
    assert streamed.completed == 1 and streamed.failed == 0


def test_chunks_come_as_they_are_ready(slow_engine, store, make_service):
    """Codec windows as the codes come: the first piece (a short window) arrives long before the first
    sentence is generated."""
    service = make_service(slow_engine, store)
    job = service.submit("One. Two. Three. Four.", "en_male", seed=1)
    pieces = job.chunks()
    first = next(pieces)
    # Long before the 700-token sentence is done (a busy machine may hand over a few windows at once).
    assert 0 < len(first) <= 100 * slow_engine.codec.samples_per_token and not job.done
    pieces.close()  # stopping early cancels it
    assert job.cancelled and wait_for(lambda: not service.speaking, 1.0)


def test_a_full_queue_is_busy_with_retry_after(slow_engine, store, make_service):
    service = make_service(slow_engine, store, queue_size=2)
    first = service.submit(LONG, "en_female")
    assert wait_for(lambda: service.speaking)
    second = service.submit("Waiting.", "en_female")
    assert service.waiting == 1
    with pytest.raises(ServiceBusy) as busy:
        service.submit("One too many.", "en_female")
    assert busy.value.retry_after_s >= 1 and "busy" in str(busy.value)
    assert service.refused == 1
    # a waiting request that is cancelled gives its place up at once
    second.cancel()
    assert service.waiting == 0
    with pytest.raises(JobCancelled):
        collect(second)
    third = service.submit("Now there is room.", "en_female")
    first.cancel()
    assert len(collect(third)) > 0
    assert service.cancelled == 2


def test_cancel_stops_the_generation_within_a_second_and_frees_the_place(slow_engine, store, make_service):
    service = make_service(slow_engine, store, queue_size=1)
    job = service.submit(LONG, "jp_female")
    pieces = job.chunks()
    next(pieces)  # it is being spoken
    gate = slow_engine.llm.gate
    cancelled_at = time.perf_counter()
    job.cancel()
    assert wait_for(lambda: not service.speaking and not gate.busy, 1.0)
    assert time.perf_counter() - cancelled_at < 1.0
    ready = job.samples_ready
    time.sleep(0.3)
    assert job.samples_ready == ready  # nothing more is generated for it
    with pytest.raises(JobCancelled):
        list(pieces)
    # its place is free: the next request is admitted and spoken
    assert len(collect(service.submit("Next.", "jp_female"))) > 0


def test_bad_requests_are_refused_before_they_queue(engine, store, make_service):
    service = make_service(engine, store, queue_size=1)
    with pytest.raises(UnknownVoice, match="No voice named 'nobody'.*en_female"):
        service.submit("Hello.", "nobody")
    with pytest.raises(UnknownVoice):
        service.submit("Hello.", "../en_female")
    for speed in (MIN_SPEED - 0.01, MAX_SPEED + 0.01, float("nan"), float("inf")):
        with pytest.raises(MioDeskError, match="Speed"):
            service.submit("Hello.", "en_female", speed=speed)
    for text in ("", "   \n", "…！？"):
        with pytest.raises(TextError):
            service.submit(text, "en_female")
    assert service.waiting == 0 and not service.speaking
    # the edges of the range are fine, and the speed stretches the audio
    normal = collect(service.submit("Hello there.", "en_female", seed=5))
    fast = collect(service.submit("Hello there.", "en_female", speed=MAX_SPEED, seed=5))
    slow = collect(service.submit("Hello there.", "en_female", speed=MIN_SPEED, seed=5))
    assert abs(len(fast) - len(normal) / MAX_SPEED) < 0.05 * len(normal)
    assert abs(len(slow) - len(normal) / MIN_SPEED) < 0.05 * len(slow)


def test_close_cancels_what_is_in_hand_and_refuses_more(slow_engine, store):
    service = SpeechService(lambda: slow_engine, store, queue_size=3)
    speaking = service.submit(LONG, "en_female")
    waiting = service.submit(LONG, "en_female")
    assert wait_for(lambda: service.speaking)
    started = time.perf_counter()
    service.close()
    assert time.perf_counter() - started < 2.0
    for job in (speaking, waiting):
        with pytest.raises(JobCancelled, match="shutting down"):
            collect(job)
    with pytest.raises(ServiceClosed):
        service.submit("Hello.", "en_female")
    assert not slow_engine.llm.gate.busy


def test_the_engine_is_loaded_on_the_first_request_once(engine, store):
    calls: list[float] = []

    def load() -> SpeechEngine:
        calls.append(time.perf_counter())
        return engine

    service = SpeechService(load, store)
    try:
        assert not calls  # nothing is loaded before it is needed
        jobs = [service.submit("Hello.", "en_male", seed=i) for i in range(3)]
        assert all(len(collect(job)) for job in jobs)
        assert service.completed == 3
    finally:
        service.close()


def test_a_failing_engine_fails_the_request_not_the_service(engine, store, make_service):
    class Broken:
        def __init__(self) -> None:
            self.llm = engine.llm
            self.codec = engine.codec
            self.sample_rate = engine.sample_rate

    broken = Broken()

    class FailingCodec:
        sample_rate = engine.codec.sample_rate
        samples_per_token = engine.codec.samples_per_token

        def decode(self, *args, **kwargs):
            raise MioDeskError("The codec broke.")

    broken.codec = FailingCodec()
    service = make_service(broken, store)  # type: ignore[arg-type]
    job = service.submit("Hello there.", "en_female")
    with pytest.raises(MioDeskError, match="The codec broke"):
        collect(job)
    broken.codec = engine.codec
    assert len(collect(service.submit("Hello again.", "en_female"))) > 0
    assert service.failed == 1 and service.completed == 1


def test_two_threads_share_one_model_safely(engine):
    """Generations from two threads at once take turns on the one llama.cpp context: each gets exactly
    the codes it gets alone (a corrupted context would give others, or crash)."""
    llm = engine.llm
    texts = [f"Sentence {n}, read by two threads at once." for n in range(12)]

    def codes(text: str, seed: int) -> list[int]:
        return list(llm.generate(text, SamplingParams(seed=seed)))

    alone = {(text, seed): codes(text, seed) for seed in (1, 2) for text in texts}
    together: dict[tuple[str, int], list[int]] = {}
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            for _ in range(3):
                for text in texts:
                    together[(text, seed)] = codes(text, seed)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert together == alone
    assert not llm.gate.busy and llm.gate.waiting() == 0


def test_a_thread_may_still_supersede_its_own_unfinished_generation(slow_engine):
    llm = slow_engine.llm
    first = llm.generate("First.", SamplingParams(seed=1, max_tokens=200))
    next(first)
    second = llm.generate("Second.", SamplingParams(seed=1))  # closes `first`: no deadlock on the gate
    assert first.finish_reason == "cancelled"
    assert list(second) and not llm.gate.busy


def test_the_gate_serves_interactive_generations_first_then_in_arrival_order():
    gate = GenerationGate()
    assert gate.acquire(Priority.BACKGROUND)
    order: list[str] = []

    def wait(name: str, priority: Priority) -> None:
        assert gate.acquire(priority)
        order.append(name)
        gate.release()

    threads = []
    for name, priority in (("server 1", Priority.BACKGROUND), ("server 2", Priority.BACKGROUND),
                           ("reading", Priority.INTERACTIVE)):
        threads.append(threading.Thread(target=wait, args=(name, priority)))
        threads[-1].start()
        count = len(threads)
        assert wait_for(lambda: gate.waiting() == count, 5)  # noqa: B023 - checked before the next round
    assert gate.waiting(Priority.INTERACTIVE) == 1
    gate.release()
    for thread in threads:
        thread.join(5)
    assert order == ["reading", "server 1", "server 2"]
    # a waiting generation gives up when cancelled or timed out, and its place goes to the next one
    assert gate.acquire()
    cancel = threading.Event()
    cancel.set()
    assert not gate.acquire(cancel=cancel)
    assert not gate.acquire(timeout=0.1)
    assert gate.waiting() == 0
    gate.release()
    with priority_of_thread(Priority.BACKGROUND):
        assert gate.acquire()  # the thread's priority
    gate.release()


class TimedLLM:
    """The engine's model, timing how long each generation of the reading waited for its first code."""

    def __init__(self, llm) -> None:
        self._llm = llm
        self.waits: list[float] = []

    def generate(self, text, params=None, cancel=None):
        asked = time.perf_counter()
        stream = self._llm.generate(text, params, cancel=cancel)
        waits = self.waits

        class Timed:
            finish_reason = property(lambda self: stream.finish_reason)
            prompt_seconds = property(lambda self: stream.prompt_seconds)
            tokens_per_second = property(lambda self: stream.tokens_per_second)
            first = True

            def __iter__(self):
                return self

            def __next__(self):
                code = next(stream)
                if self.first:
                    self.first = False
                    waits.append(time.perf_counter() - asked)
                return code

            def close(self):
                stream.close()

        return Timed()


def test_the_windows_reading_keeps_its_cadence_while_requests_are_served(engine, store, make_service):
    """A live reading (a real-time null sound card) on the same engine while clients keep the server
    busy with long requests: no underrun, every sentence starts on time, its generations never wait for a
    whole request, and the requests are served meanwhile."""
    service = make_service(engine, store, queue_size=4)
    served: list[float] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def client(n: int) -> None:
        while not stop.is_set():
            try:
                job = service.submit(LONGER, "en_male", seed=n)
                started = time.perf_counter()
                audio = collect(job)
                served.append(len(audio) / job.sample_rate)
                job_seconds.append(time.perf_counter() - started)
            except ServiceBusy:
                time.sleep(0.05)
            except JobCancelled:
                assert stop.is_set()  # only when the test is over
                return
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)
                return

    job_seconds: list[float] = []
    clients = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(3)]
    for thread in clients:
        thread.start()
    assert wait_for(lambda: service.speaking, 10)

    text = "一つ目の文です。二つ目の文です。三つ目の文です。四つ目の文です。五つ目の文です。六つ目の文です。"
    utterances = segment(text)
    timed = TimedLLM(engine.llm)

    class Reading:
        llm = timed
        codec = engine.codec

    sink = NullSink(engine.sample_rate)
    started_at: dict[int, float] = {}

    def on_event(event: ReaderEvent) -> None:
        if event.kind == "utterance_started" and event.index is not None:
            started_at[event.index] = time.perf_counter()

    session = ReadingSession(Reading(), utterances, store.get("jp_female").vector, sink, source_text=text,
                             on_event=on_event, seed=4)
    try:
        session.start()
        assert session.wait(120)
    finally:
        stop.set()
        session.stop()
        sink.close()
        service.close()  # the requests still being spoken end now
    for thread in clients:
        thread.join(60)
    assert not failures, failures
    assert sink.underruns == 0 and session.stats.underruns == 0
    assert sorted(started_at) == list(range(len(utterances)))
    # the cadence: each sentence starts when the one before it and its pause have been heard
    for index in range(1, len(utterances)):
        heard = session.stats.utterance_codes[index - 1] * engine.codec.samples_per_token / engine.sample_rate
        gap = started_at[index] - started_at[index - 1]
        assert abs(gap - (heard + DEFAULT_SENTENCE_PAUSE_S)) < 0.15, (index, gap, heard)
    # the reading waited at most for a sentence of a request, never for a whole request
    assert served and job_seconds
    assert max(timed.waits) < min(0.5, min(job_seconds) / 2), (timed.waits, job_seconds)
    assert sum(served) > 0


def test_a_reading_and_a_request_at_once_are_both_whole(engine, store, make_service, tmp_path: Path):
    """The reading's audio is that of the same reading alone (the shared model never mixed their codes)."""
    from miodesk.tts.reader import FileSink

    text = "Reading alone. Reading with company. And a third sentence."
    plan = ChunkPlan(full=True)
    voice = store.get("en_female").vector

    def read(path: Path) -> np.ndarray:
        sink = FileSink(path, engine.sample_rate)
        session = ReadingSession(engine, segment(text), voice, sink, source_text=text, plan=plan, seed=8)
        session.start()
        assert session.wait(60)
        sink.close()
        import soundfile

        return soundfile.read(str(path), dtype="float32")[0]

    alone = read(tmp_path / "alone.wav")
    service = make_service(engine, store, plan=plan)
    job = service.submit(LONG, "en_male", seed=3)
    with_company = read(tmp_path / "together.wav")
    expected = collect(make_service(engine, store, plan=plan).submit(LONG, "en_male", seed=3))
    np.testing.assert_allclose(with_company, alone, atol=1e-4)
    np.testing.assert_allclose(collect(job), expected, atol=1e-5)
