"""End to end on the real accessibility stack: what a screen reader hears while the window reads.

The stack is the one Orca uses on a Linux desktop, each part a real program, all private to the test:
a session bus of its own (``dbus-daemon --session``: what ``dbus-run-session`` starts, with the address
in the test's hands for every child), ``at-spi-bus-launcher`` answering ``org.a11y.Bus.GetAddress`` with
the accessibility bus (at-spi2-core; the registry daemon is started on it by D-Bus activation), an Xvfb,
a listener in the system Python with pyatspi (tests/atspi_listener.py, what Orca's event handling does:
register for events, read the text object back over the bus when one arrives) and the real app as a
separate program (tests/atspi_app.py) with Qt's AT-SPI bridge on, playing through the PulseAudio null
sink. Every socket is a Unix socket; every process is ended.

The event log of the reading, the app's sentences and the listener's events merged on one clock, is
written to tests/artifacts/atspi-events.log for people to read.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from gui_fixtures import ARTIFACTS, CODEC, SAMPLE_EN, private_xvfb, write_sample

HERE = Path(__file__).parent
SYSTEM_PYTHON = "/usr/bin/python3"  # where apt's python3-pyatspi is (the project's venv has no GObject)
BUS_LAUNCHERS = ("/usr/libexec/at-spi-bus-launcher", "/usr/lib/at-spi2-core/at-spi-bus-launcher")
SENTENCES = 4
APP_SECONDS = 240  # the app gives up by itself after this; the test waits a little longer
MESSAGE = "The clipboard holds no text to read."
SELECTION = "object:text-selection-changed"
ANNOUNCEMENT = "object:announcement"
EVENT_LOG = ARTIFACTS / "atspi-events.log"
# pyatspi and its GObject typelib, looked up without starting anything (no bus yet)
PYATSPI_PRESENT = ("import gi, importlib.util; gi.require_version('Atspi', '2.0'); "
                   "assert importlib.util.find_spec('pyatspi')")


def accessibility_stack() -> str:
    """The bus launcher's path; fails naming what is missing (tests/run.sh installs all of it)."""
    missing = []
    if shutil.which("dbus-daemon") is None:
        missing.append("dbus-daemon (dbus)")
    launcher = next((path for path in BUS_LAUNCHERS if os.access(path, os.X_OK)), None)
    if launcher is None:
        missing.append("at-spi-bus-launcher (at-spi2-core)")
    if not os.access(SYSTEM_PYTHON, os.X_OK) or subprocess.run(
            [SYSTEM_PYTHON, "-c", PYATSPI_PRESENT], capture_output=True, timeout=60).returncode != 0:
        missing.append(f"pyatspi for {SYSTEM_PYTHON} (python3-pyatspi, gir1.2-atspi-2.0)")
    if missing:
        pytest.fail(f"the AT-SPI stack is not installed: {', '.join(missing)}; tests/run.sh installs it")
    assert launcher is not None
    return launcher


class Processes:
    """Child programs, each the leader of a process group of its own, so that what it starts (the
    launcher's accessibility bus, the registry daemon that bus activates) ends with it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(self.folder / f"{name}.out", "wb") as output:  # stdout and stderr, read on failure
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       env=env, cwd=HERE.parent, start_new_session=True)
        self.started.append((name, process))
        return process

    def output(self, name: str, tail: int = 3000) -> str:
        path = self.folder / f"{name}.out"
        return path.read_bytes()[-tail:].decode("utf-8", "replace") if path.exists() else ""

    def outputs(self) -> str:
        return "\n".join(f"--- {name} (exit {process.poll()}):\n{self.output(name)}" for name, process in self.started)

    def end_all(self) -> None:
        """Newest first: SIGTERM to the group, then SIGKILL to whatever of it is left."""
        for _name, process in reversed(self.started):
            self._signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)  # the group's other members end with their leader
            self._signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)

    @staticmethod
    def _signal_group(process: subprocess.Popen, number: signal.Signals) -> None:
        try:
            os.killpg(process.pid, number)
        except ProcessLookupError:
            pass  # the whole group has ended


@contextmanager
def processes(folder: Path) -> Iterator[Processes]:
    children = Processes(folder)
    try:
        yield children
    finally:
        children.end_all()


def wait_for(check, seconds: float, what: str, children: Processes):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds:.0f} s\n{children.outputs()}")
        time.sleep(0.1)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def session_bus(children: Processes, folder: Path) -> str:
    """A session bus of its own (the session configuration: Unix sockets only); its address."""
    children.start("dbus-daemon", ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                   env=dict(os.environ))
    output = folder / "dbus-daemon.out"

    def address() -> str | None:
        lines = output.read_text(encoding="utf-8", errors="replace").splitlines() if output.exists() else []
        return next((line.strip() for line in lines if line.startswith("unix:")), None)

    found = wait_for(address, 30, "the session bus did not start", children)
    assert found.startswith("unix:"), found  # nothing listens on a network address
    return found


def accessibility_session(stack: ExitStack, folder: Path, **extra_env: str) -> tuple[Processes, dict[str, str]]:
    """A private X display, session bus and AT-SPI bus for one test, closed with `stack`: the processes
    started (start the app and readers with it) and the environment that sees them (plus `extra_env`)."""
    launcher = accessibility_stack()
    display = stack.enter_context(private_xvfb())
    children = stack.enter_context(processes(folder))
    bus = session_bus(children, folder)
    env = {key: value for key, value in os.environ.items()
           if key not in ("AT_SPI_BUS_ADDRESS", "WAYLAND_DISPLAY", "QT_ACCESSIBILITY", "GTK_MODULES")}
    env.update(DISPLAY=display, DBUS_SESSION_BUS_ADDRESS=bus, **extra_env)
    children.start("at-spi-bus-launcher", [launcher, "--launch-immediately"], env=env)
    return children, env


def test_sentences_being_heard_reach_the_bus_as_the_document_selection(gui_model, voices, pulse_sink, tmp_path):
    document = write_sample(tmp_path / "walk.md", SAMPLE_EN)
    events_path, app_path, stop_path = tmp_path / "events.jsonl", tmp_path / "app.jsonl", tmp_path / "stop"
    started = time.monotonic()
    with ExitStack() as stack:
        children, env = accessibility_session(stack, tmp_path)
        listener = children.start("listener", [SYSTEM_PYTHON, str(HERE / "atspi_listener.py"), "--log", str(events_path),
                                               "--stop-file", str(stop_path), "--seconds", str(APP_SECONDS + 120)],
                                  env=env)
        ready = wait_for(lambda: next((r for r in read_jsonl(events_path) if r["kind"] == "ready"), None)
                         or listener.poll() is not None, 60, "the listener did not register", children)
        assert isinstance(ready, dict), f"the listener ended\n{children.outputs()}"
        app = children.start("app", [sys.executable, str(HERE / "atspi_app.py"),
                                     "--model", str(gui_model), "--codec", str(CODEC), "--document", str(document),
                                     "--log", str(app_path), "--sentences", str(SENTENCES),
                                     "--seconds", str(APP_SECONDS)],
                             env=dict(env, QT_QPA_PLATFORM="xcb", QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1"))
        try:
            app.wait(timeout=APP_SECONDS + 60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the app did not end by itself\n{children.outputs()}")
        stop_path.touch()
        try:
            listener.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the listener did not stop\n{children.outputs()}")
        outputs = children.outputs()
    events = [r for r in read_jsonl(events_path) if r["kind"] == "event"]
    app_log = read_jsonl(app_path)
    write_event_log(app_log, events, ready, time.monotonic() - started)
    context = f"\n{EVENT_LOG.read_text(encoding='utf-8')[-6000:]}\n{outputs[-6000:]}"

    assert app.returncode == 0, context
    assert ready["a11y_bus"].startswith("unix:"), ready  # the accessibility bus on a Unix socket only
    heard = [r for r in app_log if r["kind"] == "utterance"]
    assert [r["index"] for r in heard][:SENTENCES] == list(range(SENTENCES)), context
    stopped = next(r for r in app_log if r["kind"] == "stopped")
    selections = [e for e in events if e["type"] == SELECTION]

    # Each sentence, while it is heard, is the Document's selection on the bus: the event comes from
    # the reader's text object, and reading the selection back over the bus gives that sentence, with
    # the caret at its start (where Orca's review and "read from here" begin).
    for number, sentence in enumerate(heard[:SENTENCES]):
        until = heard[number + 1]["t"] if number + 1 < len(heard) else stopped["t"]
        matching = [e for e in selections if sentence["t"] - 1.0 <= e["t"] <= until
                    and e["source"].get("role") == "text" and e["source"].get("name") == "Document"
                    and e["source"].get("app") == "MioDesk"
                    and e.get("selection") and sorted(e["selection"]) == [sentence["start"], sentence["end"]]
                    and e.get("selected_text") == sentence["text"]]
        assert matching, (f"no {SELECTION} for sentence {sentence['index']} {sentence['text']!r} "
                          f"between {sentence['t']:.3f} and {until:.3f}{context}")
        assert matching[0].get("caret") == sentence["start"], (matching[0], context)

    # The message the window shows is announced: Orca speaks object:announcement though no focus moved.
    message = next(r for r in app_log if r["kind"] == "message")
    assert message["text"] == MESSAGE and message["visible"], message
    announced = [e for e in events if e["type"] == ANNOUNCEMENT and e["any_data"] == MESSAGE
                 and e["t"] >= stopped["t"] and e["source"].get("app") == "MioDesk"]
    assert announced, f"no {ANNOUNCEMENT} of {MESSAGE!r}{context}"


# --- the log people read ---------------------------------------------------------------------------------
def _span(record: dict) -> str:
    selection = record.get("selection")
    if not selection:
        return ""
    return f" selection [{selection[0]}, {selection[1]}) {record.get('selected_text', '')!r}"


def _event_line(event: dict) -> str:
    source = event.get("source", {})
    who = f"{source.get('role', '?')} {source.get('name', '')!r}"
    parts = [event["type"], f"from {who}"]
    if event["type"] == ANNOUNCEMENT:
        parts.append(f"{event.get('any_data')!r} ({'assertive' if event.get('detail1') == 2 else 'polite'})")
    elif event["type"] == "object:text-caret-moved":
        parts.append(f"offset {event.get('detail1')}")
    elif event["type"].startswith(("object:state-changed", "window:")):
        parts.append(f"detail1={event.get('detail1')}")
    line = "  ".join(parts) + _span(event)
    if "caret" in event and event["type"] != "object:text-caret-moved":
        line += f"  caret {event['caret']}"
    return line


def _app_line(record: dict) -> str | None:
    kind = record["kind"]
    if kind == "utterance":
        return f"sentence {record['index']} heard [{record['start']}, {record['end']}) {record['text']!r}"
    if kind == "message":
        return f"banner ({record['banner']}) shows {record['text']!r}"
    if kind == "exit":
        return f"quits ({record['why']})"
    details = {k: v for k, v in record.items() if k not in ("t", "kind")}
    return f"{kind} {json.dumps(details, ensure_ascii=False)}" if details else kind


def write_event_log(app_log: list[dict], events: list[dict], ready: dict, seconds: float) -> None:
    """The app's steps and the bus's events on one timeline, seconds from the app's first record."""
    rows = [(r["t"], "app   ", _app_line(r)) for r in app_log]
    rows += [(e["t"], "at-spi", _event_line(e)) for e in events]
    rows.sort(key=lambda row: row[0])
    zero = app_log[0]["t"] if app_log else (rows[0][0] if rows else 0.0)
    lines = [
        "# MioDesk on the AT-SPI bus: one reading (tests/test_atspi.py)",
        f"# accessibility bus {ready.get('a11y_bus', '?')}; listener (pyatspi) registered for "
        f"{', '.join(ready.get('events', []))}",
        "# 'app' lines are the window's own log; 'at-spi' lines are what the listener received, with the",
        "# source's role and name, and the selection and caret read back over the bus when it arrived.",
        f"# whole run {seconds:.1f} s",
        "",
    ]
    lines += [f"{t - zero:8.3f}  {who}  {text}" for t, who, text in rows]
    ARTIFACTS.mkdir(exist_ok=True)
    EVENT_LOG.write_text("\n".join(lines) + "\n", encoding="utf-8")
