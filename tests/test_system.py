"""miodesk/system.py: each platform's branch, run as real code with the platform switched.

On this Linux machine the Linux branch runs for real (affinity, /proc, VmHWM); the Windows and macOS
branches run with `sys.platform` switched and only the operating system's answer stood in for
(psutil's Windows fields, macOS's getrusage in bytes, sysctl), since those calls cannot exist here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import psutil
import pytest

from miodesk import system


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8",
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- Linux, for real ---------------------------------------------------------------------------------


def test_usable_cores_follow_the_cpu_affinity():
    assert system.usable_cores() == len(os.sched_getaffinity(0))
    pinned = run_python("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
                        "from miodesk import system; print(system.usable_cores(), system.logical_cores())")
    usable, logical = map(int, pinned.split())
    assert usable == 1 and logical == os.cpu_count()


def test_physical_cores_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    # two sockets, two cores each, two threads per core: 8 logical, 4 physical
    blocks = [f"processor\t: {n}\nphysical id\t: {n // 4}\ncore id\t\t: {(n // 2) % 2}\n" for n in range(8)]
    cpuinfo.write_text("\n".join(blocks), encoding="utf-8")
    assert system._physical_cores_from_cpuinfo(str(cpuinfo)) == 4
    assert system._physical_cores_from_cpuinfo(str(tmp_path / "missing")) is None
    assert 1 <= system.physical_cores() <= system.logical_cores()


def test_peak_memory_is_this_process_own_high_water_mark():
    """VmHWM grows with what the process touched; a child does not inherit its parent's peak."""
    code = ("import numpy as np; from miodesk import system; before = system.peak_rss_mb(); "
            "block = np.ones(300 * 2**20 // 8); print(before, system.peak_rss_mb())")
    before, after = map(float, run_python(code).split())
    assert after - before > 250, (before, after)
    small = float(run_python("from miodesk import system; print(system.peak_rss_mb())"))
    assert small < 200


def test_machine_and_process_cpu_times():
    busy, total = system.machine_cpu_times()
    assert 0 < busy < total
    start = system.process_cpu_seconds()
    sum(i * i for i in range(2_000_000))
    assert system.process_cpu_seconds() > start
    ram = system.total_ram_mb()
    assert ram and abs(ram - psutil.virtual_memory().total / 2**20) < 2
    assert system.audio_api().startswith("ALSA")


# --- Windows ------------------------------------------------------------------------------------------


@pytest.fixture
def on_windows(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")


def test_windows_peak_memory_is_the_peak_working_set(on_windows, monkeypatch):
    class Process:
        def memory_info(self):
            return SimpleNamespace(peak_wset=512 * 2**20, rss=100 * 2**20)

        def cpu_affinity(self):
            return [0, 2, 4]

    monkeypatch.setattr(psutil, "Process", Process)
    assert system.peak_rss_mb() == 512.0
    assert system.usable_cores() == 3


def test_windows_without_psutil_answers_none_instead_of_failing(on_windows, monkeypatch):
    """The peers' virtualenv has no psutil; here the Win32 calls (ctypes.windll) do not exist either."""
    monkeypatch.setitem(sys.modules, "psutil", None)  # `import psutil` now raises ImportError
    assert system.peak_rss_mb() is None
    assert system.total_ram_mb() is None
    assert system.usable_cores() == system.logical_cores()
    assert system.physical_cores() >= 1


def test_windows_gpus_include_every_directx_adapter(on_windows, monkeypatch):
    monkeypatch.setattr(system, "nvidia_gpus", lambda: [system.Gpu("NVIDIA GeForce RTX 4060", 8188, "nvidia")])
    adapters = ("NVIDIA GeForce RTX 4060|4293918720\r\nAMD Radeon(TM) Graphics|536870912\r\n"
                "Microsoft Basic Display Adapter|0\r\nIntel(R) UHD Graphics 770|\r\n")
    monkeypatch.setattr(system, "_run_text", lambda command, timeout=5: adapters)
    found = system.gpus()
    assert [(g.name, g.vendor) for g in found] == [
        ("NVIDIA GeForce RTX 4060", "nvidia"), ("AMD Radeon(TM) Graphics", "amd"), ("Intel(R) UHD Graphics 770", "intel"),
    ]
    assert found[1].memory_mb == 512 and found[2].memory_mb is None


# --- macOS --------------------------------------------------------------------------------------------


@pytest.fixture
def on_macos(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")


def test_macos_peak_memory_counts_bytes(on_macos, monkeypatch):
    import resource

    monkeypatch.setattr(resource, "getrusage", lambda who: SimpleNamespace(ru_maxrss=300 * 2**20))
    assert system.peak_rss_mb() == 300.0  # Linux would read the same number as kilobytes: 300 GB


def test_macos_cores_and_gpu(on_macos, monkeypatch):
    monkeypatch.setattr(system, "_run_text", lambda command, timeout=5:
                        "Apple M2" if command[:3] == ["sysctl", "-n", "machdep.cpu.brand_string"] else None)
    monkeypatch.setattr(system.platform, "machine", lambda: "arm64")
    monkeypatch.setattr(system, "nvidia_gpus", lambda: [])
    assert system.cpu_model() == "Apple M2"
    assert system.usable_cores() == system.logical_cores()  # macOS has no CPU affinity
    assert [(g.name, g.vendor, g.memory_mb) for g in system.gpus()] == [("Apple GPU (Apple M2)", "apple", None)]


def test_nvidia_smi_output_is_parsed():
    text = "NVIDIA H100 80GB HBM3, 81559\nTesla T4, 15360\n\ngarbage line\n"
    assert [(g.name, g.memory_mb) for g in system.parse_nvidia_smi(text)] == [("NVIDIA H100 80GB HBM3", 81559),
                                                                              ("Tesla T4", 15360)]


def test_the_peers_worker_measures_memory_with_this_module():
    """bench_peers_worker.py runs without the miodesk package and loads system.py by path."""
    worker = os.path.join(os.path.dirname(system.__file__), "bench_peers_worker.py")
    code = (f"import runpy, sys; sys.modules['miodesk'] = None; ns = runpy.run_path({worker!r}); "
            "print(ns['peak_rss_mb']())")
    assert 5 < float(run_python(code)) < 500
