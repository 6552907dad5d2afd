"""The speech model on an OpenAI-compatible server (issue 18).

Real components: llama-cpp-python's `llama_cpp.server` with generated MioTTS-like GGUFs (tests/
llm_server_fixtures.py), the real `miodesk` command, the codec and a PulseAudio null sink. llama-server
and vLLM cannot run here: their replies are REPLAYED in the shapes their source and documentation show
(tests/llm_replay_server.py), never recorded from real servers. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import llm_server_fixtures
import numpy as np
import pytest
import soundfile
from audio_helpers import MonitorRecorder, voiced_runs
from conftest import GOLDEN, assert_one_line_error
from gguf_fixtures import make_model
from llm_replay_server import VLLM_AUDIO_BASE, ReplayServer
from llm_server_fixtures import API_KEY, free_port, start_llm_server

from miodesk.text import text_for_model
from miodesk.tts.generation import FinishReason, SamplingParams
from miodesk.tts.llm_server import (
    LLAMA_CPP_PYTHON,
    LLAMA_SERVER,
    OLLAMA,
    UNKNOWN_SERVER,
    VLLM,
    AudioTokenParser,
    NoAudioTokensError,
    RemoteLLM,
    ServerConfig,
    ServerError,
    probe_server,
    sse_data,
)

CODEC = GOLDEN / "codec" / "v2_44k"
SAMPLES_PER_CODE = 1764
TEXT = "Hello there, how are you today?"
DOCUMENT = "The first sentence is here. And a second one follows.\n\nA short third."
DEAD_SERVER_LIMIT_S = 10.0  # issue 18: a dead server is reported within 10 s

# The shared llama_cpp.server (session scope), under the names pytest looks for.
llm_server = llm_server_fixtures.llm_server
llm_server_model = llm_server_fixtures.llm_server_model


def server_flags(server) -> list[str]:
    return ["--llm-base-url", server.base_url, "--llm-api-key", server.api_key]


@pytest.fixture
def codec_and_voices_only(miodesk_home: Path, run_cli) -> Path:
    """A MioDesk home with the default codec and the preset voices, and no speech model at all."""
    models = miodesk_home / "data" / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copytree(CODEC, models / "MioCodec-25Hz-44.1kHz-v2")
    for preset in ("en_female", "jp_female"):
        assert run_cli("voices", "import", GOLDEN / "presets" / f"{preset}.pt").returncode == 0
    assert not list(miodesk_home.rglob("*.gguf"))
    return miodesk_home


def in_process_codes(model_path: Path, text: str, seed: int, restrict: bool = False):
    """The codes MioDesk's own llama.cpp sampler draws for `text` with `seed` (unrestricted: as a server),
    on the full model as a server runs it."""
    from miodesk.tts.llm import MioLLM

    with MioLLM(model_path, n_threads=1, audio_only=False) as llm:
        generation = llm.generate(text_for_model(text), SamplingParams(seed=seed), restrict_to_audio=restrict)
        codes = list(generation)
        return codes, generation.finish_reason, generation.n_skipped


# --- through a real llama_cpp.server, with no local model ---------------------------------------------


def test_speak_through_a_real_server_from_the_environment(run_cli, llm_server, codec_and_voices_only, tmp_path,
                                                          monkeypatch):
    """`speak` with MIODESK_LLM_BASE_URL/KEY and nothing but the codec and voices installed: the audio is
    exactly what MioDesk's own sampler would make for the codes the server sends (same seed)."""
    monkeypatch.setenv("MIODESK_LLM_BASE_URL", llm_server.base_url)
    monkeypatch.setenv("MIODESK_LLM_API_KEY", llm_server.api_key)
    out = tmp_path / "hello.npy"
    result = run_cli("speak", TEXT, "-o", out, "--seed", 5)
    assert result.returncode == 0, result.stderr

    codes, reason, _ = in_process_codes(llm_server.model_path, TEXT, seed=5)
    assert reason == FinishReason.EOG and codes
    assert f"{len(codes)} codes" in result.stdout
    from miodesk.tts.codec import CodecRuntime, ensure_decoder
    from miodesk.tts.voices import resolve_voice

    decoder = ensure_decoder(codec_and_voices_only / "data" / "models" / "MioCodec-25Hz-44.1kHz-v2")
    codec = CodecRuntime(decoder, provider="cpu", intra_op_threads=1)
    expected = codec.decode(np.asarray(codes, dtype=np.int64), resolve_voice("en_female").vector)
    spoken = np.load(out)
    assert len(spoken) == len(codes) * SAMPLES_PER_CODE
    np.testing.assert_allclose(spoken, expected, atol=1e-4)

    logged = "\n".join(p.read_text(encoding="utf-8") for p in codec_and_voices_only.rglob("*.log"))
    assert f"on the server {llm_server.config().label()} (llama-cpp-python)" in logged
    assert API_KEY not in logged


def test_read_renders_through_a_real_server(run_cli, llm_server, codec_and_voices_only, tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text(DOCUMENT, encoding="utf-8")
    out = tmp_path / "doc.wav"
    result = run_cli("read", doc, "-o", out, "--seed", 3, "--stats", *server_flags(llm_server))
    assert result.returncode == 0, result.stderr
    heard = [line.split("] ", 1)[1] for line in result.stdout.splitlines() if line.startswith("[")]
    assert heard == ["The first sentence is here.", "And a second one follows.", "A short third."]
    stats = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    info = soundfile.info(str(out))
    assert info.samplerate == 44100 and info.frames >= stats["codes"] * SAMPLES_PER_CODE > 0


def test_read_live_through_a_real_server(run_cli, llm_server, codec_and_voices_only, pulse_sink, tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text(DOCUMENT, encoding="utf-8")
    with MonitorRecorder(44100) as recorder:
        result = run_cli("read", doc, "--seed", 4, "--stats", *server_flags(llm_server))
        recorder.catch_up(0.3)
        recording = recorder.audio()
    assert result.returncode == 0, result.stderr
    stats = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert stats["underruns"] == 0 and stats["audio_s"] > 0.5, stats
    voiced = sum(end - start for start, end in voiced_runs(recording))
    print(f"\nlive read through llama_cpp.server: {stats['audio_s']:.2f} s of speech, time to first audio "
          f"{stats['ttfa_s']:.2f} s, {voiced:.2f} s recorded above silence")
    assert voiced >= 0.5 * stats["audio_s"], (voiced, stats)


def test_server_codes_equal_in_process_codes_for_the_same_seed(llm_server):
    """llama_cpp.server samples with the same llama.cpp chain as MioDesk without its audio-only
    restriction (penalties 1.0, top_k, typical 1.0, top_p 1.0, min_p, temperature, dist(seed)): the codes
    match token for token, and the text tokens the client drops are the ones the model drew. (With the
    restriction, MioDesk's logit-bias stage changes which token the same random draw picks, so restricted
    in-process codes are not comparable.)"""
    remote = RemoteLLM(llm_server.config())
    assert remote.server_kind == LLAMA_CPP_PYTHON and remote.display_name == "MioTTS-server-test"
    dropped = 0
    for seed in (1, 2, 3):
        generation = remote.generate(text_for_model(TEXT), SamplingParams(seed=seed))
        codes = list(generation)
        expected, reason, skipped = in_process_codes(llm_server.model_path, TEXT, seed)
        assert codes == expected, seed
        assert generation.finish_reason == reason == FinishReason.EOG
        assert generation.n_skipped == skipped
        dropped += skipped
    assert dropped > 0  # the model drew text tokens, and the client dropped them


def test_probe_of_a_real_server(llm_server):
    probe = probe_server(llm_server.config())
    assert probe.kind == LLAMA_CPP_PYTHON and probe.audio_tokens and probe.model == "MioTTS-server-test"
    assert probe.summary().startswith("llama-cpp-python, model MioTTS-server-test, ")
    assert probe.summary().endswith(" s round trip, returns audio tokens")


def test_doctor_shows_the_server_and_never_the_key(run_cli, llm_server, monkeypatch):
    result = run_cli("doctor", *server_flags(llm_server))
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("Speech model server:"))
    assert line.startswith(f"Speech model server: {llm_server.base_url} (with an API key): llama-cpp-python, "
                           "model MioTTS-server-test, "), line
    assert line.endswith("returns audio tokens")
    assert API_KEY not in result.stdout + result.stderr

    monkeypatch.setenv("MIODESK_LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    dead = run_cli("doctor")
    line = next(line for line in dead.stdout.splitlines() if line.startswith("Speech model server:"))
    assert "does not work: Cannot reach the speech server" in line and "connection refused" in line

    monkeypatch.setenv("MIODESK_LLM_BASE_URL", "gpu-box:8000")
    wrong = run_cli("doctor")
    assert wrong.returncode == 0 and "Speech model server: cannot be used: The speech server URL 'gpu-box:8000' is " \
        "not an http:// or https:// address" in wrong.stdout

    monkeypatch.delenv("MIODESK_LLM_BASE_URL")
    none = run_cli("doctor")
    assert "Speech model server: none (the speech model runs in this process" in none.stdout


# --- bad cases: one line each, within a bounded time --------------------------------------------------


def _speak(run_cli, tmp_path, *flags, limit=60.0):
    out = tmp_path / "bad.wav"
    started = time.monotonic()
    result = run_cli("speak", TEXT, "--voice", GOLDEN / "presets" / "en_female.pt", "--codec", CODEC, "-o", out,
                     *flags, timeout=limit + 30)
    elapsed = time.monotonic() - started
    assert not out.exists()
    assert elapsed < limit, elapsed
    return result, elapsed


def test_a_dead_server_is_reported_in_one_line_within_10_s(run_cli, tmp_path):
    port = free_port()  # nothing listens there: the connection is refused (tried 3 times, as the official client)
    result, elapsed = _speak(run_cli, tmp_path, "--llm-base-url", f"http://127.0.0.1:{port}/v1",
                             limit=DEAD_SERVER_LIMIT_S)
    assert_one_line_error(result, f"127.0.0.1:{port}", "connection refused")
    print(f"\ndead server reported after {elapsed:.2f} s (whole `miodesk speak` process)")


def test_a_wrong_or_missing_key(run_cli, llm_server, tmp_path):
    result, _ = _speak(run_cli, tmp_path, "--llm-base-url", llm_server.base_url, "--llm-api-key", "wrong-key")
    assert_one_line_error(result, "refused the API key (HTTP 401)", "--llm-api-key")
    assert "wrong-key" not in result.stderr
    result, _ = _speak(run_cli, tmp_path, "--llm-base-url", llm_server.base_url)
    assert_one_line_error(result, "needs an API key (HTTP 401)")


def test_an_unknown_model(run_cli, llm_server, tmp_path):
    # llama_cpp.server itself would answer with its default model: MioDesk checks GET /models first.
    result, _ = _speak(run_cli, tmp_path, *server_flags(llm_server), "--llm-model", "MioTTS-9B")
    assert_one_line_error(result, "has no model 'MioTTS-9B'", str(llm_server.model_path))


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8000/v1", "127.0.0.1:8000/v1", "http:///v1", "http://a b/v1"])
def test_a_url_that_is_not_http(run_cli, tmp_path, url):
    result, elapsed = _speak(run_cli, tmp_path, "--llm-base-url", url, limit=20)
    assert_one_line_error(result, "speech server URL")


def test_options_that_do_not_fit_together(run_cli, tmp_path):
    result, _ = _speak(run_cli, tmp_path, "--llm-base-url", "http://127.0.0.1:1/v1", "--model", tmp_path / "m.gguf")
    assert_one_line_error(result, "either --model", "--llm-base-url")
    result, _ = _speak(run_cli, tmp_path, "--llm-model", "MioTTS-0.1B")
    assert_one_line_error(result, "--llm-base-url")


def test_a_server_whose_audio_tokens_are_hidden(run_cli, tmp_path_factory, tmp_path):
    """CONTROL-type audio tokens: llama_cpp.server prints them as "" (it detokenizes without special
    tokens), so the reply holds only the model's text tokens."""
    root = tmp_path_factory.mktemp("control_gguf")
    model = make_model(root, "MioTTS-control", "qwen3", audio_token_type="control", seed=1)
    server = start_llm_server(model.path, root)
    try:
        probe = probe_server(server.config())
        assert not probe.audio_tokens and "returns no audio tokens" in probe.summary()
        result, _ = _speak(run_cli, tmp_path, "--llm-base-url", server.base_url, "--seed", 1)
    finally:
        server.stop()
    assert_one_line_error(result, "returned no audio tokens", "CONTROL", "llama-server --special")


def test_a_server_that_interrupts_a_stream_for_the_next_request(tmp_path_factory, llm_server):
    """llama_cpp.server's default (--interrupt_requests true) cuts a running reply when another request
    arrives; MioDesk names the flag. With the flag off (the shared server) both replies finish."""
    root = tmp_path_factory.mktemp("interrupting")
    model = make_model(root, "MioTTS-nostop", "qwen3", eog_probability=None, seed=2)
    interrupting = start_llm_server(model.path, root, interrupt_requests=True)
    try:
        with pytest.raises(ServerError, match="--interrupt_requests false"):
            _two_at_once(RemoteLLM(interrupting.config()))
    finally:
        interrupting.stop()
    first, second = _two_at_once(RemoteLLM(llm_server.config()), max_tokens=60)
    assert first.finish_reason in (FinishReason.EOG, FinishReason.CAP) and second.finish_reason is not None


def _two_at_once(llm: RemoteLLM, max_tokens: int = 700):
    """A long reply, and a second request while it streams (a look-ahead, or a second reader)."""
    first = llm.generate("Hello.", SamplingParams(seed=1, max_tokens=max_tokens))
    next(first)
    second = llm.generate("Hello again.", SamplingParams(seed=2, max_tokens=20))
    other = threading.Thread(target=lambda: list(second), daemon=True)
    other.start()
    try:
        list(first)
    finally:
        other.join(timeout=60)
    return first, second


# --- replays of llama-server and vLLM -----------------------------------------------------------------


@pytest.mark.parametrize(("shape", "kind"), [("llama-server", LLAMA_SERVER), ("vllm", VLLM), ("ollama", OLLAMA)])
def test_replayed_chunk_shapes(shape, kind):
    with ReplayServer(shape, api_key="k1") as server:
        llm = RemoteLLM(ServerConfig(server.base_url, "k1"))
        assert llm.server_kind == kind and llm.model_name == server.model
        generation = llm.generate("Hello.", SamplingParams(seed=7, max_tokens=300))
        assert list(generation) == [5, 1200, 77, 12799, 0]
        assert generation.finish_reason == FinishReason.EOG and generation.n_skipped == 0
        assert generation.n_tokens == 5  # from the usage chunk
        request = server.chat_requests()[-1]
    body = request.body
    assert request.headers["Authorization"] == "Bearer k1"
    assert body["messages"] == [{"role": "user", "content": "Hello."}] and body["stream"] is True
    assert {k: body[k] for k in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "repetition_penalty",
                                 "presence_penalty", "frequency_penalty", "max_tokens", "seed")} == {
        "temperature": 0.8, "top_p": 1.0, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0,
        "repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0, "max_tokens": 300, "seed": 7}
    if shape == "vllm":  # its native allow-list: the 12,800 audio ids and <|im_end|> (7), learned from /tokenize
        assert body["allowed_token_ids"] == [7] + list(range(VLLM_AUDIO_BASE, VLLM_AUDIO_BASE + 12_800))
    else:
        assert "allowed_token_ids" not in body


def test_replayed_length_split_tokens_and_text():
    with ReplayServer("vllm") as server:
        server.pieces = ["<|s_1", "2|><|s", "_3|> some text <|s_", "4|>", "<", "|s_99999|>", " <|s_5|>\n"]
        server.finish_reason = "length"
        generation = RemoteLLM(ServerConfig(server.base_url)).generate("Hello.")
        assert list(generation) == [12, 3, 4, 5]
    assert generation.finish_reason == FinishReason.CAP
    assert generation.n_skipped == 2 and generation.skipped_chars == len("sometext") + len("<|s_99999|>")


def test_replayed_whole_reply_from_a_server_that_ignores_stream():
    with ReplayServer("llama-server") as server:
        server.fault = "json"
        generation = RemoteLLM(ServerConfig(server.base_url)).generate("Hello.")
        assert list(generation) == [5, 1200, 77, 12799, 0] and generation.finish_reason == FinishReason.EOG


@pytest.mark.parametrize(("fault", "message"), [
    ("close", "closed the connection in the middle of a sentence"),
    ("interrupt", "ended its reply before the sentence was finished (llama_cpp.server does this when another "
                  "request arrives: start it with --interrupt_requests false)"),
    ("error", "failed while generating: replayed failure: out of memory"),
])
def test_replayed_broken_streams(fault, message):
    with ReplayServer("llama-server") as server:
        server.fault = fault
        generation = RemoteLLM(ServerConfig(server.base_url)).generate("Hello.")
        started = time.monotonic()
        with pytest.raises(ServerError) as raised:
            list(generation)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert time.monotonic() - started < 5


def test_replayed_stall_is_reported_after_the_stall_timeout():
    with ReplayServer("vllm") as server:
        server.fault = "stall"
        generation = RemoteLLM(ServerConfig(server.base_url), stall_timeout=1.0).generate("Hello.")
        started = time.monotonic()
        with pytest.raises(ServerError, match="stopped sending for 1 s in the middle of a sentence"):
            list(generation)
        assert 0.9 < time.monotonic() - started < 3


def test_cancel_closes_a_stalled_stream_at_once():
    with ReplayServer("llama-server") as server:
        server.fault = "stall"
        cancel = threading.Event()
        generation = RemoteLLM(ServerConfig(server.base_url)).generate("Hello.", cancel=cancel)
        codes = [next(generation), next(generation)]
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        codes += list(generation)
        stopped_after = time.monotonic() - started
    assert codes == [5, 1200] and generation.finish_reason == FinishReason.CANCELLED
    assert stopped_after < 0.3 + 0.15, stopped_after  # the socket closed within the poll interval


def test_a_server_that_accepts_but_never_answers():
    """The port is open (the kernel accepts) but nothing answers, as from a hung server; then something
    that does not speak HTTP at all."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        config = ServerConfig(f"http://127.0.0.1:{silent.getsockname()[1]}/v1")
        started = time.monotonic()
        with pytest.raises(ServerError, match=r"^No answer from the speech server at 127\.0\.0\.1:\d+ within 1 s\.$"):
            RemoteLLM(config, timeout=1.0)
        assert time.monotonic() - started < 2

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()

        def babble() -> None:
            connection, _ = other.accept()
            with connection:
                connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                time.sleep(0.5)

        threading.Thread(target=babble, daemon=True).start()
        with pytest.raises(ServerError, match="does not answer in HTTP"):
            RemoteLLM(ServerConfig(f"http://127.0.0.1:{other.getsockname()[1]}/v1"))


def test_cancel_while_waiting_for_an_answer():
    with ReplayServer("llama-server") as server, socket.socket() as silent:
        llm = RemoteLLM(ServerConfig(server.base_url))
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        llm.config = ServerConfig(f"http://127.0.0.1:{silent.getsockname()[1]}/v1")  # the server hangs now
        cancel = threading.Event()
        generation = llm.generate("Hello.", cancel=cancel)
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        assert list(generation) == []
        assert generation.finish_reason == FinishReason.CANCELLED
        assert time.monotonic() - started < 0.3 + 0.15


def test_replayed_busy_server_is_retried_then_failures_reported():
    with ReplayServer("llama-server") as server:
        server.statuses = [503, 502]  # "Loading model", then a proxy's bad gateway: tried again
        llm = RemoteLLM(ServerConfig(server.base_url))
        started = time.monotonic()
        assert list(llm.generate("Hello.")) == [5, 1200, 77, 12799, 0]
        assert len(server.chat_requests()) == 3 and 1.4 < time.monotonic() - started < 5  # 0.5 s + 1 s apart
        server.statuses = [503, 503, 503]
        with pytest.raises(ServerError, match=r"failed \(HTTP 503: replayed HTTP 503\)"):
            list(llm.generate("Hello."))
        server.statuses = [500]  # not retried
        with pytest.raises(ServerError, match=r"failed \(HTTP 500: replayed HTTP 500\)"):
            list(llm.generate("Hello."))
        assert len(server.chat_requests()) == 3 + 3 + 1


def test_replayed_failures_through_the_command_line(run_cli, codec_and_voices_only, tmp_path):
    """5xx from `speak`, and a server gone in the middle of `read -o`: one line, position kept, no file."""
    with ReplayServer("llama-server") as server:
        server.statuses = [500]
        result, _ = _speak(run_cli, tmp_path, "--llm-base-url", server.base_url)
        assert_one_line_error(result, "failed (HTTP 500: replayed HTTP 500)")

        server.fault = "close"
        doc = tmp_path / "doc.txt"
        doc.write_text(DOCUMENT, encoding="utf-8")
        out = tmp_path / "doc.wav"
        result = run_cli("read", doc, "-o", out, "--llm-base-url", server.base_url, timeout=60)
    assert_one_line_error(result, "closed the connection in the middle of a sentence")
    # A file render is not continued with --from-char (that file would lack its beginning; issue 21).
    assert "--from-char" not in result.stderr
    assert not out.exists()


def test_replayed_wrong_path_and_unknown_kind():
    with ReplayServer("llama-server") as server:
        with pytest.raises(ServerError, match=r"has no /models \(HTTP 404\); check the URL, which usually ends in /v1"):
            RemoteLLM(ServerConfig(server.base_url.removesuffix("/v1")))
    with ReplayServer("ollama") as server:
        server.shape = "unknown"  # /api/version answers 404 now: an OpenAI-compatible server of some kind
        assert RemoteLLM(ServerConfig(server.base_url)).server_kind == UNKNOWN_SERVER


# --- units ----------------------------------------------------------------------------------------------


def test_audio_tokens_split_across_pieces():
    parser = AudioTokenParser()
    assert parser.feed("<|s_1") == []
    assert parser.feed("23|>") == [123]
    assert parser.feed("<|s_4|><") == [4]
    assert parser.feed("|") == [] and parser.feed("s_") == [] and parser.feed("56|>text") == [56]
    assert parser.feed(" a < b ") == []  # "<" followed by a space cannot start a token
    assert parser.feed("<|s_12800|>") == []  # out of the codec's range: text
    assert parser.feed("<|s_7") == []
    parser.finish()  # the reply ended inside a token: text after all
    assert parser.skipped_pieces == 4
    assert parser.skipped_chars == len("text") + len("a<b") + len("<|s_12800|>") + len("<|s_7")


def test_server_sent_events():
    raw = [b": ping\n", b"\n", b"event: message\n", b"data: {\"a\":\n", b"data: 1}\r\n", b"\n", b"data:[DONE]\n", b"\n",
           b"data: tail"]
    assert list(sse_data(iter(raw))) == ['{"a":\n1}', "[DONE]", "tail"]


def test_server_config(monkeypatch):
    monkeypatch.setenv("MIODESK_LLM_BASE_URL", "http://env-host:8000/v1/")
    monkeypatch.setenv("MIODESK_LLM_API_KEY", "env-key")
    config = ServerConfig.from_options(None)
    assert config == ServerConfig("http://env-host:8000/v1", "env-key")
    assert config.label() == "env-host:8000" and "env-key" not in repr(config)
    flags = ServerConfig.from_options("https://[::1]/v1", "flag-key", "MioTTS-1.2B")
    assert flags == ServerConfig("https://[::1]/v1", "flag-key", "MioTTS-1.2B") and flags.label() == "[::1]:443"
    assert ServerConfig.from_options("") is None  # an empty flag switches the environment's server off
    monkeypatch.delenv("MIODESK_LLM_BASE_URL")
    assert ServerConfig.from_options(None, "key") is None
    with pytest.raises(ServerError, match="not an http:// or https:// address"):
        ServerConfig("file:///tmp/x")
    with pytest.raises(ServerError, match="user name or password") as raised:
        ServerConfig("http://me:secret@host/v1")
    assert "secret" not in str(raised.value)
    with pytest.raises(ServerError, match="printable ASCII"):
        ServerConfig("http://host/v1", "ключ")


def test_no_audio_tokens_is_one_line_with_a_hint():
    with ReplayServer("llama-server") as server:
        server.pieces = ["Hello", "!", " How", " can", " I", " help?"]
        with pytest.raises(NoAudioTokensError) as raised:
            list(RemoteLLM(ServerConfig(server.base_url)).generate("Hello."))
    assert str(raised.value).endswith("returned no audio tokens (<|s_N|>) from MioTTS-0.1B-Q8_0: not a MioTTS model, "
                                      "or llama-server hides its audio tokens: start it with --special.")
