"""The speech model on an OpenAI-compatible LLM server (llama-server, llama_cpp.server, vLLM, Ollama, LM Studio).

MioTTS is an ordinary LLM, so the official MioTTS-Inference server runs it on any server with an
OpenAI chat endpoint. `RemoteLLM` is the `CodeGenerator` that does the same from MioDesk: one
``POST {base}/chat/completions`` per utterance with the normalised text as the only user message and
every sampling field sent explicitly (servers have other defaults), streamed (``stream: true``) so the
codec starts on the first codes. The ``<|s_N|>`` tokens are read from the text of the reply; anything
else in it is dropped and counted. Only the standard library is used (no new runtime dependency).

Server quirks handled here, each with a one-line message (`ServerError`):
  * llama_cpp.server ends a running stream when another request arrives (``--interrupt_requests``,
    on by default): the stream then ends with ``[DONE]`` but no ``finish_reason``.
  * llama-server does not print CONTROL-type tokens unless started with ``--special``, and
    llama_cpp.server never does: the reply then holds no audio token at all.
  * llama_cpp.server answers a request for an unknown model with its default model, so the model is
    checked against ``GET {base}/models`` first.
  * vLLM has a native allow-list (``allowed_token_ids``): the audio ids come from its ``/tokenize``.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from miodesk.errors import MioDeskError
from miodesk.tts.generation import FinishReason, SamplingParams

log = logging.getLogger(__name__)

ENV_BASE_URL = "MIODESK_LLM_BASE_URL"
ENV_API_KEY = "MIODESK_LLM_API_KEY"

N_AUDIO_CODES = 12_800  # as miodesk.tts.llm (not imported: that module is the llama.cpp side)
DEFAULT_TIMEOUT = 10.0  # connect (with retries) and wait for the reply's first byte
# Silence allowed in the middle of a reply. Longer than the 15 s between the keep-alive comments that
# llama_cpp.server (sse-starlette) sends while a request waits for the model, so a busy server is not
# taken for a dead one.
DEFAULT_STALL_TIMEOUT = 20.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_DELAYS = (0.5, 1.0)  # 3 tries, 0.5·2ⁿ s apart, as MioTTS-Inference's client
_CANCEL_POLL_S = 0.05  # a cancelled reading closes its socket within this
# Tokens in a reply without any audio token that make it "no audio tokens" (a server error) rather than
# a reply that ended at once (retried with another seed, as in-process): a model that is not MioTTS
# writes a sentence, hidden audio tokens arrive as a run of empty pieces.
_NO_AUDIO_EVIDENCE = 4

LLAMA_SERVER = "llama.cpp server"
LLAMA_CPP_PYTHON = "llama-cpp-python"
VLLM = "vLLM"
OLLAMA = "Ollama"
LM_STUDIO = "LM Studio"
UNKNOWN_SERVER = "OpenAI-compatible server"
# `owned_by` of GET /models. Checked here: "me" (llama_cpp.server 0.3.36, server/app.py) and "llamacpp"
# (llama.cpp's tools/server/server-context.cpp, read in its source). From documentation and source,
# not run here: vLLM's model card ("vllm"); Ollama lists its own models as "library" (the namespace of
# the model name); LM Studio's docs show "organization_owner" in some versions and the publisher in
# others. Ollama is also recognised by its /api/version endpoint when `owned_by` says nothing.
_OWNERS = {
    "llamacpp": LLAMA_SERVER,
    "me": LLAMA_CPP_PYTHON,
    "vllm": VLLM,
    "library": OLLAMA,
    "ollama": OLLAMA,
    "organization_owner": LM_STUDIO,
}

_AUDIO_TOKEN = re.compile(r"<\|s_(\d+)\|>")
_PARTIAL_TOKEN = re.compile(r"<(\|(s(_(\d{1,8}(\|)?)?)?)?)?")  # what a token split across chunks starts with
# End-of-generation tokens allowed next to the audio ids in vLLM's allow-list (without one the model
# could never stop): ChatML's <|im_end|> (all MioTTS models), Qwen's <|endoftext|>, Falcon's <|end_of_text|>.
_EOG_CANDIDATES = ("<|im_end|>", "<|endoftext|>", "<|end_of_text|>")

INTERRUPT_HINT = (
    "llama_cpp.server does this when another request arrives: start it with --interrupt_requests false"
)


class ServerError(MioDeskError):
    """The speech server cannot be used; `str()` is the one-line message shown to users."""


class NoAudioTokensError(ServerError):
    """The server answered with text but no ``<|s_N|>`` token: not a MioTTS model, or tokens hidden."""


class _Cancelled(Exception):
    """The caller's cancel event was set while connecting."""


def _one_line(text: object, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- configuration ------------------------------------------------------------------------------


def _split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path without trailing slash) of a server URL, or ServerError."""
    shown = _one_line(url, 80)
    if not url:
        raise ServerError("The speech server URL is empty; give one like http://127.0.0.1:8000/v1.")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ServerError(f"The speech server URL '{shown}' contains spaces or control characters.")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ServerError(
            f"The speech server URL '{shown}' is not an http:// or https:// address "
            "(for example http://127.0.0.1:8000/v1)."
        )
    if parts.username is not None or parts.password is not None:
        # Not echoed: it holds a password.
        raise ServerError("The speech server URL holds a user name or password; give the key with --llm-api-key.")
    if not parts.hostname:
        raise ServerError(f"The speech server URL '{shown}' has no host name (for example http://127.0.0.1:8000/v1).")
    try:
        port = parts.port
    except ValueError:
        raise ServerError(f"The speech server URL '{shown}' has an invalid port.") from None
    scheme = parts.scheme.lower()
    if port is None:
        port = 443 if scheme == "https" else 80
    if parts.query or parts.fragment:
        raise ServerError(
            f"The speech server URL '{shown}' has a query or fragment; give only the base, such as .../v1."
        )
    return scheme, parts.hostname, port, parts.path.rstrip("/")


@dataclass(frozen=True)
class ServerConfig:
    """Where the speech model runs: an OpenAI-compatible base URL (usually ending in /v1), an optional
    key and model. Validated on creation (ServerError); the key is never shown, logged or printed."""

    base_url: str  # e.g. "http://127.0.0.1:8000/v1"
    api_key: str = field(default="", repr=False)  # sent as "Authorization: Bearer KEY" when not empty
    model: str = ""  # "" = the first id of GET {base}/models, as the official MioTTS server does

    def __post_init__(self) -> None:
        url = (self.base_url or "").strip().rstrip("/")
        _split_url(url)
        key = (self.api_key or "").strip()
        if any(not (32 < ord(c) < 127) for c in key):
            raise ServerError("The API key of the speech server may hold only printable ASCII characters, no spaces.")
        object.__setattr__(self, "base_url", url)
        object.__setattr__(self, "api_key", key)
        object.__setattr__(self, "model", (self.model or "").strip())

    @classmethod
    def from_options(
        cls, base_url: str | None, api_key: str | None = None, model: str | None = None
    ) -> ServerConfig | None:
        """Flags win over the environment MIODESK_LLM_BASE_URL / MIODESK_LLM_API_KEY; None when no URL at all."""
        url = base_url if base_url is not None else os.environ.get(ENV_BASE_URL, "")
        if not url.strip():
            return None
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY, "")
        return cls(url, key, model or "")

    def label(self) -> str:
        """The server as "host:port", for status lines (no key, no path)."""
        _, host, port, _ = _split_url(self.base_url)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def path(self, suffix: str, root: bool = False) -> str:
        """The request path of an endpoint under the base URL; `root` drops a trailing /v1 first
        (vLLM's /tokenize and Ollama's /api/version live at the server's root)."""
        base = _split_url(self.base_url)[3]
        if root and base.endswith("/v1"):
            base = base[: -len("/v1")]
        return base + suffix


def display_model_name(model_id: str) -> str:
    """A model id as people read it: llama_cpp.server uses the GGUF's path, vLLM the hub repository."""
    name = re.split(r"[/\\]", model_id.rstrip("/\\"))[-1] or model_id
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name


# --- HTTP ---------------------------------------------------------------------------------------


def _connection(config: ServerConfig, timeout: float) -> http.client.HTTPConnection:
    scheme, host, port, _ = _split_url(config.base_url)
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _headers(config: ServerConfig, streaming: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if streaming else "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    return headers


def _error_detail(body: bytes) -> str:
    """The message in an error reply (OpenAI, FastAPI, llama-server and vLLM shapes), on one line."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return _one_line(text)
    if isinstance(data, dict):
        error = data.get("error")
        for candidate in (error.get("message") if isinstance(error, dict) else error,
                          data.get("detail"), data.get("message")):
            if isinstance(candidate, str) and candidate.strip():
                return _one_line(candidate)
            if isinstance(candidate, list) and candidate:  # FastAPI's validation errors
                first = candidate[0]
                return _one_line(first.get("msg", first) if isinstance(first, dict) else first)
    return _one_line(text)


def _status_error(config: ServerConfig, status: int, body: bytes, endpoint: str) -> ServerError:
    where = f"The speech server at {config.label()}"
    detail = _error_detail(body)
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        if config.api_key:
            return ServerError(
                f"{where} refused the API key (HTTP {status}); check --llm-api-key or {ENV_API_KEY}."
            )
        return ServerError(f"{where} needs an API key (HTTP {status}); give it with --llm-api-key or {ENV_API_KEY}.")
    if status == 404:
        if "model" in detail.lower():
            return ServerError(f"{where} does not know the model '{config.model}' (HTTP 404{suffix}).")
        return ServerError(
            f"{where} has no {endpoint} (HTTP 404); check the URL, which usually ends in /v1."
        )
    if status >= 500:
        return ServerError(f"{where} failed (HTTP {status}{suffix}).")
    return ServerError(f"{where} refused the request (HTTP {status}{suffix}).")


def _open(
    config: ServerConfig,
    method: str,
    path: str,
    payload: Any,
    timeout: float,
    cancel: threading.Event | None = None,
    register: Callable[[http.client.HTTPConnection], None] | None = None,
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send one request and wait for the status line, retrying refused connections and 429/502/503/504
    (3 tries, 0.5·2ⁿ s apart) within `timeout` seconds in all. Other statuses are the caller's."""
    deadline = time.monotonic() + timeout
    body = json.dumps(payload).encode("utf-8") if payload is not None else None
    headers = _headers(config, streaming=bool(payload and payload.get("stream")))
    attempt = 0
    while True:
        conn = _connection(config, max(0.1, deadline - time.monotonic()))
        if register is not None:
            register(conn)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            if cancel is not None and cancel.is_set():
                raise _Cancelled() from None
            retry, failure = _connection_failure(error, config, timeout)
            if not retry:
                raise failure from None
        else:
            if response.status not in RETRY_STATUSES:
                return conn, response
            failure = _status_error(config, response.status, _read_bounded(response), path)
            conn.close()
        if attempt >= len(RETRY_DELAYS) or time.monotonic() + RETRY_DELAYS[attempt] >= deadline:
            raise failure
        log.info("%s Trying again in %.1f s.", failure, RETRY_DELAYS[attempt])
        if cancel is not None:
            if cancel.wait(RETRY_DELAYS[attempt]):
                raise _Cancelled()
        else:
            time.sleep(RETRY_DELAYS[attempt])
        attempt += 1


def _connection_failure(error: BaseException, config: ServerConfig, timeout: float) -> tuple[bool, ServerError]:
    """(worth another try, the message) for a request that got no status line."""
    where = f"the speech server at {config.label()}"
    if isinstance(error, ConnectionRefusedError):
        return True, ServerError(f"Cannot reach {where}: connection refused (is it running?).")
    if isinstance(error, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        return True, ServerError(f"Cannot reach {where}: it closed the connection without an answer.")
    if isinstance(error, TimeoutError):
        return False, ServerError(f"No answer from {where} within {timeout:.0f} s.")
    if isinstance(error, socket.gaierror):
        return False, ServerError(f"Cannot find the host of {where} (check the URL).")
    if isinstance(error, ssl.SSLError):
        reason = error.reason or error
        return False, ServerError(f"Secure connection to {where} failed: {_one_line(reason)}.")
    if isinstance(error, http.client.HTTPException):
        return False, ServerError(f"{where[0].upper()}{where[1:]} does not answer in HTTP (check the URL's port).")
    reason = getattr(error, "strerror", None) or type(error).__name__
    return False, ServerError(f"Cannot reach {where}: {_one_line(reason)}.")


def _read_bounded(response: http.client.HTTPResponse, limit: int = 1 << 20) -> bytes:
    try:
        return response.read(limit)
    except (OSError, http.client.HTTPException):
        return b""


def _get_json(config: ServerConfig, path: str, timeout: float, payload: Any = None) -> Any:
    """GET (or POST with `payload`) a JSON endpoint; ServerError for anything but 200 with JSON."""
    conn, response = _open(config, "POST" if payload is not None else "GET", path, payload, timeout)
    try:
        body = _read_bounded(response, 16 << 20)
    except TimeoutError:
        raise ServerError(f"No answer from the speech server at {config.label()} within {timeout:.0f} s.") from None
    finally:
        conn.close()
    if response.status != 200:
        raise _status_error(config, response.status, body, path)
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:
        raise ServerError(
            f"The speech server at {config.label()} answered {path} with something that is not JSON; "
            "check the URL, which usually ends in /v1."
        ) from None


# --- what the server is -------------------------------------------------------------------------


def _list_models(config: ServerConfig, timeout: float) -> list[dict[str, Any]]:
    data = _get_json(config, config.path("/models"), timeout)
    models = data.get("data") if isinstance(data, dict) else None
    if not isinstance(models, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in models):
        raise ServerError(
            f"The speech server at {config.label()} did not answer /models with an OpenAI model list; "
            "check the URL, which usually ends in /v1."
        )
    if not models:
        raise ServerError(f"The speech server at {config.label()} lists no models; load a MioTTS model into it.")
    return models


def _choose_model(config: ServerConfig, models: list[dict[str, Any]]) -> dict[str, Any]:
    if not config.model:
        return models[0]
    for model in models:
        if model["id"] == config.model:
            return model
    served = ", ".join(m["id"] for m in models[:3]) + (", …" if len(models) > 3 else "")  # ids as they are
    raise ServerError(f"The speech server at {config.label()} has no model '{config.model}' (it serves: {served}).")


def _server_kind(config: ServerConfig, model: dict[str, Any], timeout: float) -> str:
    kind = _OWNERS.get(str(model.get("owned_by", "")).lower())
    if kind:
        return kind
    try:  # Ollama answers {"version": "..."} here; its owned_by is the model's namespace
        data = _get_json(config, config.path("/api/version", root=True), min(timeout, 2.0))
        if isinstance(data, dict) and set(data) == {"version"}:
            return OLLAMA
    except ServerError:
        pass
    return UNKNOWN_SERVER


def _vllm_allowed_ids(config: ServerConfig, model: str, timeout: float) -> list[int] | None:
    """Audio + end-of-generation token ids from vLLM's /tokenize (one call for the 12,800 audio tokens,
    one per end token), or None when they cannot be learned (then nothing is restricted)."""
    path = config.path("/tokenize", root=True)

    def tokenize(text: str) -> list[int]:
        data = _get_json(config, path, timeout, {"model": model, "prompt": text, "add_special_tokens": False})
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ServerError("unexpected /tokenize reply")
        return tokens

    try:
        audio = tokenize("".join(f"<|s_{code}|>" for code in range(N_AUDIO_CODES)))
        if len(audio) != N_AUDIO_CODES or len(set(audio)) != N_AUDIO_CODES:
            log.info("vLLM: the audio tokens are not single tokens of %s; output not restricted", model)
            return None
        ends = [ids[0] for ids in map(tokenize, _EOG_CANDIDATES) if len(ids) == 1]
    except ServerError as error:
        log.info("vLLM: cannot learn the audio token ids (%s); output not restricted", error)
        return None
    if not ends:
        log.info("vLLM: %s has none of the end tokens %s; output not restricted", model, _EOG_CANDIDATES)
        return None
    return sorted(set(audio) | set(ends))


def no_audio_hint(kind: str) -> str:
    """What to do when a server's replies hold no audio token."""
    if kind == LLAMA_SERVER:
        return "not a MioTTS model, or llama-server hides its audio tokens: start it with --special"
    if kind == LLAMA_CPP_PYTHON:
        return ("not a MioTTS model, or its GGUF marks the audio tokens as CONTROL tokens, which "
                "llama_cpp.server never prints: serve it with llama-server --special instead")
    return ("not a MioTTS model, or the server hides the audio tokens "
            "(llama-server: start it with --special; llama_cpp.server cannot show CONTROL tokens)")


# --- streamed replies ---------------------------------------------------------------------------


class AudioTokenParser:
    """Codes from reply text that arrives in pieces; a ``<|s_N|>`` split across pieces is joined, any
    other text is dropped and counted (whitespace between tokens is not counted)."""

    def __init__(self) -> None:
        self._pending = ""
        self.skipped_pieces = 0  # pieces of text that held something other than audio tokens
        self.skipped_chars = 0

    def feed(self, text: str) -> list[int]:
        buffer = self._pending + text
        codes: list[int] = []
        dropped = 0
        position = 0
        for match in _AUDIO_TOKEN.finditer(buffer):
            dropped += _visible(buffer[position:match.start()])
            code = int(match.group(1))
            if code < N_AUDIO_CODES:
                codes.append(code)
            else:
                dropped += len(match.group(0))
            position = match.end()
        rest = buffer[position:]
        start = rest.rfind("<")
        if start != -1 and _PARTIAL_TOKEN.fullmatch(rest[start:]):
            self._pending, rest = rest[start:], rest[:start]  # maybe the first half of a token
        else:
            self._pending = ""
        dropped += _visible(rest)
        if dropped:
            self.skipped_pieces += 1
            self.skipped_chars += dropped
        return codes

    def finish(self) -> None:
        """The reply ended: a held-back half token was text after all."""
        if _visible(self._pending):
            self.skipped_pieces += 1
            self.skipped_chars += _visible(self._pending)
        self._pending = ""


def _visible(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def sse_data(lines: Iterator[bytes]) -> Iterator[str]:
    """The `data` of each server-sent event (multi-line data joined with newlines); comments (keep-alive
    pings such as ``: ping``), `event:` and `id:` fields are skipped."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


class RemoteGeneration(Iterator[int]):
    """One streamed reply: codes as they arrive. As `miodesk.tts.llm.Generation`: `finish_reason` is EOG
    (finish_reason "stop"), CAP ("length" and anything else) or CANCELLED; `n_skipped` counts pieces of
    non-audio text dropped from the reply."""

    def __init__(self, llm: RemoteLLM, text: str, params: SamplingParams, cancel: threading.Event | None) -> None:
        self._llm = llm
        self.params = params
        self._body = llm.request_body(text, params)
        self._cancel = cancel
        self.finish_reason: FinishReason | None = None
        self.n_tokens = 0
        self.n_codes = 0
        self.n_skipped = 0
        self.skipped_chars = 0
        self.prompt_seconds = 0.0  # request sent → first piece of the reply (network, queue and prefill)
        self.generate_seconds = 0.0
        self._conn: http.client.HTTPConnection | None = None
        self._done = threading.Event()
        self._closed = False
        self._gen = self._run()

    def __iter__(self) -> RemoteGeneration:
        return self

    def __next__(self) -> int:
        return next(self._gen)

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / self.generate_seconds if self.generate_seconds > 0 else 0.0

    def close(self) -> None:
        """Stop early: the socket is closed, so the server stops generating."""
        self._closed = True
        self._shutdown()
        self._gen.close()
        if self.finish_reason is None:
            self.finish_reason = FinishReason.CANCELLED

    def _register(self, conn: http.client.HTTPConnection) -> None:
        self._conn = conn

    def _shutdown(self) -> None:
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:  # wakes a read blocked in another thread at once (close() alone may not)
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _watch_cancel(self, cancel: threading.Event) -> None:
        while not self._done.wait(_CANCEL_POLL_S):
            if cancel.is_set():
                self._shutdown()
                return

    def _stopped(self) -> bool:
        return self._closed or (self._cancel is not None and self._cancel.is_set())

    def _run(self) -> Generator[int, None, None]:
        llm, cancel = self._llm, self._cancel
        if cancel is not None and cancel.is_set():
            self.finish_reason = FinishReason.CANCELLED
            return
        if cancel is not None:
            threading.Thread(target=self._watch_cancel, args=(cancel,), name="llm-cancel", daemon=True).start()
        started = time.perf_counter()
        try:
            try:
                conn, response = _open(llm.config, "POST", llm.config.path("/chat/completions"), self._body,
                                       llm.timeout, cancel, self._register)
            except _Cancelled:
                self.finish_reason = FinishReason.CANCELLED
                return
            try:
                yield from self._stream(conn, response, started)
            finally:
                conn.close()
        finally:
            self._done.set()
            if self.finish_reason is None:
                self.finish_reason = FinishReason.CANCELLED

    def _stream(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, started: float
    ) -> Generator[int, None, None]:
        llm = self._llm
        where = f"The speech server at {llm.config.label()}"
        if response.status != 200:
            raise _status_error(llm.config, response.status, _read_bounded(response), "/chat/completions")
        if conn.sock is not None:
            conn.sock.settimeout(llm.stall_timeout)
        parser = AudioTokenParser()
        finish: str | None = None
        done = False
        content_pieces = 0  # pieces of reply text, even empty ones (a hidden token arrives as "")
        usage_tokens: int | None = None
        first_piece_at: float | None = None
        t0 = time.perf_counter()
        try:
            for data in _reply_events(response):
                if data.strip() == "[DONE]":
                    done = True
                    break
                event = _parse_event(data, where)
                usage = event.get("usage")
                if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                    usage_tokens = usage["completion_tokens"]
                choices = event.get("choices")
                if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
                    continue
                choice = choices[0]
                delta = choice.get("delta", choice.get("message"))  # a streamed piece, or a whole reply
                delta = delta if isinstance(delta, dict) else {}
                piece = delta.get("content", choice.get("text"))
                if isinstance(piece, str) and (piece or "role" not in delta):
                    if first_piece_at is None:
                        first_piece_at = time.perf_counter()
                        self.prompt_seconds = first_piece_at - started
                        t0 = first_piece_at
                    content_pieces += 1
                    for code in parser.feed(piece):
                        self.n_codes += 1
                        self.generate_seconds += time.perf_counter() - t0
                        yield code
                        t0 = time.perf_counter()
                if choice.get("finish_reason"):
                    finish = str(choice["finish_reason"])
        except TimeoutError:
            if not self._stopped():
                raise ServerError(
                    f"{where} stopped sending for {llm.stall_timeout:.0f} s in the middle of a sentence."
                ) from None
        except (OSError, http.client.HTTPException):
            if not self._stopped():
                raise ServerError(f"{where} closed the connection in the middle of a sentence.") from None
        if first_piece_at is not None:
            self.generate_seconds += time.perf_counter() - t0
        parser.finish()
        self.n_skipped, self.skipped_chars = parser.skipped_pieces, parser.skipped_chars
        self.n_tokens = usage_tokens if usage_tokens is not None else self.n_codes + self.n_skipped
        if self._stopped():
            self.finish_reason = FinishReason.CANCELLED
            return
        if finish is None:
            if done:
                raise ServerError(f"{where} ended its reply before the sentence was finished ({INTERRUPT_HINT}).")
            raise ServerError(f"{where} closed the connection in the middle of a sentence.")
        if self.n_skipped:
            log.info("%s: dropped %d pieces of non-audio text (%d characters) from a reply of %d codes",
                     llm.config.label(), self.n_skipped, self.skipped_chars, self.n_codes)
        if self.n_codes == 0 and max(content_pieces, usage_tokens or 0) >= _NO_AUDIO_EVIDENCE:
            raise NoAudioTokensError(
                f"{where} returned no audio tokens (<|s_N|>) from {display_model_name(llm.model_name)}: "
                f"{no_audio_hint(llm.server_kind)}."
            )
        if finish == "stop":
            self.finish_reason = FinishReason.EOG
        else:
            if finish != "length":
                log.info("%s: finish_reason %r taken as not finished", llm.config.label(), finish)
            self.finish_reason = FinishReason.CAP


def _reply_events(response: http.client.HTTPResponse) -> Iterator[str]:
    """The JSON events of a reply: server-sent events, or one whole reply from a server (or proxy)
    that ignores ``stream: true``."""
    if (response.getheader("Content-Type") or "").startswith("application/json"):
        yield response.read(16 << 20).decode("utf-8", "replace")
        yield "[DONE]"
        return
    yield from sse_data(iter(response.readline, b""))


def _parse_event(data: str, where: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        raise ServerError(f"{where} sent something that is not an OpenAI stream: {_one_line(data, 80)}") from None
    if not isinstance(event, dict):
        raise ServerError(f"{where} sent something that is not an OpenAI stream: {_one_line(data, 80)}")
    # llama-server and vLLM report a failure inside the stream as {"error": {...}}; older vLLM as an
    # object "error".
    error = event.get("error")
    if error or event.get("object") == "error":
        detail = _error_detail(data.encode("utf-8"))
        raise ServerError(f"{where} failed while generating: {detail}")
    return event


# --- the code generator -------------------------------------------------------------------------


class RemoteLLM:
    """The speech model on an OpenAI-compatible server, a `CodeGenerator` like `miodesk.tts.llm.MioLLM`.

    Creating it asks the server for its models (so a dead server, a wrong key or an unknown model fails
    here, as a damaged GGUF fails on load). Generations may run at the same time: each has its own
    connection.
    """

    def __init__(
        self, config: ServerConfig, timeout: float = DEFAULT_TIMEOUT, stall_timeout: float = DEFAULT_STALL_TIMEOUT
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.stall_timeout = stall_timeout
        started = time.perf_counter()
        models = _list_models(config, timeout)
        self.round_trip_s = time.perf_counter() - started
        model = _choose_model(config, models)
        self.model_name: str = model["id"]
        self.server_kind: str = _server_kind(config, model, timeout)
        # vLLM alone has a native allow-list; elsewhere non-audio text is dropped by the parser (a
        # llama-server ban list would need every other id in every request, llama_cpp.server's logit_bias
        # is a Python loop per token).
        self.allowed_token_ids = (
            _vllm_allowed_ids(config, self.model_name, timeout) if self.server_kind == VLLM else None
        )
        log.info(
            "speech model %s on %s (%s), %.0f ms round trip%s", self.model_name, config.label(), self.server_kind,
            self.round_trip_s * 1000, ", output restricted to audio tokens" if self.allowed_token_ids else "",
        )

    @property
    def display_name(self) -> str:
        return display_model_name(self.model_name)

    def request_body(self, text: str, params: SamplingParams) -> dict[str, Any]:
        """The chat request for one utterance: every sampling field explicit (llama_cpp.server's own
        defaults are top_p 0.95 and repeat_penalty 1.1), both spellings of the repeat penalty."""
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": "user", "content": text}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "min_p": params.min_p,
            "repeat_penalty": params.repeat_penalty,
            "repetition_penalty": params.repeat_penalty,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            body["seed"] = params.seed & 0xFFFFFFFF  # as the in-process sampler (llama.cpp seeds are 32-bit)
        if self.allowed_token_ids:
            body["allowed_token_ids"] = self.allowed_token_ids
        return body

    def generate(
        self, text: str, params: SamplingParams | None = None, cancel: threading.Event | None = None
    ) -> RemoteGeneration:
        """Start generating codes for `text` (already normalised); iterate the result for them."""
        return RemoteGeneration(self, text, params or SamplingParams(), cancel)

    def close(self) -> None:
        """Nothing is held between generations (each has its own connection)."""


# --- the Test button and `miodesk doctor` -------------------------------------------------------

PROBE_TEXT = "Hello."
PROBE_TOKENS = 16


@dataclass
class ServerProbe:
    """What a quick look at a server found."""

    kind: str  # LLAMA_SERVER, LLAMA_CPP_PYTHON, VLLM, OLLAMA, LM_STUDIO or UNKNOWN_SERVER
    model: str  # as people read it (display_model_name)
    round_trip_s: float  # GET /models
    audio_tokens: bool  # a short test generation returned <|s_N|> codes
    hint: str = ""  # when not: why, and what to do

    def summary(self) -> str:
        """One line, e.g. "llama-cpp-python, model MioTTS-0.1B, 0.21 s round trip, returns audio tokens"."""
        audio = "returns audio tokens" if self.audio_tokens else f"returns no audio tokens ({self.hint})"
        return f"{self.kind}, model {self.model}, {self.round_trip_s:.2f} s round trip, {audio}"


def probe_server(config: ServerConfig, timeout: float = DEFAULT_TIMEOUT) -> ServerProbe:
    """Ask the server for its models and generate a few tokens. Raises ServerError (one line) for a
    refused connection, a wrong key, an unknown model, 5xx or a stall; no audio tokens is not an error."""
    llm = RemoteLLM(config, timeout=timeout, stall_timeout=timeout)
    generation = llm.generate(PROBE_TEXT, SamplingParams(max_tokens=PROBE_TOKENS, seed=0))
    hint = ""
    try:
        for _ in generation:
            pass
    except NoAudioTokensError:
        hint = no_audio_hint(llm.server_kind)
    else:
        if not generation.n_codes:
            hint = "the model ended its reply at once"
    finally:
        generation.close()
    return ServerProbe(llm.server_kind, llm.display_name, llm.round_trip_s, generation.n_codes > 0, hint)
