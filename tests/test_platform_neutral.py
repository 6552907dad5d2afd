"""MioDesk starts and works where the Unix-only standard modules do not exist (Windows).

The commands run through tests/without_unix_modules.py, which refuses `resource`, `fcntl`, `pwd` and
the other Unix-only modules to MioDesk's own code, as Windows' Python does. (The type check in
tests/run.sh, mypy --platform win32/darwin, catches the platform-only attributes of modules that do
exist everywhere, such as os.getuid or signal.SIGKILL.)
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOLDEN, REPO_ROOT

import miodesk
from miodesk.synthetic.gguf import write_test_gguf

RUNNER = Path(__file__).with_name("without_unix_modules.py")
SAMPLE_TEXT = "こんにちは。今日はいい天気ですね。\n\nHello there. This is a test.\n"


def run_without_unix(args: list[str], home: Path, tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    blocked_log = tmp_path / "blocked-imports.log"
    env = dict(os.environ, MIODESK_HOME=str(home), MIODESK_BLOCKED_IMPORTS_LOG=str(blocked_log))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    result = subprocess.run([sys.executable, str(RUNNER), *args], capture_output=True, text=True,
                            encoding="utf-8", env=env, cwd=REPO_ROOT, timeout=timeout)
    blocked = blocked_log.read_text(encoding="utf-8") if blocked_log.exists() else ""
    assert not blocked, f"MioDesk imported Unix-only modules:\n{blocked}\nstderr: {result.stderr[-2000:]}"
    return result


def test_the_runner_refuses_unix_only_modules(tmp_path, miodesk_home):
    """The simulation is real: code run through it cannot import `resource` (nor fcntl, pwd)."""
    for module in ("resource", "fcntl", "pwd"):
        result = subprocess.run([sys.executable, str(RUNNER), "-c", f"import {module}"], capture_output=True,
                                text=True, encoding="utf-8", cwd=REPO_ROOT, timeout=60)
        assert result.returncode != 0 and "Unix only" in result.stderr, (module, result.stderr)


def test_every_module_imports(tmp_path, miodesk_home):
    # (miodesk.__main__ is left out: importing it runs the program, which the command tests below do.)
    names = sorted(info.name for info in pkgutil.walk_packages(miodesk.__path__, "miodesk.")
                   if info.name != "miodesk.__main__")
    assert "miodesk.cli" in names and "miodesk.ui.main_window" in names and "miodesk.bench" in names
    code = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        failed.append(f'{name}: {type(error).__name__}: {error}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    result = run_without_unix(["-c", code], miodesk_home, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_start_up_path_carries_no_benchmark(tmp_path, miodesk_home):
    code = (
        "import sys\n"
        "import miodesk.cli, miodesk.ui.app, miodesk.ui.main_window, miodesk.ui.controller\n"
        "miodesk.cli.build_parser()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('miodesk.bench'))))\n"
    )
    result = run_without_unix(["-c", code], miodesk_home, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["miodesk.bench_cli"], result.stdout


@pytest.fixture(scope="module")
def speaking_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "MioTTS-test-qwen3.gguf"
    write_test_gguf(path, "qwen3", eog_probability=0.05, seed=1)
    return path


def test_everyday_commands(tmp_path, miodesk_home, speaking_model):
    document = tmp_path / "見本.txt"
    document.write_text(SAMPLE_TEXT, encoding="utf-8")

    def ok(*args: str | Path) -> str:
        result = run_without_unix(["-m", "miodesk", *map(str, args)], miodesk_home, tmp_path)
        assert result.returncode == 0, (args, result.stderr[-3000:])
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout

    assert ok("--version").startswith("MioDesk ")
    assert "speak" in ok("--help")
    assert "今日はいい天気ですね" in ok("text", document)
    assert "MioTTS-0.1B-Q8_0" in ok("models", "list")
    ok("voices", "import", GOLDEN / "presets" / "jp_female.pt")
    assert "jp_female" in ok("voices", "list")
    doctor = ok("doctor")
    for heading in ("MioDesk:", "CPU:", "Memory:", "GPU:", "Audio:", "Models:"):
        assert heading in doctor, doctor
    wav = tmp_path / "hello.wav"
    spoken = ok("speak", "こんにちは、今日はいい天気ですね。", "--voice", "jp_female", "-o", wav,
                "--model", speaking_model, "--codec", GOLDEN / "codec" / "v2_44k", "--seed", 5)
    assert wav.stat().st_size > 1000 and "codes" in spoken
    book = tmp_path / "book.flac"
    read = ok("read", document, "-o", book, "--voice", "jp_female", "--model", speaking_model,
              "--codec", GOLDEN / "codec" / "24k", "--seed", 3, "--stats")
    assert book.stat().st_size > 1000 and "peak_rss_mb" in read
