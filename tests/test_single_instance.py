"""One MioDesk per user: `miodesk FILE` hands the file to the running window and exits.

The protocol is tested in one process (QLocalServer under pytest-qt, a plain Unix socket as the other
side); the hand-off itself with real `python -m miodesk` processes on a private X server, reading the
window titles with xwininfo (what a user sees: the document's name in the title bar).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, assert_one_line_error
from gui_fixtures import CODEC, SAMPLE_EN, private_xvfb, write_sample
from PySide6.QtNetwork import QLocalSocket

from miodesk.ui import single_instance
from miodesk.ui.single_instance import HandOff, InstanceServer, hand_off, open_request, parse_request, server_name

# --- names and requests --------------------------------------------------------------------------------------


def test_server_name_is_per_user_and_per_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    first, second = server_name(tmp_path / "a"), server_name(tmp_path / "b")
    assert first != second
    assert first == server_name(tmp_path / "a")
    user = re.sub(r"[^A-Za-z0-9_.-]", "", single_instance._user_name())[:12] or "user"
    assert first.startswith(f"miodesk-{user}-") and "/" not in first
    # Without a data folder argument: the one MIODESK_HOME gives this test.
    from miodesk import paths

    assert server_name() == server_name(paths.data_dir())


def test_server_name_uses_the_private_runtime_folder(tmp_path, monkeypatch):
    runtime = Path(tempfile.mkdtemp(prefix="run-"))  # short, like /run/user/1000
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
        name = server_name(tmp_path / "data")
        assert Path(name).parent == runtime and name.endswith(".sock")
        assert single_instance.socket_path(name) == Path(name)
    finally:
        runtime.rmdir()
    # A runtime folder too deep for a socket address falls back to a plain name (in the temp folder).
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    assert "/" not in server_name(tmp_path / "data")


@pytest.mark.parametrize("platform", ["win32", "darwin", "linux"])
def test_server_names_of_japanese_users_differ_and_fit_every_platform(tmp_path, monkeypatch, platform):
    """Windows' named pipes are machine-wide and macOS's $TMPDIR is long: names must stay apart and short."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(sys, "platform", platform)
    data = tmp_path / "データ"
    names = {user: server_name(data, user=user) for user in ("田中", "佐藤", "tanaka", "a" * 64)}
    assert len(set(names.values())) == len(names), names
    mac_tmpdir = "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/"  # the shape of macOS's per-user $TMPDIR
    for name in names.values():
        assert re.fullmatch(r"miodesk-[A-Za-z0-9_.-]{1,12}-[0-9a-f]{16}", name), name  # a valid pipe/file name
        assert len((mac_tmpdir + name).encode()) < 104  # sockaddr_un.sun_path on macOS, with its NUL


def test_relative_paths_are_made_absolute_against_the_senders_folder(tmp_path):
    request = open_request(["notes.txt", "../other/book.epub", str(tmp_path / "abs.md")], cwd=tmp_path / "docs")
    assert request["open"] == [str(tmp_path / "docs" / "notes.txt"), str(tmp_path / "other" / "book.epub"),
                               str(tmp_path / "abs.md")]
    assert request["version"] == single_instance.PROTOCOL_VERSION
    assert open_request([]) == {"version": single_instance.PROTOCOL_VERSION, "activate": True}
    assert parse_request(single_instance.encode(request)[:-1]) == {"open": request["open"]}


@pytest.mark.parametrize("line, problem", [
    (b"not json", "JSON"),
    (b"[1, 2]", "object"),
    (b'{"open": []}', "non-empty"),
    (b'{"open": ["relative.txt"]}', "absolute"),
    (b'{"open": "/a.txt"}', "list"),
    (b'{"version": 99, "activate": true}', "version"),
    (b'{"quit": true}', "expected"),
    (b"\xff\xfe", "JSON"),
])
def test_bad_requests_are_refused(line, problem):
    with pytest.raises(single_instance.RequestError, match=problem):
        parse_request(line)


# --- the sender against a plain Unix socket ------------------------------------------------------------------


def _short_socket_path(tmp_path: Path) -> str:
    # pytest's tmp_path may be longer than a Unix socket address allows.
    return f"/tmp/miodesk-test-{os.getpid()}-{abs(hash(str(tmp_path))) % 10**8}.sock"


@pytest.fixture
def socket_path(tmp_path) -> Iterator[str]:
    path = _short_socket_path(tmp_path)
    yield path
    if os.path.exists(path):
        os.unlink(path)


# A listener in its own process (a thread would wait for the GIL that Qt's blocking calls keep): it
# prints the request line it gets as JSON and answers it, or never answers.
_FAKE_INSTANCE = """
import json, socket, sys, time
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(1)
print("listening", flush=True)
connection, _ = server.accept()
data = b""
while b"\\n" not in data:
    chunk = connection.recv(4096)
    if not chunk:
        break
    data += chunk
print(json.dumps(data.decode("utf-8")), flush=True)
if sys.argv[2]:
    connection.sendall(sys.argv[2].encode("utf-8"))
else:
    time.sleep(2)
"""


class FakeInstance:
    def __init__(self, path: str, answer: str | None) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _FAKE_INSTANCE, path, answer or ""],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline() == "listening\n"

    def request(self) -> bytes:
        stdout, _ = self.process.communicate(timeout=20)
        return json.loads(stdout).encode("utf-8")


def test_hand_off_sends_one_json_line_and_reads_the_answer(qapp, socket_path):
    fake = FakeInstance(socket_path, '{"ok": true}\n')
    request = open_request(["/books/a b.txt", "/books/日本語.epub"])
    assert hand_off(request, socket_path) is HandOff.DONE
    received = fake.request()
    assert received.endswith(b"\n") and received.count(b"\n") == 1
    assert json.loads(received) == request


def test_no_listener_means_no_instance(qapp, socket_path):
    started = time.monotonic()
    assert hand_off(open_request([]), socket_path) is HandOff.NO_INSTANCE
    assert time.monotonic() - started < 2


def test_a_silent_or_refusing_instance_is_no_answer(qapp, socket_path):
    fake = FakeInstance(socket_path, None)
    started = time.monotonic()
    assert hand_off(open_request([]), socket_path, answer_timeout_ms=500) is HandOff.NO_ANSWER
    assert time.monotonic() - started < 1.5
    fake.request()
    os.unlink(socket_path)
    fake = FakeInstance(socket_path, '{"ok": false, "error": "no"}\n')
    assert hand_off(open_request([]), socket_path) is HandOff.NO_ANSWER
    fake.request()


# --- the receiver ------------------------------------------------------------------------------------------


def _send(qtbot, name: str, payload: bytes) -> dict:
    """Send like a second launch would, without blocking the event loop the server needs."""
    client = QLocalSocket()
    answers: list[bytes] = []
    client.readyRead.connect(lambda: answers.append(bytes(client.readAll().data())))
    client.connectToServer(name)
    qtbot.waitUntil(lambda: client.state() == QLocalSocket.LocalSocketState.ConnectedState, timeout=5000)
    client.write(payload)
    qtbot.waitUntil(lambda: b"\n" in b"".join(answers), timeout=5000)
    client.abort()
    return json.loads(b"".join(answers))


@pytest.fixture
def server(qapp, socket_path) -> Iterator[InstanceServer]:
    instance = InstanceServer(socket_path)
    assert instance.listen()
    yield instance
    instance.close()


def test_server_emits_what_a_launch_asks_for(qtbot, server):
    server.start()
    request = open_request(["/books/a.txt", "/books/b.md"])
    with qtbot.waitSignal(server.openRequested, timeout=5000) as opened:
        answer = _send(qtbot, server.name, single_instance.encode(request))
    assert opened.args == [["/books/a.txt", "/books/b.md"]]
    assert answer == {"ok": True}
    with qtbot.waitSignal(server.activateRequested, timeout=5000):
        assert _send(qtbot, server.name, single_instance.encode(open_request([]))) == {"ok": True}


def test_server_answers_a_bad_request_and_emits_nothing(qtbot, server):
    server.start()
    emitted: list = []
    server.openRequested.connect(emitted.append)
    server.activateRequested.connect(lambda: emitted.append("activate"))
    answer = _send(qtbot, server.name, b'{"open": ["relative.txt"]}\n')
    assert answer["ok"] is False and "absolute" in answer["error"]
    assert emitted == []


def test_a_launch_that_never_finishes_its_request_is_dropped(qtbot, server, monkeypatch):
    monkeypatch.setattr(single_instance, "REQUEST_TIMEOUT_MS", 200)
    server.start()
    emitted: list = []
    server.openRequested.connect(emitted.append)
    client = QLocalSocket()
    client.connectToServer(server.name)
    qtbot.waitUntil(lambda: client.state() == QLocalSocket.LocalSocketState.ConnectedState, timeout=5000)
    client.write(b'{"open": ["/books/a.txt"]')  # no end of line
    qtbot.waitUntil(lambda: client.state() == QLocalSocket.LocalSocketState.UnconnectedState, timeout=5000)
    assert emitted == []
    # An endless line is refused, not collected.
    answer = _send(qtbot, server.name, b"x" * (single_instance.MAX_REQUEST_BYTES + 10))
    assert answer == {"ok": False, "error": "request too long"}


def test_launches_during_startup_are_served_once_the_window_exists(qtbot, server):
    # The app listens before it builds its window and starts serving after: nothing is lost between.
    client = QLocalSocket()
    client.connectToServer(server.name)
    assert client.waitForConnected(2000)
    client.write(single_instance.encode(open_request(["/books/early.txt"])))
    assert client.waitForBytesWritten(2000)
    qtbot.wait(200)
    with qtbot.waitSignal(server.openRequested, timeout=5000) as opened:
        server.start()
    assert opened.args == [["/books/early.txt"]]
    client.abort()


def test_socket_file_is_private_and_removed_on_close(qapp, socket_path):
    instance = InstanceServer(socket_path)
    assert instance.listen()
    assert os.stat(socket_path).st_mode & 0o777 == 0o600
    instance.close()
    assert not os.path.exists(socket_path)


def test_stale_socket_of_a_crashed_instance_is_replaced(qtbot, socket_path):
    # A crash leaves the socket file; nobody accepts on it any more.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(socket_path)
    stale.close()
    assert os.path.exists(socket_path)
    assert hand_off(open_request([]), socket_path) is HandOff.NO_INSTANCE
    instance = InstanceServer(socket_path)
    try:
        assert instance.listen()
        instance.start()
        with qtbot.waitSignal(instance.activateRequested, timeout=5000):
            assert _send(qtbot, socket_path, single_instance.encode(open_request([]))) == {"ok": True}
    finally:
        instance.close()


def test_a_live_instance_keeps_its_name(qtbot, server):
    server.start()
    second = InstanceServer(server.name)
    assert not second.listen()
    with qtbot.waitSignal(server.activateRequested, timeout=5000):
        assert _send(qtbot, server.name, single_instance.encode(open_request([]))) == {"ok": True}
    second.close()
    assert os.path.exists(server.name)  # closing the loser did not remove the winner's socket


# --- the window side ---------------------------------------------------------------------------------------


def test_files_from_a_launch_open_and_raise_the_window(app, qtbot, tmp_path):
    from miodesk.ui.app import open_files

    first = write_sample(tmp_path / "walk.md", SAMPLE_EN)
    second = write_sample(tmp_path / "second.txt", "Another document.")
    app.window.hide()  # in the tray
    open_files(app, [str(first), str(second)], raise_window=True)
    assert app.window.isVisible()
    qtbot.waitUntil(lambda: app.window.windowTitle() == "A Walk by the Sea — MioDesk", timeout=20000)
    assert app.controller.settings.recent_files[:2] == [str(first), str(second)]


def test_a_document_opened_from_the_finder_reaches_the_window(app, qtbot, tmp_path):
    """macOS hands Finder double-clicks to the running app as a FileOpen event (Qt delivers it the same
    way on every platform, so it is tested here)."""
    from PySide6.QtGui import QFileOpenEvent
    from PySide6.QtWidgets import QApplication

    from miodesk.ui.app import FileOpenEvents

    handler = FileOpenEvents(QApplication.instance(), app)
    try:
        document = write_sample(tmp_path / "walk.md", SAMPLE_EN)
        app.window.hide()
        QApplication.sendEvent(QApplication.instance(), QFileOpenEvent(str(document)))
        assert app.window.isVisible()
        qtbot.waitUntil(lambda: app.window.windowTitle() == "A Walk by the Sea — MioDesk", timeout=20000)
    finally:
        QApplication.instance().removeEventFilter(handler)
        handler.deleteLater()


# --- `miodesk FILE` on the command line ------------------------------------------------------------------------


def test_gui_file_arguments_are_told_from_commands():
    from miodesk.cli import _command_names, _gui_files_requested, _parse_gui_files, build_parser

    commands = _command_names(build_parser())
    assert {"speak", "read", "text", "voices", "models", "doctor"} <= commands
    assert _gui_files_requested(["book.txt"], commands)
    assert _gui_files_requested(["-v", "dir/book"], commands)
    assert _gui_files_requested(["--", "read"], commands)
    assert not _gui_files_requested(["read", "book.txt"], commands)
    assert not _gui_files_requested(["spek"], commands)  # a typo gets argparse's list of commands
    assert not _gui_files_requested(["-v"], commands)
    assert not _gui_files_requested([], commands)
    assert _parse_gui_files(["a.txt", "-v", "b.txt"]).files == ["a.txt", "b.txt"]
    assert _parse_gui_files(["-v", "--", "-notes.txt", "read"]).files == ["-notes.txt", "read"]


def test_missing_file_is_one_line(run_cli):
    assert_one_line_error(run_cli("no such book.txt", timeout=60), "no such book.txt", "does not exist")


def test_unknown_word_still_lists_the_commands(run_cli):
    result = run_cli("spek", timeout=60)
    assert result.returncode == 2 and "invalid choice: 'spek'" in result.stderr


def test_file_without_a_display_explains(run_cli, monkeypatch, tmp_path):
    for variable in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(variable, raising=False)
    book = write_sample(tmp_path / "book.txt", "Hello.")
    result = run_cli(book, tmp_path / "missing.txt", timeout=60)
    assert result.returncode == 1
    assert "speak" in result.stdout  # the usual help
    assert "missing.txt' does not exist; opening the other files" in result.stderr
    assert "no graphical display" in result.stderr and f"miodesk read {book}" in result.stderr


# --- real processes on a private X server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def x_display() -> Iterator[str]:
    """Our own Xvfb: the windows on it are only this module's."""
    if shutil.which("xwininfo") is None:
        pytest.fail("xwininfo is not installed; tests/run.sh installs it (x11-utils)")
    with private_xvfb() as display:
        yield display


def miodesk_windows(display: str) -> list[str]:
    """Titles of the MioDesk main windows (WM_CLASS class "MioDesk", as Qt sets it) on `display`."""
    tree = subprocess.run(["xwininfo", "-display", display, "-root", "-tree"], capture_output=True, text=True,
                          timeout=20).stdout
    # e.g.  0x200007 "notes — MioDesk": ("__main__.py" "MioDesk")  1100x720+0+0  +0+0
    return [m.group(1) for m in re.finditer(r'^\s*0x[0-9a-f]+ "(.*)": \("[^"]*" "MioDesk"\)\s+(\d+)x(\d+)', tree, re.M)
            if int(m.group(2)) > 100]


class Desktop:
    """Launches `python -m miodesk` as a user's desktop would, all with the same MioDesk home."""

    def __init__(self, display: str, home: Path, model: Path) -> None:
        config = home / "config"
        config.mkdir(parents=True, exist_ok=True)
        # A user who has their models: no first-run dialog; closing the window quits.
        settings = {"model_path": str(model), "codec_path": str(CODEC), "provider": "cpu", "llm_threads": 1,
                    "codec_threads": 1, "ui_language": "en", "welcome_done": True, "close_to_tray": False}
        (config / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
        self.display = display
        self.env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", MIODESK_HOME=str(home))
        self.log_file = home / "logs" / "miodesk.log"
        self.processes: list[subprocess.Popen] = []

    def start(self, *args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "miodesk", *map(str, args)], env=self.env, cwd=cwd,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(process)
        return process

    def launch(self, *args: str | Path, cwd: Path = REPO_ROOT, timeout: float = 60) -> tuple[int, float, str]:
        """A launch that must end by itself: (exit code, seconds, stderr)."""
        started = time.monotonic()
        process = self.start(*args, cwd=cwd)
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"`miodesk {' '.join(map(str, args))}` did not exit within {timeout} s: {stderr}")
        return process.returncode, time.monotonic() - started, stderr

    def wait_for_title(self, title: str, first: subprocess.Popen, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while title not in miodesk_windows(self.display):
            if first.poll() is not None:
                pytest.fail(f"the app exited ({first.returncode}): {first.communicate()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no window titled {title!r}; windows: {miodesk_windows(self.display)}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8")

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.communicate(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
        # Terminated, the app leaves its socket behind, as after a crash.
        single_instance.socket_path(server_name()).unlink(missing_ok=True)


@pytest.fixture
def desktop(x_display, miodesk_home, gui_model) -> Iterator[Desktop]:
    desk = Desktop(x_display, miodesk_home, gui_model)
    yield desk
    desk.close()
    assert miodesk_windows(x_display) == []


def test_second_launch_hands_its_file_to_the_running_window(desktop, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_sample(docs / "notes.txt", "Hello there. These are my notes.")
    first = desktop.start()
    desktop.wait_for_title("MioDesk", first)

    # The file manager starts `miodesk notes.txt` in the folder of the file: a relative path.
    code, seconds, stderr = desktop.launch("notes.txt", cwd=docs)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    desktop.wait_for_title("notes — MioDesk", first, timeout=30)
    assert miodesk_windows(desktop.display) == ["notes — MioDesk"]  # one window: the first one's
    assert first.poll() is None
    log = desktop.log()
    assert f"another launch asks to open {docs / 'notes.txt'}" in log
    assert f"MioDesk is already running: handed over {docs / 'notes.txt'}" in log
    assert log.count("single instance: listening") == 1
    print(f"\nsecond launch handed its file over and exited in {seconds:.2f} s")
    assert seconds < 30

    # Without files, a launch only brings the window to the front.
    code, _, stderr = desktop.launch()
    assert code == 0, stderr
    assert "another launch asks for the window" in desktop.log()
    assert miodesk_windows(desktop.display) == ["notes — MioDesk"]


def test_socket_left_by_a_crash_does_not_stop_the_next_start(desktop, tmp_path):
    name = server_name()  # this test's MIODESK_HOME, as the app computes it
    path = single_instance.socket_path(name)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    try:
        book = write_sample(tmp_path / "walk.md", SAMPLE_EN)
        first = desktop.start(book)
        desktop.wait_for_title("A Walk by the Sea — MioDesk", first)
        assert "removing the stale socket" in desktop.log()
        # The new socket works: a second launch is handed over.
        other = write_sample(tmp_path / "later.txt", "Read me later.")
        code, _, stderr = desktop.launch(other)
        assert code == 0, stderr
        desktop.wait_for_title("later — MioDesk", first, timeout=30)
        assert len(miodesk_windows(desktop.display)) == 1
    finally:
        path.unlink(missing_ok=True)
