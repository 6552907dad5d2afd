"""`miodesk voices …` end to end: create/embed/rename/export/remove, and recording from a virtual mic."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import GOLDEN, REPO_ROOT, assert_one_line_error
from gguf_fixtures import make_model
from mic_fixtures import speech_wav, virtual_mic, write_wav  # noqa: F401 - fixtures

from miodesk.tts.voice_encoder import VoiceEncoder

CODEC = GOLDEN / "codec" / "v2_44k"
WAVLM = GOLDEN / "wavlm" / "hf"
MODELS = ("--codec", CODEC, "--wavlm", WAVLM)


def voices_dir(home: Path) -> Path:
    return home / "data" / "voices"


@pytest.fixture(scope="module")
def encoder() -> VoiceEncoder:
    return VoiceEncoder(CODEC, WAVLM)


def test_embed_writes_the_reference_vector(run_cli, tmp_path):
    d = np.load(GOLDEN / "encoder" / "v2_44k" / "voiced_3s.npz")
    wav = tmp_path / "voiced.wav"
    soundfile.write(str(wav), d["file_waveform"], int(d["file_sample_rate"]), subtype="FLOAT")
    out = tmp_path / "voice.npy"
    result = run_cli("voices", "embed", wav, "-o", out, *MODELS)
    assert result.returncode == 0, result.stderr
    vector = np.load(out)
    assert vector.dtype == np.float32 and vector.shape == (128,)
    assert np.abs(vector - d["global_embedding"]).max() <= 1e-4


def test_create_rename_export_remove(run_cli, miodesk_home, speech_wav, encoder, tmp_path):  # noqa: F811
    result = run_cli("voices", "create", "me", "--from", speech_wav, *MODELS)
    assert result.returncode == 0, result.stderr
    assert "Short" in result.stderr  # 6–7 s of speech: saved, with a hint
    folder = voices_dir(miodesk_home)
    assert sorted(p.name for p in folder.iterdir()) == ["me.flac", "me.json", "me.npy"]
    # the saved vector is exactly the encoder run on the kept (trimmed, 16-bit FLAC) recording
    np.testing.assert_allclose(np.load(folder / "me.npy"), encoder.encode_file(folder / "me.flac"), atol=1e-6)
    assert run_cli("voices", "list").stdout.split() == ["me"]

    assert run_cli("voices", "rename", "me", "mine").returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["mine.flac", "mine.json", "mine.npy"]
    exported = tmp_path / "mine.npy"
    assert run_cli("voices", "export", "mine", "-o", exported).returncode == 0
    np.testing.assert_array_equal(np.load(exported), np.load(folder / "mine.npy"))
    assert run_cli("voices", "export", "mine", "-o", tmp_path / "mine.flac").returncode == 0
    assert soundfile.info(str(tmp_path / "mine.flac")).frames > 0
    assert_one_line_error(run_cli("voices", "export", "mine", "-o", tmp_path / "mine.pt"), ".npy")
    assert run_cli("voices", "remove", "mine").returncode == 0
    assert list(folder.iterdir()) == []
    assert_one_line_error(run_cli("voices", "remove", "mine"), "no voice named")


def test_create_uses_the_installed_models(run_cli, miodesk_home, speech_wav):  # noqa: F811
    assert_one_line_error(run_cli("voices", "create", "x", "--from", speech_wav), "MioCodec")
    models = miodesk_home / "data" / "models"
    shutil.copytree(CODEC, models / "MioCodec-25Hz-44.1kHz-v2")
    assert_one_line_error(run_cli("voices", "create", "x", "--from", speech_wav), "wavlm-base-plus")
    shutil.copytree(WAVLM, models / "wavlm-base-plus")
    result = run_cli("voices", "create", "x", "--from", speech_wav)
    assert result.returncode == 0, result.stderr


def test_unusable_audio_saves_nothing(run_cli, miodesk_home, tmp_path):
    silent = write_wav(tmp_path / "silent.wav", np.zeros(44100 * 3), 44100)
    assert_one_line_error(run_cli("voices", "create", "quiet", "--from", silent, *MODELS), "nothing was heard")
    noise = write_wav(tmp_path / "noise.wav", np.random.default_rng(0).normal(0, 0.2, 44100 * 3), 44100)
    assert_one_line_error(run_cli("voices", "create", "noisy", "--from", noise, *MODELS), "noise")
    assert_one_line_error(run_cli("voices", "create", "bad", "--from", tmp_path / "none.wav", *MODELS), "does not exist")
    folder = voices_dir(miodesk_home)
    assert not folder.exists() or list(folder.iterdir()) == []


# --- recording through PulseAudio ------------------------------------------------------------------
def _other_voice(tmp_path: Path) -> Path:
    from mic_fixtures import SPEECH_TEXT

    path = tmp_path / "other.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+f3", "-p", "70", "-s", "160", "-w", str(path), SPEECH_TEXT],
                   check=True, capture_output=True, timeout=60)
    return path


def test_record_from_the_virtual_mic_and_speak_with_it(
    run_cli, miodesk_home, virtual_mic, speech_wav, encoder, tmp_path, monkeypatch  # noqa: F811
):
    env = dict(os.environ, MIODESK_HOME=str(miodesk_home), PULSE_SOURCE=virtual_mic.source)
    command = [sys.executable, "-m", "miodesk", "voices", "record", "mic", "--device", virtual_mic.device,
               "--seconds", "9.5", *map(str, MODELS)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=REPO_ROOT)
    assert process.stdout is not None
    first = process.stdout.readline()  # "Recording …" is printed just before the microphone opens
    assert first.startswith("Recording"), first + process.communicate(timeout=60)[1]
    player = virtual_mic.play(speech_wav, delay=0.5)
    stdout, stderr = process.communicate(timeout=120)
    player.wait(timeout=30)
    assert process.returncode == 0, stderr
    folder = voices_dir(miodesk_home)
    saved = np.load(folder / "mic.npy")
    # 1) exactly what the encoder gives for the recording that was kept
    np.testing.assert_allclose(saved, encoder.encode_file(folder / "mic.flac"), atol=1e-5)
    # 2) close to the source file: PulseAudio resampled it (22.05 → 44.1 kHz), quantised it to 16 bits
    # and the trim boundaries differ by a few ms, which moves the vector by about L2 0.2–0.4 (norm ≈ 11);
    # so we ask that it is nearer the source voice than a different espeak voice reading the same text.
    recorded, _ = soundfile.read(str(folder / "mic.flac"), dtype="float32")
    source, rate = soundfile.read(str(speech_wav), dtype="float32")
    assert abs(len(recorded) / 44100 - len(source) / rate) < 1.0
    own = encoder.encode_file(speech_wav)
    other = encoder.encode_file(_other_voice(tmp_path))
    assert np.linalg.norm(saved - own) < np.linalg.norm(saved - other)
    assert 1 - saved @ own / np.linalg.norm(saved) / np.linalg.norm(own) < 2e-3

    model = make_model(tmp_path, "speaker", "qwen3", eog_probability=0.05, seed=1)
    out = tmp_path / "out.wav"
    spoken = run_cli("speak", "Hello there, how are you?", "--voice", "mic", "-o", out,
                     "--model", model.path, "--codec", CODEC, "--seed", 3)
    assert spoken.returncode == 0, spoken.stderr
    assert soundfile.info(str(out)).frames > 0


def test_record_silence_is_refused(run_cli, miodesk_home, virtual_mic, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PULSE_SOURCE", virtual_mic.source)
    # nothing plays: PulseAudio's monitor may deliver nothing at all, or zeros
    result = run_cli("voices", "record", "hush", "--device", virtual_mic.device, "--seconds", 2, *MODELS,
                     timeout=60)
    assert_one_line_error(result)
    assert "nothing" in result.stderr.lower() or "stopped delivering" in result.stderr.lower()
    assert not (voices_dir(miodesk_home) / "hush.json").exists()


def test_unknown_microphone(run_cli):
    assert_one_line_error(run_cli("voices", "record", "x", "--device", "no such microphone", *MODELS),
                          "no microphone matches")
