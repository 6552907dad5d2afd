"""MioLLM on generated MioTTS-like GGUFs: loading, audio-token map, prompt, sampling, streaming, errors."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from gguf_fixtures import (  # noqa: F401 - fixtures are used by name
    falcon_h1_model,
    gguf_dir,
    lfm2_model,
    make_model,
    qwen3_model,
    qwen3_nostop_model,
)

from miodesk.errors import ModelError
from miodesk.synthetic.gguf import CHATML_TEMPLATE, GeneratedModel

llm_mod = pytest.importorskip("miodesk.tts.llm")
pytest.importorskip("llama_cpp")
MioLLM, SamplingParams = llm_mod.MioLLM, llm_mod.SamplingParams

CHATML = "<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def qwen3(qwen3_model: GeneratedModel):  # noqa: F811
    with MioLLM(qwen3_model.path, n_threads=1) as llm:
        yield llm


@pytest.fixture(scope="module")
def qwen3_nostop(qwen3_nostop_model: GeneratedModel):  # noqa: F811
    # the full model: its unrestricted generations draw text tokens
    with MioLLM(qwen3_nostop_model.path, n_threads=1, audio_only=False) as llm:
        yield llm


def _run(gen) -> list[int]:
    return list(gen)


# --- loading and vocabulary ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["qwen3_model", "falcon_h1_model", "lfm2_model"])
def test_each_arch_loads_and_generates(fixture: str, request: pytest.FixtureRequest) -> None:
    info: GeneratedModel = request.getfixturevalue(fixture)
    with MioLLM(info.path, n_threads=1) as llm:
        assert llm.architecture == info.arch
        assert llm.n_vocab == info.n_vocab
        assert llm.model_path == info.path
        gen = llm.generate("Hello world", SamplingParams(seed=1))
        codes = _run(gen)
        assert gen.finish_reason == "eog"
        assert 0 < len(codes) == gen.n_tokens < 700
        assert all(0 <= c < 12_800 for c in codes)
        assert len(set(codes)) > 1
        assert gen.prompt_seconds > 0 and gen.generate_seconds > 0


@pytest.mark.parametrize(
    ("arch", "kwargs", "offset"),
    [
        ("qwen3", {}, 1000),
        ("falcon-h1", {}, 640),
        ("lfm2", {}, 800),
        ("qwen3", {"audio_offset": None}, None),
        ("qwen3", {"audio_offset": 3000, "n_vocab": 16_000, "audio_token_type": "control"}, 3000),
    ],
)
def test_audio_token_map_follows_the_vocabulary(gguf_dir: Path, arch: str, kwargs: dict, offset) -> None:  # noqa: F811
    info = make_model(gguf_dir, f"map_{arch}_{len(kwargs)}", arch, eog_probability=0.2, **kwargs)
    if offset is not None:
        assert info.audio_offset == offset
    with MioLLM(info.path, n_threads=1) as llm:
        assert llm.audio_token_ids == tuple(range(info.audio_offset, info.audio_offset + 12_800))
        assert llm.code_of(info.audio_offset) == 0
        assert llm.code_of(info.audio_offset + 12_799) == 12_799
        assert llm.code_of(info.im_end_id) is None
        assert info.im_end_id in llm.eog_ids and info.endoftext_id in llm.eog_ids
        assert not set(llm.audio_token_ids) & llm.eog_ids
        # generation works whatever the token type of the audio tokens
        gen = llm.generate("test", SamplingParams(seed=3))
        _run(gen)
        assert gen.finish_reason == "eog"


# --- prompt -------------------------------------------------------------------------------------


def test_prompt_is_the_rendered_chatml_template(qwen3: MioLLM, qwen3_model: GeneratedModel) -> None:  # noqa: F811
    assert qwen3.chat_template == CHATML_TEMPLATE
    text = "Hello world, this is a test."
    assert qwen3.render_prompt(text) == CHATML.format(text=text)
    ids = qwen3.prompt_tokens(text)
    assert ids == qwen3._text_llm.tokenize(CHATML.format(text=text).encode(), add_bos=False, special=True)
    assert ids[0] == qwen3_model.im_start_id  # special tokens parsed, no BOS
    assert ids.count(qwen3_model.im_end_id) == 1
    assert qwen3_model.bos_id not in ids
    # byte-level BPE round-trips any text, Japanese included
    jp = "日本語のテキストです。"
    assert qwen3._text_llm.detokenize(qwen3.prompt_tokens(jp), special=True).decode() == CHATML.format(text=jp)


def test_fallback_chatml_without_template(gguf_dir: Path) -> None:  # noqa: F811
    info = make_model(gguf_dir, "qwen3_notemplate", "qwen3", chat_template=False)
    with MioLLM(info.path, n_threads=1) as llm:
        assert llm.chat_template is None
        assert llm.render_prompt("Hi there") == CHATML.format(text="Hi there")
        ids = llm.prompt_tokens("Hi there")
        assert ids[0] == info.im_start_id and info.bos_id not in ids


def test_bos_from_template_is_not_doubled(lfm2_model: GeneratedModel) -> None:  # noqa: F811
    # LFM2-style: add_bos_token true and the template itself starts with {{ bos_token }}
    with MioLLM(lfm2_model.path, n_threads=1) as llm:
        assert llm.add_bos
        assert llm.render_prompt("Hi") == "<|startoftext|>" + CHATML.format(text="Hi")
        ids = llm.prompt_tokens("Hi")
        assert ids[0] == lfm2_model.bos_id and ids.count(lfm2_model.bos_id) == 1
        assert ids[1] == lfm2_model.im_start_id


def test_bos_prepended_when_gguf_asks_and_template_lacks_it(gguf_dir: Path) -> None:  # noqa: F811
    info = make_model(gguf_dir, "qwen3_addbos", "qwen3", add_bos=True)
    with MioLLM(info.path, n_threads=1) as llm:
        ids = llm.prompt_tokens("Hi")
        assert ids[0] == info.bos_id and ids[1] == info.im_start_id


# --- sampling -----------------------------------------------------------------------------------


def test_restriction_keeps_text_tokens_out(qwen3_nostop: MioLLM) -> None:
    params = SamplingParams(seed=7, max_tokens=150)
    gen = qwen3_nostop.generate("Hello world", params)
    codes = _run(gen)
    assert gen.finish_reason == "cap"
    assert len(codes) == gen.n_codes == gen.n_tokens == 150
    assert gen.n_skipped == 0

    free = qwen3_nostop.generate("Hello world", params, restrict_to_audio=False)
    free_codes = _run(free)
    # the rigged model favours a few text tokens: unrestricted sampling draws them, and they are skipped
    assert free.n_tokens == 150
    assert free.n_skipped > 0
    assert len(free_codes) == free.n_codes == 150 - free.n_skipped


def test_stops_on_eog(qwen3: MioLLM) -> None:
    lengths = []
    for seed in range(5):
        gen = qwen3.generate("Hello", SamplingParams(seed=seed))
        codes = _run(gen)
        assert gen.finish_reason == "eog"
        assert len(codes) == gen.n_tokens < 700
        lengths.append(len(codes))
    assert sum(lengths) / len(lengths) < 100  # ~1/0.05 = 20 on average


def test_cap_at_exactly_max_tokens(qwen3_nostop: MioLLM) -> None:
    gen = qwen3_nostop.generate("Hello", SamplingParams(seed=1, max_tokens=37))
    codes = _run(gen)
    assert gen.finish_reason == "cap"
    assert len(codes) == gen.n_tokens == 37


def test_same_seed_same_codes_different_seed_different(qwen3_nostop: MioLLM) -> None:
    a = _run(qwen3_nostop.generate("Hello world", SamplingParams(seed=11, max_tokens=60)))
    b = _run(qwen3_nostop.generate("Hello world", SamplingParams(seed=11, max_tokens=60)))
    c = _run(qwen3_nostop.generate("Hello world", SamplingParams(seed=12, max_tokens=60)))
    assert a == b
    assert a != c


def test_greedy_and_custom_params(qwen3_nostop: MioLLM) -> None:
    gen = qwen3_nostop.generate("x", SamplingParams(temperature=0, max_tokens=5))
    codes = _run(gen)
    assert len(set(codes)) == 1  # the profile does not depend on position
    gen = qwen3_nostop.generate("x", SamplingParams(top_k=0, top_p=0.9, repeat_penalty=1.2, seed=2, max_tokens=30))
    assert len(_run(gen)) == 30


@pytest.mark.parametrize("arch", ["qwen3", "falcon-h1", "lfm2"])
def test_state_is_cleared_between_generations(gguf_dir: Path, arch: str) -> None:  # noqa: F811
    # unrigged weights: the output depends on everything in the context (KV cache, conv/SSM state)
    info = make_model(gguf_dir, f"unrigged_{arch}", arch, rigged=False)
    params = SamplingParams(seed=1, max_tokens=30)
    with MioLLM(info.path, n_threads=1) as llm:
        first = _run(llm.generate("Hello world", params))
        other = _run(llm.generate("Something else entirely", params))
        again = _run(llm.generate("Hello world", params))
    assert first != other
    assert again == first


# --- streaming and cancellation -----------------------------------------------------------------


def test_codes_stream_before_generation_ends(qwen3_nostop: MioLLM) -> None:
    cancel = threading.Event()
    gen = qwen3_nostop.generate("Hello", SamplingParams(seed=5, max_tokens=700), cancel=cancel)
    first = next(gen)
    assert 0 <= first < 12_800
    assert gen.finish_reason is None and gen.n_tokens == 1
    cancel.set()
    assert list(gen) == []
    assert gen.finish_reason == "cancelled"
    assert gen.n_tokens == 1


def test_cancel_from_another_thread_stops_promptly(qwen3_nostop: MioLLM) -> None:
    cancel = threading.Event()
    gen = qwen3_nostop.generate("Hello", SamplingParams(seed=5, max_tokens=700), cancel=cancel)
    seen = []
    for code in gen:
        seen.append(code)
        if len(seen) == 10:
            t = threading.Thread(target=cancel.set)
            t.start()
            t.join()
    assert gen.finish_reason == "cancelled"
    assert len(seen) == 10


def test_new_generation_supersedes_unfinished_one(qwen3_nostop: MioLLM) -> None:
    old = qwen3_nostop.generate("one", SamplingParams(seed=1, max_tokens=50))
    next(old)
    new = qwen3_nostop.generate("two", SamplingParams(seed=1, max_tokens=20))
    assert old.finish_reason == "cancelled" and list(old) == []
    assert len(_run(new)) == 20 and new.finish_reason == "cap"


def test_already_cancelled_generates_nothing(qwen3: MioLLM) -> None:
    cancel = threading.Event()
    cancel.set()
    gen = qwen3.generate("Hello", cancel=cancel)
    assert list(gen) == [] and gen.finish_reason == "cancelled" and gen.n_tokens == 0


# --- bad input ----------------------------------------------------------------------------------


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        MioLLM(tmp_path / "nope.gguf", n_threads=1)
    assert "not found" in _one_line(err)


def test_text_file_renamed_gguf(tmp_path: Path) -> None:
    p = tmp_path / "notes.gguf"
    p.write_text("just some notes\n" * 10)
    with pytest.raises(ModelError) as err:
        MioLLM(p, n_threads=1)
    assert "not a GGUF" in _one_line(err)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        MioLLM(tmp_path, n_threads=1)
    _one_line(err)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_gguf(qwen3_model: GeneratedModel, tmp_path: Path, keep: float) -> None:  # noqa: F811
    data = qwen3_model.path.read_bytes()
    p = tmp_path / "truncated.gguf"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError) as err:
        MioLLM(p, n_threads=1)
    assert "truncated.gguf" in _one_line(err)


def test_gguf_without_audio_tokens(gguf_dir: Path) -> None:  # noqa: F811
    info = make_model(gguf_dir, "qwen3_noaudio", "qwen3", n_audio=100, audio_offset=None)
    with pytest.raises(ModelError) as err:
        MioLLM(info.path, n_threads=1)
    msg = _one_line(err)
    assert "no MioTTS audio tokens" in msg and "not a MioTTS model" in msg


@pytest.mark.parametrize("template", ["{% if %}", "{{ raise_exception('only user messages') }}"])
def test_broken_chat_template(gguf_dir: Path, template: str) -> None:  # noqa: F811
    info = make_model(gguf_dir, f"qwen3_badtemplate_{len(template)}", "qwen3", chat_template=template)
    with pytest.raises(ModelError) as err:
        MioLLM(info.path, n_threads=1).prompt_tokens("Hi")
    _one_line(err)


def test_llama_cpp_logs_stay_out_of_the_terminal(
    qwen3_model: GeneratedModel, tmp_path: Path, capfd: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    with MioLLM(qwen3_model.path, n_threads=1) as llm:
        list(llm.generate("Hello", SamplingParams(seed=1)))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(qwen3_model.path.read_bytes()[:4096])
    with pytest.raises(ModelError):
        MioLLM(bad, n_threads=1)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_llama_cpp_debug_lines_reach_the_log_only_when_asked(qwen3_model: GeneratedModel, caplog) -> None:  # noqa: F811
    """Loading sends tens of thousands of debug lines; they are logged with -v (DEBUG) and dropped early
    otherwise, while warnings and errors still get through (a damaged model's reason, tested elsewhere)."""
    with caplog.at_level(logging.DEBUG, logger="miodesk.llama_cpp"):
        MioLLM(qwen3_model.path, n_threads=1).close()
    verbose = [r for r in caplog.records if r.name == "miodesk.llama_cpp"]
    assert len(verbose) > 100 and any("llama_model_loader" in r.getMessage() for r in verbose)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="miodesk.llama_cpp"):
        MioLLM(qwen3_model.path, n_threads=1).close()
    assert not [r for r in caplog.records if r.name == "miodesk.llama_cpp" and r.levelno < logging.INFO]
