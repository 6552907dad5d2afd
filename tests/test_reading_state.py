"""The reading state and the session pipeline with a fake generator and a fake sink: no Qt, no audio."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from miodesk.errors import MioDeskError
from miodesk.reading_state import (
    DEFAULT_PACE,
    POSITION_SAVE_INTERVAL_S,
    LoadedDocument,
    ReadingState,
    SessionPipeline,
    StartRequest,
    choose_voice,
    default_voice_for_language,
)
from miodesk.settings import PositionStore
from miodesk.text.documents import load_document
from miodesk.text.segment import segment

BOOK = ("# One\n\nFirst sentence here. Second sentence here.\n\n# Two\n\nThird sentence here. Fourth sentence here.\n\n"
        "# Three\n\nFifth sentence here.\n")


@dataclass
class Event:  # what ReadingSession reports (its ReaderEvent has the same fields)
    kind: str
    index: int | None = None
    start: int | None = None
    end: int | None = None
    message: str = ""


@dataclass
class Stats:
    first_audio_s: float | None = None
    audio_seconds: float = 0.0
    rtf: float = 0.0
    utterance_codes: dict[int, int] = field(default_factory=dict)


class FakeSink:
    """Stands in for the AudioPlayer: remembers how it was opened and what was asked of it."""

    def __init__(self, sample_rate: int, device: str | None, volume: float) -> None:
        self.source_rate, self.device, self.volume = sample_rate, device, volume
        self.paused = False
        self.closed = False

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def reset_first_audio(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class FakeGenerator:
    """Stands in for the ReadingSession: the test says which sentence becomes audible."""

    def __init__(self, request: StartRequest, sink: FakeSink, on_event: Callable[[Any], None]) -> None:
        self.request, self.sink, self.on_event = request, sink, on_event
        self.stats = Stats()
        self.started_at: int | None = None
        self.sought: list[int] = []
        self.voice, self.voices = request.voice, request.voices
        self.speed = 1.0
        self.finished = False

    def start_at_char(self, offset: int) -> None:
        self.started_at = offset

    def pause(self) -> None:
        self.sink.pause()

    def resume(self) -> None:
        self.sink.resume()

    def stop(self) -> None:
        self.finished = True

    def seek_char(self, offset: int) -> None:
        self.sought.append(offset)

    def set_voices(self, voice: Any, voices: dict[str, Any]) -> None:
        self.voice, self.voices = voice, voices

    def set_speed(self, speed: float) -> None:
        self.speed = speed

    def say(self, index: int) -> None:
        utterance = self.request.utterances[index]
        self.stats.utterance_codes[index] = 25
        self.stats.audio_seconds += 1.0
        self.on_event(Event("utterance_started", index, utterance.start, utterance.end))

    def finish(self) -> None:
        self.finished = True
        self.on_event(Event("finished"))


class InlineExecutor(Executor):
    """Runs control work at once on the caller's thread: the tests see its effect immediately."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class HeldExecutor(Executor):
    """Keeps control work until `run_all`, like a busy control thread."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.jobs.append(lambda: fn(*args, **kwargs))
        future: Future[Any] = Future()
        future.set_result(None)
        return future

    def run_all(self) -> None:
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            job()


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: self.calls.append((name, args[0] if len(args) == 1 else args))

    def of(self, name: str) -> list[Any]:
        return [value for called, value in self.calls if called == name]


class Engine:
    sample_rate = 44100


class Rig:
    """A ReadingState wired to a pipeline of fakes, with everything the tests look at."""

    def __init__(self, tmp_path: Path, executor: Executor | None = None, speed: float = 1.0) -> None:
        self.sessions: list[FakeGenerator] = []
        self.sinks: list[FakeSink] = []
        self.failures: list[str] = []
        self.now = 100.0
        self.positions = PositionStore(tmp_path / "positions.json")
        self.listener = Listener()
        self.pipeline = SessionPipeline(self.make_session, self.make_sink, on_event=self.deliver,
                                        on_failure=self.failures.append, executor=executor or InlineExecutor())
        self.speed = speed
        self.state = ReadingState(self.pipeline, self.positions, self.listener, speed=lambda: self.speed,
                                  clock=lambda: self.now)

    def make_session(self, request: StartRequest, sink: FakeSink, on_event: Callable[[Any], None]) -> FakeGenerator:
        self.sessions.append(FakeGenerator(request, sink, on_event))
        return self.sessions[-1]

    def make_sink(self, sample_rate: int, device: str | None, volume: float) -> FakeSink:
        self.sinks.append(FakeSink(sample_rate, device, volume))
        return self.sinks[-1]

    def deliver(self, sid: int, event: Any, stats: Any) -> None:
        self.state.on_event(sid, event, stats)  # the Qt controller posts this to the UI thread first

    def open(self, tmp_path: Path, text: str = BOOK, resume: int | None = None) -> LoadedDocument:
        path = tmp_path / "book.md"
        path.write_text(text, encoding="utf-8")
        document = load_document(path)
        loaded = LoadedDocument(document, segment(document.text), "book-key", resume)
        self.state.install(loaded)
        return loaded


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_reading_reports_what_is_heard_saves_the_position_and_finishes(rig: Rig, tmp_path: Path) -> None:
    loaded = rig.open(tmp_path)
    state = rig.state
    state.start_reading(Engine(), "voice", state.start_offset(None))
    assert state.state == "playing" and rig.listener.of("state_changed") == ["playing"]
    [session] = rig.sessions
    assert session.started_at == 0 and session.request.utterances is loaded.utterances
    assert rig.sinks[0].source_rate == 44100

    session.say(0)
    session.say(1)
    assert rig.listener.of("utterance_started") == [(0, 0, 3), (1, 5, 25)]
    assert state.position == 5 and state.current_index == 1
    # Saved at the first sentence; the second came too soon after it to be written.
    assert rig.positions.get("book-key") == 0
    rig.now += POSITION_SAVE_INTERVAL_S
    session.say(2)
    assert rig.positions.get("book-key") == loaded.utterances[2].start

    session.finish()
    assert state.state == "idle" and state.position == 0 and state.current_index is None
    assert rig.positions.get("book-key") == 0
    assert rig.listener.of("reading_finished") == [()]


def test_pause_resume_and_stop(rig: Rig, tmp_path: Path) -> None:
    loaded = rig.open(tmp_path)
    state = rig.state
    state.start_reading(Engine(), "voice", 0)
    session = rig.sessions[0]
    rig.now += 10
    session.say(4)
    state.pause()
    assert state.state == "paused" and rig.sinks[0].paused
    assert rig.positions.get("book-key") == loaded.utterances[4].start
    state.pause()  # a second pause changes nothing
    state.resume()
    assert state.state == "playing" and not rig.sinks[0].paused
    state.stop()
    assert state.state == "idle" and session.finished
    session.say(5)  # already on its way when Stop was pressed: no longer counts
    assert rig.listener.of("utterance_started")[-1][0] == 4 and state.position == loaded.utterances[4].start
    # Play again continues from the sentence last heard.
    assert state.start_offset(None) == loaded.utterances[4].start


def test_next_previous_sentence_and_chapter(rig: Rig, tmp_path: Path) -> None:
    loaded = rig.open(tmp_path)
    state = rig.state
    starts = [u.start for u in loaded.utterances]
    assert state.section_starts() == [0, 49, 98]
    assert state.sentence_target(+1) == starts[1]
    assert state.sentence_target(-1) == starts[0]  # never before the first sentence
    state.seek(starts[7] + 3)  # idle: the cursor moves there
    assert rig.listener.of("cursor_requested") == [starts[7]]
    assert state.sentence_target(+1) == starts[7]  # never past the last one
    assert state.section_target(+1) is None
    assert state.section_target(-1) == 98
    # Like a CD player: at a chapter's start, "previous" goes to the chapter before.
    state.seek(98)
    assert state.section_target(-1) == 49
    assert state.section_target(+1) is None

    state.start_reading(Engine(), "voice", 49)
    session = rig.sessions[-1]
    session.say(4)
    state.seek(state.sentence_target(+1) or 0)
    assert session.sought == [starts[5]] and state.state == "playing"
    state.pause()
    state.seek(starts[1])  # seeking while paused reads on from there
    assert session.sought[-1] == starts[1] and state.state == "playing"


def test_time_left_from_the_default_pace_then_the_measured_one(rig: Rig, tmp_path: Path) -> None:
    loaded = rig.open(tmp_path)
    state = rig.state
    chars = sum(len(u.text) for u in loaded.utterances)
    assert state.last_stats == {"ttfa_s": None, "rtf": None, "remaining_s": pytest.approx(chars * DEFAULT_PACE["en"])}
    rig.speed = 2.0
    assert state.remaining_seconds(0) == pytest.approx(chars * DEFAULT_PACE["en"] / 2)
    later = loaded.utterances[3]
    left = chars - sum(len(u.text) for u in loaded.utterances[:3])
    assert state.remaining_seconds(later.start) == pytest.approx(left * DEFAULT_PACE["en"] / 2)
    # Once sentences were heard, their measured pace replaces the default.
    state.start_reading(Engine(), "voice", 0)
    session = rig.sessions[0]
    session.stats.first_audio_s, session.stats.rtf = 0.4, 0.5
    session.say(1)
    stats = rig.listener.of("stats_changed")[-1]
    pace = 1.0 / len(loaded.utterances[1].text)
    assert stats["ttfa_s"] == 0.4 and stats["rtf"] == 0.5
    assert stats["remaining_s"] == pytest.approx((chars - len(loaded.utterances[0].text)) * pace)


def test_japanese_documents_use_the_japanese_pace_and_voice(rig: Rig, tmp_path: Path) -> None:
    loaded = rig.open(tmp_path, "今日は晴れです。明日は雨でしょう。\n")
    assert rig.state.language() == "ja"
    chars = sum(len(u.text) for u in loaded.utterances)
    assert rig.state.remaining_seconds(0) == pytest.approx(chars * DEFAULT_PACE["ja"])
    assert choose_voice("", ["en_female", "jp_female"], rig.state.language()) == "jp_female"


def test_a_reading_gets_a_voice_per_language(rig: Rig, tmp_path: Path) -> None:
    rig.open(tmp_path)
    voices = {"ja": "japanese voice", "en": "english voice"}
    rig.state.start_reading(Engine(), "main voice", 0, voices)
    voices["en"] = "changed later"  # the request keeps what it was given
    request = rig.sessions[0].request
    assert (request.voice, request.voices) == ("main voice", {"ja": "japanese voice", "en": "english voice"})
    rig.state.start_reading(Engine(), "one voice", 0)
    assert rig.sessions[1].request.voices == {}  # one voice for every sentence


def test_without_a_document_the_language_is_the_fallback(rig: Rig) -> None:
    assert rig.state.language() == "en" and rig.state.language(fallback="ja") == "ja"


def test_default_voice_choice() -> None:
    assert default_voice_for_language("ja") == "jp_female"
    assert default_voice_for_language("en") == default_voice_for_language("fr") == "en_female"
    assert choose_voice("mine", ["en_female", "mine"], "ja") == "mine"  # the chosen voice wins
    assert choose_voice("gone", ["en_female", "jp_female"], "en") == "en_female"
    assert choose_voice("", ["mine"], "ja") == "mine"  # no preset: any voice
    assert choose_voice("", [], "ja") is None


def test_a_preview_leaves_the_document_and_its_position_alone(rig: Rig, tmp_path: Path) -> None:
    loaded = rig.open(tmp_path, resume=54)
    state = rig.state
    assert state.position == 54
    state.start_preview(Engine(), "voice", segment("Hello there."), "Hello there.")
    preview = rig.sessions[0]
    assert preview.request.text == "Hello there." and state.state == "playing"
    assert not state.reading()  # navigation does not seek inside a preview
    preview.say(0)
    preview.finish()
    assert state.state == "idle" and state.position == 54
    assert rig.listener.of("utterance_started") == [] and rig.listener.of("reading_finished") == []
    assert rig.positions.get("book-key") is None and loaded.key == "book-key"


def test_errors_and_warnings_of_the_session(rig: Rig, tmp_path: Path) -> None:
    rig.open(tmp_path)
    rig.state.start_reading(Engine(), "voice", 0)
    session = rig.sessions[0]
    session.on_event(Event("warning", message="sentence 3 was skipped"))
    session.on_event(Event("error", message="the model stopped"))
    assert rig.listener.of("warning") == ["sentence 3 was skipped"]
    assert rig.listener.of("error") == ["the model stopped"] and rig.state.state == "idle"


def test_the_player_is_reused_replaced_and_follows_device_and_volume(rig: Rig, tmp_path: Path) -> None:
    rig.open(tmp_path)
    pipeline, state = rig.pipeline, rig.state
    state.start_reading(Engine(), "v1", 0)
    state.start_reading(Engine(), "v2", 5)
    assert len(rig.sinks) == 1 and rig.sessions[0].finished  # one player; the old session stopped
    pipeline.set_volume(0.3)
    pipeline.set_speed(1.5)
    pipeline.set_voices("v3", {"ja": "v4"})
    assert rig.sinks[0].volume == 0.3 and rig.sessions[1].speed == 1.5
    assert (rig.sessions[1].voice, rig.sessions[1].voices) == ("v3", {"ja": "v4"})

    class Engine24k:
        sample_rate = 24000

    state.start_reading(Engine24k(), "v", 0)  # another codec: another player
    assert rig.sinks[0].closed and rig.sinks[1].source_rate == 24000
    pipeline.set_output("USB speakers")
    assert rig.sinks[1].closed
    state.start_reading(Engine24k(), "v", 0)
    assert (rig.sinks[2].device, rig.sinks[2].volume) == ("USB speakers", 0.3)
    pipeline.release_player()
    assert rig.sinks[2].closed
    pipeline.close()
    assert rig.sessions[-1].finished and all(sink.closed for sink in rig.sinks)
    state.start_reading(Engine(), "v", 0)  # after close nothing opens again
    assert len(rig.sinks) == 3


def test_a_start_that_was_superseded_while_queued_never_runs(tmp_path: Path) -> None:
    held = HeldExecutor()
    rig = Rig(tmp_path, executor=held)
    rig.open(tmp_path)
    rig.state.start_reading(Engine(), "first", 0)
    rig.state.start_reading(Engine(), "second", 5)
    rig.state.stop()
    rig.state.start_reading(Engine(), "third", 26)
    held.run_all()
    assert [s.request.voice for s in rig.sessions] == ["third"] and rig.sessions[0].started_at == 26


def test_control_failures_are_reported(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.open(tmp_path)

    def no_device(sample_rate: int, device: str | None, volume: float) -> FakeSink:
        raise MioDeskError("No audio output device.")

    rig.pipeline._make_player = no_device
    rig.state.start_reading(Engine(), "v", 0)
    assert rig.failures == ["No audio output device."]
    rig.state.fail(rig.failures[0])
    assert rig.state.state == "idle" and rig.listener.of("error") == ["No audio output device."]


def test_a_player_opened_while_the_owner_closes_is_closed(tmp_path: Path) -> None:
    """The race of the old controller: a start still opening a player when the window closed (or the
    device changed) left that player open, because the UI thread dropped `_player` before it was set."""
    opening = threading.Event()
    sinks: list[FakeSink] = []

    def slow_sink(sample_rate: int, device: str | None, volume: float) -> FakeSink:
        opening.set()
        time.sleep(0.05)  # opening a PortAudio stream takes a moment
        sinks.append(FakeSink(sample_rate, device, volume))
        return sinks[-1]

    def start(pipeline: SessionPipeline, sid: int) -> None:
        pipeline.start(StartRequest(sid, Engine(), segment("Hello."), "Hello.", 0, "v"))

    pipeline = SessionPipeline(FakeGenerator, slow_sink, on_event=lambda *_: None, on_failure=print)
    start(pipeline, 1)
    assert opening.wait(5)
    pipeline.close()
    assert len(sinks) == 1 and sinks[0].closed

    # A device change while the first player opens: the next reading plays on the new device.
    opening.clear()
    pipeline = SessionPipeline(FakeGenerator, slow_sink, on_event=lambda *_: None, on_failure=print)
    start(pipeline, 1)
    assert opening.wait(5)
    pipeline.set_output("USB speakers")
    start(pipeline, 2)
    deadline = time.monotonic() + 5
    while len(sinks) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    pipeline.close()
    assert [sink.device for sink in sinks[1:]] == [None, "USB speakers"]
    assert all(sink.closed for sink in sinks)


def test_no_qt_in_the_reading_state() -> None:
    code = ("import sys, miodesk.reading_state; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'sounddevice')); "
            "sys.exit(str(bad) if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0, result.stderr
