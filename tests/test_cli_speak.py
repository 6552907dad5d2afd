"""End to end through the real `miodesk` command: text → GGUF LLM → ONNX codec → audio file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import GOLDEN, assert_one_line_error

from miodesk.synthetic.gguf import write_test_gguf

PRESET = GOLDEN / "presets" / "jp_female.pt"
CODECS = {"v2_44k": (44100, 1764, 98 * 9), "24k": (24000, 960, 480)}


@pytest.fixture(scope="module")
def speaking_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small qwen3 MioTTS-shaped model that stops after ~20 codes on average."""
    path = tmp_path_factory.mktemp("models") / "MioTTS-test-qwen3.gguf"
    write_test_gguf(path, "qwen3", eog_probability=0.05, seed=1)
    return path


def spoken_codes(stdout: str) -> int:
    match = re.search(r"(\d+) codes", stdout)
    assert match, stdout
    return int(match.group(1))


@pytest.mark.parametrize("variant", sorted(CODECS))
@pytest.mark.parametrize(("speed", "suffix"), [(1.0, ".wav"), (1.25, ".flac"), (0.8, ".npy")])
def test_speak_writes_audio_of_exact_length(run_cli, speaking_model, tmp_path, variant, speed, suffix):
    sample_rate, samples_per_token, hop = CODECS[variant]
    out = tmp_path / f"out{suffix}"
    result = run_cli(
        "speak", "こんにちは、今日はいい天気ですね。", "--voice", PRESET, "-o", out,
        "--model", speaking_model, "--codec", GOLDEN / "codec" / variant,
        "--speed", speed, "--seed", 5,
    )
    assert result.returncode == 0, result.stderr
    codes = spoken_codes(result.stdout)
    assert 0 < codes < 700
    if suffix == ".npy":
        samples = np.load(out)
        assert samples.dtype == np.float32
        frames = len(samples)
    else:
        info = soundfile.info(str(out))
        assert info.samplerate == sample_rate
        assert info.subtype == "PCM_16"
        frames = info.frames
    assert abs(frames - samples_per_token * codes / speed) <= hop


def test_speak_is_repeatable_with_a_seed(run_cli, speaking_model, tmp_path):
    outputs = []
    for name in ("a.npy", "b.npy"):
        result = run_cli(
            "speak", "Hello there, how are you?", "--voice", PRESET, "-o", tmp_path / name,
            "--model", speaking_model, "--codec", GOLDEN / "codec" / "24k", "--seed", 11,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(np.load(tmp_path / name))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_speak_uses_an_imported_voice_and_the_models_folder(run_cli, speaking_model, miodesk_home, tmp_path):
    models = miodesk_home / "data" / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(speaking_model, models / "MioTTS-0.1B-Q8_0.gguf")
    shutil.copytree(GOLDEN / "codec" / "v2_44k", models / "MioCodec-25Hz-44.1kHz-v2")
    assert run_cli("voices", "import", PRESET).returncode == 0
    listed = run_cli("voices", "list")
    assert "jp_female" in listed.stdout.split()

    out = tmp_path / "default.wav"
    result = run_cli("speak", "おはようございます。", "-o", out, "--seed", 2)
    assert result.returncode == 0, result.stderr
    assert soundfile.info(str(out)).samplerate == 44100


def test_speak_reads_text_from_stdin(run_cli, speaking_model, tmp_path):
    out = tmp_path / "stdin.wav"
    result = run_cli(
        "speak", "-", "--voice", PRESET, "-o", out, "--model", speaking_model,
        "--codec", GOLDEN / "codec" / "24k", "--seed", 1, stdin="Good morning.\n",
    )
    assert result.returncode == 0, result.stderr
    assert out.exists()


def test_a_model_that_never_stops_is_reported_not_spoken(run_cli, tmp_path_factory, tmp_path):
    runaway = tmp_path_factory.mktemp("runaway") / "runaway.gguf"
    write_test_gguf(runaway, "qwen3", eog_probability=None, seed=2)
    out = tmp_path / "never.wav"
    result = run_cli(
        "speak", "Hello.", "--voice", PRESET, "-o", out, "--model", runaway,
        "--codec", GOLDEN / "codec" / "24k", "--seed", 1,
    )
    assert_one_line_error(result, "700 tokens")
    assert not out.exists()


# --- bad input: one line, non-zero exit, nothing written ---------------------------------------------


def _speak(run_cli, tmp_path, model, codec=GOLDEN / "codec" / "24k", voice=PRESET, text="Hello."):
    out = tmp_path / "bad.wav"
    result = run_cli("speak", text, "--voice", voice, "-o", out, "--model", model, "--codec", codec)
    assert not out.exists()
    return result


def test_missing_gguf(run_cli, tmp_path):
    assert_one_line_error(_speak(run_cli, tmp_path, tmp_path / "nope.gguf"), "nope.gguf")


def test_corrupt_gguf(run_cli, tmp_path, speaking_model):
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("this is not a model\n" * 50)
    assert_one_line_error(_speak(run_cli, tmp_path, text_file), "notes.gguf")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(speaking_model.read_bytes()[: speaking_model.stat().st_size // 3])
    assert_one_line_error(_speak(run_cli, tmp_path, truncated), "truncated.gguf")


def test_gguf_without_audio_tokens(run_cli, tmp_path):
    plain = tmp_path / "plain.gguf"
    write_test_gguf(plain, "qwen3", n_audio=0, rigged=False)
    assert_one_line_error(_speak(run_cli, tmp_path, plain), "audio tokens")


def test_codec_folder_with_truncated_weights(run_cli, tmp_path, speaking_model):
    codec = tmp_path / "codec"
    shutil.copytree(GOLDEN / "codec" / "24k", codec)
    weights = codec / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100_000])
    assert_one_line_error(_speak(run_cli, tmp_path, speaking_model, codec=codec), "truncated")


def test_codec_folder_with_wrong_weights(run_cli, tmp_path, speaking_model):
    codec = tmp_path / "codec"
    shutil.copytree(GOLDEN / "codec" / "24k", codec)
    shutil.copy(GOLDEN / "codec" / "v2_44k" / "model.safetensors", codec / "model.safetensors")
    assert_one_line_error(_speak(run_cli, tmp_path, speaking_model, codec=codec), "model.safetensors")


def test_voice_of_wrong_size(run_cli, tmp_path, speaking_model):
    voice = tmp_path / "small.npy"
    np.save(voice, np.zeros(64, dtype=np.float32))
    assert_one_line_error(_speak(run_cli, tmp_path, speaking_model, voice=voice), "small.npy", "128")


def test_empty_text(run_cli, tmp_path, speaking_model):
    assert_one_line_error(_speak(run_cli, tmp_path, speaking_model, text="   "), "text")


def test_long_text_is_split_into_sentences(run_cli, tmp_path, speaking_model):
    sentence = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    text = sentence * 12  # about 400 characters: more than one utterance may hold
    out = tmp_path / "long.npy"
    result = run_cli(
        "speak", text, "--voice", PRESET, "-o", out, "--model", speaking_model,
        "--codec", GOLDEN / "codec" / "24k", "--seed", 1,
    )
    assert result.returncode == 0, result.stderr
    codes = spoken_codes(result.stdout)
    pieces = 36  # three sentences, twelve times
    pause = int(0.25 * 24000)
    assert len(np.load(out)) == codes * 960 + (pieces - 1) * pause


def test_unknown_output_format(run_cli, tmp_path, speaking_model):
    result = run_cli("speak", "Hello.", "--voice", PRESET, "-o", tmp_path / "x.mp4", "--model", speaking_model)
    assert_one_line_error(result, "x.mp4")
