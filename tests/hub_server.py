"""A small Hugging Face hub on 127.0.0.1 for download tests, plus plain file URLs for the presets.

It answers what huggingface_hub 2.x asks when downloading one file (file_download.py):
- `HEAD /{owner}/{repo}/resolve/{revision}/{filename}` → 200 with `X-Repo-Commit`, `ETag`
  (git blob sha1 for small files, sha256 for "LFS" files, which also get `X-Linked-Etag` and
  `X-Linked-Size`), `Content-Length`, `Accept-Ranges`; 404 with `X-Error-Code: EntryNotFound`.
- `GET` of the same URL, honouring `Range: bytes=N-` with 206 + `Content-Range`.
- `GET /raw/{path}`: a plain file (what raw.githubusercontent.com serves), with Range too.

Faults for tests, each used once unless `times` says otherwise: "500" (an error answer), "404",
"cut" (headers promise the whole body, half is sent, the connection is closed), and a throttle
(a pause between pieces of the body) so a test can act mid-file. Every request is logged.

The server runs in a daemon thread, on an ephemeral port, and stops itself after `max_seconds`.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_THRESHOLD = 4096  # like the hub: big files are LFS (sha256 ETag), small ones are git blobs


@dataclass
class Served:
    data: bytes
    etag: str
    lfs: bool


@dataclass
class Fault:
    kind: str  # "500", "404" or "cut"
    path_part: str
    method: str = "GET"
    times: int = 1


@dataclass
class Logged:
    method: str
    path: str
    range: str | None
    status: int


@dataclass
class FakeHub:
    max_seconds: float = 60.0
    piece: int = 64 * 1024
    delay_s: float = 0.0  # pause after each piece of a body
    files: dict[str, Served] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None

    # ------------------------------------------------------------------ content
    def add(self, repo: str, filename: str, data: bytes, etag: str | None = None) -> None:
        """Serve `data` as `filename` of `repo`; `etag` overrides the true checksum (bad-file tests)."""
        lfs = len(data) >= LFS_THRESHOLD
        if etag is None:
            etag = hashlib.sha256(data).hexdigest() if lfs else git_blob_sha1(data)
        self.files[f"/{repo}/{filename}"] = Served(data, etag, lfs)

    def add_raw(self, path: str, data: bytes) -> None:
        self.files[f"/raw/{path.lstrip('/')}"] = Served(data, hashlib.sha256(data).hexdigest(), False)

    def fail(self, kind: str, path_part: str, method: str = "GET", times: int = 1) -> None:
        self.faults.append(Fault(kind, path_part, method, times))

    def take_fault(self, method: str, path: str) -> str | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path_part in path:
                    fault.times -= 1
                    return fault.kind
        return None

    def record(self, entry: Logged) -> None:
        with self._lock:
            self.log.append(entry)

    def requests(self, method: str | None = None) -> list[Logged]:
        with self._lock:
            return [e for e in self.log if method is None or e.method == method]

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return self._url

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self._url = f"http://{host}:{port}"
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._timer = threading.Timer(self.max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"
    timeout = 10  # a stuck client cannot hold a thread for long

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _simple(self, status: int, extra: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": f"HTTP {status} from the test hub"}).encode()  # the hub answers JSON
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer(self, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        range_header = self.headers.get("Range")
        key, is_hub = self._key(path)
        fault = self.hub.take_fault(self.command, path)
        status = 200
        try:
            if fault in ("500", "404"):
                status = int(fault)
                self._simple(status, {"X-Repo-Commit": COMMIT} if is_hub else None)
                return
            served = self.hub.files.get(key) if key else None
            if key is None:
                status = 404
                self._simple(404, {"X-Error-Code": "RevisionNotFound"} if is_hub else None)
                return
            if served is None:
                status = 404
                self._simple(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT} if is_hub else None)
                return
            data = served.data
            start = 0
            if range_header and not head:
                start = int(range_header.split("=", 1)[1].split("-", 1)[0])
            status = 206 if start else 200
            self.send_response(status)
            if is_hub:
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{served.etag}"')
                if served.lfs:
                    self.send_header("X-Linked-Etag", f'"{served.etag}"')
                    self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if head:
                return
            body = data[start:]
            if fault == "cut":
                body = body[: len(body) // 2]
            for offset in range(0, len(body), self.hub.piece):
                self.wfile.write(body[offset : offset + self.hub.piece])
                self.wfile.flush()
                if self.hub.delay_s:
                    time.sleep(self.hub.delay_s)
            if fault == "cut":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (a cancelled download)
        finally:
            self.hub.record(Logged(self.command, path, range_header, status))

    def _key(self, path: str) -> tuple[str | None, bool]:
        """(files key, is a hub URL); key None for an unknown revision."""
        if path.startswith("/raw/"):
            return path, False
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return f"/unknown{path}", True
        owner, name, _, revision, *rest = parts
        if revision not in ("main", COMMIT):
            return None, True
        return f"/{owner}/{name}/{'/'.join(rest)}", True
