"""CodecRuntime, ensure_decoder, the exporter's input checks and the synthetic codecs."""

from __future__ import annotations

import json
import logging
import struct
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import reference_decoder
import yaml
from onnx import helper

import miodesk.tts.codec as codec_mod
from miodesk.errors import MioDeskError, ModelError, VoiceError
from miodesk.synthetic import write_random_codec
from miodesk.synthetic.codec import codec_config_dict
from miodesk.tts.codec import CodecRuntime, ensure_decoder, read_decoder_metadata
from miodesk.tts.codec_config import CodecConfig
from miodesk.tts.export.decoder import EXPORTER_VERSION, export_decoder
from miodesk.tts.export.layout import decoder_tensor_shapes, encoder_tensor_shapes
from miodesk.tts.safetensors_io import SafeTensorsFile, read_safetensors, write_safetensors

GOLDEN = Path(__file__).parent / "data" / "golden" / "codec"
VARIANTS = ("v2_44k", "24k")


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    for needle in needles:
        assert needle.lower() in msg.lower(), msg


@pytest.fixture(autouse=True)
def _home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIODESK_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="module")
def random_codecs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, CodecRuntime]]:
    """Small random codecs with a tiny RoPE table (max_seq_len 16), exported once."""
    out = {}
    for i, v in enumerate(VARIANTS):
        d = write_random_codec(tmp_path_factory.mktemp(f"rc_{v}"), v, "small", seed=10 + i, max_seq_len=16)
        # 24k uses the numpy-iSTFT graph so both placements meet the float64 reference
        onnx_path = export_decoder(d, d / "decoder.onnx", debug_outputs=True, istft_in_graph=v != "24k")
        out[v] = (d, CodecRuntime(onnx_path, provider="cpu", intra_op_threads=2))
    return out


def _voice(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.3, 128).astype(np.float32)


# --- numerical checks against the numpy reference ------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_rope_beyond_table_700_tokens(variant: str, random_codecs: dict) -> None:
    """700 tokens → 1400 decoder frames, far past 2·max_seq_len = 32 rows of the reference table."""
    codec_dir, rt = random_codecs[variant]
    cfg, w = reference_decoder.load_codec(codec_dir)
    assert cfg.prenet.max_seq_len == 16
    tokens = np.random.default_rng(5).integers(0, 12800, 700)
    voice = _voice(1)
    length = cfg.stft_length_for(700)
    assert length == 1400
    ref = reference_decoder.decode(cfg, w, tokens, voice, length)
    outs = dict(zip([o.name for o in rt.session.get_outputs()],
                    rt.session.run(None, {"tokens": tokens, "voice": voice,
                                          "stft_length": np.array(length, dtype=np.int64)}), strict=True))
    for key in ("prenet_out", "decoder_out"):
        scale = max(1.0, float(np.abs(ref[key]).max()))
        assert float(np.abs(outs["dbg_" + key] - ref[key]).max()) <= 1e-4 * scale, key
    wave = rt.decode(tokens, voice)
    assert wave.shape == ref["waveform"].shape
    err = float(np.abs(wave - ref["waveform"]).max())
    print(f"{variant} 700 tokens: max abs err vs float64 reference {err:.3e}")
    assert err <= 1e-4 * max(1.0, float(np.abs(ref["waveform"]).max()))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("speed", [0.5, 0.73, 1.6, 2.0])
def test_speeds_against_reference(variant: str, speed: float, random_codecs: dict) -> None:
    codec_dir, rt = random_codecs[variant]
    cfg, w = reference_decoder.load_codec(codec_dir)
    tokens = np.random.default_rng(int(speed * 100)).integers(0, 12800, 23)
    voice = _voice(2)
    wave = rt.decode(tokens, voice, speed=speed)
    ref = reference_decoder.decode(cfg, w, tokens, voice, cfg.stft_length_for(len(tokens), speed))
    assert wave.shape == ref["waveform"].shape
    assert float(np.abs(wave - ref["waveform"]).max()) <= 1e-4 * max(1.0, float(np.abs(ref["waveform"]).max()))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("n_tokens", [1, 2, 17, 64])
@pytest.mark.parametrize("speed", [0.5, 0.8, 1.0, 1.25, 1.9, 2.0])
def test_output_length(variant: str, n_tokens: int, speed: float, random_codecs: dict) -> None:
    _, rt = random_codecs[variant]
    wave = rt.decode(np.arange(n_tokens) * 97 % 12800, _voice(), speed=speed)
    frame = rt.hop_length * rt.upsample  # one decoder frame of output
    assert len(wave) == frame * rt.stft_length_for(n_tokens, speed)
    assert abs(len(wave) - rt.samples_per_token * n_tokens / speed) <= frame
    assert np.all(np.isfinite(wave))


def test_runtime_attributes(random_codecs: dict) -> None:
    assert random_codecs["v2_44k"][1].sample_rate == 44100
    assert random_codecs["v2_44k"][1].samples_per_token == 1764
    assert random_codecs["24k"][1].sample_rate == 24000
    assert random_codecs["24k"][1].samples_per_token == 960
    assert random_codecs["24k"][1].provider == "cpu"
    random_codecs["24k"][1].warm_up()


def test_metadata_props(random_codecs: dict) -> None:
    assert not random_codecs["24k"][1].istft_in_graph
    meta = read_decoder_metadata(random_codecs["v2_44k"][0] / "decoder.onnx")
    assert meta["sample_rate"] == "44100" and meta["samples_per_token"] == "1764"
    assert meta["hop_length"] == "98" and meta["upsample_factor"] == "9"
    assert meta["exporter_version"] == EXPORTER_VERSION and meta["variant"] == "v2_44k"
    model = onnx.load(str(random_codecs["v2_44k"][0] / "decoder.onnx"))
    assert {p.key: p.value for p in model.metadata_props} == meta
    assert [i.name for i in model.graph.input] == ["tokens", "voice", "stft_length"]
    assert model.graph.output[0].name == "waveform" and meta["istft"] == "graph"


# --- input validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tokens", "voice", "speed", "exc", "needle"),
    [
        (np.zeros(0, np.int64), None, 1.0, MioDeskError, "empty"),
        (np.array([1, 12800]), None, 1.0, MioDeskError, "12800"),
        (np.array([-1, 3]), None, 1.0, MioDeskError, "-1"),
        (np.zeros((2, 3), np.int64), None, 1.0, MioDeskError, "1-D"),
        (np.array([1.5, 2.0]), None, 1.0, MioDeskError, "integer"),
        (np.array([1, 2]), np.zeros(127, np.float32), 1.0, VoiceError, "128"),
        (np.array([1, 2]), np.full(128, np.nan, np.float32), 1.0, VoiceError, "NaN"),
        (np.array([1, 2]), None, 0.49, MioDeskError, "speed"),
        (np.array([1, 2]), None, 2.01, MioDeskError, "speed"),
    ],
)
def test_bad_decode_inputs(tokens, voice, speed, exc, needle, random_codecs: dict) -> None:
    _, rt = random_codecs["24k"]
    with pytest.raises(exc) as info:
        rt.decode(tokens, _voice() if voice is None else voice, speed=speed)
    _one_line(info, needle)


@pytest.fixture()
def codec_copy(tmp_path: Path) -> Path:
    return write_random_codec(tmp_path / "codec", "24k", "small", seed=3)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        export_decoder(tmp_path / "nope", tmp_path / "x.onnx")
    _one_line(info, "not found")
    with pytest.raises(ModelError) as info:
        ensure_decoder(tmp_path / "nope")
    _one_line(info, "not found")


def test_missing_config(codec_copy: Path, tmp_path: Path) -> None:
    (codec_copy / "config.yaml").unlink()
    with pytest.raises(ModelError) as info:
        export_decoder(codec_copy, tmp_path / "x.onnx")
    _one_line(info, "config")
    with pytest.raises(ModelError) as info:
        ensure_decoder(codec_copy)
    _one_line(info, "config.yaml")


def test_missing_safetensors(codec_copy: Path, tmp_path: Path) -> None:
    (codec_copy / "model.safetensors").unlink()
    with pytest.raises(ModelError) as info:
        export_decoder(codec_copy, tmp_path / "x.onnx")
    _one_line(info, "model.safetensors")


def test_truncated_safetensors(codec_copy: Path, tmp_path: Path) -> None:
    st = codec_copy / "model.safetensors"
    data = st.read_bytes()
    st.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ModelError) as info:
        export_decoder(codec_copy, tmp_path / "x.onnx")
    _one_line(info, "truncated", "model.safetensors", "download it again")
    st.write_bytes(data[:20])  # cut inside the header
    with pytest.raises(ModelError) as info:
        export_decoder(codec_copy, tmp_path / "x.onnx")
    _one_line(info, "truncated")


def test_garbage_safetensors(codec_copy: Path, tmp_path: Path) -> None:
    (codec_copy / "model.safetensors").write_bytes(struct.pack("<Q", 12) + b"not json at all" * 10)
    with pytest.raises(ModelError) as info:
        export_decoder(codec_copy, tmp_path / "x.onnx")
    _one_line(info, "model.safetensors")


def test_safetensors_missing_tensor(codec_copy: Path, tmp_path: Path) -> None:
    tensors = read_safetensors(codec_copy / "model.safetensors")
    del tensors["wave_decoder.layers.1.attention.wk.weight"]
    write_safetensors(codec_copy / "model.safetensors", tensors)
    with pytest.raises(ModelError) as info:
        export_decoder(codec_copy, tmp_path / "x.onnx")
    _one_line(info, "missing", "wave_decoder.layers.1.attention.wk.weight")


def test_safetensors_wrong_shape(codec_copy: Path, tmp_path: Path) -> None:
    tensors = read_safetensors(codec_copy / "model.safetensors")
    tensors["istft_head.out.weight"] = tensors["istft_head.out.weight"][:-2]
    write_safetensors(codec_copy / "model.safetensors", tensors)
    with pytest.raises(ModelError) as info:
        export_decoder(codec_copy, tmp_path / "x.onnx")
    _one_line(info, "istft_head.out.weight", "shape")


def test_config_wrong_width(codec_copy: Path, tmp_path: Path) -> None:
    """A config that does not match the weights names the first mismatching tensor."""
    data = yaml.safe_load((codec_copy / "config.yaml").read_text())
    data["model"]["init_args"]["wave_prenet"]["init_args"]["dim"] = 128
    data["model"]["init_args"]["local_quantizer"]["init_args"]["output_dim"] = 128
    (codec_copy / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError) as info:
        export_decoder(codec_copy, tmp_path / "x.onnx")
    _one_line(info, "local_quantizer.proj_out.weight", "shape")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("model: [unclosed", "yaml"),
        ("just a string", "MioCodec config"),
        ("model:\n  init_args:\n    config: {sample_rate: 24000}\n", "MioCodec config"),
    ],
)
def test_bad_config(text: str, needle: str, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ModelError) as info:
        CodecConfig.from_file(tmp_path / "config.yaml")
    _one_line(info, needle)


def test_config_missing_field() -> None:
    data = codec_config_dict("24k", "small")
    del data["model"]["init_args"]["config"]["hop_length"]
    with pytest.raises(ModelError) as info:
        CodecConfig.from_dict(data)
    _one_line(info, "hop_length")


# --- ensure_decoder and its cache ----------------------------------------------------------------
def test_ensure_decoder_caches_and_rebuilds(codec_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    calls: list[Path] = []
    import miodesk.tts.export.decoder as exporter

    real_export = exporter.export_decoder

    def counting_export(src: Path, dst: Path) -> Path:
        calls.append(dst)
        return real_export(src, dst)

    monkeypatch.setattr(exporter, "export_decoder", counting_export)  # ensure_decoder imports it when building
    with caplog.at_level(logging.INFO, logger="miodesk.tts.codec"):
        first = ensure_decoder(codec_copy)
    assert any("Building" in r.message for r in caplog.records)
    assert first.is_file() and first.parent == codec_mod.paths.onnx_cache_dir()
    assert ensure_decoder(codec_copy) == first and len(calls) == 1
    assert ensure_decoder(first) == first  # an .onnx path is used as is

    monkeypatch.setattr(codec_mod, "EXPORTER_VERSION", EXPORTER_VERSION + "-next")
    second = ensure_decoder(codec_copy)
    assert second != first and len(calls) == 2

    cfg_text = (codec_copy / "config.yaml").read_text()
    (codec_copy / "config.yaml").write_text(cfg_text + "\n# edited\n")
    third = ensure_decoder(codec_copy)
    assert third not in (first, second) and len(calls) == 3
    rt = CodecRuntime(third, provider="cpu", intra_op_threads=2)
    assert len(rt.decode(np.array([1, 2, 3]), _voice())) == 3 * 960


def test_ensure_decoder_rejects_bad_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(ModelError) as info:
        ensure_decoder(bad)
    _one_line(info, "bad.onnx")
    # a valid ONNX model that is not a decoder
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    other = tmp_path / "other.onnx"
    onnx.save_model(helper.make_model(graph), str(other))
    with pytest.raises(ModelError) as info:
        ensure_decoder(other)
    _one_line(info, "not a MioCodec decoder")
    with pytest.raises(ModelError) as info:
        ensure_decoder(tmp_path / "missing.onnx")
    _one_line(info, "not found")


def test_truncated_onnx_is_rejected(random_codecs: dict, tmp_path: Path) -> None:
    data = (random_codecs["24k"][0] / "decoder.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as info:
        CodecRuntime(cut, provider="cpu", intra_op_threads=2)
    _one_line(info, "cut.onnx")


# --- providers --------------------------------------------------------------------------------------
def test_provider_choice_and_fallback(random_codecs: dict, caplog: pytest.LogCaptureFixture) -> None:
    path = random_codecs["24k"][0] / "decoder.onnx"
    assert CodecRuntime(path, provider="cpu", intra_op_threads=2).provider == "cpu"
    with caplog.at_level(logging.WARNING, logger="miodesk.tts.codec"):
        rt = CodecRuntime(path, provider="directml", intra_op_threads=2)
    assert rt.provider == "cpu"  # no DirectML in this build: CPU, with a warning saying why
    assert any("CPU" in r.message and "Dml" in r.message for r in caplog.records)
    assert rt.fallback_reason and "\n" not in rt.fallback_reason
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="miodesk.tts.codec"):
        auto = CodecRuntime(path, provider="auto", intra_op_threads=2)
    assert auto.provider in ("cuda", "directml", "cpu")
    # under auto a CPU fallback is normal (CPU-only installs with onnxruntime-gpu): INFO, not WARNING
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    if auto.provider == "cpu" and auto.fallback_reason:
        assert any(auto.fallback_reason in r.message for r in caplog.records)
    with pytest.raises(MioDeskError) as info:
        CodecRuntime(path, provider="tpu", intra_op_threads=2)
    _one_line(info, "tpu")


def test_directml_gets_the_session_options_it_requires(random_codecs: dict,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """DirectML cannot exist here: a stand-in records the options it is offered and fails as a missing
    device does; the CPU session that follows gets memory patterns back."""
    import onnxruntime as ort

    real_session = ort.InferenceSession
    offered = []

    def recording_session(path, so, providers):
        offered.append((providers[0], so.enable_mem_pattern, so.execution_mode))
        if providers[0] == "DmlExecutionProvider":
            raise RuntimeError("no DirectML device")
        return real_session(path, so, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["DmlExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", recording_session)
    rt = CodecRuntime(random_codecs["24k"][0] / "decoder.onnx", provider="directml", intra_op_threads=2)
    assert offered == [("DmlExecutionProvider", False, ort.ExecutionMode.ORT_SEQUENTIAL),
                       ("CPUExecutionProvider", True, ort.ExecutionMode.ORT_SEQUENTIAL)]
    assert rt.provider == "cpu" and "no DirectML device" in rt.fallback_reason


# --- safetensors and layouts ----------------------------------------------------------------------
def test_safetensors_dtypes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a32 = rng.normal(size=(3, 4)).astype(np.float32)
    a16 = a32.astype(np.float16)
    write_safetensors(tmp_path / "t.safetensors", {"a": a32, "h": a16, "i": np.arange(5)})
    with SafeTensorsFile(tmp_path / "t.safetensors") as st:
        assert st.get("a").dtype == np.float32 and np.array_equal(st.get("a"), a32)
        assert st.get("h").dtype == np.float32 and np.array_equal(st.get("h"), a16.astype(np.float32))
        assert st.get("i").dtype == np.int64
    # BF16 written by hand: the top 16 bits of float32
    bf = (a32.view(np.uint32) >> 16).astype(np.uint16)
    header = json.dumps({"b": {"dtype": "BF16", "shape": [3, 4], "data_offsets": [0, bf.nbytes]}}).encode()
    (tmp_path / "bf.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bf.tobytes())
    with SafeTensorsFile(tmp_path / "bf.safetensors") as st:
        got = st.get("b")
    assert got.dtype == np.float32 and np.allclose(got, a32, rtol=1e-2)


@pytest.mark.parametrize(("variant", "n_tensors", "n_params"),
                         [("24k", 320, 130_762_887), ("v2_44k", 350, 132_016_399)])
def test_full_size_layout(variant: str, n_tensors: int, n_params: int) -> None:
    """The full synthetic layout has the real checkpoints' tensor and parameter counts."""
    cfg = CodecConfig.from_dict(codec_config_dict(variant, "full"))
    shapes = {**decoder_tensor_shapes(cfg), **encoder_tensor_shapes(cfg)}
    assert len(shapes) == n_tensors
    assert sum(int(np.prod(s)) for s in shapes.values()) == n_params
    assert cfg.samples_per_token == (1764 if variant == "v2_44k" else 960)


@pytest.mark.parametrize("variant", VARIANTS)
def test_small_synthetic_matches_golden_layout(variant: str, tmp_path: Path) -> None:
    write_random_codec(tmp_path, variant, "small")
    with SafeTensorsFile(tmp_path / "model.safetensors") as mine, \
            SafeTensorsFile(GOLDEN / variant / "model.safetensors") as gold:
        assert {k: mine.shape(k) for k in mine.keys()} == {k: gold.shape(k) for k in gold.keys()}


# --- banded attention -------------------------------------------------------------------------------
@pytest.mark.parametrize("window_size", [3, 65, 301])
def test_blocked_attention_matches_dense_and_reference(window_size: int, tmp_path: Path) -> None:
    """Block-banded attention equals dense masked attention for lengths around the block size and
    for windows narrower and wider than a block (window_size comes from config.yaml only)."""
    codec_dir = write_random_codec(tmp_path / "c", "24k", "small", seed=7)
    data = yaml.safe_load((codec_dir / "config.yaml").read_text())
    for section in ("wave_prenet", "wave_decoder"):
        data["model"]["init_args"][section]["init_args"]["window_size"] = window_size
    (codec_dir / "config.yaml").write_text(yaml.safe_dump(data))
    blocked = CodecRuntime(export_decoder(codec_dir, tmp_path / "b.onnx"), provider="cpu", intra_op_threads=2)
    dense = CodecRuntime(export_decoder(codec_dir, tmp_path / "d.onnx", attn_block=0), provider="cpu", intra_op_threads=2)
    cfg, w = reference_decoder.load_codec(codec_dir)
    voice = _voice(4)
    for n in (1, 15, 16, 17, 33, 90):
        tokens = np.random.default_rng(n).integers(0, 12800, n)
        wb = blocked.decode(tokens, voice)
        assert np.abs(wb - dense.decode(tokens, voice)).max() <= 1e-5, n
        if n in (17, 90):
            ref = reference_decoder.decode(cfg, w, tokens, voice, 2 * n)["waveform"]
            assert np.abs(wb - ref).max() <= 1e-4 * max(1.0, float(np.abs(ref).max())), n


# --- the optimised graph kept for the next start -------------------------------------------------
def test_the_optimised_graph_is_kept_reused_and_remade_when_damaged(random_codecs, caplog):
    """The first CPU session keeps its optimised graph in the cache, its weights in a file beside it; the
    next load uses it (no optimising) and decodes bit for bit the same; a damaged graph or weights file is
    made again; what older versions or another key left, and abandoned builds, are removed."""
    import os
    import shutil

    from miodesk import paths
    from miodesk.runtime import OPTIMIZED_WEIGHTS, optimized_graph_path

    _, first = random_codecs["v2_44k"]
    source = first.onnx_path
    kept = optimized_graph_path(source)
    cache = kept.parent.parent
    single_file = cache / f"{source.stem}.cpu-000000000000.ort.onnx"  # as an earlier version left it
    single_file.write_bytes(b"old")
    other_key = cache / f"{source.stem}.cpu-111111111111"  # as an older onnxruntime left it
    other_key.mkdir(exist_ok=True)
    (other_key / "graph.onnx").write_bytes(b"old")
    abandoned = cache / f"{kept.parent.name}.999999.partial"  # a build whose process ended an hour ago
    abandoned.mkdir(exist_ok=True)
    os.utime(abandoned, (time.time() - 7200, time.time() - 7200))
    under_way = cache / f"{kept.parent.name}.999998.partial"  # another process building now
    under_way.mkdir(exist_ok=True)
    shutil.rmtree(kept.parent, ignore_errors=True)
    tokens, voice = np.arange(24, dtype=np.int64) * 97 % 12800, _voice(3)

    made = CodecRuntime(source, provider="cpu", intra_op_threads=1)
    weights = kept.with_name(OPTIMIZED_WEIGHTS)
    assert kept.is_file() and cache == paths.onnx_cache_dir()
    assert weights.stat().st_size > 10 * kept.stat().st_size  # the weights are not inside the graph
    assert not single_file.exists() and not other_key.exists() and not abandoned.exists()
    assert [p.name for p in cache.glob("*.partial")] == [under_way.name]
    under_way.rmdir()
    stamp = kept.stat().st_mtime_ns
    reused = CodecRuntime(source, provider="cpu", intra_op_threads=1)
    assert kept.stat().st_mtime_ns == stamp  # read, not written again
    assert reused.session.get_session_options().graph_optimization_level.name == "ORT_DISABLE_ALL"
    expected = made.decode(tokens, voice)
    np.testing.assert_array_equal(reused.decode(tokens, voice), expected)

    for damaged, what in ((kept, b"not a graph"), (weights, weights.read_bytes()[:1000])):
        damaged.write_bytes(what)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="miodesk.runtime"):
            remade = CodecRuntime(source, provider="cpu", intra_op_threads=1)
        assert "cannot be used" in caplog.text, damaged.name
        assert kept.stat().st_size > 1000 and weights.stat().st_size > 10 * kept.stat().st_size
        assert not list(cache.glob("*.partial"))
        np.testing.assert_array_equal(remade.decode(tokens, voice), expected)


def test_without_a_cache_folder_the_graph_still_loads(random_codecs, monkeypatch):
    def no_folder():
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("miodesk.paths.onnx_cache_dir", no_folder)
    _, first = random_codecs["24k"]
    runtime = CodecRuntime(first.onnx_path, provider="cpu", intra_op_threads=1)
    tokens, voice = np.arange(8, dtype=np.int64), _voice(2)
    np.testing.assert_array_equal(runtime.decode(tokens, voice), first.decode(tokens, voice))


def test_a_cache_that_cannot_be_written_still_loads(random_codecs, monkeypatch):
    import shutil

    from miodesk.runtime import optimized_graph_path

    _, first = random_codecs["24k"]
    kept = optimized_graph_path(first.onnx_path)
    shutil.rmtree(kept.parent, ignore_errors=True)
    monkeypatch.setattr("miodesk.runtime.os.replace", lambda *_: (_ for _ in ()).throw(OSError(28, "No space")))
    runtime = CodecRuntime(first.onnx_path, provider="cpu", intra_op_threads=1)
    assert not kept.parent.exists() and not list(kept.parent.parent.glob("*.partial"))
    tokens, voice = np.arange(8, dtype=np.int64), _voice(1)
    np.testing.assert_array_equal(runtime.decode(tokens, voice), first.decode(tokens, voice))


def test_loading_a_decoder_graph_does_not_import_onnx(random_codecs):
    """`onnx` (with ml_dtypes, 0.6 s) is for building graphs only: starting to read never pays for it."""
    import subprocess
    import sys

    _, runtime = random_codecs["v2_44k"]
    probe = ("import sys; from pathlib import Path; from miodesk.tts.engine import SpeechEngine; "
             "from miodesk.tts.codec import CodecRuntime; "
             f"CodecRuntime(Path({str(runtime.onnx_path)!r}), 'cpu', intra_op_threads=1).warm_up(); "
             "print(sorted(m for m in sys.modules if m == 'onnx' or m.startswith(('onnx.', 'ml_dtypes'))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
