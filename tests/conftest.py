"""Shared fixtures: every test gets its own MioDesk home, so no test touches the user's folders."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# Qt tests share one application, started on a private Xvfb display (tests/gui_fixtures.py).
pytest_plugins = ["gui_fixtures"]

GOLDEN = Path(__file__).parent / "data" / "golden"
REPO_ROOT = Path(__file__).parent.parent

# Module- and session-scoped fixtures are made before a test's own home (below) exists: they get this
# session's home, never the user's folders (an opened codec keeps its optimised graph in the cache).
os.environ["MIODESK_HOME"] = _SESSION_HOME = tempfile.mkdtemp(prefix="miodesk-tests-")
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def miodesk_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("miodesk_home")
    monkeypatch.setenv("MIODESK_HOME", str(home))
    return home


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(miodesk_home: Path):
    """Run the real `python -m miodesk` in a subprocess, as a user would from a terminal."""

    def run(*args: str | Path, stdin: str | None = None, timeout: float = 300) -> CliResult:
        # UTF-8 both ways, also where the console's encoding is not (Windows: cp1252/cp932).
        env = dict(os.environ, MIODESK_HOME=str(miodesk_home), PYTHONIOENCODING="utf-8")
        completed = subprocess.run(
            [sys.executable, "-m", "miodesk", *map(str, args)],
            input=stdin,
            capture_output=True,
            encoding="utf-8",
            env=env,
            cwd=REPO_ROOT,
            timeout=timeout,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    return run


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """A user error: non-zero exit, one line on stderr, no traceback, naming the problem."""
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("miodesk: error: "), lines[0]
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


def _pactl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=20)


@pytest.fixture(scope="session")
def pulse_sink():
    """A PulseAudio null sink set as the default output, its monitor as the default input.

    Starts a PulseAudio daemon when none runs (CI), so playback is real PortAudio → PulseAudio.
    """
    import shutil

    if shutil.which("pactl") is None:
        pytest.fail("PulseAudio (pactl) is not installed; tests/run.sh installs it")
    if _pactl("info").returncode != 0:
        subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1"], capture_output=True, timeout=20)
        for _ in range(50):
            if _pactl("info").returncode == 0:
                break
            import time

            time.sleep(0.1)
    # An idle null sink is suspended and its monitor then records nothing: keep it running.
    _pactl("unload-module", "module-suspend-on-idle")
    name = "miodesk_test_sink"
    if name not in _pactl("list", "short", "sinks").stdout:
        loaded = _pactl("load-module", "module-null-sink", f"sink_name={name}", "rate=44100", "channels=1")
        assert loaded.returncode == 0, loaded.stderr
    assert _pactl("set-default-sink", name).returncode == 0
    assert _pactl("set-default-source", f"{name}.monitor").returncode == 0
    # A null sink renders in 2-second bursts unless a client asks for low latency; a real sound card
    # consumes steadily. A low-latency reader of the monitor makes the null sink behave like one.
    clock = subprocess.Popen(
        ["parec", f"--device={name}.monitor", "--latency-msec=20", "--raw"], stdout=subprocess.DEVNULL
    )
    yield name
    clock.terminate()
    clock.wait(timeout=5)


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(text, urgent) of each screen-reader announcement the app makes, in order (still sent on to Qt)."""
    from miodesk.ui import accessibility

    calls: list[tuple[str, bool]] = []
    real = accessibility.announce

    def record(source, text: str, urgent: bool = False) -> None:
        calls.append((text, urgent))
        real(source, text, urgent)

    monkeypatch.setattr(accessibility, "announce", record)
    return calls
