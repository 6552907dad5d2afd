"""The exported voice encoder (WavLM layers + GlobalEncoder, ONNX on the CPU EP) against the goldens."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile
from conftest import GOLDEN

from miodesk.errors import ModelError
from miodesk.tts.export.encoder import (
    DEBUG_OUTPUTS,
    export_encoder,
    read_torch_checkpoint,
    relative_bucket_table,
)
from miodesk.tts.safetensors_io import read_safetensors, write_safetensors
from miodesk.tts.voice_encoder import VoiceEncoder, ensure_encoder, prepare

WAVLM_HF = GOLDEN / "wavlm" / "hf"
WAVLM_TA = GOLDEN / "wavlm"
CASES = sorted((GOLDEN / "encoder").glob("*/*.npz"))
EMBED_TOL = 1e-4  # golden README §8


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.fixture(scope="module")
def debug_sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ort.InferenceSession]:
    out = tmp_path_factory.mktemp("enc")
    sessions = {}
    for variant in ("v2_44k", "24k"):
        path = export_encoder(GOLDEN / "codec" / variant, WAVLM_HF, out / f"{variant}.onnx", debug_outputs=True)
        sessions[variant] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sessions


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_golden_case_through_onnx(case: Path, debug_sessions):
    d = np.load(case)
    variant = case.parent.name
    session = debug_sessions[variant]
    rate = 44100 if variant == "v2_44k" else 24000
    prepared = prepare(d["file_waveform"], int(d["file_sample_rate"]), rate)
    assert prepared.padding == int(d["padding"])
    if "loaded" in d.files:
        assert prepared.loaded.shape == d["loaded"].shape
        np.testing.assert_allclose(prepared.loaded, d["loaded"], atol=1e-5, rtol=0)
    if "resampled_16k" in d.files:
        assert prepared.audio_16k.shape == d["resampled_16k"].shape
        np.testing.assert_allclose(prepared.audio_16k, d["resampled_16k"], atol=1e-5, rtol=0)
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(None, {"audio_16k": prepared.audio_16k}), strict=True))
    for key in DEBUG_OUTPUTS:
        if key in d.files:
            ref = d[key]
            got = results["dbg_" + key]
            assert got.shape == ref.shape, key
            assert np.abs(got - ref).max() <= 1e-4 * max(1.0, float(np.abs(ref).max())), key
    err = float(np.abs(results["global_embedding"] - d["global_embedding"]).max())
    assert err <= EMBED_TOL, err


def test_encode_file_reads_wav_downmixes_and_resamples(tmp_path):
    """The whole runtime path from a float WAV on disk (48 kHz stereo) to the voice vector."""
    d = np.load(GOLDEN / "encoder" / "v2_44k" / "voiced_2s_48k_stereo.npz")
    wav = tmp_path / "stereo.wav"
    soundfile.write(str(wav), d["file_waveform"], int(d["file_sample_rate"]), subtype="FLOAT")
    encoder = VoiceEncoder(GOLDEN / "codec" / "v2_44k", WAVLM_HF)
    assert encoder.provider == "cpu"
    vector = encoder.encode_file(wav)
    assert vector.shape == (128,) and vector.dtype == np.float32
    assert np.abs(vector - d["global_embedding"]).max() <= EMBED_TOL
    # built once: a second encoder reuses the cached graph
    assert ensure_encoder(GOLDEN / "codec" / "v2_44k", WAVLM_HF) == encoder.onnx_path


def test_torchaudio_names_give_the_same_voice():
    d = np.load(GOLDEN / "encoder" / "24k" / "voiced_3s.npz")
    hf = VoiceEncoder(GOLDEN / "codec" / "24k", WAVLM_HF).encode_samples(d["file_waveform"], 24000)
    ta = VoiceEncoder(GOLDEN / "codec" / "24k", WAVLM_TA).encode_samples(d["file_waveform"], 24000)
    assert np.abs(ta - hf).max() <= 1e-5
    assert np.abs(ta - d["global_embedding"]).max() <= EMBED_TOL


def test_a_shallower_wavlm_is_driven_by_its_config(tmp_path):
    """A 4-layer checkpoint (like the hidden set's) with the new-style weight-norm names."""
    folder = tmp_path / "wavlm4"
    folder.mkdir()
    config = json.loads((WAVLM_HF / "config.json").read_text())
    config["num_hidden_layers"] = 4
    (folder / "config.json").write_text(json.dumps(config))
    tensors = {k: v for k, v in read_safetensors(WAVLM_HF / "model.safetensors").items()
               if ".layers." not in k or int(k.split(".layers.")[1].split(".")[0]) < 4}
    conv = "encoder.pos_conv_embed.conv."
    tensors[conv + "parametrizations.weight.original0"] = tensors.pop(conv + "weight_g")
    tensors[conv + "parametrizations.weight.original1"] = tensors.pop(conv + "weight_v")
    write_safetensors(folder / "model.safetensors", tensors)
    d = np.load(GOLDEN / "encoder" / "24k" / "noise_1s.npz")
    vector = VoiceEncoder(GOLDEN / "codec" / "24k", folder).encode_samples(d["file_waveform"], 24000)
    assert np.abs(vector - d["global_embedding"]).max() <= EMBED_TOL


# --- pytorch_model.bin without unpickling ----------------------------------------------------------
def _torch_zip(path: Path, tensors: dict[str, np.ndarray], extra_global: tuple[str, str] | None = None) -> None:
    """Write a torch.save-style zip by emitting the pickle opcodes a state_dict save contains."""
    out = bytearray(b"\x80\x02")

    def string(s: str) -> None:
        raw = s.encode()
        out.extend(b"X" + struct.pack("<I", len(raw)) + raw)

    def glob(module: str, name: str) -> None:
        out.extend(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def integer(v: int) -> None:
        out.extend(b"J" + struct.pack("<i", v))

    glob("collections", "OrderedDict")
    out.extend(b")R")  # OrderedDict()
    out.extend(b"(")  # MARK for SETITEMS
    storages = {}
    for i, (name, arr) in enumerate(tensors.items()):
        string(name)
        glob("torch._utils", "_rebuild_tensor_v2")
        out.extend(b"(")  # args tuple
        out.extend(b"(")  # persistent id tuple
        string("storage")
        glob("torch", "FloatStorage")
        string(str(i))
        string("cpu")
        integer(arr.size)
        out.extend(b"tQ")  # TUPLE, BINPERSID
        integer(0)
        out.extend(b"(")
        for dim in arr.shape:
            integer(dim)
        out.extend(b"t(")
        strides = np.cumprod((arr.shape[1:] + (1,))[::-1])[::-1] if arr.ndim else ()
        for s in strides:
            integer(int(s))
        out.extend(b"t\x89")  # stride tuple, False (requires_grad)
        glob("collections", "OrderedDict")
        out.extend(b")R")
        out.extend(b"tR")  # args TUPLE, REDUCE
        storages[str(i)] = np.ascontiguousarray(arr, "<f4").tobytes()
    if extra_global:
        string("evil")
        glob(*extra_global)
        string("echo hacked")
        out.extend(b"\x85R")
    out.extend(b"u")  # SETITEMS
    out.extend(b"}")  # state: {"_metadata": {}} as torch state_dicts carry, applied by BUILD
    string("_metadata")
    out.extend(b"}sb.")  # SETITEM, BUILD, STOP
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", bytes(out))
        for key, raw in storages.items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")


def test_pytorch_model_bin_is_read_without_unpickling(tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    shutil.copy(WAVLM_HF / "config.json", folder / "config.json")
    tensors = read_safetensors(WAVLM_HF / "model.safetensors")
    _torch_zip(folder / "pytorch_model.bin", tensors)
    loaded = read_torch_checkpoint(folder / "pytorch_model.bin")
    assert set(loaded) == set(tensors)
    for key in tensors:
        np.testing.assert_array_equal(loaded[key], tensors[key])
    d = np.load(GOLDEN / "encoder" / "v2_44k" / "voiced_3s.npz")
    vector = VoiceEncoder(GOLDEN / "codec" / "v2_44k", folder).encode_samples(d["file_waveform"], 44100)
    assert np.abs(vector - d["global_embedding"]).max() <= EMBED_TOL


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    _torch_zip(path, {"a": np.zeros(3, np.float32)}, extra_global=("os", "system"))
    with pytest.raises(ModelError, match="refusing"):
        read_torch_checkpoint(path)


# --- position buckets and the resampler -----------------------------------------------------------
def test_relative_buckets_follow_the_reference_rule():
    table = relative_bucket_table(320, 800)
    md = 800

    def bucket(r: int) -> int:
        return int(table[r + md])

    assert bucket(0) == 0 and bucket(-79) == 79 and bucket(79) == 160 + 79
    assert bucket(-80) == 80 and bucket(80) == 240
    assert bucket(-777) < 159 and bucket(-778) == 159 and bucket(800) == 319 and bucket(-800) == 159
    # monotone in |r| on both sides, and saturated before the clamp distance
    assert np.all(np.diff(table[md:]) >= 0) and np.all(np.diff(table[: md + 1]) <= 0)


def test_resampler_is_band_limited():
    from miodesk.audio.resample import resample, resample_kernel

    kernels = np.load(GOLDEN / "encoder" / "resample_kernels.npz")
    for orig, new in ((44100, 16000), (24000, 16000), (48000, 44100), (48000, 24000)):
        kernel, width, _, _ = resample_kernel(orig, new)
        ref = kernels[f"resample_{orig}_to_{new}_kernel"][:, 0, :]
        assert int(kernels[f"resample_{orig}_to_{new}_width"]) == width
        assert np.abs(kernel - ref).max() < 2e-5
    rate, seconds = 44100, 1.0
    t = np.arange(int(rate * seconds)) / rate
    # a 3 kHz tone passes unchanged (away from the edges) …
    out = resample(np.sin(2 * np.pi * 3000 * t).astype(np.float32), rate, 16000)
    t16 = np.arange(len(out)) / 16000
    middle = slice(200, -200)
    assert np.abs(out[middle] - np.sin(2 * np.pi * 3000 * t16)[middle]).max() < 2e-3
    # … a 10 kHz tone (above the new 8 kHz Nyquist) is removed, not folded back to 6 kHz
    alias = resample(np.sin(2 * np.pi * 10000 * t).astype(np.float32), rate, 16000)
    assert np.sqrt(np.mean(alias[middle] ** 2)) < 0.01 * np.sqrt(0.5)  # ≥ 40 dB down


def test_missing_wavlm_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="wavlm-base-plus"):
        VoiceEncoder(GOLDEN / "codec" / "24k", tmp_path)


def test_mp3_is_read_or_refused_clearly(tmp_path):
    from miodesk.errors import VoiceError

    d = np.load(GOLDEN / "encoder" / "24k" / "voiced_3s.npz")
    path = tmp_path / "voice.mp3"
    if "MP3" not in soundfile.available_formats():
        path.write_bytes(b"ID3")
        with pytest.raises(VoiceError, match="MP3"):
            VoiceEncoder(GOLDEN / "codec" / "24k", WAVLM_HF).encode_file(path)
        return
    buffer = io.BytesIO()
    soundfile.write(buffer, d["file_waveform"], 24000, format="MP3")
    path.write_bytes(buffer.getvalue())
    vector = VoiceEncoder(GOLDEN / "codec" / "24k", WAVLM_HF).encode_file(path)
    assert vector.shape == (128,)
    # lossy: close to, not equal to, the golden vector (norm ≈ 11)
    assert np.linalg.norm(vector - d["global_embedding"]) < 1.0
