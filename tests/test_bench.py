"""`miodesk bench`: the tool runs and reports sane figures (a test of the tool, not of speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from miodesk.bench import NullSink, bench_reading, best_split, parse_splits

REPO_ROOT = Path(__file__).parent.parent
REQUIRED = ("ttfa_s", "rtf", "underruns", "peak_rss_mb", "llm_tokens_per_s", "codec_ms_per_audio_s")


def test_bench_json_quick_on_tiny_models(miodesk_home: Path) -> None:
    env = dict(os.environ, MIODESK_HOME=str(miodesk_home))
    completed = subprocess.run(
        [sys.executable, "-m", "miodesk.bench", "--json", "--quick", "--tiny"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=240,
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
