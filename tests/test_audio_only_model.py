"""The audio-only speech model (miodesk.tts.audio_only_model): the same codes as the full model, faster.

Generated models of each real architecture. Same-seed codes are compared on float32 models: their
audio logits have no ties (a float16 or quantised profile has many, and which of two tied tokens the
sampler takes depends on the order of the candidates, not on their probability). Quantised models are
compared where it matters for them: the logits of every kept row, bit for bit, step by step.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from miodesk.bench import quantize
from miodesk.synthetic.gguf import write_test_gguf
from miodesk.tts import audio_only_model
from miodesk.tts.llm import MioLLM, SamplingParams

TEXT = "Hello there, this is a test of the audio only model."


def _derive(path: Path) -> Path:
    """The audio-only model of `path`, made (as the first load of a model file does)."""
    MioLLM(path, n_threads=1).close()
    dest = audio_only_model.cached_path(path)
    assert dest.is_file()
    return dest


def _codes(llm: MioLLM, text: str, seeds=range(3)) -> list[tuple[list[int], str]]:
    out: list[tuple[list[int], str]] = []
    for seed in seeds:
        gen = llm.generate(text, SamplingParams(seed=seed))
        codes = list(gen)
        out.append((codes, gen.finish_reason.value))
    return out


@pytest.mark.parametrize("arch", ["qwen3", "falcon-h1", "lfm2"])
def test_the_same_seed_gives_the_same_codes(arch: str, tmp_path: Path, miodesk_home: Path) -> None:
    path = tmp_path / f"{arch}.gguf"
    write_test_gguf(path, arch, weight_dtype="f32")  # type: ignore[arg-type]
    dest = _derive(path)
    with MioLLM(path, n_threads=2, audio_only=False) as full:
        expected = _codes(full, TEXT)
    with MioLLM(path, n_threads=2) as fast:
        assert fast.audio_only
        assert fast._gen_n_vocab == 12_800 + len(fast.end_ids) < fast.n_vocab
        got = _codes(fast, TEXT)
    assert got == expected
    assert all(reason == "eog" for _, reason in got) and len({len(c) for c, _ in got}) > 1
    assert dest.stat().st_size < path.stat().st_size


def test_a_prompt_longer_than_a_batch(tmp_path: Path, miodesk_home: Path) -> None:
    path = tmp_path / "long.gguf"
    write_test_gguf(path, "qwen3", weight_dtype="f32")
    _derive(path)
    text = "The quick brown fox jumps over the lazy dog, again and again. " * 14
    with MioLLM(path, n_threads=2, audio_only=False) as full:
        assert len(full.prompt_tokens(text)) > full._llm.n_batch
        expected = _codes(full, text, seeds=[7])
    with MioLLM(path, n_threads=2) as fast:
        assert fast.audio_only
        assert _codes(fast, text, seeds=[7]) == expected


def _logits(llm: MioLLM) -> np.ndarray:
    lc = llm._lc
    return np.ctypeslib.as_array(lc.llama_get_logits_ith(llm._ctx, -1), shape=(llm._gen_n_vocab,)).copy()


@pytest.mark.parametrize(("arch", "quant", "tied"), [
    ("falcon-h1", "Q8_0", True), ("qwen3", "Q4_K_M", False), ("lfm2", "Q8_0", False),
])
def test_quantised_logits_are_bit_identical(arch: str, quant: str, tied: bool, tmp_path: Path,
                                            miodesk_home: Path) -> None:
    """Teacher-forced: both models read the same prompt and the same codes; every kept row's logit is
    equal at every step (the prompt's embeddings are dequantised exactly as llama.cpp does)."""
    f16 = tmp_path / f"{arch}-f16.gguf"
    shape = {"n_embd": 256, "n_head": 4, "head_dim": 64, "n_ff": 512} if quant == "Q4_K_M" else {}  # K-quant rows
    write_test_gguf(f16, arch, rigged=not tied, tied=tied, **shape)  # type: ignore[arg-type]
    path = tmp_path / f"{arch}-{quant}.gguf"
    quantize(f16, path, quant)
    _derive(path)
    rng = np.random.default_rng(3)
    codes = [int(c) for c in rng.integers(0, 12_800, 24)]
    with MioLLM(path, n_threads=2, audio_only=False) as full, MioLLM(path, n_threads=2) as fast:
        assert fast.audio_only and not full.audio_only
        kept = list(full.audio_token_ids) + list(full.end_ids)
        prompt = full.prompt_tokens(TEXT)
        assert fast.prompt_tokens(TEXT) == prompt
        for llm in (full, fast):
            llm._reset_context()
            llm._eval_prompt(prompt)
        assert np.array_equal(_logits(full)[kept], _logits(fast))
        for code in codes:
            full._eval([full.audio_token_ids[code]])
            fast._eval([code])
            assert np.array_equal(_logits(full)[kept], _logits(fast))


def test_the_first_load_makes_it_and_a_replaced_file_gets_a_new_one(tmp_path: Path, miodesk_home: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "first.gguf"
    write_test_gguf(path, "falcon-h1", weight_dtype="f32")
    with MioLLM(path, n_threads=1, audio_only=False) as full:
        expected = _codes(full, TEXT, seeds=[1])
    dest = audio_only_model.cached_path(path)
    assert not dest.exists()
    with caplog.at_level(logging.INFO, logger="miodesk.tts.llm"), MioLLM(path, n_threads=1) as first:
        assert first.audio_only
        assert _codes(first, TEXT, seeds=[1]) == expected
        with pytest.raises(ValueError, match="full model"):
            first.generate(TEXT, restrict_to_audio=False)
    assert f"Made {dest.name}" in caplog.text
    assert dest.parent == miodesk_home / "cache" / "llm"
    made = dest.stat().st_mtime_ns
    with MioLLM(path, n_threads=1) as second:  # kept: not made again
        assert second.audio_only
    assert dest.stat().st_mtime_ns == made

    # The model file replaced (a new download): a new key; making its copy removes the old one.
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert audio_only_model.cached_path(path) != dest
    with MioLLM(path, n_threads=1) as third:
        assert third.audio_only
    assert audio_only_model.cached_path(path).is_file() and not dest.exists()


def test_a_damaged_or_foreign_audio_only_model_falls_back_to_the_full_model(
        tmp_path: Path, miodesk_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "damaged.gguf"
    write_test_gguf(path, "qwen3", weight_dtype="f32")
    with MioLLM(path, n_threads=1, audio_only=False) as full:
        expected = _codes(full, TEXT, seeds=[2])
    dest = _derive(path)
    data = dest.read_bytes()
    dest.write_bytes(data[: len(data) // 2])  # cut short
    with caplog.at_level(logging.WARNING, logger="miodesk.tts.llm"), MioLLM(path, n_threads=1) as llm:
        assert not llm.audio_only
        assert _codes(llm, TEXT, seeds=[2]) == expected
    assert "Not using the audio-only model" in caplog.text
    assert not dest.exists()
    with MioLLM(path, n_threads=1) as llm:  # made again
        assert llm.audio_only

    # Made from another model that happens to share the name and key: refused by its source size.
    other = tmp_path / "other" / "damaged.gguf"
    other.parent.mkdir()
    write_test_gguf(other, "qwen3", weight_dtype="f32", vocab_extra=40)
    _derive(other).replace(dest)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="miodesk.tts.llm"), MioLLM(path, n_threads=1) as llm:
        assert not llm.audio_only
        assert _codes(llm, TEXT, seeds=[2]) == expected
    assert "another file" in caplog.text


def test_a_cache_that_cannot_be_written_leaves_the_full_model_working(
        tmp_path: Path, miodesk_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ro.gguf"
    write_test_gguf(path, "qwen3", weight_dtype="f32")
    cache = miodesk_home / "cache" / "llm"
    cache.mkdir(parents=True, exist_ok=True)
    if cache.exists():
        for entry in cache.iterdir():
            entry.unlink()
        cache.rmdir()
    cache.write_bytes(b"a file where the folder should be")
    try:
        with caplog.at_level(logging.WARNING), MioLLM(path, n_threads=1) as llm:
            assert not llm.audio_only
            assert _codes(llm, TEXT, seeds=[0])[0][0]
    finally:
        cache.unlink()
    assert "Could not make the audio-only model of ro.gguf" in caplog.text
