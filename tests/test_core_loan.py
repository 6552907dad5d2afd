"""The codec's idle threads lent to the LLM between tokens (miodesk.tts.generation.CoreLoan)."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import numpy as np
import pytest
import soundfile
from conftest import GOLDEN

from miodesk.runtime import ThreadPlan
from miodesk.synthetic.gguf import write_test_gguf
from miodesk.text.segment import segment
from miodesk.tts.engine import SpeechEngine
from miodesk.tts.generation import CoreLoan
from miodesk.tts.llm import MioLLM, SamplingParams
from miodesk.tts.reader import FileSink, ReadingSession
from miodesk.tts.streaming import ChunkPlan

VOICE = np.load(GOLDEN / "presets" / "en_female.npy")


@pytest.mark.parametrize(("cores", "pipelined", "llm_override", "lent"), [
    (2, True, None, 1),  # one thread each; the LLM borrows the codec's
    (4, True, None, 2),
    (8, True, None, 0),  # the LLM has 4 already: more gain little
    (2, False, None, 0),  # one utterance at a time: the LLM has every core
    (2, True, 1, 0),  # the user chose the LLM's threads
    (1, True, None, 0),
])
def test_what_a_plan_lends(cores: int, pipelined: bool, llm_override: int | None, lent: int) -> None:
    plan = ThreadPlan.decide(pipelined=pipelined, usable_cores=cores, physical_cores=cores, llm_threads=llm_override)
    assert plan.lendable_codec_threads == lent


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("loan") / "loan.gguf"
    write_test_gguf(path, "qwen3", weight_dtype="f32", eog_probability=None)  # runs to max_tokens
    return path


def test_the_llm_borrows_between_decodes_and_gives_back(model: Path) -> None:
    with MioLLM(model, n_threads=1) as llm:
        expected = list(llm.generate("Borrowed threads.", SamplingParams(seed=5, max_tokens=60)))
        loan = CoreLoan(own=1, lent=1)
        llm.core_loan = loan
        observed, codes = [], []
        generation = llm.generate("Borrowed threads.", SamplingParams(seed=5, max_tokens=60))
        decoding = loan.decoding()
        for i, code in enumerate(generation):
            codes.append(code)
            observed.append(llama_cpp.llama_n_threads(llm._ctx))  # the threads of the token just made
            if i == 20:
                decoding.__enter__()  # a decode starts on the codec thread
            elif i == 40:
                decoding.__exit__(None, None, None)
        assert codes == expected  # thread counts do not change results
        # The first token comes from the prompt (all cores); from the second on, borrowed while the codec
        # is idle, given back from the token after a decode starts, borrowed again after it ends.
        assert observed[1:21] == [2] * 20
        assert observed[22:41] == [1] * 19
        assert observed[42:] == [2] * (len(observed) - 42)
        assert llama_cpp.llama_n_threads(llm._ctx) == 1  # after the generation: its own again


def test_a_pipelined_reading_lends_the_codec_threads(tmp_path: Path) -> None:
    model = tmp_path / "reading.gguf"
    write_test_gguf(model, "qwen3", weight_dtype="f32", eog_probability=0.03)
    plan = ThreadPlan.for_reading(usable_cores=2, physical_cores=2)
    engine = SpeechEngine(model, GOLDEN / "codec" / "v2_44k", provider="cpu", thread_plan=plan)
    loan = engine.core_loan
    assert loan is not None and (loan.own, loan.lent) == (1, 1)
    assert engine.llm.core_loan is loan
    decodes = []
    real = loan.decoding

    def counted():
        decodes.append(1)
        return real()

    loan.decoding = counted  # type: ignore[method-assign]
    text = "One sentence here. And another one after it."
    sink = FileSink(tmp_path / "loan.wav", engine.sample_rate)
    # Whole-sentence decodes (streamed windows follow timing): sentence 1 decodes while 2 is generated.
    session = ReadingSession(engine, segment(text), VOICE, sink, plan=ChunkPlan(full=True), seed=3)
    session.start()
    assert session.wait(120)
    sink.close()
    assert len(decodes) >= 2 and loan._decodes == 0
    assert llama_cpp.llama_n_threads(engine.llm._ctx) == 1

    # The same reading without the loan: the same audio, sample for sample.
    engine.llm.core_loan = engine.core_loan = None
    plain = FileSink(tmp_path / "plain.wav", engine.sample_rate)
    session = ReadingSession(engine, segment(text), VOICE, plain, plan=ChunkPlan(full=True), seed=3)
    session.start()
    assert session.wait(120)
    plain.close()
    assert np.array_equal(soundfile.read(tmp_path / "loan.wav")[0], soundfile.read(tmp_path / "plain.wav")[0])


def test_a_prompt_read_during_a_decode_keeps_to_the_llm_threads(model: Path) -> None:
    """A prompt takes every core (the batch threads) unless a decode runs, or the codec loads: then only
    the LLM's own, not one that would wait on the codec's core at every step. Results are the same."""
    with MioLLM(model, n_threads=1, n_threads_batch=2) as llm:
        expected = list(llm.generate("A prompt read.", SamplingParams(seed=2, max_tokens=12)))
        loan = CoreLoan(own=1, lent=1)
        llm.core_loan = loan
        seen: list[int] = []
        real_eval_prompt = llm._eval_prompt

        def noted(prompt: list[int]) -> None:
            seen.append(llama_cpp.llama_n_threads_batch(llm._ctx))
            real_eval_prompt(prompt)

        llm._eval_prompt = noted  # type: ignore[method-assign]
        idle = list(llm.generate("A prompt read.", SamplingParams(seed=2, max_tokens=12)))
        with loan.decoding():
            during = list(llm.generate("A prompt read.", SamplingParams(seed=2, max_tokens=12)))
        assert seen == [2, 1]
        assert idle == during == expected
        assert llama_cpp.llama_n_threads_batch(llm._ctx) == 2  # every core again for the next prompt
