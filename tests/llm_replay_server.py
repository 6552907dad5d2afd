"""REPLAYS, not recordings: a stdlib HTTP server on 127.0.0.1 that answers the way llama.cpp's
llama-server and vLLM answer MioDesk's requests, for the servers that cannot run here.

The shapes are written from their public source and documentation, not captured from running servers:
- llama-server (llama.cpp tools/server): `GET /v1/models` with `owned_by: "llamacpp"` and the extra
  `models`/`meta` fields (server-context.cpp); streamed chat chunks as server-task.cpp's
  `to_json_oaicompat_chat_stream` builds them (a first chunk with `role` and `content: null`, one
  `delta.content` per piece, a last chunk with `finish_reason` and an empty `delta`, a usage chunk
  with empty `choices` when `stream_options.include_usage`, `timings`, then `data: [DONE]`); errors
  inside a stream as `data: {"error": {...}}`, refusals as `{"error": {"code", "message", "type"}}`.
- vLLM (entrypoints/openai protocol): `owned_by: "vllm"` with `root`/`max_model_len`; a first chunk
  with `role` and `content: ""`, chunks with `logprobs: null`, a last chunk with `finish_reason` and
  `stop_reason`, the usage chunk, `data: [DONE]`; `POST /tokenize` → `{"count", "max_model_len", "tokens"}`.
- "ollama": an OpenAI-compatible list whose `owned_by` is the model's namespace, and `/api/version`.

Faults for the bad cases (`fault`, after `fault_after` pieces): "stall" (nothing more until the client
goes or the server stops), "close" (the connection closed mid-stream), "interrupt" (`[DONE]` without a
`finish_reason`, what llama_cpp.server sends when a new request interrupts it), "error" (an error event),
"json" (the whole reply at once, as from a server that ignores `stream`). `statuses` are answered, one
per chat request, before replies start. Every request is recorded. Streams use chunked transfer
encoding, as both servers do. The server runs in a daemon thread and stops with the `with` block.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SHAPES = ("llama-server", "vllm", "ollama")
DEFAULT_MODELS = {"llama-server": "MioTTS-0.1B-Q8_0.gguf", "vllm": "Aratako/MioTTS-1.2B",
                  "ollama": "hf.co/Aratako/MioTTS-GGUF:Q8_0"}
VLLM_AUDIO_BASE = 64_400  # ids of <|s_N|> in the replayed vLLM tokenizer
VLLM_SPECIAL = {"<|im_start|>": 6, "<|im_end|>": 7}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _compact(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class ReplayServer:
    shape: str = "llama-server"
    api_key: str = ""
    model: str = ""
    pieces: list[str] = field(default_factory=lambda: [f"<|s_{code}|>" for code in (5, 1200, 77, 12799, 0)])
    finish_reason: str = "stop"
    fault: str | None = None
    fault_after: int = 2
    statuses: list[int] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    max_seconds: float = 60.0  # a stalled stream gives up after this, whatever happens

    def __post_init__(self) -> None:
        assert self.shape in SHAPES, self.shape
        self.model = self.model or DEFAULT_MODELS[self.shape]
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def __enter__(self) -> ReplayServer:
        replay = self

        class Handler(_Handler):
            server_state = replay

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="llm-replay", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- the shapes ---------------------------------------------------------------------------------

    def models_reply(self) -> dict[str, Any]:
        created = int(time.time())
        if self.shape == "llama-server":
            meta = {"vocab_type": 2, "n_vocab": 78336, "n_ctx_train": 8192, "n_embd": 768, "n_params": 104857600,
                    "size": 120000000}
            return {"models": [{"name": self.model, "model": self.model, "modified_at": "", "size": "",
                                "digest": "", "type": "model", "description": "", "tags": [""],
                                "capabilities": ["completion"], "parameters": "", "details": {}}],
                    "object": "list",
                    "data": [{"id": self.model, "object": "model", "created": created, "owned_by": "llamacpp",
                              "meta": meta}]}
        if self.shape == "vllm":
            return {"object": "list", "data": [{
                "id": self.model, "object": "model", "created": created, "owned_by": "vllm", "root": self.model,
                "parent": None, "max_model_len": 8192,
                "permission": [{"id": "modelperm-replay", "object": "model_permission", "created": created,
                                "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
                                "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False,
                                "organization": "*", "group": None, "is_blocking": False}]}]}
        return {"object": "list", "data": [{"id": self.model, "object": "model", "created": created,
                                            "owned_by": self.model.split("/")[1]}]}

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        if self.shape == "vllm" and status == 401:
            return {"error": "Unauthorized"}  # its --api-key middleware
        if self.shape == "vllm":
            return {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": status}
        kind = {401: "authentication_error", 503: "unavailable_error"}.get(status, "server_error")
        return {"error": {"code": status, "message": message, "type": kind}}

    def chunk(self, delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
        created = int(time.time())
        if self.shape == "llama-server":
            choice: dict[str, Any] = {"finish_reason": finish, "index": 0, "delta": delta}
            event = {"choices": [choice], "created": created, "id": "chatcmpl-replay", "model": self.model,
                     "system_fingerprint": "b0000-replay", "object": "chat.completion.chunk"}
        else:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            if finish is not None and self.shape == "vllm":
                choice["stop_reason"] = None
            event = {"id": "chatcmpl-replay", "object": "chat.completion.chunk", "created": created,
                     "model": self.model, "choices": [choice]}
        event.update(extra or {})
        return b"data: " + _compact(event) + b"\n\n"

    def usage_chunk(self, completion_tokens: int) -> bytes:
        usage = {"prompt_tokens": 12, "completion_tokens": completion_tokens, "total_tokens": 12 + completion_tokens}
        event: dict[str, Any] = {"id": "chatcmpl-replay", "object": "chat.completion.chunk", "created": int(time.time()),
                                 "model": self.model, "choices": [], "usage": usage}
        if self.shape == "llama-server":
            event["timings"] = {"prompt_n": 12, "prompt_ms": 3.1, "predicted_n": completion_tokens, "predicted_ms": 40.0}
        return b"data: " + _compact(event) + b"\n\n"

    def tokenize(self, text: str) -> list[int]:
        """The replayed vLLM tokenizer: audio and ChatML tokens are single ids, anything else one per character."""
        ids: list[int] = []
        for match in re.finditer(r"<\|s_(\d+)\|>|<\|im_(?:start|end)\|>|.", text, re.S):
            if match.group(1) is not None:
                ids.append(VLLM_AUDIO_BASE + int(match.group(1)))
            elif match.group(0) in VLLM_SPECIAL:
                ids.append(VLLM_SPECIAL[match.group(0)])
            else:
                ids.append(1000 + ord(match.group(0)) % 50000)
        return ids

    def wait_stopped(self, seconds: float) -> None:
        self._stop.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: ReplayServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _record(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.server_state.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
        return body

    def _json(self, status: int, data: Any) -> None:
        body = _compact(data)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        state = self.server_state
        if not state.api_key or self.headers.get("Authorization") == f"Bearer {state.api_key}":
            return True
        self._json(401, state.error_body(401, "Invalid API Key"))
        return False

    def do_GET(self) -> None:
        state = self.server_state
        self._record()
        if self.path == "/v1/models":
            if self._authorised():
                self._json(200, state.models_reply())
        elif self.path == "/api/version" and state.shape == "ollama":
            self._json(200, {"version": "0.12.6"})
        else:
            self._json(404, state.error_body(404, "File Not Found"))

    def do_POST(self) -> None:
        state = self.server_state
        body = self._record()
        if not self._authorised():
            return
        if self.path == "/tokenize" and state.shape == "vllm":
            tokens = state.tokenize(body["prompt"])
            self._json(200, {"count": len(tokens), "max_model_len": 8192, "tokens": tokens})
        elif self.path == "/v1/chat/completions":
            if state.statuses:
                status = state.statuses.pop(0)
                self._json(status, state.error_body(status, f"replayed HTTP {status}"))
            elif state.fault == "json":
                self._whole_reply()
            else:
                self._stream(bool((body.get("stream_options") or {}).get("include_usage")))
        else:
            self._json(404, state.error_body(404, "File Not Found"))

    def _whole_reply(self) -> None:
        state = self.server_state
        self._json(200, {"id": "chatcmpl-replay", "object": "chat.completion", "created": int(time.time()),
                         "model": state.model,
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(state.pieces)},
                                      "finish_reason": state.finish_reason}],
                         "usage": {"prompt_tokens": 12, "completion_tokens": len(state.pieces), "total_tokens": 0}})

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _stream(self, include_usage: bool) -> None:
        state = self.server_state
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        first = {"role": "assistant", "content": None if state.shape == "llama-server" else ""}
        self._send_chunk(state.chunk(first))
        for index, piece in enumerate(state.pieces):
            if state.fault and index == state.fault_after:
                if self._fault():
                    return
            self._send_chunk(state.chunk({"content": piece}))
        final = {} if state.shape == "llama-server" else {"content": ""}
        self._send_chunk(state.chunk(final, finish=state.finish_reason))
        if include_usage:
            self._send_chunk(state.usage_chunk(len(state.pieces)))
        self._send_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _fault(self) -> bool:
        """Act out `fault`; True when the reply ends here."""
        state = self.server_state
        self.close_connection = True
        if state.fault == "stall":
            state.wait_stopped(state.max_seconds)
        elif state.fault == "close":
            pass  # no end chunk: the client sees the connection go in the middle of the body
        elif state.fault == "interrupt":
            self._send_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        elif state.fault == "error":
            self._send_chunk(b"data: " + _compact(state.error_body(500, "replayed failure: out of memory")) + b"\n\n")
            self._send_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            raise AssertionError(state.fault)
        return True
