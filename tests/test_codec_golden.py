"""Every golden decoder case through the exported ONNX graph in onnxruntime (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import reference_decoder

from miodesk.tts.codec import CodecRuntime
from miodesk.tts.codec_config import CodecConfig
from miodesk.tts.export.decoder import export_decoder

GOLDEN = Path(__file__).parent / "data" / "golden" / "codec"
VARIANTS = ("v2_44k", "24k")
CASES = [(v, p.stem) for v in VARIANTS for p in sorted((GOLDEN / v / "cases").glob("*.npz"))]
WAVE_TOL = 1e-4
INTER_TOL = 1e-4


def _speed(case: str) -> float:
    return float(case.split("_speed")[1]) if "_speed" in case else 1.0


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def debug_graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ort.InferenceSession]:
    out = tmp_path_factory.mktemp("golden_onnx")
    return {v: _session(export_decoder(GOLDEN / v, out / f"{v}_debug.onnx", debug_outputs=True,
                                       istft_in_graph=True))
            for v in VARIANTS}


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CodecRuntime]:
    out = tmp_path_factory.mktemp("golden_rt")
    return {v: CodecRuntime(export_decoder(GOLDEN / v, out / f"{v}.onnx"), provider="cpu", intra_op_threads=2)
            for v in VARIANTS}


@pytest.mark.parametrize(("variant", "case"), CASES, ids=[f"{v}-{c}" for v, c in CASES])
def test_golden_case_with_intermediates(variant: str, case: str, debug_graphs: dict,
                                        record_property: pytest.RecordProperty) -> None:
    d = np.load(GOLDEN / variant / "cases" / f"{case}.npz")
    sess = debug_graphs[variant]
    feeds = {"tokens": d["tokens"], "voice": d["global_embedding"],
             "stft_length": np.array(int(d["stft_length"]), dtype=np.int64)}
    results = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
    wave = results["waveform"]
    assert wave.shape == d["waveform"].shape
    err = float(np.abs(wave - d["waveform"]).max())
    record_property("waveform_max_abs_err", err)
    print(f"{variant}/{case}: waveform max abs err {err:.3e}")
    assert err <= WAVE_TOL
    checked = 0
    for name, value in results.items():
        key = name.removeprefix("dbg_")
        if name == "waveform" or key not in d.files:
            continue
        ref = d[key]
        assert value.shape == ref.shape, key
        tol = INTER_TOL * max(1.0, float(np.abs(ref).max()))
        assert float(np.abs(value - ref).max()) <= tol, key
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize(("variant", "case"), CASES, ids=[f"{v}-{c}" for v, c in CASES])
def test_stft_length_matches_golden(variant: str, case: str, runtimes: dict) -> None:
    d = np.load(GOLDEN / variant / "cases" / f"{case}.npz")
    cfg = CodecConfig.from_file(GOLDEN / variant / "config.yaml")
    n, speed = len(d["tokens"]), _speed(case)
    assert cfg.stft_length_for(n, speed) == int(d["stft_length"])
    assert runtimes[variant].stft_length_for(n, speed) == int(d["stft_length"])


@pytest.mark.parametrize(("variant", "case"), [c for c in CASES if c[1] != "t0300"])
def test_runtime_decode_matches_golden(variant: str, case: str, runtimes: dict) -> None:
    """The public API (speed → stft_length inside) reproduces the golden waveform."""
    d = np.load(GOLDEN / variant / "cases" / f"{case}.npz")
    wave = runtimes[variant].decode(d["tokens"], d["global_embedding"], speed=_speed(case))
    assert runtimes[variant].istft_in_graph  # the default export: iSTFT inside the graph
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert wave.shape == d["waveform"].shape
    assert float(np.abs(wave - d["waveform"]).max()) <= WAVE_TOL


def test_samples_per_token() -> None:
    assert CodecConfig.from_file(GOLDEN / "v2_44k").samples_per_token == 1764
    assert CodecConfig.from_file(GOLDEN / "24k").samples_per_token == 960


@pytest.mark.parametrize("variant", VARIANTS)
def test_numpy_istft_export_through_runtime(variant: str, tmp_path: Path) -> None:
    """The alternative graph (ends at the head, numpy iSTFT after it) gives the same waveform."""
    rt = CodecRuntime(export_decoder(GOLDEN / variant, tmp_path / "d.onnx", istft_in_graph=False),
                      provider="cpu", intra_op_threads=2)
    assert not rt.istft_in_graph
    d = np.load(GOLDEN / variant / "cases" / "t0060_speed0.80.npz")
    wave = rt.decode(d["tokens"], d["global_embedding"], speed=0.8)
    assert float(np.abs(wave - d["waveform"]).max()) <= WAVE_TOL


@pytest.mark.parametrize("variant", VARIANTS)
def test_reference_decoder_matches_golden(variant: str) -> None:
    """The test-side numpy reference is itself right, so it can judge cases the goldens lack."""
    cfg, w = reference_decoder.load_codec(GOLDEN / variant)
    d = np.load(GOLDEN / variant / "cases" / "t0060_speed1.25.npz")
    out = reference_decoder.decode(cfg, w, d["tokens"], d["global_embedding"], int(d["stft_length"]))
    for key in ("prenet_out", "interpolated", "decoder_out", "post_net_out", "waveform"):
        assert float(np.abs(out[key] - d[key]).max()) <= 2e-5, key
