"""The code generator seam and the one retry policy, with fake generators: no model, no audio."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from miodesk.errors import GenerationError
from miodesk.text.segment import segment
from miodesk.tts.engine import SpeechEngine
from miodesk.tts.generation import (
    DEFAULT_RETRY,
    CodeGenerator,
    FinishReason,
    RetryPolicy,
    SamplingParams,
    collect_codes,
    generate_with_retries,
)
from miodesk.tts.reader import FileSink, LiveSink, ReaderEvent, ReaderEventKind, ReadingSession
from miodesk.tts.streaming import ChunkPlan
from miodesk.tts.voices import Voice


class FakeStream:
    """A CodeStream that yields prepared codes, then ends with `reason`."""

    def __init__(self, codes: list[int], reason: FinishReason, cancel: threading.Event | None) -> None:
        self._codes = iter(codes)
        self._reason = reason
        self._cancel = cancel
        self.finish_reason: FinishReason | None = None
        self.prompt_seconds = 0.001
        self.tokens_per_second = 100.0
        self.closed = False

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        if self._cancel is not None and self._cancel.is_set():
            self.finish_reason = FinishReason.CANCELLED
            raise StopIteration
        try:
            return next(self._codes)
        except StopIteration:
            self.finish_reason = self._reason
            raise

    def close(self) -> None:
        self.closed = True
        if self.finish_reason is None:
            self.finish_reason = FinishReason.CANCELLED


class ScriptedGenerator:
    """Answers each seed with what `script(text, seed)` says; records every request."""

    def __init__(self, script=None) -> None:
        self.script = script or (lambda text, seed: (list(range(1, 11)), FinishReason.EOG))
        self.requests: list[tuple[str, int | None]] = []
        self.streams: list[FakeStream] = []

    def generate(
        self, text: str, params: SamplingParams | None = None, cancel: threading.Event | None = None
    ) -> FakeStream:
        seed = (params or SamplingParams()).seed
        self.requests.append((text, seed))
        codes, reason = self.script(text, seed)
        stream = FakeStream(codes, reason, cancel)
        self.streams.append(stream)
        return stream


class FakeCodec:
    """4 samples per code, each the code's value / 10000, so the audio shows which codes were decoded."""

    sample_rate = 1000
    samples_per_token = 4

    def decode(self, tokens: np.ndarray, voice: np.ndarray, speed: float = 1.0, frames: int | None = None) -> np.ndarray:
        return np.repeat(np.asarray(tokens, dtype=np.float32) / 10000, self.samples_per_token)


class FakeEngine:
    def __init__(self, generator: CodeGenerator) -> None:
        self.llm = generator
        self.codec = FakeCodec()


def test_finish_reasons_and_event_kinds_still_compare_equal_to_their_old_strings():
    assert FinishReason.EOG == "eog" and FinishReason.CAP == "cap" and FinishReason.CANCELLED == "cancelled"
    assert ReaderEventKind.ERROR == "error" and ReaderEventKind.UTTERANCE_STARTED == "utterance_started"
    assert ReaderEvent(ReaderEventKind.WARNING).kind in ("warning",)


def test_seeds_keep_the_first_attempt_and_never_repeat_within_a_reading():
    policy = RetryPolicy()
    assert policy.seed(None, 5, 1) is None  # unseeded stays random
    assert policy.seed(7, 0, 0) == 7  # one sentence sounds as it always did with its seed
    seeds = {policy.seed(7, index, attempt) for index in range(500) for attempt in range(policy.attempts)}
    assert len(seeds) == 500 * policy.attempts
    assert policy.params(SamplingParams(max_tokens=40), 7, 2, 1) == SamplingParams(max_tokens=40, seed=2008)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_what_counts_as_a_failed_generation():
    assert RetryPolicy.failed(FinishReason.CAP, 700)
    assert RetryPolicy.failed(FinishReason.RUNAWAY, 50)
    assert RetryPolicy.failed(FinishReason.EOG, 0)  # no speech at all
    assert not RetryPolicy.failed(FinishReason.EOG, 12)
    assert not RetryPolicy.failed(FinishReason.CANCELLED, 3)  # the user's choice, never retried
    policy = RetryPolicy(attempts=2)
    assert policy.retry(FinishReason.CAP, 700, attempt=0) and not policy.retry(FinishReason.CAP, 700, attempt=1)


def test_a_capped_generation_is_tried_once_more_with_the_next_seed():
    generator = ScriptedGenerator(lambda text, seed: ([1, 2, 3], FinishReason.CAP if seed == 4 else FinishReason.EOG))
    codes, reason = generate_with_retries(generator, "text", DEFAULT_RETRY, seed=4)
    assert (codes, reason) == ([1, 2, 3], FinishReason.EOG)
    assert [seed for _, seed in generator.requests] == [4, 5]

    always_capped = ScriptedGenerator(lambda text, seed: ([1, 2, 3], FinishReason.CAP))
    codes, reason = generate_with_retries(always_capped, "text", DEFAULT_RETRY, seed=4, index=3)
    assert reason == FinishReason.CAP and [seed for _, seed in always_capped.requests] == [3004, 3005]


def test_a_runaway_is_stopped_early_and_closed():
    generator = ScriptedGenerator(lambda text, seed: ([9] * 700, FinishReason.CAP))
    codes, reason = collect_codes(generator, "text", SamplingParams(), DEFAULT_RETRY)
    assert reason == FinishReason.RUNAWAY and len(codes) == 50 and generator.streams[0].closed
    codes, reason = collect_codes(generator, "text", SamplingParams(), RetryPolicy(detect_runaways=False))
    assert reason == FinishReason.CAP and len(codes) == 700


def _engine_with(generator: ScriptedGenerator) -> SpeechEngine:
    # The engine without its models: only what synthesize uses.
    engine = SpeechEngine.__new__(SpeechEngine)
    engine.llm = generator  # type: ignore[assignment]
    engine.codec = FakeCodec()  # type: ignore[assignment]
    engine.core_loan = None
    return engine


VOICE = Voice("test", np.zeros(128, dtype=np.float32))


def test_speak_and_read_ask_for_the_same_seeds_for_the_same_text(tmp_path: Path):
    text = "最初の文です。" * 50  # longer than one utterance: speak splits it like read does
    spoken = ScriptedGenerator()
    _engine_with(spoken).synthesize_long(text, VOICE, seed=11)

    read = ScriptedGenerator()
    sink = FileSink(tmp_path / "read.wav", FakeCodec.sample_rate)
    session = ReadingSession(FakeEngine(read), segment(text), np.zeros(128, np.float32), sink, seed=11)
    session.start()
    assert session.wait(30)
    sink.close()
    assert len(spoken.requests) == len(segment(text)) > 1
    assert read.requests == spoken.requests


def test_speak_gives_up_after_the_retry_with_a_clear_message():
    generator = ScriptedGenerator(lambda text, seed: ([5] * 60, FinishReason.EOG))
    with pytest.raises(GenerationError, match="repeating"):
        _engine_with(generator).synthesize("Hello.", VOICE, seed=1)
    assert [seed for _, seed in generator.requests] == [1, 2]


def test_the_reader_drops_the_codes_of_a_failed_attempt_and_skips_after_the_last(tmp_path: Path):
    def script(text: str, seed: int | None) -> tuple[list[int], FinishReason]:
        if text.startswith("一"):  # first sentence: a cap, then a good retry
            return ([7000] * 5, FinishReason.CAP) if seed == 0 else ([100, 200, 300], FinishReason.EOG)
        return [], FinishReason.EOG  # second sentence: no speech, twice

    text = "一つ目です。二つ目です。"
    events: list[ReaderEvent] = []
    out = tmp_path / "out.wav"
    sink = FileSink(out, FakeCodec.sample_rate)
    session = ReadingSession(
        FakeEngine(ScriptedGenerator(script)), segment(text), np.zeros(128, np.float32), sink,
        source_text=text, plan=ChunkPlan(full=True), on_event=events.append, seed=0,
    )
    session.start()
    assert session.wait(30)
    sink.close()
    audio, _ = soundfile.read(str(out), dtype="float32")
    speech = audio[: 3 * FakeCodec.samples_per_token]
    np.testing.assert_allclose(speech, np.repeat([0.01, 0.02, 0.03], 4), atol=1e-4)  # PCM_16
    assert not np.any(audio[len(speech) :])  # the pause after it, nothing of the capped attempt
    assert [e.kind for e in events if e.kind == ReaderEventKind.WARNING] == ["warning"]
    assert session.stats.runaways == 3 and session.stats.utterance_codes == {0: 3}
    assert events[-1].kind == ReaderEventKind.FINISHED


def test_only_a_sound_card_is_a_live_sink(tmp_path: Path):
    from miodesk.audio.player import AudioPlayer

    sink = FileSink(tmp_path / "x.wav", 1000)
    try:
        assert not isinstance(sink, LiveSink)
        session = ReadingSession(FakeEngine(ScriptedGenerator()), [], np.zeros(128, np.float32), sink)
        session.pause()  # nothing to pause in a file: no error
        assert not session.paused
    finally:
        sink.close(keep=False)
    live = ("pause", "resume", "paused", "flush", "wait_until_played", "buffered_seconds", "first_audio_time")
    assert all(hasattr(AudioPlayer, name) for name in live)
