"""The reading session: pipelined synthesis through the real player, recorded back from the null sink."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from audio_helpers import MonitorRecorder, voiced_runs
from conftest import GOLDEN
from gguf_fixtures import make_model

from miodesk.audio.player import AudioPlayer
from miodesk.text.segment import segment
from miodesk.tts.engine import SpeechEngine
from miodesk.tts.generation import is_runaway
from miodesk.tts.llm import SamplingParams
from miodesk.tts.pauses import DEFAULT_SENTENCE_PAUSE_S
from miodesk.tts.reader import FileSink, ReaderEvent, ReadingSession
from miodesk.tts.streaming import ChunkPlan

VOICE = np.load(GOLDEN / "presets" / "jp_female.npy")
TEXT = "今日は晴れです。明日は雨でしょう。それでは、また会いましょう。Hello there. How are you today? Fine, thanks."


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SpeechEngine:
    model = make_model(tmp_path_factory.mktemp("reader_models"), "reader", "qwen3", eog_probability=0.04, seed=3)
    return SpeechEngine(model.path, GOLDEN / "codec" / "v2_44k", provider="cpu", llm_threads=1, codec_threads=1)


class EventLog:
    def __init__(self) -> None:
        self.events: list[tuple[float, ReaderEvent]] = []
        self.lock = threading.Lock()

    def __call__(self, event: ReaderEvent) -> None:
        with self.lock:
            self.events.append((time.monotonic(), event))

    def kinds(self, kind: str) -> list[tuple[float, ReaderEvent]]:
        with self.lock:
            return [(t, e) for t, e in self.events if e.kind == kind]

    def started(self) -> list[int]:
        return [e.index for _, e in self.kinds("utterance_started")]


def merged_runs(recording: np.ndarray, rate: int, min_gap: float = 0.15) -> list[tuple[float, float]]:
    """Voiced stretches, joining dips shorter than `min_gap` (noise-like test audio has quiet moments)."""
    runs: list[tuple[float, float]] = []
    for start, end in voiced_runs(recording, rate):
        if runs and start - runs[-1][1] < min_gap:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def test_reads_live_in_order_with_only_the_designed_pauses(engine, pulse_sink):
    utterances = segment(TEXT)
    log = EventLog()
    with MonitorRecorder(engine.sample_rate) as recorder:
        player = AudioPlayer(engine.sample_rate)
        session = ReadingSession(engine, utterances, VOICE, player, source_text=TEXT, on_event=log, seed=4)
        try:
            session.start()
            assert session.wait(120)
            recorder.catch_up(0.3)
        finally:
            session.stop()
            player.close()
        recording = recorder.audio()
        blocks = list(recorder._blocks)

    assert log.started() == list(range(len(utterances)))
    assert [e.kind for _, e in log.events][-1] == "finished"
    assert session.stats.underruns == 0
    # Where each utterance should start in the audio: its predecessors' lengths plus the pauses.
    durations = [session.stats.utterance_codes[i] * engine.codec.samples_per_token / engine.sample_rate
                 for i in range(len(utterances))]
    offsets = np.concatenate([[0.0], np.cumsum(np.array(durations[:-1]) + DEFAULT_SENTENCE_PAUSE_S)])
    runs = merged_runs(recording, engine.sample_rate)
    first_sound, last_sound = runs[0][0], runs[-1][1]
    assert abs((last_sound - first_sound) - (offsets[-1] + durations[-1])) < 0.1  # nothing lost, no extra gap
    gaps = [b[0] - a[1] for a, b in zip(runs, runs[1:], strict=False)]
    assert all(gap < 2 * DEFAULT_SENTENCE_PAUSE_S + 0.1 for gap in gaps), gaps

    # The event for utterance k fires when its audio is being recorded.
    recorded_at = np.concatenate([np.full(len(block), t) for t, block in blocks])
    started = log.kinds("utterance_started")
    for (when, event), offset in zip(started, offsets, strict=True):
        heard = recorded_at[int((first_sound + offset) * engine.sample_rate)]
        assert abs(when - heard) < 0.1, (event.index, when - heard)


def test_render_to_file_matches_the_audio_of_every_utterance(engine, tmp_path):
    utterances = segment(TEXT)
    out = tmp_path / "book.wav"
    sink = FileSink(out, engine.sample_rate)
    log = EventLog()
    session = ReadingSession(engine, utterances, VOICE, sink, source_text=TEXT, on_event=log, seed=4)
    session.start()
    assert session.wait(120)
    sink.close()
    info = soundfile.info(str(out))
    pauses = (len(utterances) - 1) * DEFAULT_SENTENCE_PAUSE_S
    expected = session.stats.codes * engine.codec.samples_per_token + round(pauses * engine.sample_rate)
    assert abs(info.frames - expected) <= len(utterances) * 98 * 9
    assert log.started() == list(range(len(utterances)))


def test_pause_resume_stop_next_previous(engine, pulse_sink):
    text = "一つ目の文です。二つ目の文です。三つ目の文です。四つ目の文です。五つ目の文です。六つ目の文です。"
    utterances = segment(text)
    log = EventLog()
    player = AudioPlayer(engine.sample_rate)
    session = ReadingSession(engine, utterances, VOICE, player, source_text=text, on_event=log, seed=9)
    try:
        session.start()
        deadline = time.monotonic() + 30
        while not log.started() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.started() == [0]

        session.pause()
        played = player.frames_played
        time.sleep(0.4)
        assert player.frames_played == played  # paused: nothing more is consumed
        session.resume()

        session.next()
        deadline = time.monotonic() + 30
        while 1 not in log.started() and time.monotonic() < deadline:
            time.sleep(0.01)
        session.next()
        while 2 not in log.started() and time.monotonic() < deadline:
            time.sleep(0.01)
        session.previous()
        while log.started().count(1) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.started()[:4] == [0, 1, 2, 1]

        session.seek_char(text.index("五つ目"))
        while 4 not in log.started() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.started()[-1] == 4

        session.stop()
        frames = player.frames_played
        time.sleep(0.3)
        assert player.frames_played == frames  # stopped: silence
        assert not log.kinds("finished")
    finally:
        session.stop()
        player.close()


def test_a_runaway_sentence_is_retried_then_skipped_and_reading_goes_on(tmp_path_factory, tmp_path):
    runaway = make_model(tmp_path_factory.mktemp("runaway"), "runaway", "qwen3", eog_probability=None)
    engine = SpeechEngine(runaway.path, GOLDEN / "codec" / "24k", provider="cpu", llm_threads=1, codec_threads=1)
    utterances = segment("最初の文。次の文。")
    log = EventLog()
    sink = FileSink(tmp_path / "out.wav", engine.sample_rate)
    session = ReadingSession(
        engine, utterances, VOICE, sink, on_event=log, seed=1, sampling=SamplingParams(max_tokens=40)
    )
    session.start()
    assert session.wait(60)
    sink.close()
    warnings = log.kinds("warning")
    assert [e.index for _, e in warnings] == [0, 1]
    assert session.stats.runaways == 4  # each sentence: the first try and the retry
    assert log.kinds("finished")


def test_runaway_detection():
    assert is_runaway([7] * 50)
    assert not is_runaway([7] * 49)
    assert is_runaway([1, 2, 3] * 50)
    rng = np.random.default_rng(0)
    assert not is_runaway(rng.integers(0, 12800, 700).tolist())


def test_full_decode_setting_plays_whole_utterances(engine, tmp_path):
    utterances = segment("全体をまとめて復号します。")
    sink = FileSink(tmp_path / "full.wav", engine.sample_rate)
    session = ReadingSession(engine, utterances, VOICE, sink, plan=ChunkPlan(full=True), seed=2)
    session.start()
    assert session.wait(60)
    sink.close()
    audio, _ = soundfile.read(str(tmp_path / "full.wav"), dtype="float32")
    assert len(audio) == session.stats.codes * engine.codec.samples_per_token


def test_start_from_a_character_offset(engine, tmp_path):
    utterances = segment(TEXT)
    log = EventLog()
    sink = FileSink(tmp_path / "part.wav", engine.sample_rate)
    session = ReadingSession(engine, utterances, VOICE, sink, source_text=TEXT, on_event=log, seed=4)
    session.start_at_char(TEXT.index("Hello"))
    assert session.wait(60)
    sink.close()
    first = log.kinds("utterance_started")[0][1]
    assert first.text == "Hello there."


def test_cli_read_renders_a_document(run_cli, tmp_path, tmp_path_factory):
    model = make_model(tmp_path_factory.mktemp("cli_read"), "cli_read", "qwen3", eog_probability=0.05, seed=1)
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\nFirst sentence. Second sentence.\n\n## Part two\n\nThird one.\n")
    out = tmp_path / "doc.wav"
    result = run_cli(
        "read", doc, "--voice", GOLDEN / "presets" / "en_female.pt", "--model", model.path,
        "--codec", GOLDEN / "codec" / "24k", "-o", out, "--stats", "--seed", 3,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("] ", 1)[1] for line in lines if line.startswith("[")] == [
        "Title", "First sentence.", "Second sentence.", "Part two", "Third one."
    ]
    assert '"ttfa_s"' in result.stdout and '"underruns": 0' in result.stdout
    assert soundfile.info(str(out)).samplerate == 24000


def test_cli_read_from_char_and_stdin(run_cli, tmp_path, tmp_path_factory):
    model = make_model(tmp_path_factory.mktemp("cli_read2"), "cli_read2", "qwen3", eog_probability=0.05, seed=1)
    out = tmp_path / "part.flac"
    text = "Skip this one. Read this one."
    result = run_cli(
        "read", "-", "--voice", GOLDEN / "presets" / "en_female.pt", "--model", model.path,
        "--codec", GOLDEN / "codec" / "24k", "-o", out, "--from-char", text.index("Read"), stdin=text,
    )
    assert result.returncode == 0, result.stderr
    assert "Skip this one." not in result.stdout and "Read this one." in result.stdout
    assert Path(out).exists()


def test_a_device_that_disappears_stops_with_a_clear_error_and_keeps_the_position(engine, pulse_sink):
    """Through PulseAudio a vanished sink is silently replaced, so the loss is made where PortAudio
    reports it on real hardware: the output stream stops underneath the player."""
    text = "一つ目の文です。二つ目の文です。三つ目の文です。四つ目の文です。"
    log = EventLog()
    player = AudioPlayer(engine.sample_rate)
    session = ReadingSession(engine, segment(text), VOICE, player, source_text=text, on_event=log, seed=9)
    try:
        session.start()
        deadline = time.monotonic() + 30
        while not log.started() and time.monotonic() < deadline:
            time.sleep(0.01)
        player._stream.abort()  # the device is gone
        assert session.wait(10)
    finally:
        session.stop()
        player.close()
    errors = log.kinds("error")
    assert len(errors) == 1 and "audio output device" in errors[0][1].message
    assert session.current_index is not None and not log.kinds("finished")


def test_a_voice_change_applies_from_the_next_utterance(engine, tmp_path):
    text = "最初の文です。次の文です。"
    utterances = segment(text)
    other_voice = np.load(GOLDEN / "presets" / "en_male.npy")
    plan = ChunkPlan(full=True)  # whole-utterance decodes make the two renderings comparable sample for sample

    def switch(event: ReaderEvent) -> None:
        if event.kind == "utterance_started" and event.index == 0:
            session.set_voice(other_voice)

    sink = FileSink(tmp_path / "switched.wav", engine.sample_rate)
    session = ReadingSession(engine, utterances, VOICE, sink, source_text=text, plan=plan, seed=21, on_event=switch)
    session.start()
    assert session.wait(60)
    sink.close()
    switched, _ = soundfile.read(str(tmp_path / "switched.wav"), dtype="float32")

    sink = FileSink(tmp_path / "second.wav", engine.sample_rate)
    alone = ReadingSession(engine, utterances, other_voice, sink, source_text=text, plan=plan, seed=21)
    alone.start(1)
    assert alone.wait(60)
    sink.close()
    second, _ = soundfile.read(str(tmp_path / "second.wav"), dtype="float32")

    first_length = session.stats.utterance_codes[0] * engine.codec.samples_per_token
    tail = switched[first_length + int(DEFAULT_SENTENCE_PAUSE_S * engine.sample_rate) :]
    np.testing.assert_allclose(tail, second, atol=1e-4)


def test_the_llm_goes_on_the_gpu_only_when_llama_cpp_can_and_the_user_did_not_ask_for_the_cpu(engine):
    from miodesk.tts.engine import llm_gpu_layers

    assert llm_gpu_layers("auto", offload_supported=True) == -1
    assert llm_gpu_layers("cuda", offload_supported=True) == -1
    assert llm_gpu_layers("cpu", offload_supported=True) == 0
    assert llm_gpu_layers("auto", offload_supported=False) == 0
    assert engine.llm_on_gpu is False  # this machine's llama.cpp is a CPU build
