"""The model catalog: completeness, licences, names, and the first-run recommendation."""

from __future__ import annotations

import pytest

from miodesk.errors import ModelError
from miodesk.models.catalog import CATALOG, LLM_SIZES, QUANTS, MachineInfo, get_entry, recommend
from miodesk.tts.voices import OFFICIAL_PRESET_SHA256


def test_every_official_model_is_listed() -> None:
    names = {entry.name for entry in CATALOG}
    for size in LLM_SIZES:
        for quant in QUANTS:
            assert f"MioTTS-{size}-{quant}" in names
    assert {"MioCodec-25Hz-44.1kHz-v2", "MioCodec-25Hz-24kHz", "wavlm-base-plus"} <= names
    assert {"jp_female", "jp_male", "en_female", "en_male"} <= names
    assert len(names) == len(CATALOG) == 6 * 4 + 2 + 1 + 4


def test_entries_carry_sizes_licences_and_files() -> None:
    q8 = get_entry("MioTTS-0.1B-Q8_0")
    assert q8.size_bytes == 125_000_000 and q8.size_exact
    assert q8.files == ["MioTTS-0.1B-Q8_0.gguf"] and q8.repo == "Aratako/MioTTS-GGUF"
    assert get_entry("MioTTS-0.1B-Q4_K_M").size_bytes < q8.size_bytes < get_entry("MioTTS-0.1B-BF16").size_bytes
    assert "Falcon" in q8.licence
    assert get_entry("MioTTS-0.6B-Q8_0").licence == get_entry("MioTTS-1.7B-BF16").licence == "Apache-2.0"
    assert "LFM" in get_entry("MioTTS-2.6B-Q6_K").licence
    assert get_entry("wavlm-base-plus").files == ["config.json", "pytorch_model.bin"]
    for entry in CATALOG:
        assert entry.size_bytes > 0 and entry.licence and entry.recommendation and entry.revision
        if entry.kind == "preset":
            assert entry.source == "https" and "non-commercial" in entry.licence
            assert entry.sha256[f"{entry.name}.pt"] == OFFICIAL_PRESET_SHA256[entry.name]
        else:
            assert entry.source == "hub" and entry.memory_mb > 0


def test_get_entry_is_forgiving_and_helpful() -> None:
    assert get_entry("miotts-0.1b-q8_0.gguf").name == "MioTTS-0.1B-Q8_0"
    with pytest.raises(ModelError, match="Did you mean.*MioTTS-0.1B"):
        get_entry("0.1B")
    with pytest.raises(ModelError, match="models list"):
        get_entry("no-such-model")


def test_preset_url_can_point_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = get_entry("jp_female")
    assert entry.url_for("jp_female.pt") == (
        "https://raw.githubusercontent.com/Aratako/MioTTS-Inference/2763e09/presets/jp_female.pt"
    )
    monkeypatch.setenv("MIODESK_PRESETS_BASE_URL", "http://127.0.0.1:9/raw/presets/")
    assert entry.url_for("jp_female.pt") == "http://127.0.0.1:9/raw/presets/jp_female.pt"


def test_recommend_cpu_machine() -> None:
    rec = recommend(MachineInfo(ram_mb=8192, cores=2))
    assert rec.names == ["MioTTS-0.1B-Q8_0", "MioCodec-25Hz-44.1kHz-v2", "jp_female", "jp_male", "en_female", "en_male"]
    assert "no GPU" in rec.reason and "commercially" in rec.reason
    # The better-sounding 0.6B reads in real time on two cores: offered beside it, where memory allows.
    assert rec.alternatives == ["MioTTS-0.6B-Q4_K_M"] and "MioTTS-0.6B-Q4_K_M (Apache-2.0)" in rec.reason
    assert recommend(MachineInfo(ram_mb=8192, cores=1)).alternatives == []
    assert recommend(MachineInfo(ram_mb=3072, cores=4)).alternatives == []
    gpu = recommend(MachineInfo(ram_mb=32768, gpu_name="RTX 4090", gpu_memory_mb=24564, llm_gpu_offload=True, cores=8))
    assert gpu.alternatives == []


def test_recommend_gpu_machines() -> None:
    big = recommend(MachineInfo(ram_mb=32768, gpu_name="RTX 4090", gpu_memory_mb=24564, llm_gpu_offload=True))
    assert big.names[0] == "MioTTS-1.7B-Q8_0" and "RTX 4090" in big.reason
    mid = recommend(MachineInfo(ram_mb=16384, gpu_name="GTX 1650", gpu_memory_mb=4096, llm_gpu_offload=True))
    assert mid.names[0] == "MioTTS-0.6B-Q8_0"
    cpu_build = recommend(MachineInfo(ram_mb=16384, gpu_name="RTX 3060", gpu_memory_mb=12288, llm_gpu_offload=False))
    assert cpu_build.names[0] == "MioTTS-0.1B-Q8_0" and "CPU" in cpu_build.reason
    low_ram = recommend(MachineInfo(ram_mb=2048, gpu_name="RTX 4090", gpu_memory_mb=24564, llm_gpu_offload=True))
    assert low_ram.names[0] == "MioTTS-0.1B-Q8_0" and "2 GB RAM" in low_ram.reason


def test_recommend_detects_this_machine() -> None:
    rec = recommend()
    assert rec.names[1:2] == ["MioCodec-25Hz-44.1kHz-v2"] and rec.reason
