"""The HTTP server: the OpenAI and VOICEVOX speech APIs (openai_api, voicevox_api) over a SpeechService.

Starlette on uvicorn (h11, no extras): a small, well-kept ASGI framework and server, pure Python on
every platform, with streaming responses that notice a client that leaves. uvicorn runs in a thread
of its own (`start_server`: the window; `serve_forever`: `miodesk serve`, whose main thread waits for
Ctrl+C on every system); off the main thread uvicorn installs no signal handlers, and `should_exit`
stops it.

Safety, outermost first:
1. Host check (DNS rebinding): a browser page whose name was pointed at 127.0.0.1 still sends its own
   name; only `127.0.0.1`, `localhost`, `[::1]` and `host.docker.internal` with the server's port, and
   the address it listens on, are answered (400 otherwise). Listening on every address (0.0.0.0, ::)
   needs an API key, and the key is what protects it: a rebinding page cannot know it.
2. CORS only for the configured origins (none by default: browsers refuse cross-origin calls).
3. The API key, when set, on every request: `Authorization: Bearer KEY`, compared in constant time
   (hmac.compare_digest). Listening beyond loopback without one is refused (options.check_options).
4. Request bodies over `max_body_bytes` (413) and input over `max_input_chars` are refused; each bad
   request gets a 4xx with a message and costs the server nothing.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from miodesk.errors import MioDeskError
from miodesk.speech_server import openai_api, voicevox_api
from miodesk.speech_server.common import ApiError, api_error_response, error_response, is_openai_path
from miodesk.speech_server.options import ServerOptions, check_options, is_loopback, is_wildcard
from miodesk.speech_server.service import SpeechService

if TYPE_CHECKING:
    import uvicorn

__all__ = ["RunningServer", "ServerOptions", "check_options", "create_app", "serve_forever", "start_server"]

log = logging.getLogger("miodesk.speech_server")

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
GRACEFUL_SHUTDOWN_S = 1  # then uvicorn cancels the responses still running (their jobs are cancelled)
MAX_CONNECTIONS = 64  # beyond this uvicorn answers 503 at once


def _host_for_url(host: str) -> str:
    name = host.strip("[]")
    return f"[{name}]" if ":" in name else name


def allowed_hosts(options: ServerOptions) -> frozenset[str] | None:
    """The Host header values answered (lower case), or None when listening on every address."""
    if is_wildcard(options.host):
        return None
    # host.docker.internal: how a container (Open WebUI in Docker) names this computer; no web page on
    # the internet can be served under that name, so a browser never sends it for a rebinding attacker.
    names = {"127.0.0.1", "localhost", "[::1]", "host.docker.internal", _host_for_url(options.host.lower())}
    allowed = {f"{name}:{options.port}" for name in names}
    if options.port == 80:
        allowed |= names
    return frozenset(allowed)


class HostCheck:
    """Answers 400 to a Host header that is not this server's (DNS rebinding)."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            if host not in self.allowed:
                log.info("refused a request for host %r", host[:100])
                response = error_response(scope["path"], 400, "Invalid host header: this server answers only "
                                          "for its own address (protection against DNS rebinding).",
                                          code="invalid_host")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class KeyCheck:
    """Answers 401 unless the request carries `Authorization: Bearer KEY`."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, key.encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, given = header.partition(b" ")
            if not given or scheme.lower() != b"bearer":
                message = "This server needs an API key: send it as 'Authorization: Bearer KEY'."
                code = "missing_api_key"
            elif not hmac.compare_digest(given.strip(), self.key):
                message, code = "Incorrect API key provided.", "invalid_api_key"
            else:
                await self.app(scope, receive, send)
                return
            response = error_response(scope["path"], 401, message, code=code,
                                      headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    if error.status >= 500:
        log.warning("%s %s: %d %s", request.method, request.url.path, error.status, error.message)
    else:
        log.info("%s %s: %d %s", request.method, request.url.path, error.status, error.message)
    return api_error_response(request.url.path, error)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    path = request.url.path
    name = path.strip("/").split("/", 1)[0]
    if error.status_code == 404 and not is_openai_path(path) and name in voicevox_api.UNSUPPORTED:
        return error_response(path, 501, voicevox_api.unsupported_message(name), code="not_implemented")
    if error.status_code == 404:
        message = f"There is no {path} here: the OpenAI API is under /v1, the VOICEVOX API at the root."
    elif error.status_code == 405:
        message = f"{path} does not take {request.method}."
    else:
        message = str(error.detail)
    return error_response(path, error.status_code, message, headers=error.headers)


async def _unexpected(request: Request, error: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=error)
    return error_response(request.url.path, 500, f"The server failed: {type(error).__name__}: {error}")


def create_app(service: SpeechService, options: ServerOptions) -> Starlette:
    """The ASGI application of both APIs over `service`, with the safety rules of `options`."""
    middleware = []
    hosts = allowed_hosts(options)
    if hosts is not None:
        middleware.append(Middleware(HostCheck, allowed=hosts))
    if options.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(options.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
                                     max_age=600))
    if options.api_key:
        middleware.append(Middleware(KeyCheck, key=options.api_key))
    app = Starlette(
        routes=[*openai_api.routes(), *voicevox_api.routes()],
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.service = service
    app.state.options = options
    return app


# --- running it -------------------------------------------------------------------------------------------

def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; MioDeskError in one line when that cannot be."""
    name = host.strip("[]")
    try:
        infos = socket.getaddrinfo(name or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise MioDeskError(f"Cannot listen on '{host}': {error.strerror or error}.") from None
    family, kind, proto, _, address = sorted(infos, key=lambda info: info[0] != socket.AF_INET)[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform == "win32":
            # Windows lets another program take a port that is in use unless it is held exclusively.
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", socket.SO_REUSEADDR), 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        in_use = error.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE))
        if in_use:
            raise MioDeskError(f"Port {port} on {host} is already in use (another program, or MioDesk serving "
                               "already); choose another port.") from None
        raise MioDeskError(f"Cannot listen on {host}:{port}: {error.strerror or error}.") from None
    sock.setblocking(False)
    return sock


class RunningServer:
    """A server started by `start_server`; `url` is where this computer reaches it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str, options: ServerOptions) -> None:
        self._server = server
        self._thread = thread
        self.url = url
        self.options = options  # with the port actually bound

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop listening, give running responses a second, cancel the rest; returns within `timeout` s."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(1.0)
        if self._thread.is_alive():
            log.warning("the speech server thread did not stop within %.0f s", timeout)
        else:
            log.info("speech server stopped")


def _abort_connections(server: uvicorn.Server, loop: asyncio.AbstractEventLoop) -> None:
    """Cut every connection still open when the server ends. A response cancelled mid-stream only asks
    its transport to close after flushing what is buffered, which never happens once the loop is gone:
    the client would wait on an open socket instead of seeing the transfer break."""
    for connection in list(server.server_state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:  # also one already closing: its close waits for a flush
            transport.abort()
    loop.run_until_complete(asyncio.sleep(0))  # let the aborts close their sockets


def start_server(service: SpeechService, options: ServerOptions) -> RunningServer:
    """Listen on `options.host:port` (port 0: a free one) in a background thread; returns once it
    answers. MioDeskError in one line for unsafe options or a port in use."""
    import uvicorn

    check_options(options)
    sock = _bind(options.host, options.port)
    options = replace(options, port=int(sock.getsockname()[1]))
    config = uvicorn.Config(
        create_app(service, options),
        host=options.host,
        port=options.port,
        http="h11",
        loop="asyncio",
        ws="none",
        lifespan="off",
        interface="asgi3",
        log_config=None,  # MioDesk's own logging stays as it is
        access_log=False,
        proxy_headers=False,  # nothing in front of it; X-Forwarded-* from clients mean nothing
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        h11_max_incomplete_event_size=max(16384, options.max_body_bytes),  # a VOICEVOX text in the URL
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as error:  # noqa: B036 - reported to start_server or logged; the thread ends
            failure.append(error)
            log.exception("the speech server stopped with an error")
        finally:
            _abort_connections(server, loop)
            loop.close()
            sock.close()

    thread = threading.Thread(target=run, name="miodesk-speech-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(STOP_TIMEOUT_S)
            reason = f"{type(failure[0]).__name__}: {failure[0]}" if failure else "it did not start in time"
            raise MioDeskError(f"The speech server could not start on {options.host}:{options.port} ({reason}).")
        time.sleep(0.01)
    local = "127.0.0.1" if is_wildcard(options.host) else _host_for_url(options.host)
    url = f"http://{local}:{options.port}"
    log.info("speech server listening on %s (%s)", url, "key required" if options.api_key else "no key")
    return RunningServer(server, thread, url, options)


def serve_forever(service: SpeechService, options: ServerOptions) -> int:
    """`miodesk serve`: run in the foreground until Ctrl+C (also SIGTERM, and Ctrl+Break on Windows), then
    stop cleanly; returns 0."""
    running = start_server(service, options)
    stop = threading.Event()
    stop_signals = [signal.SIGTERM, *([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else [])]
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in stop_signals}
    where = "this computer only" if is_loopback(options.host) else "the network too (API key required)"
    print(f"MioDesk speech server on {running.url} ({where}); Ctrl+C stops it.", flush=True)
    print(f"  OpenAI:   base URL {running.url}/v1  (POST /v1/audio/speech, GET /v1/audio/voices)", flush=True)
    print(f"  VOICEVOX: {running.url}  (GET /speakers, POST /audio_query, POST /synthesis)", flush=True)
    try:
        while not stop.wait(0.25):  # short waits: Ctrl+C interrupts them on Windows too
            if not running.running:
                raise MioDeskError("The speech server stopped unexpectedly (details in the log).")
    except KeyboardInterrupt:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        running.stop()
    print("MioDesk speech server stopped.", flush=True)
    return 0
