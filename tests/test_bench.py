"""`miodesk bench`: the tool runs and reports sane figures (a test of the tool, not of speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import llm_server_fixtures
import numpy as np
import pytest
from audio_helpers import MonitorRecorder, voiced_runs
from conftest import CliResult, assert_one_line_error
from llm_server_fixtures import API_KEY, free_port, start_llm_server

from miodesk.bench import (
    MAX_CLIENTS,
    MAX_SERVE_CLIENTS,
    WINDOW_PLAY_VOLUME,
    NullSink,
    SpeechReply,
    _load_row,
    bench_model_texts,
    bench_reading,
    best_split,
    is_loopback,
    parse_clients,
    parse_serve_load,
    parse_splits,
    percentile,
    serve_load_row,
)
from miodesk.errors import MioDeskError

REPO_ROOT = Path(__file__).parent.parent
REQUIRED = ("ttfa_s", "rtf", "underruns", "peak_rss_mb", "llm_tokens_per_s", "codec_ms_per_audio_s")

llm_server = llm_server_fixtures.llm_server
llm_server_model = llm_server_fixtures.llm_server_model


def run_bench(*args: str, timeout: float = 240) -> CliResult:
    completed = subprocess.run([sys.executable, "-m", "miodesk.bench", *args], capture_output=True, text=True,
                               encoding="utf-8", cwd=REPO_ROOT, timeout=timeout)
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def one_report(result: CliResult) -> dict:
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout  # exactly one JSON object
    return json.loads(lines[0])


def test_bench_json_quick_on_tiny_models(miodesk_home: Path, pulse_sink) -> None:
    env = dict(os.environ, MIODESK_HOME=str(miodesk_home))
    # Only the window plays to a device (the other readings go to the bench's null sink).
    with MonitorRecorder() as speakers:
        completed = subprocess.run(
            [sys.executable, "-m", "miodesk.bench", "--json", "--quick", "--tiny"],
            capture_output=True, text=True, encoding="utf-8", env=env, cwd=REPO_ROOT, timeout=240,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, completed.stdout  # exactly one JSON object
    report = json.loads(lines[0])
    for key in REQUIRED:
        assert isinstance(report[key], (int, float)), (key, report[key])
        assert report[key] >= 0, (key, report[key])
    assert report["rtf"] > 0
    assert report["llm_tokens_per_s"] > 0 and report["codec_ms_per_audio_s"] > 0
    assert isinstance(report["underruns"], int)
    assert report["end_to_end"]["audio_s"] > 0
    assert report["best_split"].startswith("llm ")
    assert {run["restrict_to_audio"] for run in report["llm"]["runs"]} == {True, False}
    assert all(row["chunked_ms_per_audio_s"] > 0 for row in report["codec"])
    # making a voice: the encoder graph was exported from generated WavLM + codec weights and ran
    voice = report["voice_encoder"]
    assert voice["graph_mb"] > 0 and all(run["ms"] > 0 and run["recording_s"] == 20 for run in voice["runs"])
    # the app really started and showed its window (the probe prints only from the window's first expose)
    startup = report["startup"]
    assert "error" not in startup["window"], startup["window"]
    assert 0 < startup["process_start_to_window_shown_s"] < 60
    assert startup["llm_load_s"] > 0 and startup["codec_load_s"] > 0
    # the app, launched with a document, read it aloud after Play: its first sentence was heard
    played = startup["window_play"]
    assert "error" not in played, played
    assert 0 < played["process_start_to_window_shown_s"] < played["process_start_to_first_sentence_heard_s"] < 120
    assert startup["process_start_to_first_sentence_heard_s"] == played["process_start_to_first_sentence_heard_s"]
    # (quietly: the stand-ins make noise; the bench plays it at WINDOW_PLAY_VOLUME)
    assert voiced_runs(speakers.audio() / WINDOW_PLAY_VOLUME), "the window's reading never reached the speakers"
    # the workers start from compiled modules, as an installed app does (not recompiling MioDesk each time)
    assert report["bytecode"] == "compiled, as installed"
    assert list((REPO_ROOT / "miodesk" / "tts" / "__pycache__").glob("engine.*.pyc"))
    # the generated models are cached: a second run does not build them again
    cached = sorted(p.name for p in (miodesk_home / "cache" / "bench").iterdir())
    assert any(name.endswith(".gguf") for name in cached) and any(name.endswith(".onnx") for name in cached)


def test_null_sink_paces_and_counts_underruns() -> None:
    rate = 8000
    sink = NullSink(rate, block=400, pace=4.0)  # 50 ms blocks, drained 4x faster than real time
    heard: list[object] = []
    sink.set_marker_handler(heard.append)
    try:
        sink.add_marker("start")
        started = time.perf_counter()
        assert sink.write(np.ones(rate, dtype=np.float32))  # 1 s of audio: ~0.25 s at pace 4
        assert sink.first_audio_time is not None
        sink.add_marker("end")
        assert sink.wait_until_played(timeout=5)
        assert time.perf_counter() - started >= 0.15  # it really paced the playback
        assert heard == ["start", "end"]
        time.sleep(0.1)  # starved while audio is still expected: underruns
        assert sink.underruns > 0
        sink.reset()
        sink.end_of_audio()
        time.sleep(0.1)  # nothing more expected: silence is no underrun
        assert sink.underruns == 0
    finally:
        sink.close()


def test_splits_and_choice() -> None:
    assert parse_splits("1+1,2+1,1+2", 2) == [(1, 1), (2, 1), (1, 2)]
    assert parse_splits("auto", 2)[0] == (1, 1)
    assert len(parse_splits("auto", 2)) == 3
    runs = [
        {"llm_threads": 1, "codec_threads": 1, "rtf": 0.30, "ttfa_s": 0.25, "underruns": 0, "errors": []},
        {"llm_threads": 2, "codec_threads": 1, "rtf": 0.20, "ttfa_s": 0.20, "underruns": 3, "errors": []},
        {"llm_threads": 1, "codec_threads": 2, "rtf": 0.29, "ttfa_s": 0.22, "underruns": 0, "errors": []},
    ]
    assert best_split(runs)["codec_threads"] == 2  # no underruns, near-lowest RTF, then the faster start


def test_bench_reading_lengths() -> None:
    source, utterances = bench_reading(300)
    assert utterances and all(source[u.start : u.end] == u.text for u in utterances)
    languages = {u.language for u in utterances}
    assert "ja" in languages and "en" in languages


def test_bench_through_a_server_with_load_test(llm_server, miodesk_home: Path) -> None:
    """End to end through a real llama_cpp.server (with a key), the in-process comparison and a load test
    of 1 and 2 concurrent readers, each its own process; the report says where the model ran."""
    started = time.monotonic()
    result = run_bench("--json", "--tiny", "--quick", "--llm-base-url", llm_server.base_url,
                       "--llm-api-key", llm_server.api_key, "--clients", "1,2", "--compare-in-process",
                       "--skip", "startup,voice")
    report = one_report(result)
    assert time.monotonic() - started < 120
    assert API_KEY not in result.stdout + result.stderr  # the key is never printed
    server = report["llm_server"]
    assert server["url"] == llm_server.base_url and server["kind"] == "llama-cpp-python"
    assert server["model"] == "MioTTS-server-test" and server["api_key"] == "given"
    assert server["serves_bench_model"] is False  # not the bench's stand-in: compared only on request
    assert "llama_cpp.server" in server["serve_command"] and "--interrupt_requests false" in server["serve_command"]
    # the served stand-in is built, and where it is said (to serve it)
    assert Path(report["set"]["model_path"]).is_file() and report["set"]["model_file"].endswith("-served-v1.gguf")
    # every existing headline key, from the reading through the server
    for key in REQUIRED:
        assert isinstance(report[key], (int, float)), (key, report[key])
    assert "llm" not in report and "server" in report["llm_skipped"]
    final = report["end_to_end"]
    assert final["llm_on"] == "server" and final["audio_s"] > 0 and not final["errors"]
    assert report["best_split"].startswith("server + codec ")
    assert report["llm_tokens_per_s"] == final["llm_tokens_per_s"] > 0
    # in-process vs server: the same reading both ways, medians and ratios
    comparison = report["in_process_vs_server"]
    assert comparison["runs_each"] == 1 and comparison["same_model"] is False
    for side in ("in_process", "server"):
        figures = comparison[side]
        assert len(figures["ttfa_s"]) == 1 and figures["median_ttfa_s"] > 0 and figures["median_audio_s"] > 0
        assert not figures["errors"]
    assert comparison["ratio_server_to_in_process"]["ttfa_s"] > 0
    # the load test: K = 1, 2 readers at once, each produced audio, per client and per K
    load = report["load"]
    assert [row["clients"] for row in load] == [1, 2]
    for row in load:
        k = row["clients"]
        assert not row["errors"], row["errors"]
        assert len(row["per_client"]) == len(row["ttfa_s"]) == len(row["underruns"]) == len(row["rtf"]) == k
        assert row["clients_with_audio"] == k and all(audio > 0 for audio in row["audio_s"])
        assert all(t > 0 for t in row["ttfa_s"]) and all(isinstance(n, int) for n in row["underruns"])
        assert row["median_ttfa_s"] > 0 and row["max_ttfa_s"] >= row["median_ttfa_s"]
        assert 0 <= row["start_spread_s"] < 5  # they really read at the same time


def test_bench_compares_with_in_process_when_its_own_model_is_served(miodesk_home: Path, tmp_path: Path) -> None:
    """Serving the bench's stand-in (as the README says) makes the same reading run both ways by itself:
    the same prompts (cut beforehand, none missed) and the same lengths, so the same audio."""
    from miodesk.bench import build_model

    server = start_llm_server(build_model("0.1B", "Q8_0", tiny=True, served=True), tmp_path)
    try:
        report = one_report(run_bench("--json", "--tiny", "--quick", "--llm-base-url", server.base_url,
                                      "--skip", "startup,voice,codec,llm"))
    finally:
        server.stop()
    assert report["llm_server"]["serves_bench_model"] is True and report["llm_server"]["api_key"] == "none"
    assert report["end_to_end"]["prompt_misses"] == 0 and "load" not in report
    comparison = report["in_process_vs_server"]
    assert comparison["same_model"] is True and comparison["model"] == report["set"]["model_file"]
    assert comparison["in_process"]["audio_s"] == comparison["server"]["audio_s"]  # every code capped alike
    assert comparison["in_process"]["median_peak_rss_mb"] > 0 and comparison["server"]["median_peak_rss_mb"] > 0


def test_load_test_refuses_a_server_elsewhere(miodesk_home: Path) -> None:
    """Never hammer someone else's server by accident: refused at once, before any connection. Other
    option errors and a dead server: one line each."""
    started = time.monotonic()
    result = run_bench("--llm-base-url", "http://192.0.2.7:8000/v1", "--clients", "1,2", "--json", timeout=60)
    assert_one_line_error(result, "load test", "192.0.2.7:8000", "--load-remote")
    assert time.monotonic() - started < 30
    assert result.stdout == ""
    assert_one_line_error(run_bench("--clients", "1,2", timeout=60), "--clients needs --llm-base-url")
    started = time.monotonic()
    dead = run_bench("--llm-base-url", f"http://127.0.0.1:{free_port()}/v1", "--clients", "1", timeout=60)
    assert_one_line_error(dead, "cannot reach the speech server")  # before anything is built or measured
    assert time.monotonic() - started < 10
    assert_one_line_error(run_bench("--llm-base-url", "http://127.0.0.1:9/v1", "--clients", "1,99", timeout=60),
                          f"from 1 to {MAX_CLIENTS}")


def test_print_model_path_says_how_to_serve_it(miodesk_home: Path) -> None:
    result = run_bench("--tiny", "--print-model-path", timeout=120)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.is_file() and path.name == "miotts-0.1B-Q8_0-tiny-served-v1.gguf"
    assert "llama_cpp.server" in result.stderr and "--interrupt_requests false" in result.stderr
    assert "miodesk bench --llm-base-url http://127.0.0.1:8000/v1" in result.stderr


def test_loopback_and_clients_parsing() -> None:
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1",
                "http://127.1.2.3/v1", "https://LOCALHOST./v1"):
        assert is_loopback(url), url
    for url in ("http://192.168.1.10:8000/v1", "http://gpu-box:8000/v1", "http://0.0.0.0:8000/v1",
                "http://localhost.example.com/v1", "http://[::2]/v1"):
        assert not is_loopback(url), url
    assert parse_clients("1,2,4") == [1, 2, 4] and parse_clients(" 4 ") == [4]
    for bad in ("", "0", "1,x", "-1", str(MAX_CLIENTS + 1)):
        with pytest.raises(MioDeskError):
            parse_clients(bad)


def test_load_row_reports_a_client_that_failed() -> None:
    ok = json.dumps({"ttfa_s": 0.2, "rtf": 0.5, "llm_rtf": 0.5, "underruns": 0, "audio_s": 3.0, "errors": [],
                     "started_at": 100.0})
    slow = json.dumps({"ttfa_s": 0.9, "rtf": 1.2, "llm_rtf": 1.2, "underruns": 4, "audio_s": 3.0, "errors": [],
                       "started_at": 100.01})
    row = _load_row(3, [(0, ok + "\n", ""), (0, slow, ""), (None, "", "")], timeout=150)
    assert row["clients"] == 3 and row["ttfa_s"] == [0.2, 0.9, None] and row["underruns"] == [0, 4, None]
    assert row["median_ttfa_s"] == 0.55 and row["max_ttfa_s"] == 0.9 and row["clients_with_underruns"] == 1
    assert row["clients_with_audio"] == 2 and row["start_spread_s"] == 0.01
    assert row["errors"] == ["client 3 of 3: stopped after 150 s"]
    failed = _load_row(1, [(1, "", "warning\nmiodesk: error: The speech server at 127.0.0.1:9 is not running.")], 60)
    assert failed["errors"] == ["client 1 of 1: exit status 1: miodesk: error: The speech server at 127.0.0.1:9 is "
                                "not running."]
    assert failed["clients_with_audio"] == 0 and failed["median_ttfa_s"] is None


def test_prompt_map_covers_every_bench_reading() -> None:
    """The texts cut for a server (which cannot count tokens for us) are those the readings send."""
    from miodesk.text import text_for_model
    from miodesk.text.segment import segment

    texts = set(bench_model_texts())
    source, utterances = bench_reading(300)
    assert {text_for_model(u.text) for u in utterances} <= texts
    assert text_for_model("Hello world.") in texts
    assert {text_for_model(u.text) for u in segment("Hello world.")} <= texts


def test_bench_through_the_speech_server_reports_first_byte_and_load(miodesk_home: Path) -> None:
    """`--serve`: the real HTTP server on a free loopback port, the first streamed byte against the in-process
    time to first audio of the same text, and a load test that stops by itself; with a queue of 2, four
    requests at once are either served or refused with the documented 503, never failed."""
    started = time.monotonic()
    env = dict(os.environ, MIODESK_HOME=str(miodesk_home))
    completed = subprocess.run(
        [sys.executable, "-m", "miodesk.bench", "--json", "--tiny", "--quick", "--serve", "--serve-load", "1,4",
         "--serve-queue", "2", "--skip", "llm,codec,voice,e2e,startup"],
        capture_output=True, text=True, encoding="utf-8", env=env, cwd=REPO_ROOT, timeout=120,
    )
    report = one_report(CliResult(completed.returncode, completed.stdout, completed.stderr))
    assert time.monotonic() - started < 120
    served = report["speech_server"]
    assert served["request"] == {"model": served["request"]["model"], "response_format": "pcm", "stream": True}
    assert served["runs_each"] == 2 and served["queue_size"] == 2 and served["llm_on"] == "this process"
    for key in ("ttfa_in_process_s", "service_first_audio_s", "http_first_byte_s", "http_complete_s"):
        assert len(served[key]) == 2 and all(0 < value < 30 for value in served[key]), (key, served[key])
    assert 0 < served["median_http_first_byte_s"] <= served["median_http_complete_s"]
    assert served["median_ttfa_in_process_s"] > 0 and served["median_service_first_audio_s"] > 0
    overhead = (served["median_http_first_byte_s"] - served["median_ttfa_in_process_s"]) * 1000
    assert abs(served["first_byte_overhead_ms"] - overhead) < 1
    assert served["target_ms"] == 150 and isinstance(served["meets_target"], bool)
    assert not served["errors"]
    rows = served["load"]
    assert [row["clients"] for row in rows] == [1, 4]
    for row in rows:
        assert row["failed"] == 0 and not row["errors"] and row["healthy_after"]
        assert row["served"] + row["busy_503"] == row["clients"] and row["served"] >= 1
        assert 0 < row["first_byte_s"]["p50"] <= row["first_byte_s"]["p95"]
        assert row["first_byte_s"]["p50"] <= row["complete_s"]["p50"] <= row["complete_s"]["p95"]
        assert row["audio_s"] > 0
    assert rows[0]["served"] == 1
    assert all(seconds >= 1 for seconds in rows[1]["retry_after_s"])
    assert served["service"]["failed"] == 0


def test_speech_server_load_figures() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0 and percentile(list(map(float, range(1, 21))), 0.95) == 19.0
    replies = [
        SpeechReply(200, 0.1, 1.0, 48000),
        SpeechReply(200, 0.3, 2.0, 96000),
        SpeechReply(503, retry_after="2", error="HTTP 503: busy"),
        SpeechReply(503, error="HTTP 503: no Retry-After"),  # not the documented refusal
        SpeechReply(None, error="no answer: ConnectionResetError"),
    ]
    row = serve_load_row(5, replies, healthy_after=True)
    assert (row["served"], row["busy_503"], row["failed"]) == (2, 1, 2)
    assert row["first_byte_s"] == {"p50": 0.1, "p95": 0.3} and row["complete_s"] == {"p50": 1.0, "p95": 2.0}
    assert row["audio_s"] == 1.5 and row["retry_after_s"] == [2]
    assert row["errors"] == ["request 4 of 5: HTTP 503: no Retry-After",
                             "request 5 of 5: no answer: ConnectionResetError"]
    assert serve_load_row(1, [SpeechReply(200, 0.1, 0.2, 10)], healthy_after=False)["errors"] == [
        "the server did not answer GET /v1/models after the round"]
    assert parse_serve_load("1,4,16") == [1, 4, 16]
    for bad in ("", "0", "1,x", str(MAX_SERVE_CLIENTS + 1)):
        with pytest.raises(MioDeskError):
            parse_serve_load(bad)
    assert_one_line_error(run_bench("--serve-load", "1,4", timeout=60), "--serve-load needs --serve")
    assert_one_line_error(run_bench("--serve", "--serve-load", "0", timeout=60), "--serve-load takes numbers")

