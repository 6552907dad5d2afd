"""Smoke-test the frozen MioDesk as a user runs it, on Linux, Windows or macOS.

    python installer/ci/smoke_frozen.py [--dist DIR]

DIR (default dist/) is where installer/build.sh or installer/build.ps1 put the program:
  Linux    DIR/MioDesk/miodesk
  Windows  DIR/MioDesk/miodesk-cli.exe (console) and DIR/MioDesk/MioDesk.exe (no console)
  macOS    DIR/MioDesk.app/Contents/MacOS/MioDesk
It runs `--version`, `doctor`, `text` on a Shift_JIS file, `speak` to a WAV and `read -o` to a FLAC
with a generated speech model (tests/data/golden has the codec weights and a preset voice), then opens
the window and lets it close itself once it is on screen (MIODESK_STARTUP_PROBE, as `miodesk bench`
does), and checks what the package must carry on this system (Windows: DirectML; macOS: a Metal
llama.cpp and the microphone question in Info.plist). Run it with the project's environment: it
writes the model with miodesk.synthetic (gguf-py). The frozen program gets none of that environment:
no PYTHONPATH, no venv on PATH, and a MIODESK_HOME of its own in a temporary folder.
On Linux without a display it starts Xvfb (-displayfd) when there is one, else uses Qt's offscreen
platform.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import plistlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

from common import REPO, current_platform, declared_version, group, utf8_output

GOLDEN = REPO / "tests" / "data" / "golden"
CODEC = GOLDEN / "codec" / "v2_44k"
VOICE = GOLDEN / "presets" / "en_female.pt"
SENTENCE = "Hello there. This is MioDesk reading a sentence aloud."
JAPANESE = "吾輩は猫である。名前はまだ無い。"
PROBE_ENV = "MIODESK_STARTUP_PROBE"  # miodesk/ui/app.py: print a mark once the window is shown, then quit
PROBE_MARK = "miodesk-window-shown"


class Frozen:
    """The executables of one frozen build: `cli` prints (a console program), `gui` is what a double
    click starts (the same program on Linux and macOS)."""

    def __init__(self, dist: Path, platform: str) -> None:
        self.platform = platform
        if platform == "windows":
            self.root = dist / "MioDesk"
            self.cli, self.gui = self.root / "miodesk-cli.exe", self.root / "MioDesk.exe"
        elif platform == "macos":
            self.root = dist / "MioDesk.app"
            self.cli = self.gui = self.root / "Contents" / "MacOS" / "MioDesk"
        else:
            self.root = dist / "MioDesk"
            self.cli = self.gui = self.root / "miodesk"
        for exe in {self.cli, self.gui}:
            if not exe.is_file():
                raise SystemExit(f"{exe} is missing: build first (installer/ci/build.py)")


def user_env(home: Path) -> dict[str, str]:
    """A user's environment: nothing of the build's Python, this run's own MioDesk home."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "QT_QPA_PLATFORM", PROBE_ENV)}
    venv = os.environ.get("VIRTUAL_ENV") or sys.prefix
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not p.startswith(venv) and ".venv" not in p)
    env["MIODESK_HOME"] = str(home)
    return env


def run_frozen(exe: Path, env: dict[str, str], *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    started = time.monotonic()
    # bytes, decoded here as UTF-8: what a user piping the output into a file gets
    result = subprocess.run([str(exe), *map(str, args)], capture_output=True, env=env, timeout=timeout,
                            cwd=env["MIODESK_HOME"])
    stdout = result.stdout.decode("utf-8", errors="replace")
    stderr = result.stderr.decode("utf-8", errors="replace")
    print(f"$ {exe.name} {' '.join(map(str, args))}  -> {result.returncode} in {time.monotonic() - started:.1f} s")
    if result.returncode != 0:
        raise SystemExit(f"{exe.name} {args[0]} failed ({result.returncode}):\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(result.args, result.returncode, stdout, stderr)


# --- the commands ------------------------------------------------------------------------------------------
def check_version(frozen: Frozen, env: dict[str, str]) -> None:
    output = run_frozen(frozen.cli, env, "--version", timeout=120).stdout.strip()
    expected = f"MioDesk {declared_version()}"
    if output != expected:
        raise SystemExit(f"--version printed {output!r}, expected {expected!r}")


def check_doctor(frozen: Frozen, env: dict[str, str]) -> dict[str, str]:
    report = run_frozen(frozen.cli, env, "doctor", timeout=180).stdout
    print(report)
    fields = dict(line.split(": ", 1) for line in report.splitlines() if ": " in line and not line.startswith(" "))
    if fields.get("MioDesk") != declared_version():
        raise SystemExit(f"doctor reports MioDesk {fields.get('MioDesk')!r}")
    if frozen.cli.name not in fields.get("Python", ""):
        raise SystemExit(f"doctor ran in {fields.get('Python')!r}, not in the frozen program")
    # The runtimes the folder must carry; a missing library shows as "unavailable (...)"
    for name in ("llama-cpp-python", "onnxruntime", "PySide6"):
        if fields.get(name, "unavailable").startswith("unavailable"):
            raise SystemExit(f"doctor: {name}: {fields.get(name)}")
    return fields


def check_text(frozen: Frozen, env: dict[str, str], work: Path) -> None:
    document = work / "shift_jis.txt"
    document.write_bytes(JAPANESE.encode("shift_jis"))
    output = run_frozen(frozen.cli, env, "text", document, timeout=120).stdout
    # Into a pipe whose encoding cannot hold Japanese (Windows' ANSI code page) MioDesk prints \uXXXX
    # escapes instead of failing (miodesk/console.py); either form shows the file was decoded right.
    escaped = JAPANESE[:7].encode("ascii", "backslashreplace").decode("ascii")
    if JAPANESE[:7] in output:
        print("text: the Japanese text came out as UTF-8")
    elif escaped in output:
        print("text: the Japanese text came out as \\uXXXX escapes (the pipe's encoding cannot hold it)")
    else:
        raise SystemExit(f"`text` of a Shift_JIS file printed {output[:300]!r}")


def write_speech_model(work: Path) -> Path:
    from miodesk.synthetic.gguf import write_test_gguf

    return write_test_gguf(work / "speech.gguf", "qwen3", eog_probability=0.05, seed=1).path


def check_speak(frozen: Frozen, env: dict[str, str], model: Path, work: Path) -> None:
    out = work / "hello.wav"
    run_frozen(frozen.cli, env, "speak", SENTENCE, "--voice", VOICE, "--model", model, "--codec", CODEC,
               "--provider", "cpu", "--seed", "2", "-o", out)
    with wave.open(str(out), "rb") as wav:
        rate, width, frames = wav.getframerate(), wav.getsampwidth(), wav.readframes(wav.getnframes())
    samples = struct.unpack(f"<{len(frames) // 2}h", frames) if width == 2 else ()
    rms = math.sqrt(sum(s * s for s in samples) / max(len(samples), 1)) / 32768
    print(f"speak: {len(samples) / rate:.2f} s at {rate} Hz, RMS {rms:.3f}")
    if width != 2 or rate != 44100 or len(samples) < 0.3 * rate or rms < 0.01:
        raise SystemExit(f"speak wrote an unexpected WAV: {width * 8}-bit, {rate} Hz, {len(samples)} samples, "
                         f"RMS {rms}")


def check_read_to_file(frozen: Frozen, env: dict[str, str], model: Path, work: Path) -> None:
    document = work / "two sentences.md"  # a space in the name, as users' files have
    document.write_text(f"# A title\n\n{SENTENCE} And a second one.\n", encoding="utf-8")
    out = work / "reading.flac"
    run_frozen(frozen.cli, env, "read", document, "--voice", VOICE, "--model", model, "--codec", CODEC,
               "--provider", "cpu", "--seed", "3", "-o", out)
    head = out.read_bytes()[:4] if out.is_file() else b""
    if head != b"fLaC" or out.stat().st_size < 2000:
        raise SystemExit(f"read -o wrote no FLAC file ({head!r})")
    print(f"read -o: {out.stat().st_size / 1000:.0f} kB FLAC")


# --- the window --------------------------------------------------------------------------------------------
def write_settings(home: Path, model: Path) -> None:
    """A user who has their models: no first-run dialog in front of the window."""
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    settings = {"model_path": str(model), "codec_path": str(CODEC), "provider": "cpu", "llm_threads": 1,
                "codec_threads": 1, "ui_language": "en", "welcome_done": True, "close_to_tray": False}
    (config / "settings.json").write_text(json.dumps(settings), encoding="utf-8")


def linux_display(env: dict[str, str]) -> subprocess.Popen | None:
    """Give the window somewhere to open on Linux: the session's display, a private Xvfb, or offscreen."""
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        print("no display and no Xvfb: Qt's offscreen platform")
        env["QT_QPA_PLATFORM"] = "offscreen"
        return None
    read_end, write_end = os.pipe()
    # -displayfd: Xvfb picks a free display number and writes it to the pipe once it accepts clients
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end, encoding="ascii") as pipe:
        number = pipe.readline().strip()
    if not number:
        raise SystemExit("Xvfb did not start")
    env["DISPLAY"] = f":{number}"
    print(f"window on a private Xvfb {env['DISPLAY']}")
    return server


def check_window(frozen: Frozen, env: dict[str, str], home: Path, model: Path, exe: Path) -> None:
    write_settings(home, model)
    log_file = home / "logs" / "miodesk.log"
    before = log_file.read_text(encoding="utf-8") if log_file.is_file() else ""
    env = dict(env, **{PROBE_ENV: "1"})
    display = linux_display(env) if frozen.platform == "linux" else None
    try:
        started = time.time()
        process = subprocess.run([str(exe)], capture_output=True, env=env, timeout=180, cwd=home)
        elapsed = time.time() - started
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{exe.name}: the window did not show (and close) within 180 s") from None
    finally:
        if display is not None:
            display.terminate()
            display.wait(timeout=10)
    stdout = process.stdout.decode("utf-8", errors="replace")
    stderr = process.stderr.decode("utf-8", errors="replace")
    log = (log_file.read_text(encoding="utf-8") if log_file.is_file() else "")[len(before):]
    version = declared_version()
    if process.returncode != 0 or f"MioDesk {version} starting" not in log or "MioDesk exits (0)" not in log:
        raise SystemExit(f"{exe.name}: the window did not open and close ({process.returncode}):\n"
                         f"log:\n{log[-3000:]}\nstdout: {stdout[-2000:]}\nstderr: {stderr[-3000:]}")
    if "already running" in log:
        raise SystemExit(f"{exe.name} handed over to another MioDesk instead of opening its window:\n{log}")
    # The startup probe quits only once the window was exposed; the console program also prints when.
    marks = [line.split() for line in stdout.splitlines() if line.startswith(PROBE_MARK)]
    shown = f"window shown {float(marks[-1][1]) - started:.2f} s after start, " if marks else ""
    print(f"{exe.name}: {shown}closed with 0 after {elapsed:.2f} s")


# --- what the package carries -------------------------------------------------------------------------------
def check_contents(frozen: Frozen, doctor: dict[str, str]) -> None:
    files = [p.relative_to(frozen.root).as_posix() for p in frozen.root.rglob("*") if p.is_file()]
    if frozen.platform == "windows":
        # The standard installer runs the codec with DirectML on any DirectX 12 GPU (CPU fallback).
        if "DmlExecutionProvider" not in doctor.get("onnxruntime", ""):
            print(f"note: no DirectML provider in this build: {doctor.get('onnxruntime')} (cuda variant?)")
        if not any(re.search(r"(^|/)(lib)?llama\.dll$", f) for f in files):
            raise SystemExit("llama.dll is missing from the folder")
    elif frozen.platform == "macos":
        metal = [f for f in files if "metal" in f.rsplit("/", 1)[-1].lower()]
        if not metal:
            raise SystemExit("the .app carries no Metal llama.cpp library (build llama-cpp-python with "
                             "CMAKE_ARGS=-DGGML_METAL=on)")
        print(f"Metal: {', '.join(metal)}")
        info = plistlib.loads((frozen.root / "Contents" / "Info.plist").read_bytes())
        for key in ("NSMicrophoneUsageDescription", "CFBundleIdentifier", "CFBundleShortVersionString",
                    "CFBundleDocumentTypes"):
            if not info.get(key):
                raise SystemExit(f"Info.plist lacks {key}")
        if info["CFBundleShortVersionString"] != declared_version():
            raise SystemExit(f"Info.plist says version {info['CFBundleShortVersionString']}")
        print(f"microphone question: {info['NSMicrophoneUsageDescription']}")
    size = sum(p.stat().st_size for p in frozen.root.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"{frozen.root.name}: {size / 1e6:.0f} MB in {len(files)} files")


def main(argv: list[str] | None = None) -> int:
    utf8_output()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="where the build put MioDesk (default: dist/)")
    args = parser.parse_args(argv)
    frozen = Frozen(args.dist.resolve(), current_platform())
    with tempfile.TemporaryDirectory(prefix="miodesk-smoke-") as temp:
        work = Path(temp)
        home = work / "home"
        home.mkdir()
        env = user_env(home)
        with group("--version and doctor"):
            check_version(frozen, env)
            doctor = check_doctor(frozen, env)
        with group("what the package carries"):
            check_contents(frozen, doctor)
        with group("text, speak and read -o with a generated model"):
            check_text(frozen, env, work)
            model = write_speech_model(work)
            check_speak(frozen, env, model, work)
            check_read_to_file(frozen, env, model, work)
        with group("the window opens and closes"):
            check_window(frozen, env, home, model, frozen.gui)
            if frozen.cli != frozen.gui:
                check_window(frozen, env, home, model, frozen.cli)
    print(f"smoke_frozen: all checks passed for {frozen.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
