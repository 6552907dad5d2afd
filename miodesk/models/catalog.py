"""What models exist, where they come from, how big they are, and which to pick.

The catalog is the one owner of model names, codec variants, default choices and the presets'
checksums; everything else asks it. The hub is not reachable from where this was written, so:

- Sizes: the Q8_0 GGUF sizes are the file sizes listed on Aratako/MioTTS-GGUF; the other
  quantisations are estimated from them by bits per weight (`size_exact=False`, shown with "~").
  The real size of every file comes from the server at download time and is what the manifest
  records and checks.
- Revisions: hub repos are pinned to `HUB_REVISION` ("main") until release, when the release
  checklist fills in commit hashes per repo. A download resolves "main" once to a commit
  (X-Repo-Commit), fetches every file of that model at that one commit, and records it, so one
  model never mixes files of two commits. The presets are pinned by sha256 and fetched at
  MioTTS-Inference commit 2763e09 (the short hash is all that was recorded).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Literal

from miodesk.errors import ModelError

log = logging.getLogger(__name__)

Kind = Literal["llm", "codec", "wavlm", "preset"]
Source = Literal["hub", "https"]

# To be replaced by commit hashes at release time (see module docstring).
HUB_REVISION = "main"
# The MioTTS-Inference commit whose presets/ folder the checksums below were taken from.
PRESETS_REVISION = "2763e09"
PRESETS_REPO = "Aratako/MioTTS-Inference"
PRESETS_BASE_URL_ENV = "MIODESK_PRESETS_BASE_URL"

LLM_SIZES = ("0.1B", "0.4B", "0.6B", "1.2B", "1.7B", "2.6B")
QUANTS = ("BF16", "Q8_0", "Q6_K", "Q4_K_M")

# Q8_0 file sizes as listed on Aratako/MioTTS-GGUF, decimal MB/GB.
_Q8_0_BYTES = {
    "0.1B": 125_000_000,
    "0.4B": 392_000_000,
    "0.6B": 653_000_000,
    "1.2B": 1_270_000_000,
    "1.7B": 1_860_000_000,
    "2.6B": 2_760_000_000,
}
# Bits per weight of each ggml type; Q8_0 is 8.5. Q4_K_M mixes Q4_K and Q6_K, ~4.9 on average.
_BITS_PER_WEIGHT = {"BF16": 16.0, "Q8_0": 8.5, "Q6_K": 6.5625, "Q4_K_M": 4.9}

# Licences follow the base model each size was trained from (LFM2, Qwen3, Falcon-H1).
_LLM_LICENCE = {
    "0.1B": "Falcon-LLM License",
    "0.4B": "LFM Open License v1.0",
    "1.2B": "LFM Open License v1.0",
    "2.6B": "LFM Open License v1.0",
    "0.6B": "Apache-2.0",
    "1.7B": "Apache-2.0",
}
_LLM_ARCH = {"0.1B": "falcon-h1", "0.4B": "lfm2", "1.2B": "lfm2", "2.6B": "lfm2", "0.6B": "qwen3", "1.7B": "qwen3"}

PRESET_LICENCE = "MIT file; audio made with it: non-commercial only"
PRESET_NOTE = (
    "The official preset voices were made from synthetic audio; speech made with them may not be used "
    "commercially (MioTTS-Inference README)."
)

DEFAULT_LLM = "MioTTS-0.1B-Q8_0"
DEFAULT_WAVLM = "wavlm-base-plus"
PRESET_NAMES = ("jp_female", "jp_male", "en_female", "en_male")

# Codec variants by the name `CodecConfig.variant` gives them (and `miodesk bench --codec`).
CODEC_VARIANTS = {
    "v2_44k": "MioCodec-25Hz-44.1kHz-v2",
    "24k": "MioCodec-25Hz-24kHz",
}
DEFAULT_CODEC_VARIANT = "v2_44k"  # the official server's default
DEFAULT_CODEC = CODEC_VARIANTS[DEFAULT_CODEC_VARIANT]
# Settings files written before the variants had one spelling say "44k".
_OLD_VARIANT_NAMES = {"44k": "v2_44k"}

# sha256 and byte sizes of the official preset files (the reference copies in tests/data/golden are
# byte-identical to the upstream files, so their sizes are the upstream sizes).
_PRESET_FILES = {
    "jp_female": ("b9fb6483be458d81b7edcb8edc49487a781ea2a344495f964bfd0d463d560dba", 2103),
    "jp_male": ("cb6667eff5e7a1a80314dd2d52b3a818b7cc00d54a3b659e1b21f2423581cb82", 2096),
    "en_female": ("5a386d2ee0b48036586fc322da0ccf4b88f585ef9162e0371a9999637ebd7645", 1997),
    "en_male": ("33a37cffd19795491707edcd760b5f9ecf9da1354296fbca6b7add25f2de42d1", 2096),
}
PRESET_SHA256: dict[str, str] = {name: sha for name, (sha, _size) in _PRESET_FILES.items()}


def preset_for_sha256(sha256: str) -> str | None:
    """The official preset whose file has this sha256, or None."""
    return next((name for name, sha in PRESET_SHA256.items() if sha == sha256.lower()), None)


def codec_variant(variant: str) -> str | None:
    """The variant's current spelling ("44k" from old settings files is "v2_44k"); None if unknown."""
    variant = _OLD_VARIANT_NAMES.get(variant, variant)
    return variant if variant in CODEC_VARIANTS else None


def codec_name(variant: str) -> str:
    """The catalog name of a codec variant; an unknown variant means the default codec."""
    return CODEC_VARIANTS[codec_variant(variant) or DEFAULT_CODEC_VARIANT]


@dataclass
class ModelEntry:
    name: str
    kind: Kind
    repo: str
    files: list[str]
    revision: str
    size_bytes: int
    licence: str
    languages: list[str]
    recommendation: str
    memory_mb: int
    source: Source = "hub"
    size_exact: bool = False  # False: an estimate (see module docstring)
    sha256: dict[str, str] = field(default_factory=dict)  # known checksums per file
    note: str = ""  # shown before a download (licence caveats)

    @property
    def size_text(self) -> str:
        return ("" if self.size_exact else "~") + format_bytes(self.size_bytes)

    def url_for(self, filename: str) -> str:
        """Where an https-source file is fetched from (hub files go through huggingface_hub)."""
        base = os.environ.get(PRESETS_BASE_URL_ENV) or (
            f"https://raw.githubusercontent.com/{self.repo}/{self.revision}/presets/"
        )
        return base.rstrip("/") + "/" + filename


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}" if n < 100 else f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def _llm_memory_mb(file_bytes: int) -> int:
    # RSS grows by about the file size plus a small context (measured: 127 MB Q8_0 → +153 MB,
    # 557 MB → +623 MB), so file × 1.12 + 64 MB.
    return int(file_bytes / 1e6 * 1.12 + 64)


def _llm_recommendation(size: str, quant: str) -> str:
    if size == "0.1B" and quant == "Q8_0":
        return "recommended for CPUs: fastest, faster than real time on one core"
    if size == "0.1B":
        return "smallest; a little faster on a CPU (1.2–1.3x by `miodesk bench`), Q8_0 is closer to the original"
    if quant == "BF16":
        return "full precision; for GPUs with memory to spare"
    if quant == "Q4_K_M":
        return "smallest file of this size; some loss of quality"
    if size in ("0.4B", "0.6B"):
        return "better prosody than 0.1B; near real time on a fast CPU, comfortable on a GPU"
    return "for GPUs: slower than real time on most CPUs"


def _build_catalog() -> list[ModelEntry]:
    entries: list[ModelEntry] = []
    for size in LLM_SIZES:
        for quant in QUANTS:
            exact = quant == "Q8_0"
            nbytes = _Q8_0_BYTES[size]
            if not exact:
                nbytes = int(nbytes * _BITS_PER_WEIGHT[quant] / _BITS_PER_WEIGHT["Q8_0"])
            name = f"MioTTS-{size}-{quant}"
            entries.append(
                ModelEntry(
                    name=name,
                    kind="llm",
                    repo="Aratako/MioTTS-GGUF",
                    files=[f"{name}.gguf"],
                    revision=HUB_REVISION,
                    size_bytes=nbytes,
                    licence=_LLM_LICENCE[size],
                    languages=["ja", "en"],
                    recommendation=_llm_recommendation(size, quant),
                    memory_mb=_llm_memory_mb(nbytes),
                    size_exact=exact,
                )
            )
    # Codec weights are F32 safetensors: 132,016,399 and 130,762,887 parameters.
    entries.append(
        ModelEntry(
            name=CODEC_VARIANTS["v2_44k"],
            kind="codec",
            repo=f"Aratako/{CODEC_VARIANTS['v2_44k']}",
            files=["config.yaml", "model.safetensors"],
            revision=HUB_REVISION,
            size_bytes=528_100_000,
            licence="MIT",
            languages=["ja", "en"],
            recommendation="default codec (44.1 kHz), as the official server uses",
            memory_mb=1200,
        )
    )
    entries.append(
        ModelEntry(
            name=CODEC_VARIANTS["24k"],
            kind="codec",
            repo=f"Aratako/{CODEC_VARIANTS['24k']}",
            files=["config.yaml", "model.safetensors"],
            revision=HUB_REVISION,
            size_bytes=523_100_000,
            licence="MIT",
            languages=["ja", "en"],
            recommendation="24 kHz codec: lighter decoding on slow CPUs, slightly duller sound",
            memory_mb=1100,
        )
    )
    # The voice encoder needs the config and the weights, nothing else (no tokenizer or processor files).
    entries.append(
        ModelEntry(
            name=DEFAULT_WAVLM,
            kind="wavlm",
            repo=f"microsoft/{DEFAULT_WAVLM}",
            files=["config.json", "pytorch_model.bin"],
            revision=HUB_REVISION,
            size_bytes=378_000_000,
            # torchaudio and the Hugging Face model card state different licences: show both.
            licence="MIT (as redistributed by torchaudio) or CC-BY-SA-3.0 (Hugging Face model card)",
            languages=["any"],
            recommendation="only needed to make voices from your own recordings",
            memory_mb=400,
        )
    )
    for name in PRESET_NAMES:
        sha, nbytes = _PRESET_FILES[name]
        entries.append(
            ModelEntry(
                name=name,
                kind="preset",
                repo=PRESETS_REPO,
                files=[f"{name}.pt"],
                revision=PRESETS_REVISION,
                size_bytes=nbytes,
                licence=PRESET_LICENCE,
                languages=["ja"] if name.startswith("jp") else ["en"],
                recommendation=f"official {'Japanese' if name.startswith('jp') else 'English'} "
                f"{name.split('_')[1]} voice",
                memory_mb=0,
                source="https",
                size_exact=True,
                sha256={f"{name}.pt": sha},
                note=PRESET_NOTE,
            )
        )
    return entries


CATALOG: list[ModelEntry] = _build_catalog()
_BY_NAME = {entry.name.casefold(): entry for entry in CATALOG}


def get_entry(name: str) -> ModelEntry:
    """The catalog entry called `name` (case-insensitive; a trailing .gguf is accepted)."""
    key = name.strip().casefold()
    if key.endswith(".gguf"):
        key = key[: -len(".gguf")]
    entry = _BY_NAME.get(key)
    if entry is None:
        close = [e.name for e in CATALOG if key and key in e.name.casefold()][:5]
        hint = f" Did you mean {', '.join(close)}?" if close else " See `miodesk models list`."
        raise ModelError(f"No model called {name!r} in the catalog.{hint}")
    return entry


# ----------------------------------------------------------------------------------------------
# Recommendation


@dataclass
class MachineInfo:
    ram_mb: int | None = None
    gpu_name: str | None = None
    gpu_memory_mb: int | None = None
    llm_gpu_offload: bool = False  # llama.cpp build can put layers on the GPU
    cores: int | None = None  # logical cores this process may use

    @classmethod
    def detect(cls) -> MachineInfo:
        """What this machine has; every probe is local and may fail quietly (then: unknown)."""
        from miodesk import system

        info = cls(ram_mb=system.total_ram_mb(), cores=system.usable_cores())
        found = system.gpus()
        if found:
            gpu = found[0]
            memory = gpu.memory_mb
            if gpu.vendor == "apple" and info.ram_mb:
                memory = info.ram_mb * 2 // 3  # unified memory: Metal may use about two thirds of it
            info.gpu_name, info.gpu_memory_mb = gpu.name, memory
        if info.gpu_name:
            info.llm_gpu_offload = _llama_supports_gpu()
        return info


@dataclass
class Recommendation:
    names: list[str]
    reason: str
    alternatives: list[str] = field(default_factory=list)  # other speech models fast enough here

# On a CPU, the better-sounding model that still reads in real time on two cores: with its audio-only
# copy (miodesk.tts.audio_only_model) and the codec's idle core lent to it, `miodesk bench --model-size
# 0.6B --quant Q4_K_M` reads at about half of real time on a 2-core machine, with no underruns.
CPU_ALTERNATIVE_LLM = "MioTTS-0.6B-Q4_K_M"


def _llama_supports_gpu() -> bool:
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # a missing or broken build only means "no GPU offload"
        return False


def recommend(machine: MachineInfo | None = None) -> Recommendation:
    """The model set to offer on first run, and why (GPU and its memory, RAM)."""
    machine = machine if machine is not None else MachineInfo.detect()
    presets = list(PRESET_NAMES)
    llm = DEFAULT_LLM
    ram = f"{machine.ram_mb / 1024:.0f} GB RAM" if machine.ram_mb else "unknown RAM"
    gpu_mb = machine.gpu_memory_mb or 0
    if machine.gpu_name and machine.llm_gpu_offload and gpu_mb >= 8000:
        llm = "MioTTS-1.7B-Q8_0"
        why = (
            f"GPU {machine.gpu_name} with {gpu_mb / 1024:.0f} GB: room for the 1.7B model "
            "(Apache-2.0) on the GPU, which sounds more natural and still runs faster than real time"
        )
    elif machine.gpu_name and machine.llm_gpu_offload and gpu_mb >= 3000:
        llm = "MioTTS-0.6B-Q8_0"
        why = (
            f"GPU {machine.gpu_name} with {gpu_mb / 1024:.0f} GB: the 0.6B model (Apache-2.0) "
            "fits on it with the codec and runs faster than real time"
        )
    elif machine.gpu_name:
        why = (
            f"GPU {machine.gpu_name} found, but this llama.cpp build runs the speech model on the CPU "
            "(or the GPU has little memory), so the small 0.1B model keeps reading in real time"
        )
    else:
        why = ("no GPU found: the 0.1B model is the one fast enough on a CPU (its LLM runs 3 to 7 times "
               "faster than real time on one core, by `miodesk bench` on 2-core machines)")
    codec_mb = get_entry(DEFAULT_CODEC).memory_mb
    total_mb = get_entry(llm).memory_mb + codec_mb
    if machine.ram_mb is not None and machine.ram_mb < total_mb + 1024:
        llm = DEFAULT_LLM
        why += f"; with {ram} the 0.1B model is the safe choice"
    reason = (
        f"{llm} + {DEFAULT_CODEC} + the four official voices ({ram}): {why}. "
        f"The 44.1 kHz codec is the official default. {PRESET_NOTE}"
    )
    alternatives = []
    roomy = machine.ram_mb is not None and machine.ram_mb >= get_entry(CPU_ALTERNATIVE_LLM).memory_mb + codec_mb + 2048
    if llm == DEFAULT_LLM and (machine.cores or 0) >= 2 and roomy:
        alternatives.append(CPU_ALTERNATIVE_LLM)
        reason += (
            f" Also fast enough on this computer's CPU: {CPU_ALTERNATIVE_LLM} (Apache-2.0), which sounds more "
            "natural and still reads faster than real time on two cores, with about twice the memory and "
            "first sound"
        )
    return Recommendation(names=[llm, DEFAULT_CODEC, *presets], reason=reason, alternatives=alternatives)
