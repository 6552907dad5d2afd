"""The quality guard of exports (miodesk/tts/quality.py, ReadingSession(quality_guard=)).

What a generated (random-weight) model can show: the mechanism. Its codes do not depend on the text, so
it says nothing about how often a real model's sentences are flagged. The limits are checked against
real speech instead: espeak-ng reading normal English text and Japanese kana at slow, normal and fast
rates must pass them all (a false alarm there would be one on a real voice too), and constructed faults
(a long silence, a loop, a sentence cut short or rambling) must not.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from conftest import GOLDEN
from gguf_fixtures import make_model
from test_audio_output import speech_like

from miodesk.bench import BENCH_TEXT_EN
from miodesk.text.normalize import text_for_model
from miodesk.text.segment import segment
from miodesk.tts.engine import SpeechEngine
from miodesk.tts.pauses import DEFAULT_SENTENCE_PAUSE_S
from miodesk.tts.quality import QualityGuard, longest_inner_silence_s, longest_repeat_s
from miodesk.tts.reader import FileSink, ReadingSession
from miodesk.tts.streaming import ChunkPlan, StreamingDecoder

RATE = 44100
# Hiragana, so espeak-ng reads every character (it spells kanji out as Chinese characters).
KANA = ["きのうの ごご、えきまえの ちいさな ほんやに たちよりました。",
        "みせの おくには ふるい ちずや たびの ほんが ならんでいて、おもわず じかんを わすれて ながめて しまいました。",
        "てんしゅの おじいさんは、さんじゅうねん いじょう この ばしょで みせを つづけて いるそうです。",
        "わたしは ほっかいどうの てつどうに ついて かかれた しゃしんしゅうを いっさつ かいました。",
        "はい。", "そうですね、また あした。"]


def judge(text: str, language: str, seconds: float, audio: np.ndarray, codes: list[int] | None = None):
    codes = codes if codes is not None else list(np.random.default_rng(1).integers(0, 12800, round(seconds * 25)))
    return QualityGuard().judge(text_for_model(text), language, codes, audio, RATE)


# --- the checks on constructed faults --------------------------------------------------------------------


def test_a_long_silence_inside_a_sentence_is_found_and_a_comma_pause_is_not():
    speech = speech_like(2.0)
    with_pause = np.concatenate([speech, np.zeros(int(0.6 * RATE), np.float32), speech])
    with_gap = np.concatenate([speech, np.zeros(int(2.5 * RATE), np.float32), speech])
    assert 2.5 <= longest_inner_silence_s(with_gap, RATE) < 2.8  # with the quiet ends of the syllables around it
    text = "The weather is fine today, and tomorrow it will rain again."
    assert judge(text, "en", 4.6, with_pause).ok
    verdict = judge(text, "en", 6.5, with_gap)
    assert [p.split(" of ")[0] for p in verdict.problems] == ["a silence"] and verdict.penalty > 0
    # Silence before and after the speech is the sentence's edge, not a fault.
    padded = np.concatenate([np.zeros(RATE * 2, np.float32), speech, np.zeros(RATE * 2, np.float32)])
    assert longest_inner_silence_s(padded, RATE) < 1.0  # the pauses between its own phrases
    # At half speed the same pause lasts twice as long in the audio: judged as it would be at speed 1.
    guard = QualityGuard()
    slow_gap = np.concatenate([speech, np.zeros(int(2.4 * RATE), np.float32), speech])
    assert guard.judge(text, "en", list(range(150)), slow_gap, RATE, speed=0.5).ok


def test_a_loop_of_codes_is_found_and_held_codes_or_varied_codes_are_not():
    rng = np.random.default_rng(3)
    varied = list(rng.integers(0, 12800, 200))
    loop = list(rng.integers(0, 12800, 12)) * 5  # 60 codes: 2.4 s said five times over
    assert longest_repeat_s(varied) == 0.0
    assert longest_repeat_s(varied[:50] + loop + varied[50:]) == pytest.approx(2.4, abs=0.05)
    assert longest_repeat_s(varied[:50] + [7] * 80 + varied[50:]) == 0.0  # one code held: silence, not a loop
    audio = speech_like(10.0)
    text = "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age."
    verdict = judge(text, "en", 10.4, audio, varied[:50] + loop + varied[50:])
    assert len(verdict.problems) == 1 and "repeated" in verdict.problems[0]


@pytest.mark.parametrize(("text", "language"), [
    ("今日は朝から雨が降っていますが、午後には晴れるでしょう。", "ja"),
    ("The lighthouse keeper climbed the narrow spiral staircase every evening.", "en"),
])
def test_far_too_short_or_long_for_the_text_is_found(text, language):
    expected = QualityGuard().expected_codes(text_for_model(text), language)
    audio = speech_like(3.0)
    assert judge(text, language, 0, audio, list(range(round(expected)))).ok
    assert judge(text, language, 0, audio, list(range(round(expected * 0.7)))).ok  # a fast reader
    assert judge(text, language, 0, audio, list(range(round(expected * 1.8)))).ok  # a slow one
    short = judge(text, language, 0, audio, list(range(round(expected * 0.2))))
    long = judge(text, language, 0, audio, list(range(round(expected * 4))))
    assert short.problems[0].startswith("too short") and long.problems[0].startswith("too long")
    assert 0 < short.penalty < judge(text, language, 0, audio, list(range(3))).penalty  # shorter is worse


def test_a_short_sentence_may_take_a_second():
    assert judge("はい。", "ja", 0, speech_like(1.0), list(range(25))).ok
    assert judge("OK.", "en", 0, speech_like(1.2), list(range(30))).ok


# --- real speech: the limits must not fire on it -------------------------------------------------------------


def espeak(text: str, voice: str, words_per_minute: int, folder: Path) -> tuple[np.ndarray, int]:
    path = folder / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), text], check=True,
                   capture_output=True, timeout=60)
    audio, rate = soundfile.read(path, dtype="float32")
    return audio, rate


@pytest.mark.parametrize("words_per_minute", [130, 175, 240])
def test_no_false_alarm_on_real_speech(tmp_path, words_per_minute):
    """espeak-ng reads English sentences of the benchmark text and Japanese kana; each is judged as if a
    model had made `duration × 25` codes for it (MioCodec's rate), with its real audio for the silences."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed; tests/run.sh installs it")
    english = [u.text for u in segment(BENCH_TEXT_EN)][:12]
    guard = QualityGuard()
    flagged = []
    for text, voice, language in [*((t, "en-us", "en") for t in english), *((t, "ja", "ja") for t in KANA)]:
        audio, rate = espeak(text, voice, words_per_minute, tmp_path)
        codes = list(np.random.default_rng(0).integers(0, 12800, round(len(audio) / rate * 25)))
        verdict = guard.judge(text_for_model(text), language, codes, audio, rate)
        if not verdict.ok:
            flagged.append((text, verdict.problems))
    assert flagged == []


# --- the guard in the pipeline ---------------------------------------------------------------------------------


class _Stream:
    def __init__(self, stream: Any, record: list[int]) -> None:
        self._stream, self._record = stream, record

    def __iter__(self):
        return self

    def __next__(self) -> int:
        code = next(self._stream)
        self._record.append(code)
        return code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class RecordingLLM:
    """The real model, noting the codes of every generation (text, seed, codes)."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self.generations: list[tuple[str, int | None, list[int]]] = []
        self._lock = threading.Lock()

    def generate(self, text: str, params: Any = None, cancel: Any = None) -> Any:
        codes: list[int] = []
        with self._lock:
            self.generations.append((text, params.seed if params else None, codes))
        return _Stream(self._llm.generate(text, params, cancel=cancel), codes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


class RecordingEngine:
    def __init__(self, engine: SpeechEngine) -> None:
        self.llm = RecordingLLM(engine.llm)
        self.codec = engine.codec
        self.sample_rate = engine.sample_rate


VOICE = np.load(GOLDEN / "presets" / "jp_female.npy")


@pytest.fixture(scope="module")
def terse_engine(tmp_path_factory: pytest.TempPathFactory) -> SpeechEngine:
    """A model that stops after about two codes: every sentence of any length comes out far too short."""
    model = make_model(tmp_path_factory.mktemp("terse"), "terse", "qwen3", eog_probability=0.5, seed=5)
    return SpeechEngine(model.path, GOLDEN / "codec" / "v2_44k", provider="cpu", llm_threads=1, codec_threads=1)


def render(engine: Any, text: str, path: Path, guard: QualityGuard | None, seed: int = 11):
    utterances = segment(text)
    sink = FileSink(path, engine.sample_rate)
    session = ReadingSession(engine, utterances, VOICE, sink, source_text=text, plan=ChunkPlan(full=True), seed=seed,
                             quality_guard=guard)
    session.start()
    assert session.wait(120)
    sink.close()
    return soundfile.read(path, dtype="float32")[0], session


def decoded(engine: SpeechEngine, codes: list[int]) -> np.ndarray:
    decoder = StreamingDecoder(engine.codec, VOICE, 1.0, ChunkPlan(full=True))
    decoder.extend(codes)
    return decoder.finish()


def test_a_flagged_sentence_is_tried_again_boundedly_and_the_best_candidate_is_kept(terse_engine, tmp_path):
    text = "今日は朝から雨が降っていますが、午後には晴れるでしょう。明日の天気はどうでしょうか、楽しみです。"
    recording = RecordingEngine(terse_engine)
    guard = QualityGuard(extra_tries=3)
    audio, session = render(recording, text, tmp_path / "guarded.wav", guard)
    counts = session.stats.guard
    assert (counts.checked, counts.flagged, counts.regenerations, counts.kept_flawed, counts.fixed) == (2, 2, 6, 2, 0)
    by_text: dict[str, list[tuple[int | None, list[int]]]] = {}
    for model_text, seed, codes in recording.llm.generations:
        by_text.setdefault(model_text, []).append((seed, codes))
    position = 0
    pause = int(DEFAULT_SENTENCE_PAUSE_S * terse_engine.sample_rate)
    for index, utterance in enumerate(segment(text)):
        candidates = by_text[text_for_model(utterance.text)]
        # Bounded: the retry policy's tries (a second one only when the first said nothing), then three more.
        assert len(candidates) - guard.extra_tries in (1, 2)
        assert len({seed for seed, _ in candidates}) == len(candidates)  # each with a seed of its own
        best = max((codes for _, codes in candidates if codes), key=len)  # all too short: the longest is best
        assert session.stats.utterance_codes[index] == len(best)
        expected = np.clip(decoded(terse_engine, best), -1, 1)  # a file holds full scale at most
        np.testing.assert_allclose(audio[position:position + len(expected)], expected, atol=1 / 16384)
        position += len(expected) + pause


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SpeechEngine:
    model = make_model(tmp_path_factory.mktemp("scored"), "scored", "qwen3", eog_probability=0.08, seed=2)
    return SpeechEngine(model.path, GOLDEN / "codec" / "v2_44k", provider="cpu", llm_threads=1, codec_threads=1)


def test_the_guard_changes_nothing_where_every_sentence_passes(engine, tmp_path):
    """The same reading with and without the guard: sentences that pass are written as first made."""
    text = "Yes. Okay. Fine."  # too short to be judged short; a few codes are enough
    plain, _ = render(engine, text, tmp_path / "plain.wav", None)
    recording = RecordingEngine(engine)
    guarded, session = render(recording, text, tmp_path / "guarded.wav", QualityGuard())
    counts = session.stats.guard
    assert (counts.checked, counts.flagged, counts.regenerations) == (3, 0, 0)
    assert all((seed - 11) % 1000 < 2 for _, seed, _ in recording.llm.generations)  # only the retry policy's
    np.testing.assert_array_equal(guarded, plain)


def test_an_extra_scorer_takes_part_in_the_choice(engine, tmp_path):
    """The seam for an ASR scorer: its penalty flags candidates and counts in choosing the best."""
    heard: list[float] = []

    def wants_a_minute(text: str, samples: np.ndarray, rate: int) -> float:
        """No candidate passes; the longer, the better."""
        heard.append(len(samples) / rate)
        return 60.0 - len(samples) / rate

    recording = RecordingEngine(engine)
    _, session = render(recording, "Hi.", tmp_path / "long.wav", QualityGuard(extra_tries=2, scorers=(wants_a_minute,)))
    candidates = [codes for _, _, codes in recording.llm.generations if codes]
    counts = session.stats.guard
    assert (counts.flagged, counts.regenerations, counts.kept_flawed, counts.fixed) == (1, 2, 1, 0)
    assert len(heard) == len(candidates) == 3
    assert session.stats.utterance_codes[0] == max(len(codes) for codes in candidates)

    calls: list[int] = []

    def dislikes_the_first(text: str, samples: np.ndarray, rate: int) -> float:
        calls.append(len(samples))
        return 1.0 if len(calls) == 1 else 0.0

    recording = RecordingEngine(engine)
    _, session = render(recording, "Hi.", tmp_path / "second.wav",
                        QualityGuard(extra_tries=2, scorers=(dislikes_the_first,)))
    candidates = [codes for _, _, codes in recording.llm.generations if codes]
    counts = session.stats.guard
    assert (counts.flagged, counts.regenerations, counts.fixed, counts.kept_flawed) == (1, 1, 1, 0)
    assert len(candidates) == 2 and session.stats.utterance_codes[0] == len(candidates[1])
