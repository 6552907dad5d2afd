"""One MioDesk per user: a second launch hands its files to the running window and exits.

The running app listens on a local socket (QLocalServer: a Unix socket, or a named pipe on Windows).
A new launch first tries to connect; when it can, it sends one request and waits for the answer:

    request:  {"version": 1, "open": ["/abs/book.txt", ...]}   or   {"version": 1, "activate": true}
              or {"version": 1, "read": "selection"}  (or "clipboard": `miodesk --read-selection`)
    answer:   {"ok": true}                                     or   {"ok": false, "error": "..."}

Each is one line of UTF-8 JSON. Paths are made absolute by the sender, whose working directory is
the one the user meant. No Qt widgets here: app.py connects the signals to the window.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QDir, QObject, QTimer, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
CONNECT_TIMEOUT_MS = 1000
# The running app listens before it builds its window, so a launch during its start-up waits for it.
ANSWER_TIMEOUT_MS = 15_000
# How long the server waits for a connected client to finish its request line.
REQUEST_TIMEOUT_MS = 5000
MAX_REQUEST_BYTES = 1 << 20
READ_KINDS = ("selection", "clipboard")
# sockaddr_un.sun_path holds 108 bytes on Linux, 104 on macOS/BSD (with the terminating NUL).
_MAX_SOCKET_PATH = 100


class RequestError(ValueError):
    """A request line that does not follow the protocol."""


class HandOff(Enum):
    DONE = "done"  # a running MioDesk took the request: this launch can exit
    NO_INSTANCE = "no-instance"  # nobody listens: this launch becomes the app
    NO_ANSWER = "no-answer"  # something listens but did not answer (hung?): start a window anyway


# --- the name ------------------------------------------------------------------------------------------


def _user_name() -> str:
    try:
        return getpass.getuser()  # Windows: %USERNAME%; Unix: $USER, $LOGNAME or the passwd entry
    except Exception:  # noqa: BLE001 - no passwd entry (containers): the uid still separates users
        if sys.platform != "win32":
            return str(os.getuid())
        return "user"


def server_name(data_folder: Path | None = None, user: str | None = None) -> str:
    """The socket of this user's MioDesk for this data folder (MIODESK_HOME gives tests their own).

    On Linux the socket goes into $XDG_RUNTIME_DIR when there is one: that folder belongs to the user
    alone, so no other account can take the name first. Elsewhere Qt puts the name in the temporary
    folder (per user on macOS, whose $TMPDIR is long: the name stays short so that the socket path
    fits sockaddr_un's 104 bytes) or makes it a named pipe (Windows, machine-wide: the hash of the real
    user name keeps 田中 and 佐藤 apart, whose names both lose every letter to the ASCII filter).
    """
    if data_folder is None:
        from miodesk import paths

        data_folder = paths.data_dir()
    user = _user_name() if user is None else user
    key = f"{user}\0{os.path.abspath(data_folder)}".encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(key).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9_.-]", "", user)[:12] or "user"
    name = f"miodesk-{readable}-{digest}"
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if sys.platform.startswith("linux") and runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        path = os.path.join(runtime, f"{name}.sock")
        if len(path.encode("utf-8", "surrogateescape")) <= _MAX_SOCKET_PATH:
            return path
    return name


def socket_path(name: str) -> Path:
    """Where the Unix socket of `name` lives (what QLocalServer does with a name that is not a path)."""
    return Path(name) if os.path.isabs(name) else Path(QDir.tempPath()) / name


# --- requests ------------------------------------------------------------------------------------------


def open_request(paths: Sequence[str | os.PathLike[str]], cwd: str | os.PathLike[str] | None = None) -> dict:
    """The request a launch sends: open these files, or just come to the front when there are none.

    Relative paths are resolved here against the sender's working directory (the receiver's differs).
    Symbolic links are kept as the user named them.
    """
    if not paths:
        return {"version": PROTOCOL_VERSION, "activate": True}
    base = os.fspath(cwd) if cwd is not None else os.getcwd()
    absolute = [os.path.normpath(os.path.join(base, os.fspath(p))) for p in paths]
    return {"version": PROTOCOL_VERSION, "open": absolute}


def read_request(kind: str) -> dict:
    """The request of `miodesk --read-selection` ("selection") or `--read-clipboard` ("clipboard")."""
    return {"version": PROTOCOL_VERSION, "read": kind}


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"


def parse_request(line: bytes) -> dict[str, Any]:
    """Check one request line; RequestError says what is wrong with it."""
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(f"not a JSON line: {error}") from None
    if not isinstance(message, dict):
        raise RequestError("not a JSON object")
    if message.get("version", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        raise RequestError(f"unsupported protocol version {message.get('version')!r}")
    if "open" in message:
        files = message["open"]
        if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
            raise RequestError("'open' must be a non-empty list of paths")
        relative = [f for f in files if not os.path.isabs(f)]
        if relative:
            raise RequestError(f"paths must be absolute: {relative[0]}")
        return {"open": files}
    if message.get("activate") is True:
        return {"activate": True}
    if "read" in message:
        if message["read"] not in READ_KINDS:
            raise RequestError(f"'read' must be one of {', '.join(READ_KINDS)}")
        return {"read": message["read"]}
    raise RequestError("expected 'open', 'activate' or 'read'")


# --- the sender (a second launch) ---------------------------------------------------------------------------


def hand_off(request: dict[str, Any], name: str | None = None, answer_timeout_ms: int = ANSWER_TIMEOUT_MS) -> HandOff:
    """Give `request` to the MioDesk already running for this user, if there is one.

    Blocking (no event loop needed): this runs before the app builds anything.
    """
    name = name or server_name()
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        log.debug("no running MioDesk at %s (%s)", name, socket.errorString())
        return HandOff.NO_INSTANCE
    try:
        socket.write(encode(request))
        if not socket.waitForBytesWritten(CONNECT_TIMEOUT_MS):
            log.warning("cannot send to the running MioDesk at %s: %s", name, socket.errorString())
            return HandOff.NO_ANSWER
        answer = _read_line(socket, answer_timeout_ms)
    finally:
        socket.abort()
    if answer is None:
        log.warning("the running MioDesk at %s did not answer within %d ms", name, answer_timeout_ms)
        return HandOff.NO_ANSWER
    try:
        reply = json.loads(answer.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        reply = None
    if isinstance(reply, dict) and reply.get("ok") is True:
        return HandOff.DONE
    log.warning("the running MioDesk at %s refused the request: %r", name, answer)
    return HandOff.NO_ANSWER


def _read_line(socket: QLocalSocket, timeout_ms: int) -> bytes | None:
    deadline = time.monotonic() + timeout_ms / 1000
    data = bytearray()
    while True:
        data += bytes(socket.readAll().data())
        if b"\n" in data:
            return bytes(data.split(b"\n", 1)[0])
        remaining = int((deadline - time.monotonic()) * 1000)
        if remaining <= 0 or len(data) > MAX_REQUEST_BYTES:
            return None
        # False also when the peer closed: whatever it wrote before is still buffered.
        if not socket.waitForReadyRead(remaining):
            data += bytes(socket.readAll().data())
            return bytes(data.split(b"\n", 1)[0]) if b"\n" in data else None


def _someone_listens(name: str) -> bool:
    socket = QLocalSocket()
    socket.connectToServer(name)
    connected = socket.waitForConnected(CONNECT_TIMEOUT_MS)
    socket.abort()
    return connected


# --- the receiver (the running app) ---------------------------------------------------------------------------


class InstanceServer(QObject):
    """Listens for later launches; emits what they ask for once `start()` is called."""

    openRequested = Signal(list)  # absolute paths, as sent
    activateRequested = Signal()
    readRequested = Signal(str)  # "selection" or "clipboard"

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or server_name()
        self._server = QLocalServer(self)
        if sys.platform == "win32":
            # Named pipes are machine-wide: only this account may connect. (Not on Unix, where Qt then
            # binds elsewhere and renames the socket over the name, which would take it from a live
            # instance instead of failing; listen() restricts the file itself there.)
            self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._clients: dict[QLocalSocket, bytearray] = {}

    def listen(self) -> bool:
        """Take the name. False when another process holds it (the caller then runs without a server)."""
        if self._listen():
            return True
        error = self._server.errorString()
        # A crashed MioDesk leaves its socket file behind; listen() then fails although nobody is
        # there. Remove it only when a connection really fails, never under a live instance.
        if not _someone_listens(self.name):
            log.info("single instance: removing the stale socket %s (%s)", self.name, error)
            QLocalServer.removeServer(self.name)
            if self._listen():
                return True
            error = self._server.errorString()
        log.warning("single instance: cannot listen at %s (%s); later launches open their own window",
                    self.name, error)
        return False

    def _listen(self) -> bool:
        if not self._server.listen(self.name):
            return False
        if sys.platform != "win32":
            # Connecting needs write access to the socket file: the owner's alone (the umask may allow more).
            try:
                os.chmod(self._server.fullServerName(), 0o600)
            except OSError as error:
                log.warning("single instance: cannot restrict %s: %s", self._server.fullServerName(), error)
        log.info("single instance: listening at %s", self._server.fullServerName())
        return True

    def start(self) -> None:
        """Serve requests from now on, including those of launches that connected while the app was built."""
        self._server.newConnection.connect(self._accept)
        self._accept()

    def close(self) -> None:
        clients, self._clients = list(self._clients), {}
        for client in clients:
            client.abort()
        self._server.close()  # also removes the socket file

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            client = self._server.nextPendingConnection()
            self._clients[client] = bytearray()
            # Bound methods and the client's own slot, not lambdas: a lambda would hold this object,
            # and dropping it while Qt deletes the socket would delete the server from inside that.
            client.readyRead.connect(self._ready_read)
            client.disconnected.connect(self._disconnected)
            # A client that connects and never finishes its line must not hold a connection forever.
            timer = QTimer(client)
            timer.setSingleShot(True)
            timer.timeout.connect(self._expire)  # (QLocalSocket.abort is no slot: PySide warns on stderr)
            timer.start(REQUEST_TIMEOUT_MS)
            if client.bytesAvailable():
                self._read(client)

    def _expire(self) -> None:
        timer = self.sender()
        client = timer.parent() if timer is not None else None
        if isinstance(client, QLocalSocket):
            client.abort()

    def _ready_read(self) -> None:
        client = self.sender()
        if isinstance(client, QLocalSocket):
            self._read(client)

    def _disconnected(self) -> None:
        client = self.sender()
        if isinstance(client, QLocalSocket):
            if self._clients.pop(client, None) is not None:
                log.info("single instance: a launch left without a complete request")
            client.deleteLater()

    def _read(self, client: QLocalSocket) -> None:
        buffer = self._clients.get(client)
        if buffer is None:
            return
        buffer += bytes(client.readAll().data())
        if b"\n" not in buffer:
            if len(buffer) > MAX_REQUEST_BYTES:
                self._answer(client, {"ok": False, "error": "request too long"})
            return
        line = bytes(buffer.split(b"\n", 1)[0])
        try:
            request = parse_request(line)
        except RequestError as error:
            log.warning("single instance: bad request %r: %s", line[:200], error)
            self._answer(client, {"ok": False, "error": str(error)})
            return
        if "open" in request:
            log.info("single instance: another launch asks to open %s", ", ".join(request["open"]))
            self.openRequested.emit(request["open"])
        elif "read" in request:
            log.info("single instance: another launch asks to read the %s", request["read"])
            self.readRequested.emit(request["read"])
        else:
            log.info("single instance: another launch asks for the window")
            self.activateRequested.emit()
        self._answer(client, {"ok": True})

    def _answer(self, client: QLocalSocket, reply: dict[str, Any]) -> None:
        self._clients.pop(client, None)
        client.write(encode(reply))
        client.flush()
        client.disconnectFromServer()  # after the answer is written
