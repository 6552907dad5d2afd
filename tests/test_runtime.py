"""The runtime policy: the thread plan on every machine size, the provider spellings, the one session factory,
and that the engine, the codec and the voice encoder get exactly the threads the plan says."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN

from miodesk import runtime, system
from miodesk.errors import MioDeskError, ModelError
from miodesk.runtime import Provider, ThreadPlan, gpu_candidates, open_session
from miodesk.synthetic.gguf import write_test_gguf

PRESET = GOLDEN / "presets" / "jp_female.pt"
CODEC = GOLDEN / "codec" / "24k"
WAVLM = GOLDEN / "wavlm" / "hf"


def _plan_numbers(plan: ThreadPlan) -> tuple[int, int, int, int]:
    return plan.llm_threads, plan.llm_batch_threads, plan.codec_threads, plan.encoder_threads


# --- the plan ---------------------------------------------------------------------------------------------

# usable cores, physical cores → (llm, llm batch, codec, encoder): reading (pipelined), then one utterance
PLANS = [
    (1, 1, (1, 1, 1, 1), (1, 1, 1, 1)),
    (2, 2, (1, 2, 1, 1), (2, 2, 2, 1)),
    (2, 1, (1, 2, 1, 1), (2, 2, 2, 1)),
    (4, 2, (2, 4, 2, 1), (4, 4, 4, 1)),
    (4, 4, (2, 4, 2, 2), (4, 4, 4, 2)),
    (8, 4, (4, 8, 4, 2), (4, 8, 8, 2)),
    (8, 8, (4, 8, 4, 4), (4, 8, 8, 4)),
    (16, 8, (4, 16, 12, 4), (4, 16, 16, 4)),
    (16, 16, (4, 16, 12, 8), (4, 16, 16, 8)),
]


@pytest.mark.parametrize(("usable", "physical", "reading", "single"), PLANS)
def test_plan_for_given_core_counts(usable: int, physical: int, reading: tuple, single: tuple) -> None:
    assert _plan_numbers(ThreadPlan.for_reading(usable_cores=usable, physical_cores=physical)) == reading
    assert _plan_numbers(ThreadPlan.for_single_utterance(usable_cores=usable, physical_cores=physical)) == single
    # a pipelined reading never gives the LLM more than half the cores (one at least)
    plan = ThreadPlan.for_reading(usable_cores=usable, physical_cores=physical)
    assert plan.llm_threads + plan.codec_threads <= max(2, usable)


# logical, physical, usable (the affinity mask: taskset, start /affinity, a container's cpuset) → reading plan
AFFINITY = [
    (1, 1, 1, (1, 1, 1, 1)),
    (2, 1, 2, (1, 2, 1, 1)),
    (4, 2, 4, (2, 4, 2, 1)),
    (4, 2, 1, (1, 1, 1, 1)),
    (8, 4, 8, (4, 8, 4, 2)),
    (8, 4, 2, (1, 2, 1, 2)),
    (16, 8, 16, (4, 16, 12, 4)),
    (16, 8, 4, (2, 4, 2, 4)),
    (16, 16, 1, (1, 1, 1, 1)),
]


@pytest.mark.parametrize(("logical", "physical", "usable", "reading"), AFFINITY)
def test_plan_follows_the_machine_and_its_affinity_mask(monkeypatch: pytest.MonkeyPatch, logical: int, physical: int,
                                                        usable: int, reading: tuple) -> None:
    monkeypatch.setattr(system, "logical_cores", lambda: logical)
    monkeypatch.setattr(system, "physical_cores", lambda: physical)
    monkeypatch.setattr(system, "usable_cores", lambda: usable)
    plan = ThreadPlan.for_reading()
    assert _plan_numbers(plan) == reading
    assert plan.usable_cores == usable
    # nothing ever gets more threads than the cores this process may run on
    for single in (False, True):
        plan = ThreadPlan.decide(pipelined=not single)
        assert max(_plan_numbers(plan)) <= usable


@pytest.mark.parametrize(("requested", "expected", "warns"), [
    (None, 4, False),  # automatic
    (0, 4, False),  # the settings' "0 = automatic"
    (-3, 4, True),
    (1, 1, False),
    (3, 3, False),
    (8, 8, False),
    (9, 8, True),
    (99999, 8, True),
])
def test_overrides_are_clamped_to_the_usable_cores(caplog: pytest.LogCaptureFixture, requested: int | None,
                                                   expected: int, warns: bool) -> None:
    with caplog.at_level(logging.WARNING, logger="miodesk.runtime"):
        plan = ThreadPlan.for_reading(llm_threads=requested, codec_threads=requested, encoder_threads=requested,
                                      usable_cores=8, physical_cores=8)
    assert (plan.llm_threads, plan.codec_threads, plan.encoder_threads) == (expected, expected, expected)
    assert plan.llm_batch_threads == 8
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == (3 if warns else 0), warnings
    if warns:
        assert all(str(requested) in message for message in warnings)


def test_overrides_on_a_given_plan_keep_its_cores() -> None:
    plan = ThreadPlan.for_single_utterance(usable_cores=2, physical_cores=2)
    assert _plan_numbers(plan.with_overrides(codec_threads=99999)) == (2, 2, 2, 1)
    assert _plan_numbers(plan.with_overrides(llm_threads=1)) == (1, 2, 2, 1)
    assert plan.with_overrides() == plan


# --- providers --------------------------------------------------------------------------------------------


def test_provider_spellings() -> None:
    assert Provider.choices() == ("auto", "cuda", "directml", "cpu")
    assert Provider.parse(" CUDA ") is Provider.CUDA
    assert Provider.parse(Provider.DIRECTML) is Provider.DIRECTML
    # it reads, prints and serialises as its spelling, so results and logs keep theirs
    assert Provider.CPU == "cpu" and f"{Provider.CPU}|{Provider.CPU:>5}" == "cpu|  cpu"
    assert json.dumps({"provider": Provider.CUDA}) == '{"provider": "cuda"}'
    assert {"cpu": 1}[Provider.CPU] == 1
    with pytest.raises(MioDeskError) as info:
        Provider.parse("tpu")
    assert "'tpu'" in str(info.value) and "auto, cuda, directml or cpu" in str(info.value)


def test_command_lines_offer_the_provider_spellings() -> None:
    from miodesk.cli import build_parser

    parser = build_parser()
    for argv in (["speak", "x", "-o", "x.wav"], ["read", "x"], ["bench"]):
        args = parser.parse_args(argv)
        assert args.provider == "auto"
        for choice in Provider.choices():
            assert parser.parse_args([*argv, "--provider", choice]).provider == choice
    with pytest.raises(SystemExit):
        parser.parse_args(["speak", "x", "--provider", "tpu"])


def test_gpu_candidates_by_choice() -> None:
    everything = ["CUDAExecutionProvider", "DmlExecutionProvider", "CPUExecutionProvider"]
    assert gpu_candidates("auto", everything) == [Provider.CUDA, Provider.DIRECTML]
    assert gpu_candidates("auto", ["DmlExecutionProvider", "CPUExecutionProvider"]) == [Provider.DIRECTML]
    assert gpu_candidates("auto", ["CPUExecutionProvider"]) == []
    assert gpu_candidates("cuda", ["CPUExecutionProvider"]) == [Provider.CUDA]  # tried, so the reason is told
    assert gpu_candidates("cpu", everything) == []


def test_llm_offload_follows_the_provider() -> None:
    from miodesk.tts.engine import llm_gpu_layers

    assert llm_gpu_layers(Provider.AUTO, offload_supported=True) == -1
    assert llm_gpu_layers(Provider.CPU, offload_supported=True) == 0
    assert llm_gpu_layers("CPU", offload_supported=True) == 0


# --- sessions ---------------------------------------------------------------------------------------------


def _identity_graph() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _intra_op_threads(session) -> int:
    return session.get_session_options().intra_op_num_threads


def test_open_session_sets_the_threads_and_no_spinning(tmp_path: Path) -> None:
    path = tmp_path / "identity.onnx"
    path.write_bytes(_identity_graph())
    for model in (path, str(path), _identity_graph()):
        session, provider, reasons = open_session(model, "cpu", 3, "identity graph")
        assert provider is Provider.CPU and reasons == []
        options = session.get_session_options()
        assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert session.run(None, {"x": np.array([2.5], np.float32)})[0][0] == 2.5
    with pytest.raises(ValueError):
        open_session(path, "cpu", 0, "identity graph")
    with pytest.raises(MioDeskError):
        open_session(path, "tpu", 1, "identity graph")


def test_open_session_falls_back_to_the_cpu_and_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    session, provider, reasons = open_session(_identity_graph(), "cuda", 1, "identity graph")
    assert provider is Provider.CPU and reasons == ["CUDAExecutionProvider is not in this onnxruntime build"]
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(b"not a graph")
    with pytest.raises(ModelError) as info:
        open_session(damaged, "cpu", 1, "test graph damaged.onnx")
    assert str(info.value).startswith("Cannot load test graph damaged.onnx: ")
    assert "\n" not in str(info.value)


def test_probe_reports_where_graphs_run() -> None:
    provider, reasons = runtime.probe_provider("cpu")
    assert provider is Provider.CPU and reasons == []
    provider, _reasons = runtime.probe_provider()
    assert provider in (Provider.CUDA, Provider.DIRECTML, Provider.CPU)


# --- the threads the models really get --------------------------------------------------------------------


@pytest.fixture(scope="module")
def speaking_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runtime_models") / "MioTTS-test-qwen3.gguf"
    write_test_gguf(path, "qwen3", eog_probability=0.05, seed=1)
    return path


@pytest.fixture
def three_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine of 3 usable cores and 4 physical ones (an affinity mask), whatever this one has."""
    monkeypatch.setattr(system, "usable_cores", lambda: 3)
    monkeypatch.setattr(system, "physical_cores", lambda: 4)


def _engine_threads(engine) -> tuple[int, int, int]:
    """(LLM decode threads, LLM prompt threads, codec intra-op threads) as llama.cpp and onnxruntime got them."""
    return engine.llm.n_threads, engine.llm._llm.context_params.n_threads_batch, _intra_op_threads(engine.codec.session)


def _capture_engines(monkeypatch: pytest.MonkeyPatch) -> list:
    from miodesk.tts import engine as engine_module

    built: list = []

    class RecordedEngine(engine_module.SpeechEngine):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(engine_module, "SpeechEngine", RecordedEngine)
    return built


def test_speak_and_read_get_the_threads_of_their_plans(monkeypatch: pytest.MonkeyPatch, miodesk_home: Path,
                                                       three_cores: None, speaking_model: Path,
                                                       tmp_path: Path) -> None:
    from miodesk.cli import build_parser, run_read, run_speak

    built = _capture_engines(monkeypatch)
    common = ["--voice", str(PRESET), "--model", str(speaking_model), "--codec", str(CODEC), "--provider", "cpu"]
    speak = build_parser().parse_args(["speak", "Hello there.", "-o", str(tmp_path / "s.wav"), "--seed", "1", *common])
    assert run_speak(speak) == 0
    text = tmp_path / "text.txt"
    text.write_text("Hello there. How are you?", encoding="utf-8")
    read = build_parser().parse_args(["read", str(text), "-o", str(tmp_path / "r.wav"), *common])
    assert run_read(read) == 0
    assert len(built) == 2
    # speak: the LLM, then the codec, each on every usable core (the LLM at most 4)
    assert _engine_threads(built[0]) == (3, 3, 3)
    assert built[0].thread_plan == ThreadPlan.for_single_utterance()
    # read: pipelined, the LLM on 1 and the codec on the other 2; the prompt on all 3
    assert _engine_threads(built[1]) == (1, 3, 2)
    assert built[1].thread_plan == ThreadPlan.for_reading()


def test_codec_decode_command_uses_the_plan(monkeypatch: pytest.MonkeyPatch, miodesk_home: Path,
                                             three_cores: None, tmp_path: Path) -> None:
    from miodesk.cli import build_parser, run_codec_decode
    from miodesk.tts import codec as codec_module

    opened: list = []
    real_open_session = codec_module.open_session

    def recording_open_session(model, provider, threads, label, **options):
        opened.append(threads)
        return real_open_session(model, provider, threads, label, **options)

    monkeypatch.setattr(codec_module, "open_session", recording_open_session)
    tokens = tmp_path / "tokens.npy"
    np.save(tokens, np.arange(8, dtype=np.int64))
    args = build_parser().parse_args(["codec", "decode", str(CODEC), "--tokens", str(tokens), "--voice", str(PRESET),
                                      "-o", str(tmp_path / "c.wav"), "--provider", "cpu"])
    assert run_codec_decode(args) == 0
    assert opened == [ThreadPlan.for_single_utterance().codec_threads] == [3]


def test_voice_encoder_gets_the_plans_threads(miodesk_home: Path, three_cores: None) -> None:
    from miodesk.tts.voice_encoder import VoiceEncoder

    encoder = VoiceEncoder(CODEC, WAVLM)  # the window and `voices add` name no count: the plan's
    assert encoder.threads == ThreadPlan.for_reading().encoder_threads == 2  # half of 4 physical
    assert _intra_op_threads(encoder.session) == 2
    assert _intra_op_threads(VoiceEncoder(CODEC, WAVLM, threads=1).session) == 1


def test_window_engine_starts_with_absurd_thread_settings(miodesk_home: Path, speaking_model: Path,
                                                          tmp_path: Path) -> None:
    """`"codec_threads": 99999` in settings.json once made the window's engine start 99999 onnxruntime
    threads: never ready, memory growing, nothing logged. Now the plan clamps it to the usable cores."""
    from miodesk.settings import load_settings
    from miodesk.ui.controller import default_engine_factory

    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"model_path": str(speaking_model), "codec_path": str(CODEC), "provider": "cpu",
                                "llm_threads": 99999, "codec_threads": 99999}), encoding="utf-8")
    settings = load_settings(path)
    built: list = []
    failed: list[BaseException] = []

    def start() -> None:
        try:
            built.append(default_engine_factory(settings))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failed.append(error)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    starter.join(timeout=120)
    assert not starter.is_alive(), "the engine did not become ready within 2 minutes"
    assert not failed, failed
    cores = system.usable_cores()
    engine = built[0]
    assert (engine.thread_plan.llm_threads, engine.thread_plan.codec_threads) == (cores, cores)
    assert _intra_op_threads(engine.codec.session) == cores and engine.llm.n_threads == cores
