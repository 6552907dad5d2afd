"""What this machine and this process have: the one module that knows how each OS tells it.

CPU cores (logical, physical, the ones this process may use), RAM, GPUs, the CPU time and the peak
memory of this process, and the audio API PortAudio uses. Every platform difference of that kind
lives here, behind a branch on `sys.platform`, so the rest of MioDesk asks one question one way.

Only the standard library is imported at module level (psutil and the Unix-only `resource` module
are imported inside the branch that needs them): `bench_peers_worker.py` loads this file by path in
the peers' own virtualenv, which has no MioDesk, and Windows has no `resource` module at all.
Every probe may fail quietly; the answer is then a safe guess or None ("unknown").
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass


def _platform() -> str:
    """"windows", "macos" or "linux" (other Unixes count as linux: same /proc-less fallbacks apply)."""
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


# --- CPU ----------------------------------------------------------------------------------------


def logical_cores() -> int:
    return max(1, os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores: psutil where it answers (all three platforms), Linux's /proc/cpuinfo, else a guess
    of logical / 2 (SMT)."""
    try:
        import psutil

        count = psutil.cpu_count(logical=False)
        if count:
            return int(count)
    except Exception:  # noqa: BLE001 - not installed (peers' virtualenv), or no answer on this platform
        pass
    if _platform() == "linux":
        count = _physical_cores_from_cpuinfo()
        if count:
            return count
    return max(1, logical_cores() // 2)


def _physical_cores_from_cpuinfo(path: str = "/proc/cpuinfo") -> int | None:
    """Distinct (physical id, core id) pairs; None when the file is missing or names none."""
    cores: set[tuple[str, str]] = set()
    physical = ""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    cores.add((physical, value.strip()))
    except OSError:
        return None
    return len(cores) or None


def usable_cores() -> int:
    """Logical cores this process may run on: its CPU affinity on Linux and Windows (a `taskset`,
    `start /affinity` or a container's cpuset), all of them on macOS, which has no affinity."""
    if _platform() == "linux" and hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    if _platform() == "windows":
        try:
            import psutil

            return max(1, len(psutil.Process().cpu_affinity()))
        except Exception:  # noqa: BLE001 - psutil missing or access denied: all cores
            pass
    return logical_cores()


@dataclass(frozen=True)
class CpuInfo:
    model: str
    logical: int
    physical: int
    usable: int


def cpu_info() -> CpuInfo:
    return CpuInfo(model=cpu_model(), logical=logical_cores(), physical=physical_cores(), usable=usable_cores())


def cpu_model() -> str:
    """The processor's marketing name where the OS tells it, else its architecture."""
    system = _platform()
    if system == "linux":
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
    elif system == "macos":
        name = _run_text(["sysctl", "-n", "machdep.cpu.brand_string"])
        if name:
            return name
    return platform.processor() or platform.machine()


def process_cpu_seconds(children: bool = False) -> float:
    """User + system CPU time of this process (and of its finished children where the OS counts them:
    not on Windows, whose os.times() leaves the children at 0)."""
    times = os.times()
    total = times.user + times.system
    if children:
        total += times.children_user + times.children_system
    return total


def machine_cpu_times() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, other processes included; None when
    unknown. Linux reads /proc/stat; elsewhere psutil."""
    if sys.platform != "win32" and _platform() == "linux":  # (the first test tells the type checker)
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = [float(x) for x in handle.readline().split()[1:]]
            ticks = os.sysconf("SC_CLK_TCK")
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
            return (sum(fields) - idle) / ticks, sum(fields) / ticks
        except (OSError, ValueError, IndexError):
            return None
    try:
        import psutil

        times = psutil.cpu_times()
        total = sum(times)
        return total - times.idle, total
    except Exception:  # noqa: BLE001
        return None


# --- memory -------------------------------------------------------------------------------------


def total_ram_mb() -> int | None:
    """Physical memory of the machine in MB, None when unknown. psutil answers on every platform and
    is a dependency of MioDesk (only the peers' virtualenv lacks it, and it never asks this)."""
    try:
        import psutil

        return int(psutil.virtual_memory().total // (1 << 20))
    except Exception:  # noqa: BLE001 - psutil missing or no answer: unknown
        return None


def peak_rss_mb() -> float | None:
    """The most resident memory this process has used, in MB (None when the OS does not tell).

    Linux: VmHWM of /proc/self/status. Not ru_maxrss there: it keeps the high-water mark of the process
    that spawned this one (it survives fork + exec), so a bench worker would report its parent's peak.
    macOS: ru_maxrss, which counts bytes (Linux counts kilobytes). Windows: PeakWorkingSetSize.
    """
    system = _platform()
    if system == "linux":
        peak = _linux_vm_hwm_mb()
        if peak is not None:
            return peak
    if sys.platform == "win32":
        return _windows_peak_working_set_mb()
    try:
        import resource  # Unix only: never reached on Windows
    except ImportError:
        return None
    peak_units = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak_units / (1 << 20) if system == "macos" else peak_units / 1024


def _linux_vm_hwm_mb(path: str = "/proc/self/status") -> float | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _windows_peak_working_set_mb() -> float | None:
    try:
        import psutil

        return psutil.Process().memory_info().peak_wset / (1 << 20)
    except Exception:  # noqa: BLE001 - psutil missing (peers' virtualenv): ask the OS directly
        pass
    try:
        from ctypes import wintypes

        class ProcessMemoryCounters(ctypes.Structure):
            _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD)] + [
                (name, ctypes.c_size_t)
                for name in ("PeakWorkingSetSize", "WorkingSetSize", "QuotaPeakPagedPoolUsage",
                             "QuotaPagedPoolUsage", "QuotaPeakNonPagedPoolUsage", "QuotaNonPagedPoolUsage",
                             "PagefileUsage", "PeakPagefileUsage")
            ]

        counters = ProcessMemoryCounters()
        counters.cb = ctypes.sizeof(counters)
        process = ctypes.windll.kernel32.GetCurrentProcess()  # type: ignore[attr-defined]
        if not ctypes.windll.psapi.GetProcessMemoryInfo(  # type: ignore[attr-defined]
            process, ctypes.byref(counters), counters.cb
        ):
            return None
        return counters.PeakWorkingSetSize / (1 << 20)
    except (AttributeError, OSError):
        return None


# --- GPU ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_mb: int | None  # dedicated memory; None when unknown or shared with the CPU (Apple silicon)
    vendor: str  # "nvidia", "apple", "amd", "intel", "other"


def gpus() -> list[Gpu]:
    """The GPUs this machine shows, best first. NVIDIA's from nvidia-smi (Linux, Windows); on Windows
    every display adapter (DirectML runs on any DirectX 12 GPU); on macOS the Apple GPU of Apple silicon.
    Slow-ish (a subprocess, up to seconds): for doctor and the model recommendation, never at start-up."""
    found = nvidia_gpus()
    system = _platform()
    if system == "windows":
        names = {gpu.name for gpu in found}
        found += [gpu for gpu in _windows_display_adapters() if gpu.name not in names]
    elif system == "macos" and platform.machine() == "arm64":
        found.append(Gpu(name=f"Apple GPU ({cpu_model()})", memory_mb=None, vendor="apple"))
    return found


def nvidia_gpus() -> list[Gpu]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    out = _run_text([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
    return parse_nvidia_smi(out or "")


def parse_nvidia_smi(text: str) -> list[Gpu]:
    found = []
    for line in text.splitlines():
        name, _, memory = line.rpartition(",")
        try:
            found.append(Gpu(name=name.strip(), memory_mb=int(float(memory)), vendor="nvidia"))
        except ValueError:
            continue
    return [gpu for gpu in found if gpu.name]


def _windows_display_adapters() -> list[Gpu]:
    command = [
        "powershell", "-NoProfile", "-NonInteractive", "-Command",
        "Get-CimInstance Win32_VideoController | ForEach-Object { $_.Name + '|' + $_.AdapterRAM }",
    ]
    return parse_windows_adapters(_run_text(command, timeout=10) or "")


def parse_windows_adapters(text: str) -> list[Gpu]:
    """Lines `NAME|ADAPTER_RAM_BYTES` (AdapterRAM is a 32-bit field: 4 GB and more read as ≤ 4 GB)."""
    found = []
    for line in text.splitlines():
        name, _, memory = line.strip().partition("|")
        name = name.strip()
        if not name or "basic display" in name.casefold() or "basic render" in name.casefold():
            continue  # Microsoft's software adapters are not GPUs
        lowered = name.casefold()
        vendor = next((v for v in ("nvidia", "amd", "intel") if v in lowered), "other")
        if "radeon" in lowered:
            vendor = "amd"
        memory_mb = int(memory) // (1 << 20) if memory.strip().isdigit() and int(memory) > 0 else None
        found.append(Gpu(name=name, memory_mb=memory_mb, vendor=vendor))
    return found


# --- audio --------------------------------------------------------------------------------------


def audio_api() -> str:
    """The audio system MioDesk plays through: PortAudio's default host API (MME on Windows unless the
    user picks a WASAPI device, Core Audio on macOS, ALSA on Linux, where PulseAudio or PipeWire sit
    behind ALSA's default device) and the other host APIs this PortAudio offers."""
    try:
        import sounddevice

        apis = [api["name"] for api in sounddevice.query_hostapis()]
        default = sounddevice.query_hostapis(sounddevice.default.hostapi)["name"]
        others = [name for name in apis if name != default]
        return f"{default}" + (f" (also {', '.join(others)})" if others else "")
    except Exception as error:  # noqa: BLE001 - PortAudio missing or broken: say what this platform uses
        expected = {"windows": "MME/WASAPI", "macos": "Core Audio", "linux": "ALSA"}[_platform()]
        return f"unknown: PortAudio did not start ({type(error).__name__}); this platform plays through {expected}"


# --- helpers ------------------------------------------------------------------------------------


def _run_text(command: list[str], timeout: float = 5) -> str | None:
    """A system tool's output as text (in the console's encoding, undecodable bytes replaced); None
    when it is missing, fails or hangs."""
    try:
        out = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode(_console_encoding(), errors="replace").strip()


def _console_encoding() -> str:
    import locale

    return locale.getpreferredencoding(False) or "utf-8"
