"""Install MioDesk with its test and build tools into .venv: the first step of CI on every system.

    python installer/ci/install.py

Linux: tests/run.sh does it (the apt packages for audio, Xvfb and the packaging checks, .venv, ruff)
and collects the suite without running it. Windows and macOS: .venv from this Python, then
`pip install -e ".[test]"`. llama-cpp-python publishes no wheels for Windows or macOS on PyPI, so pip
compiles it: on Windows with MSVC (the workflow opens its environment with ilammy/msvc-dev-cmd), on
macOS with Metal (CMAKE_ARGS=-DGGML_METAL=on, set here; it is also the default on Apple silicon).
pip keeps the compiled wheel in its wheel cache; the output `new-wheels` says whether this run built
one, so that the workflow saves that cache only then. In GitHub Actions, .venv then comes first on
PATH for the later steps (GITHUB_PATH): `python` there is the project's environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import REPO, current_platform, github_file, group, run, set_output, utf8_output, venv_python

VENV = REPO / ".venv"

# Printed after the install: which llama.cpp build the environment got, and its libraries.
LLAMA_REPORT = """
import pathlib, llama_cpp
lib = pathlib.Path(llama_cpp.__file__).parent / "lib"
print("llama-cpp-python", llama_cpp.__version__, "GPU offload:", llama_cpp.llama_supports_gpu_offload())
print("libraries:", " ".join(sorted(p.name for p in lib.iterdir())))
"""


def wheel_cache_files() -> set[str]:
    """The wheels pip built and cached (not the downloads): where a compiled llama-cpp-python lives."""
    result = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, encoding="locale")
    if result.returncode != 0 or not result.stdout.strip():
        return set()  # no pip here, or caching is off
    wheels = Path(result.stdout.strip()) / "wheels"
    print(f"pip wheel cache: {wheels}")
    return {str(p) for p in wheels.rglob("*.whl")} if wheels.is_dir() else set()


def install_linux() -> None:
    # One list of system packages for this machine and CI: tests/run.sh's. --collect-only makes it stop
    # after installing (and after ruff and an import of every test module).
    env = dict(os.environ, PYTHON=sys.executable)
    run(["bash", str(REPO / "tests" / "run.sh"), "--collect-only", "-qq"], cwd=REPO, env=env)


def install_windows_or_macos(platform: str) -> None:
    env = dict(os.environ)
    if platform == "macos":
        env.setdefault("CMAKE_ARGS", "-DGGML_METAL=on")
    elif shutil.which("cl") is None:
        print("warning: cl.exe is not on PATH; llama-cpp-python's build needs MSVC (a Developer PowerShell, "
              "or ilammy/msvc-dev-cmd in CI). CMake may still find Visual Studio by itself.", flush=True)
    print(f"CMAKE_ARGS={env.get('CMAKE_ARGS', '')}")
    python = venv_python(VENV)
    if not python.exists():
        run([sys.executable, "-m", "venv", str(VENV)])
    run([python, "-m", "pip", "install", "--upgrade", "pip"], env=env)
    run([python, "-m", "pip", "install", "-e", ".[test]"], cwd=REPO, env=env)


def main() -> int:
    utf8_output()
    platform = current_platform()
    before = wheel_cache_files()
    with group(f"install ({platform})"):
        if platform == "linux":
            install_linux()
        else:
            install_windows_or_macos(platform)
    python = venv_python(VENV)
    with group("llama.cpp build"):
        report = run([python, "-c", LLAMA_REPORT], capture_output=True, text=True).stdout
        print(report, end="")
    if platform == "macos" and "metal" not in report.lower():
        raise SystemExit("llama-cpp-python was built without Metal: the .app must carry a Metal build")
    new_wheels = sorted(wheel_cache_files() - before)
    for wheel in new_wheels:
        print(f"built and cached: {wheel}")
    set_output("new-wheels", "true" if new_wheels else "false")
    path_file = github_file("GITHUB_PATH")
    if path_file is not None:
        with open(path_file, "a", encoding="utf-8") as handle:
            handle.write(f"{python.parent}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
