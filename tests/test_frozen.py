"""The frozen one-folder build (installer/build.sh → PyInstaller) works as a user runs it.

A session fixture builds dist/MioDesk once into ~/.cache/miodesk-ci/frozen/<key>/, keyed by a hash of the
miodesk/ sources, installer/, pyproject.toml and the installed distributions, so CI builds once per
change and reruns take no build time (the newest two builds are kept). Every test runs the frozen
program itself, never this venv's Python: `--version`, `doctor`, the window opening and closing on a
private Xvfb display (process start → window mapped, printed with -s), a sentence read live to the
PulseAudio null sink and recorded back, the tarball's install.sh, and what the folder must not carry.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import distributions
from importlib.metadata import version as dist_version
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import MonitorRecorder, voiced_runs
from conftest import GOLDEN, REPO_ROOT
from gguf_fixtures import make_model
from gui_fixtures import private_xvfb

from miodesk import desktop_entry

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux frozen build")

CACHE = Path(os.environ.get("MIODESK_FROZEN_CACHE", Path.home() / ".cache" / "miodesk-ci" / "frozen"))
KEEP_BUILDS = 2
VOICE = GOLDEN / "presets" / "en_female.pt"
CODEC = GOLDEN / "codec" / "v2_44k"
SENTENCE = "Hello there. This is MioDesk reading a sentence aloud."


# --- the build, once per source state ------------------------------------------------------------------
def _tree_digest(digest: hashlib._Hash, folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.parts or path.suffix in (".pyc", ".md") or not path.is_file():
            continue
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())


def build_key() -> str:
    """What the frozen folder depends on: our sources, the build files and the installed packages."""
    digest = hashlib.sha256()
    _tree_digest(digest, REPO_ROOT / "miodesk")
    _tree_digest(digest, REPO_ROOT / "installer")
    digest.update((REPO_ROOT / "pyproject.toml").read_bytes())
    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"])
    digest.update("\n".join(installed).encode())  # `pip freeze`, without starting pip
    digest.update(f"{sys.version} {sys.executable} {os.uname().machine}".encode())
    return digest.hexdigest()[:16]


@dataclass
class FrozenBuild:
    folder: Path
    exe: Path
    tarball: Path
    build_seconds: float
    cached: bool


def _prune(keep: Path) -> None:
    builds = sorted((p for p in CACHE.iterdir() if p.is_dir() and (p / "done.json").is_file() and p != keep),
                    key=lambda p: (p / "done.json").stat().st_mtime, reverse=True)
    for old in builds[KEEP_BUILDS - 1:]:
        shutil.rmtree(old, ignore_errors=True)
    for unfinished in (p for p in CACHE.iterdir() if p.is_dir() and not (p / "done.json").is_file() and p != keep):
        shutil.rmtree(unfinished, ignore_errors=True)


@pytest.fixture(scope="session")
def frozen() -> FrozenBuild:
    pytest.importorskip("PyInstaller", reason="PyInstaller comes with the test extra: pip install -e '.[test]'")
    CACHE.mkdir(parents=True, exist_ok=True)
    root = CACHE / build_key()
    done = root / "done.json"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, even across test sessions
        cached = done.is_file()
        if not cached:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            started = time.monotonic()
            result = subprocess.run(
                ["bash", str(REPO_ROOT / "installer" / "build.sh"), "--dist", str(root / "dist"),
                 "--work", str(root / "work")],
                capture_output=True, text=True, timeout=1800, env=dict(os.environ, PYTHON=sys.executable),
            )
            if result.returncode != 0:
                pytest.fail(f"installer/build.sh failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                            f"{result.stderr[-5000:]}")
            shutil.rmtree(root / "work", ignore_errors=True)  # PyInstaller's intermediate files
            done.write_text(json.dumps({"build_seconds": round(time.monotonic() - started, 1)}))
            _prune(root)
        else:
            os.utime(done)  # recently used: kept by the pruning
    tarballs = sorted((root / "dist").glob("MioDesk-*-linux-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    info = json.loads(done.read_text())
    print(f"\nfrozen build {root.name}: {'cached' if cached else 'built'}, "
          f"build.sh took {info['build_seconds']} s")
    folder = root / "dist" / "MioDesk"
    return FrozenBuild(folder, folder / "miodesk", tarballs[0], info["build_seconds"], cached)


@pytest.fixture
def frozen_env(miodesk_home: Path) -> dict[str, str]:
    """The environment of a user's terminal: no venv, no Python path, this test's MioDesk home."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env["MIODESK_HOME"] = str(miodesk_home)
    return env


def run_frozen(frozen: FrozenBuild, env: dict[str, str], *args: str | Path, timeout: float = 300,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(frozen.exe), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=cwd or Path.home())


# --- what the folder carries ---------------------------------------------------------------------------
def _size(path: Path) -> int:
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def test_folder_carries_what_the_app_needs_and_nothing_big_it_does_not(frozen: FrozenBuild) -> None:
    internal = frozen.folder / "_internal"
    files = [p.relative_to(frozen.folder).as_posix() for p in frozen.folder.rglob("*") if p.is_file() or p.is_symlink()]
    names = "\n".join(files)

    for needed in [
        "miodesk", "install.sh", "share/applications/miodesk.desktop", "share/icons/hicolor/256x256/apps/miodesk.png",
        "share/icons/hicolor/scalable/apps/miodesk.svg",
        "_internal/llama_cpp/lib/libllama.so", "_internal/llama_cpp/lib/libggml.so",
        "_internal/libportaudio.so.2", "_internal/_soundfile_data/libsndfile_x86_64.so",
        "_internal/PySide6/Qt/plugins/platforms/libqxcb.so", "_internal/PySide6/Qt/plugins/platforms/libqwayland.so",
        "_internal/PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "_internal/PySide6/Qt/plugins/iconengines/libqsvgicon.so",
        "_internal/PySide6/Qt/plugins/platforminputcontexts/libibusplatforminputcontextplugin.so",
        "_internal/PySide6/Qt/translations/qtbase_ja.qm",
        "_internal/PySide6/QtNetwork.abi3.so", "_internal/PySide6/Qt/lib/libQt6Network.so.6",
        "_internal/miodesk/resources/icons/miodesk.svg", "_internal/miodesk/resources/translations/miodesk_ja.qm",
        "_internal/onnxruntime/capi/libonnxruntime_providers_shared.so",
    ]:
        assert needed in files, f"{needed} is missing from the frozen folder"
    assert re.search(r"^_internal/onnxruntime/capi/onnxruntime_pybind11_state\..*\.so$", names, re.M)
    assert re.search(r"^_internal/miodesk-[\d.]+\.dist-info/METADATA$", names, re.M), "copy_metadata('miodesk')"

    forbidden = [
        r"(^|/)torch(/|$)", r"(^|/)tests?/", r"(^|/)_?pytest", r"(^|/)pytestqt", r"tkinter|_tkinter|libtk\d|libtcl\d",
        r"(^|/)gguf/", r"Qt6?WebEngine", r"Qt6?(Quick|Qml)", r"Qt6?3D", r"Qt6?Multimedia", r"Qt6?Designer",
        r"Qt6?Pdf", r"Qt6?Charts", r"Qt/qml/", r"onnxruntime_providers_(cuda|tensorrt)", r"libcudart|libcublas|libcudnn",
        r"(^|/)libasound\.so", r"libgtk-3|libgdk-3|libqgtk3", r"PySide6/Qt/translations/(?!qtbase_ja\.qm$)",
        r"(^|/)(designer|linguist|assistant|lrelease|lupdate|qmlls|qmlformat)$",
    ]
    for pattern in forbidden:
        found = [f for f in files if re.search(pattern, f)]
        assert not found, f"{pattern}: {found[:5]}"

    # one real copy of each llama.cpp library; the other names are links to it
    lib = internal / "llama_cpp" / "lib"
    assert (lib / "libllama.so.0").is_symlink() or not (lib / "libllama.so.0").exists()

    total = _size(frozen.folder)
    parts = {
        "Qt + PySide6": _size(internal / "PySide6") + _size(internal / "shiboken6"),
        "onnxruntime": _size(internal / "onnxruntime"),
        "onnx (graph builder)": _size(internal / "onnx"),
        "llama.cpp": _size(internal / "llama_cpp"),
        "numpy + OpenBLAS": _size(internal / "numpy") + _size(internal / "numpy.libs"),
        "Python runtime": _size(internal / "libpython3.11.so.1.0") + _size(internal / "python3.11")
        + _size(internal / "base_library.zip"),
        "hf_xet (downloads)": _size(internal / "hf_xet"),
        "PortAudio + libsndfile": _size(internal / "libportaudio.so.2") + _size(internal / "_soundfile_data"),
    }
    parts["other system libraries and modules"] = total - sum(parts.values())
    print(f"\nfrozen folder: {total / 1e6:.0f} MB in {len(files)} files; tarball {frozen.tarball.stat().st_size / 1e6:.0f} MB")
    for name, size in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"  {size / 1e6:6.1f} MB  {name}")
    # PyAV (AAC for .m4b audiobooks, issue 21) adds ~110 MB: 297 -> 405 MB on Linux.
    assert total < 440e6, "the folder has grown past 440 MB: check what new dependency came in"


# --- the commands ----------------------------------------------------------------------------------------
def test_version_is_the_package_metadata_version(frozen: FrozenBuild, frozen_env: dict[str, str]) -> None:
    started = time.monotonic()
    result = run_frozen(frozen, frozen_env, "--version", timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    declared = re.search(r'^version\s*=\s*"([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert result.stdout.strip() == f"MioDesk {dist_version('miodesk')}" == f"MioDesk {declared}"
    print(f"\nfrozen `miodesk --version`: {elapsed:.2f} s")


def test_doctor_reports_the_frozen_runtime(frozen: FrozenBuild, frozen_env: dict[str, str], pulse_sink) -> None:
    result = run_frozen(frozen, frozen_env, "doctor", timeout=120)
    assert result.returncode == 0, result.stderr
    report = result.stdout
    fields = dict(line.split(": ", 1) for line in report.splitlines() if ": " in line and not line.startswith(" "))
    assert fields["MioDesk"] == dist_version("miodesk")
    assert fields["Python"].endswith(f"({frozen.exe})"), "doctor must run in the frozen program, not a venv"
    assert fields["llama-cpp-python"].startswith(dist_version("llama_cpp_python")), fields["llama-cpp-python"]
    assert "CPUExecutionProvider" in fields["onnxruntime"], fields["onnxruntime"]
    assert "unavailable" not in report, report
    assert re.search(r"^Audio: PortAudio .*V19", report, re.M), report
    assert re.search(r"^    \[\d+\] .*\(out", report, re.M), "no audio output device listed"
    assert str(frozen_env["MIODESK_HOME"]) in fields["Models"]
    # onnxruntime prints nothing (a missing provider bridge would warn on every start)
    assert result.stderr.strip() == "", result.stderr


def test_programs_it_starts_do_not_inherit_the_frozen_library_path(frozen: FrozenBuild, frozen_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    """A browser or file manager started from MioDesk must not load the folder's libstdc++, glib, X11 ..."""
    spy = tmp_path / "bin" / "nvidia-smi"  # `models recommend` asks nvidia-smi about the GPU
    spy.parent.mkdir()
    spy.write_text(f"#!/bin/sh\nenv > {tmp_path / 'child_env.txt'}\nexit 1\n")
    spy.chmod(0o755)
    env = dict(frozen_env, PATH=f"{spy.parent}{os.pathsep}{frozen_env['PATH']}")
    env.pop("LD_LIBRARY_PATH", None)
    result = run_frozen(frozen, env, "models", "recommend", timeout=120)
    assert result.returncode == 0, result.stderr
    child_env = dict(line.split("=", 1) for line in (tmp_path / "child_env.txt").read_text().splitlines()
                     if "=" in line)
    assert "LD_LIBRARY_PATH" not in child_env and "LD_LIBRARY_PATH_ORIG" not in child_env, child_env


# --- the window ------------------------------------------------------------------------------------------
class _XClassHint(ctypes.Structure):
    # raw pointers: Xlib allocated the strings and XFree must get those very pointers back
    _fields_ = [("res_name", ctypes.c_void_p), ("res_class", ctypes.c_void_p)]


class _XWindowAttributes(ctypes.Structure):
    _fields_ = [
        ("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
        ("border_width", ctypes.c_int), ("depth", ctypes.c_int), ("visual", ctypes.c_void_p),
        ("root", ctypes.c_ulong), ("c_class", ctypes.c_int), ("bit_gravity", ctypes.c_int),
        ("win_gravity", ctypes.c_int), ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
        ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int), ("colormap", ctypes.c_ulong),
        ("map_installed", ctypes.c_int), ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
        ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
        ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p),
    ]


class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int), ("data", ctypes.c_long * 5),
    ]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("pad", ctypes.c_long * 24)]


_IS_VIEWABLE = 2
_CLIENT_MESSAGE = 33
_X_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class X11:
    """Just enough Xlib (through ctypes) to find the app's top-level windows and ask one to close,
    as a window manager's close button does (WM_DELETE_WINDOW): no xdotool/wmctrl needed."""

    def __init__(self, display: str) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        lib.XOpenDisplay.restype = ctypes.c_void_p
        lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        lib.XDefaultRootWindow.restype = ctypes.c_ulong
        lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        lib.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
                                   ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                                   ctypes.POINTER(ctypes.c_uint)]
        lib.XGetClassHint.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XClassHint)]
        lib.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XWindowAttributes)]
        lib.XInternAtom.restype = ctypes.c_ulong
        lib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.XGetWindowProperty.argtypes = [
            ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_long, ctypes.c_long, ctypes.c_int,
            ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_void_p)]
        lib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                                   ctypes.POINTER(_XEvent)]
        lib.XFree.argtypes = [ctypes.c_void_p]
        lib.XFlush.argtypes = [ctypes.c_void_p]
        lib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        # windows come and go while we look: ignore BadWindow instead of Xlib's exit()
        self._on_error = _X_ERROR_HANDLER(lambda display, event: 0)
        lib.XSetErrorHandler(self._on_error)
        self.lib = lib
        self.dpy = lib.XOpenDisplay(display.encode())
        if not self.dpy:
            raise RuntimeError(f"cannot open X display {display}")
        self.root = lib.XDefaultRootWindow(self.dpy)

    def close(self) -> None:
        self.lib.XCloseDisplay(self.dpy)

    def atom(self, name: str) -> int:
        return self.lib.XInternAtom(self.dpy, name.encode(), 0)

    def title(self, window: int) -> str:
        kind, fmt = ctypes.c_ulong(), ctypes.c_int()
        count, after, data = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p()
        status = self.lib.XGetWindowProperty(self.dpy, window, self.atom("_NET_WM_NAME"), 0, 1024, 0,
                                             self.atom("UTF8_STRING"), ctypes.byref(kind), ctypes.byref(fmt),
                                             ctypes.byref(count), ctypes.byref(after), ctypes.byref(data))
        if status != 0 or not data.value:
            return ""
        text = ctypes.string_at(data.value, count.value).decode("utf-8", "replace")
        self.lib.XFree(data)
        return text

    def top_windows(self) -> list[dict]:
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        children, count = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        self.lib.XSync(self.dpy, 0)
        if not self.lib.XQueryTree(self.dpy, self.root, ctypes.byref(root), ctypes.byref(parent),
                                   ctypes.byref(children), ctypes.byref(count)):
            return []
        ids = [children[i] for i in range(count.value)]
        if children:
            self.lib.XFree(children)
        windows = []
        for window in ids:
            hint, attributes = _XClassHint(), _XWindowAttributes()
            if not self.lib.XGetWindowAttributes(self.dpy, window, ctypes.byref(attributes)):
                continue
            wm_class = ""
            if self.lib.XGetClassHint(self.dpy, window, ctypes.byref(hint)):
                wm_class = ctypes.string_at(hint.res_class).decode() if hint.res_class else ""
                for pointer in (hint.res_name, hint.res_class):
                    if pointer:
                        self.lib.XFree(pointer)
            windows.append({"id": window, "class": wm_class, "title": self.title(window),
                            "viewable": attributes.map_state == _IS_VIEWABLE,
                            "size": (attributes.width, attributes.height)})
        return windows

    def main_window(self) -> dict | None:
        for window in self.top_windows():
            if window["class"] == "MioDesk" and window["viewable"] and window["title"].endswith("MioDesk") \
                    and window["size"][0] >= 400:
                return window
        return None

    def request_close(self, window: int) -> None:
        event = _XEvent()
        event.xclient.type = _CLIENT_MESSAGE
        event.xclient.window = window
        event.xclient.message_type = self.atom("WM_PROTOCOLS")
        event.xclient.format = 32
        event.xclient.data[0] = self.atom("WM_DELETE_WINDOW")
        event.xclient.data[1] = 0  # CurrentTime
        self.lib.XSendEvent(self.dpy, window, 0, 0, ctypes.byref(event))
        self.lib.XFlush(self.dpy)


@pytest.fixture(scope="module")
def x_display() -> Iterator[str]:
    with private_xvfb() as display:
        yield display


@pytest.fixture(scope="module")
def speech_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("frozen_model"), "frozen", "qwen3", eog_probability=0.05, seed=1).path


def _write_settings(home: Path, model: Path) -> None:
    """Settings of a user who has their models (no first-run dialog over the window): the same as the
    hosted runners' smoke test writes."""
    sys.path.insert(0, str(REPO_ROOT / "installer" / "ci"))
    try:
        from smoke_frozen import write_settings
    finally:
        sys.path.pop(0)
    write_settings(home, model)


def test_window_opens_and_closes(frozen: FrozenBuild, frozen_env: dict[str, str], x_display: str,
                                 miodesk_home: Path, speech_model: Path) -> None:
    _write_settings(miodesk_home, speech_model)
    env = dict(frozen_env, DISPLAY=x_display, QT_QPA_PLATFORM="xcb")
    x11 = X11(x_display)
    times = []
    try:
        for _attempt in range(3):
            started = time.monotonic()
            process = subprocess.Popen([str(frozen.exe)], env=env, cwd=Path.home(), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            try:
                window = None
                while window is None:
                    assert process.poll() is None, f"the app exited ({process.returncode}): {process.communicate()}"
                    assert time.monotonic() - started < 60, "no MioDesk window after 60 s"
                    window = x11.main_window()
                    if window is None:
                        time.sleep(0.01)
                times.append(time.monotonic() - started)
                time.sleep(0.5)  # let it settle, as a person would before clicking close
                x11.request_close(window["id"])
                stdout, stderr = process.communicate(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
            assert process.returncode == 0, (process.returncode, stderr)
            assert "Traceback" not in stderr and "qt.qpa" not in stderr, stderr
            assert x11.main_window() is None
    finally:
        x11.close()
    log = (miodesk_home / "logs" / "miodesk.log").read_text(encoding="utf-8")
    assert log.count(f"MioDesk {dist_version('miodesk')} starting") == 3, log
    assert log.count("MioDesk exits (0)") == 3, log
    print(f"\nfrozen app, process start → main window mapped: {', '.join(f'{t:.2f}' for t in times)} s "
          f"(median {statistics.median(times):.2f} s; the first is a cold start)")


# --- speech ----------------------------------------------------------------------------------------------
def test_reads_a_sentence_live_to_the_speakers(frozen: FrozenBuild, frozen_env: dict[str, str], pulse_sink,
                                               speech_model: Path, tmp_path: Path) -> None:
    document = tmp_path / "sentence.txt"
    document.write_text(SENTENCE + "\n", encoding="utf-8")
    with MonitorRecorder(44100) as recorder:
        result = run_frozen(frozen, frozen_env, "read", document, "--voice", VOICE, "--model", speech_model,
                            "--codec", CODEC, "--provider", "cpu", "--seed", "4", "--stats")
        recorder.catch_up(0.3)
        recording = recorder.audio()
    assert result.returncode == 0, result.stderr
    assert "[0] Hello there." in result.stdout and "This is MioDesk reading a sentence aloud." in result.stdout
    stats = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert stats["underruns"] == 0 and stats["audio_s"] > 0.5, stats
    voiced = sum(end - start for start, end in voiced_runs(recording))
    print(f"\nfrozen `miodesk read`: {stats['audio_s']:.2f} s of speech, {voiced:.2f} s recorded above silence")
    assert voiced >= 0.5 * stats["audio_s"], (voiced, stats)


def test_speak_writes_a_wav(frozen: FrozenBuild, frozen_env: dict[str, str], speech_model: Path,
                            tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = run_frozen(frozen, frozen_env, "speak", SENTENCE, "--voice", VOICE, "--model", speech_model,
                        "--codec", CODEC, "-o", out, "--seed", "2")
    assert result.returncode == 0, result.stderr
    import soundfile

    audio, rate = soundfile.read(str(out), dtype="float32")
    assert rate == 44100 and len(audio) > 0.3 * rate and np.sqrt(np.mean(audio**2)) > 0.01


def test_user_errors_stay_one_line(frozen: FrozenBuild, frozen_env: dict[str, str], tmp_path: Path) -> None:
    result = run_frozen(frozen, frozen_env, "read", tmp_path / "missing.txt", timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("miodesk: error: ") and len(result.stderr.strip().splitlines()) == 1


# --- the Linux package: tarball + install.sh --------------------------------------------------------------
def _desktop_file_validate(path: Path) -> None:
    if shutil.which("desktop-file-validate") is None:
        pytest.fail("desktop-file-validate is missing; tests/run.sh installs desktop-file-utils")
    result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_tarball_installs_and_uninstalls_for_the_user(frozen: FrozenBuild, tmp_path: Path) -> None:
    with tarfile.open(frozen.tarball) as archive:
        tops = {member.name.split("/", 1)[0] for member in archive.getmembers()}
        assert tops == {frozen.tarball.name.removesuffix(".tar.gz")}, tops
        safe = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}  # Python >= 3.10.12 / 3.11.4
        archive.extractall(tmp_path / "unpacked", **safe)
    unpacked = tmp_path / "unpacked" / tops.pop()
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}

    def install(*args: str, script: Path | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(["bash", str(script or unpacked / "install.sh"), *args], capture_output=True,
                                text=True, env=env, stdin=subprocess.DEVNULL, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    install()
    target = home / ".local" / "opt" / "MioDesk"
    desktop = home / ".local" / "share" / "applications" / "miodesk.desktop"
    icon = home / ".local" / "share" / "icons" / "hicolor" / "256x256" / "apps" / "miodesk.png"
    command = home / ".local" / "bin" / "miodesk"
    assert (target / "miodesk").is_file() and icon.is_file() and command.is_symlink()
    _desktop_file_validate(desktop)
    entry = desktop.read_text(encoding="utf-8")
    assert f'Exec="{target}/miodesk" %F' in entry and f"TryExec={target}/miodesk" in entry
    assert "MimeType=" + "".join(f"{mime};" for mime in desktop_entry.MIME_TYPES) in entry
    # update-desktop-database (desktop-file-utils) registered the "Open with" types
    mime_cache = (desktop.parent / "mimeinfo.cache").read_text(encoding="utf-8")
    assert "text/plain=miodesk.desktop;" in mime_cache and "application/epub+zip=miodesk.desktop;" in mime_cache
    # the command on PATH runs the installed copy (the bootloader follows the link to its folder)
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"MioDesk {dist_version('miodesk')}", version

    # an update replaces the folder; then uninstall keeps the user's data unless asked
    install()
    user_data = home / ".local" / "share" / "MioDesk" / "voices"
    user_data.mkdir(parents=True)
    (user_data / "mine.npy").write_bytes(b"\x93NUMPY")
    result = install("--uninstall", "--keep-user-data", script=target / "install.sh")
    assert not target.exists() and not desktop.exists() and not icon.exists() and not command.exists()
    assert (user_data / "mine.npy").is_file() and "kept" in result.stdout

    install()
    install("--uninstall", "--remove-user-data", script=target / "install.sh")
    assert not (home / ".local" / "share" / "MioDesk").exists() and not target.exists()
    leftovers = [p for p in (home / ".local").rglob("*") if p.is_file() and p.name != "mimeinfo.cache"]
    assert leftovers == [], leftovers
    assert "miodesk" not in (desktop.parent / "mimeinfo.cache").read_text(encoding="utf-8")


def test_reads_documents_of_every_kind(frozen: FrozenBuild, frozen_env: dict[str, str], tmp_path: Path) -> None:
    """The document readers' dependencies (pypdf, defusedxml, charset-normalizer, markdown-it) are frozen too."""
    from test_documents_samples import make_epub, make_pdf

    epub = make_epub(tmp_path / "book.epub", [("First chapter", "<p>The cat sat on the mat.</p>")], title="Cats")
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(make_pdf([["A page of the paper."]]))
    sjis = tmp_path / "shift_jis.txt"
    sjis.write_bytes("吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。".encode("shift_jis"))
    markdown = tmp_path / "notes.md"
    markdown.write_text("# Notes\n\nSome *emphasis* here.\n", encoding="utf-8")
    expected = {epub: "The cat sat on the mat.", pdf: "A page of the paper.", sjis: "吾輩は猫である。",
                markdown: "Some emphasis here."}
    for path, text in expected.items():
        result = run_frozen(frozen, frozen_env, "text", path, timeout=60, cwd=Path("/"))
        assert result.returncode == 0, (path.name, result.stderr)
        assert text in result.stdout, (path.name, result.stdout)
