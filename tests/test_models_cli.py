"""`miodesk models …` end to end: a real subprocess against the loopback hub."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from hub_server import FakeHub

GOLDEN = Path(__file__).parent / "data" / "golden"
LLM = "MioTTS-0.1B-Q8_0"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub(max_seconds=60) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("MIODESK_PRESETS_BASE_URL", f"{server.url}/raw/presets/")
        yield server


def test_list_and_recommend(run_cli) -> None:
    listed = run_cli("models", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "SIZE", "LICENCE", "STATUS"]
    row = next(line for line in lines if line.startswith(f"{LLM} "))
    assert "llm" in row and "125 MB" in row and "Falcon" in row and row.rstrip().endswith("-")
    assert any(line.startswith("MioTTS-2.6B-Q4_K_M") and "~" in line for line in lines)
    rec = run_cli("models", "recommend")
    assert rec.returncode == 0 and LLM in rec.stdout and "models download" in rec.stdout
    from miodesk.models.catalog import recommend

    offered = "Or, for MioTTS-0.6B-Q4_K_M (" in rec.stdout and "miodesk models download MioTTS-0.6B-Q4_K_M" in rec.stdout
    assert offered == bool(recommend().alternatives)  # this machine's cores and memory decide


def test_download_verify_remove(run_cli, hub: FakeHub, miodesk_home: Path) -> None:
    data = hashlib.sha256(b"x").digest() * 10_000
    hub.add("Aratako/MioTTS-GGUF", f"{LLM}.gguf", data)
    hub.add_raw("presets/en_male.pt", (GOLDEN / "presets" / "en_male.pt").read_bytes())
    got = run_cli("models", "download", LLM, "en_male")
    assert got.returncode == 0, got.stderr
    out = got.stdout
    # Licences come before any progress; the presets' non-commercial note too.
    assert out.index("licence: Falcon-LLM License") < out.index(f"{LLM}: {LLM}.gguf")
    assert "commercially" in out.split(f"{LLM}: {LLM}.gguf")[0]
    assert f"{LLM}: {LLM}.gguf 100% (320 KB / 320 KB, " in out and "/s, 0:00 left)" in out  # plain lines, not a tty
    assert "installed en_male" in out
    listed = run_cli("models", "list").stdout
    assert next(line for line in listed.splitlines() if line.startswith(f"{LLM} ")).endswith("installed")
    verified = run_cli("models", "verify")
    assert verified.returncode == 0 and "2 installed model(s) checked (sha256)" in verified.stdout
    # The audio-only copy the first load makes (miodesk.tts.audio_only_model) goes with the model.
    cache = miodesk_home / "cache" / "llm"
    cache.mkdir(parents=True, exist_ok=True)
    copy, other = cache / f"{LLM}.0123456789ab.audio-only.gguf", cache / f"{LLM}-other.0123456789ab.audio-only.gguf"
    copy.write_bytes(b"GGUF"), other.write_bytes(b"GGUF")
    removed = run_cli("models", "remove", LLM)
    assert removed.returncode == 0 and f"removed {LLM}, freed 320 KB" in removed.stdout
    assert not copy.exists() and other.exists()


def test_errors_are_one_line(run_cli, hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("models", "download", "MioTTS-9B"), "no model called")
    assert_one_line_error(run_cli("models", "download", "MioTTS-0.4B-Q8_0"), "HTTP 404")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_one_line_error(run_cli("models", "download", LLM), "HF_HUB_OFFLINE", "models import")
    assert [r.path for r in hub.requests()] == ["/Aratako/MioTTS-GGUF/resolve/main/MioTTS-0.4B-Q8_0.gguf"]
    assert_one_line_error(run_cli("models", "remove", LLM), "not installed")


def test_import_and_verify_failure(run_cli, miodesk_home: Path) -> None:
    imported = run_cli("models", "import", GOLDEN / "presets" / "jp_female.pt")
    assert imported.returncode == 0 and "installed jp_female (preset" in imported.stdout
    pt = miodesk_home / "data" / "models" / "jp_female" / "jp_female.pt"
    data = bytearray(pt.read_bytes())
    data[-1] ^= 0xFF
    pt.write_bytes(bytes(data))
    assert_one_line_error(run_cli("models", "verify"), "jp_female", "changed", "models download jp_female")
