"""`miodesk doctor`: what a bug report needs, gathered without ever failing itself."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from miodesk import __version__, paths, system

if TYPE_CHECKING:
    from miodesk.tts.llm_server import ServerConfig


def _safely(probe: Callable[[], str]) -> str:
    try:
        return probe()
    except Exception as error:  # a broken component is exactly what doctor must report
        return f"unavailable ({type(error).__name__}: {error})"


def _cpu() -> str:
    cpu = system.cpu_info()
    return (f"{cpu.model}: {cpu.physical} physical / {cpu.logical} logical cores, "
            f"{cpu.usable} usable by MioDesk")


def _threads() -> str:
    """The thread plan MioDesk uses on this machine, before the settings' overrides."""
    from miodesk.runtime import ThreadPlan

    reading, speak = ThreadPlan.for_reading(), ThreadPlan.for_single_utterance()
    return (f"reading: speech model {reading.llm_threads} (prompt {reading.llm_batch_threads}) + codec "
            f"{reading.codec_threads}; speak: speech model {speak.llm_threads}, then codec {speak.codec_threads}; "
            f"voice encoder {reading.encoder_threads}")


def _memory() -> str:
    total = system.total_ram_mb()
    peak = system.peak_rss_mb()
    total_text = f"{total / 1024:.1f} GB" if total else "unknown size"
    return total_text + (f" (this check used {peak:.0f} MB)" if peak else "")


def _gpus() -> str:
    found = system.gpus()
    if not found:
        return "none found (no NVIDIA driver, DirectX 12 adapter or Apple GPU)"
    return "; ".join(gpu.name + (f" ({gpu.memory_mb / 1024:.1f} GB)" if gpu.memory_mb else "") for gpu in found)


def _codec_path() -> str:
    """Where the codec decoder runs under the default "auto", found by opening a real (tiny) session."""
    from miodesk.runtime import Provider, probe_provider

    name, reasons = probe_provider(Provider.AUTO)
    names = {Provider.CUDA: "CUDA (NVIDIA GPU)", Provider.DIRECTML: "DirectML (DirectX 12 GPU)", Provider.CPU: "CPU"}
    why = {
        Provider.CUDA: "onnxruntime's CUDA provider started",
        Provider.DIRECTML: "onnxruntime-directml started on the DirectX 12 GPU",
        Provider.CPU: "; ".join(reasons) if reasons else "this onnxruntime build has no GPU provider",
    }[name]
    return f"{names[name]}: {why}"


def _speech_model_path() -> str:
    import llama_cpp

    if llama_cpp.llama_supports_gpu_offload():
        kind = "Metal" if sys.platform == "darwin" else "CUDA/Vulkan"
        return f"GPU: this llama.cpp is a {kind} build, so every layer is offloaded (unless --provider cpu)"
    return "CPU: this llama.cpp build has no GPU offload (see README, GPU builds of llama.cpp)"


def _speech_server(server: ServerConfig | None, problem: str) -> str:
    """The configured speech server and whether it answers (never its key)."""
    from miodesk.tts.llm_server import ENV_BASE_URL, ServerError, probe_server

    if problem:
        return f"cannot be used: {problem}"
    if server is None:
        return f"none (the speech model runs in this process; --llm-base-url or {ENV_BASE_URL} names one)"
    key = "with an API key" if server.api_key else "no API key"
    model = f", model {server.model}" if server.model else ""
    where = f"{server.base_url} ({key}{model})"
    try:
        return f"{where}: {probe_server(server).summary()}"
    except ServerError as error:
        return f"{where}: does not work: {error}"


def _llama_info() -> str:
    import llama_cpp

    system = llama_cpp.llama_print_system_info()
    system = system.decode(errors="replace") if isinstance(system, bytes) else str(system)
    gpu = llama_cpp.llama_supports_gpu_offload()
    return f"{llama_cpp.__version__} (GPU offload: {'yes' if gpu else 'no'}; {system.strip()})"


def _onnxruntime_info() -> str:
    import onnxruntime

    return f"{onnxruntime.__version__}, providers: {', '.join(onnxruntime.get_available_providers())}"


def _audio_devices() -> str:
    import sounddevice

    lines = [f"{sounddevice.get_portaudio_version()[1]} through {system.audio_api()}"]
    devices = sounddevice.query_devices()
    if len(devices) == 0:
        lines.append("    no audio devices found")
    for index, device in enumerate(devices):
        kinds = []
        if device["max_output_channels"] > 0:
            kinds.append("out")
        if device["max_input_channels"] > 0:
            kinds.append("in")
        lines.append(f"    [{index}] {device['name']} ({'/'.join(kinds)}, {device['default_samplerate']:.0f} Hz)")
    return "\n".join(lines)


def _folder_listing(folder: Path) -> str:
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    if not entries:
        return f"{folder} (empty)"
    lines = [str(folder)]
    for entry in entries:
        if entry.is_dir():
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            lines.append(f"    {entry.name}/ ({size / 1e6:.1f} MB)")
        else:
            lines.append(f"    {entry.name} ({entry.stat().st_size / 1e6:.1f} MB)")
    return "\n".join(lines)


def doctor_report(server: ServerConfig | None = None, server_problem: str = "") -> str:
    """`server`: the speech server the command line or the environment names, if any; `server_problem`:
    why the one they name cannot be used (an invalid URL)."""
    from miodesk.logs import log_file

    def version_of(module: str) -> Callable[[], str]:
        return lambda: __import__(module).__version__

    rows = [
        ("MioDesk", lambda: __version__),
        ("Python", lambda: f"{sys.version.split()[0]} ({sys.executable})"),
        ("Platform", lambda: f"{platform.platform()} {platform.machine()}"),
        ("CPU", _cpu),
        ("Threads", _threads),
        ("Memory", _memory),
        ("GPU", _gpus),
        ("numpy", version_of("numpy")),
        ("llama-cpp-python", _llama_info),
        ("onnxruntime", _onnxruntime_info),
        ("PySide6", version_of("PySide6")),
        ("Speech model runs on", (lambda: f"the server {server.label()} (below)") if server else _speech_model_path),
        ("Speech model server", lambda: _speech_server(server, server_problem)),
        ("Codec runs on", _codec_path),
        ("Audio", _audio_devices),
        ("Models", lambda: _folder_listing(paths.models_dir())),
        ("Voices", lambda: _folder_listing(paths.voices_dir())),
        ("Decoder cache", lambda: _folder_listing(paths.onnx_cache_dir())),
        ("Log file", lambda: str(log_file())),
    ]
    return "\n".join(f"{name}: {_safely(probe)}" for name, probe in rows)
