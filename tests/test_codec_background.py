"""A reading that starts generating while the codec is still loading (`SpeechEngine(codec_in_background=True)`,
as `miodesk read` loads it): the same audio, the codec's threads not lent while it loads, and a codec that
fails to load failing the reading with its own message."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile
from conftest import GOLDEN, assert_one_line_error

from miodesk.errors import ModelError
from miodesk.runtime import ThreadPlan
from miodesk.synthetic.gguf import write_test_gguf
from miodesk.text.segment import segment
from miodesk.tts import codec as codec_module
from miodesk.tts.codec import ensure_decoder
from miodesk.tts.engine import SpeechEngine
from miodesk.tts.reader import FileSink, ReadingSession
from miodesk.tts.streaming import ChunkPlan
from miodesk.tts.voices import Voice

VOICE = np.load(GOLDEN / "presets" / "en_female.npy")
TEXT = "One sentence here. And another one after it."


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("background") / "background.gguf"
    write_test_gguf(path, "qwen3", weight_dtype="f32", eog_probability=0.03)
    return path


def _read(engine: SpeechEngine, wav: Path) -> np.ndarray:
    sink = FileSink(wav, engine.sample_rate)
    session = ReadingSession(engine, segment(TEXT), VOICE, sink, plan=ChunkPlan(full=True), seed=3)
    session.start()
    assert session.wait(120)
    sink.close()
    return soundfile.read(wav)[0]


def test_the_first_codes_are_made_while_the_codec_loads(model: Path, tmp_path: Path, monkeypatch) -> None:
    plan = ThreadPlan.for_reading(usable_cores=2, physical_cores=2)
    expected = _read(SpeechEngine(model, GOLDEN / "codec" / "v2_44k", provider="cpu", thread_plan=plan),
                     tmp_path / "loaded_first.wav")

    # The codec's session opens only when the test lets it.
    release, opened_at = threading.Event(), []
    real_open = codec_module.open_session

    def held_open(*args, **kwargs):
        assert release.wait(60)
        opened_at.append(time.monotonic())
        return real_open(*args, **kwargs)

    monkeypatch.setattr(codec_module, "open_session", held_open)
    engine = SpeechEngine(model, GOLDEN / "codec" / "v2_44k", provider="cpu", thread_plan=plan,
                          codec_in_background=True)
    assert engine.codec_loading is not None and engine.codec_loading.is_alive()
    assert engine.sample_rate == 44100  # from the graph's metadata, before its session
    loan = engine.core_loan
    assert loan is not None and loan.llm_threads() == 1  # the loading codec's thread is not lent

    made_at: list[float] = []
    real_generate = engine.llm.generate

    class NotedGeneration:
        """The reader's generation, each code's time noted."""

        def __init__(self, generation) -> None:
            self.generation = generation

        def __getattr__(self, name: str):
            return getattr(self.generation, name)

        def __iter__(self):
            return self

        def __next__(self) -> int:
            code = next(self.generation)
            made_at.append(time.monotonic())
            return code

    engine.llm.generate = lambda *a, **k: NotedGeneration(real_generate(*a, **k))  # type: ignore[method-assign]
    reading = threading.Thread(target=lambda: result.append(_read(engine, tmp_path / "background.wav")))
    result: list[np.ndarray] = []
    reading.start()
    deadline = time.monotonic() + 60
    while len(made_at) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(made_at) >= 20  # generating, with no codec yet
    release.set()
    reading.join(120)
    assert result and np.array_equal(result[0], expected)  # the same audio, sample for sample
    assert made_at[0] < opened_at[0]
    engine.wait_for_codec()
    assert engine.codec_ready_at is not None and engine.load_timings["codec_load_s"] > 0
    assert loan.llm_threads() == 2 and loan._decodes == 0  # lent again once it is ready


def _damaged_decoder(tmp_path: Path) -> Path:
    """The golden 24 kHz decoder with an operator no onnxruntime has: its metadata reads, its session fails."""
    graph = onnx.load(str(ensure_decoder(GOLDEN / "codec" / "24k")))
    graph.graph.node[0].op_type = "NoSuchOperator"
    damaged = tmp_path / "damaged.onnx"
    onnx.save(graph, str(damaged))
    return damaged


def test_a_codec_that_fails_in_the_background_fails_the_first_decode(model: Path, tmp_path: Path,
                                                                    miodesk_home: Path) -> None:
    damaged = _damaged_decoder(tmp_path)
    plan = ThreadPlan.for_reading(usable_cores=2, physical_cores=2)
    engine = SpeechEngine(model, damaged, provider="cpu", thread_plan=plan, codec_in_background=True)
    engine.wait_for_codec()
    with pytest.raises(ModelError, match="Cannot load decoder graph damaged.onnx"):
        engine.synthesize("A sentence.", Voice("en_female", VOICE))
    with pytest.raises(ModelError, match="Cannot load decoder graph damaged.onnx"):  # and every later one
        engine.codec.decode(np.arange(8), VOICE)
    assert engine.core_loan is not None and engine.core_loan._decodes == 0
    with pytest.raises(ModelError, match="Cannot load decoder graph damaged.onnx"):  # as when loaded first
        SpeechEngine(model, damaged, provider="cpu", thread_plan=plan)


def test_read_with_a_codec_that_cannot_load_says_so(run_cli, model: Path, tmp_path: Path, pulse_sink) -> None:
    result = run_cli("read", "-", "--voice", GOLDEN / "presets" / "en_female.pt", "--model", model,
                     "--codec", _damaged_decoder(tmp_path), "--provider", "cpu", "--seed", 3,
                     stdin=segment(TEXT)[0].text)  # one sentence: no later one's warnings race the error
    assert_one_line_error(result, "Cannot load decoder graph damaged.onnx", "--from-char 0")
