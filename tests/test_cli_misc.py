"""The codec commands, doctor, and the bare `miodesk` entry point."""

from __future__ import annotations

import numpy as np
from conftest import GOLDEN, assert_one_line_error


def test_codec_export_then_decode_matches_the_reference(run_cli, tmp_path):
    decoder = tmp_path / "decoder.onnx"
    exported = run_cli("codec", "export", GOLDEN / "codec" / "v2_44k", "-o", decoder)
    assert exported.returncode == 0, exported.stderr
    assert decoder.stat().st_size > 0

    case = np.load(GOLDEN / "codec" / "v2_44k" / "cases" / "t0060.npz")
    np.save(tmp_path / "tokens.npy", case["tokens"])
    np.save(tmp_path / "voice.npy", case["global_embedding"])
    out = tmp_path / "out.npy"
    decoded = run_cli(
        "codec", "decode", decoder, "--tokens", tmp_path / "tokens.npy",
        "--voice", tmp_path / "voice.npy", "-o", out,
    )
    assert decoded.returncode == 0, decoded.stderr
    waveform = np.load(out)
    assert waveform.shape == case["waveform"].shape
    assert np.max(np.abs(waveform - case["waveform"])) <= 1e-4


def test_codec_decode_with_speed_follows_the_reference_length(run_cli, tmp_path):
    case = np.load(GOLDEN / "codec" / "24k" / "cases" / "t0060_speed1.25.npz")
    np.save(tmp_path / "tokens.npy", case["tokens"])
    np.save(tmp_path / "voice.npy", case["global_embedding"])
    out = tmp_path / "fast.npy"
    result = run_cli(
        "codec", "decode", GOLDEN / "codec" / "24k", "--tokens", tmp_path / "tokens.npy",
        "--voice", tmp_path / "voice.npy", "-o", out, "--speed", "1.25",
    )
    assert result.returncode == 0, result.stderr
    assert np.max(np.abs(np.load(out) - case["waveform"])) <= 1e-4


def test_codec_decode_rejects_bad_tokens(run_cli, tmp_path):
    np.save(tmp_path / "tokens.npy", np.array([[1, 2]], dtype=np.int64))
    np.save(tmp_path / "voice.npy", np.zeros(128, dtype=np.float32))
    result = run_cli(
        "codec", "decode", GOLDEN / "codec" / "24k", "--tokens", tmp_path / "tokens.npy",
        "--voice", tmp_path / "voice.npy", "-o", tmp_path / "out.wav",
    )
    assert_one_line_error(result, "tokens.npy")


def test_codec_export_of_a_missing_folder(run_cli, tmp_path):
    assert_one_line_error(run_cli("codec", "export", tmp_path / "none", "-o", tmp_path / "d.onnx"), "none")


def test_doctor_reports_runtimes_and_folders(run_cli, miodesk_home):
    result = run_cli("doctor")
    assert result.returncode == 0, result.stderr
    for label in ("MioDesk:", "llama-cpp-python:", "onnxruntime:", "CPUExecutionProvider", "Audio:", "Models:"):
        assert label in result.stdout
    assert str(miodesk_home) in result.stdout


def test_bare_command_without_a_display_explains_instead_of_crashing(run_cli, monkeypatch):
    for variable in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(variable, raising=False)
    bare = run_cli(timeout=60)
    assert bare.returncode == 0
    assert "speak" in bare.stdout
    assert "no graphical display" in bare.stderr
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("MioDesk ")


def test_logs_go_to_the_log_folder(run_cli, miodesk_home, tmp_path):
    run_cli("codec", "export", tmp_path / "none", "-o", tmp_path / "d.onnx")
    log_text = (miodesk_home / "logs" / "miodesk.log").read_text()
    assert "none" in log_text
