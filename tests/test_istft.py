"""The numpy iSTFT head against the golden iSTFT cases, and the in-graph iSTFT against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from miodesk.tts.export import decoder as dec
from miodesk.tts.export.graph import FLOAT, GraphBuilder, value_info
from miodesk.tts.istft import istft, periodic_hann

GOLDEN = Path(__file__).parent / "data" / "golden" / "istft"
CASES = sorted(p.stem for p in GOLDEN.glob("*.npz"))


@pytest.mark.parametrize("case", CASES)
def test_istft_golden(case: str) -> None:
    d = np.load(GOLDEN / f"{case}.npz")
    n_fft, hop = int(d["n_fft"]), int(d["hop_length"])
    wave = istft(d["head_out"], n_fft, hop)
    assert wave.dtype == np.float32
    assert wave.shape == (hop * d["head_out"].shape[0],)
    err = float(np.abs(wave - d["waveform"]).max())
    print(f"{case}: max abs err {err:.3e}")
    assert err <= 1e-4
    assert np.allclose(periodic_hann(n_fft), d["window"], atol=1e-7)


def _istft_graph(n_fft: int, hop: int) -> ort.InferenceSession:
    g = GraphBuilder()
    ctx = dec._Ctx(g=g, w={}, cfg=type("C", (), {"n_fft": n_fft, "hop_length": hop})(), debug={})
    g.identity(dec._istft(ctx, "head"), "waveform")
    graph = helper.make_graph(g.nodes, "istft", [value_info("head", FLOAT, ["frames", n_fft + 2])],
                              [value_info("waveform", FLOAT, ["samples"])], initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", dec.OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("case", CASES)
def test_graph_istft_golden(case: str) -> None:
    d = np.load(GOLDEN / f"{case}.npz")
    sess = _istft_graph(int(d["n_fft"]), int(d["hop_length"]))
    (wave,) = sess.run(None, {"head": d["head_out"]})
    assert float(np.abs(wave - d["waveform"]).max()) <= 1e-4


@pytest.mark.parametrize(("n_fft", "hop"), [(16, 4), (12, 4), (10, 4)])
def test_graph_istft_other_sizes(n_fft: int, hop: int) -> None:
    """n_fft that is not 4·hop (or not a multiple of hop at all) still matches numpy."""
    rng = np.random.default_rng(3)
    head = rng.normal(0, 1, (7, n_fft + 2)).astype(np.float32)
    (wave,) = _istft_graph(n_fft, hop).run(None, {"head": head})
    assert np.allclose(wave, istft(head, n_fft, hop), atol=1e-5)


def test_istft_rejects_bad_shape() -> None:
    with pytest.raises(ValueError):
        istft(np.zeros((3, 10), np.float32), 16, 4)
