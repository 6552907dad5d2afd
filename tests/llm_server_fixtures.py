"""A real OpenAI-compatible LLM server for tests: llama-cpp-python's `llama_cpp.server` (the test extra
`llama-cpp-python[server]`) on 127.0.0.1 with a generated MioTTS-like GGUF.

    from llm_server_fixtures import llm_server        # a session fixture: .base_url, .api_key, .model_path

`start_llm_server` starts more (another model, no key, `interrupt_requests` on); each is stopped by
`LlmServer.stop` (the fixtures do it). The model of `llm_server` draws a few ordinary text tokens
besides its audio tokens (`hot_text_margin`), as an unrestricted server sampler does, so the client's
filtering is exercised, and ends after about 20 tokens.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gguf_fixtures import make_model

from miodesk.tts.llm_server import ServerConfig

START_TIMEOUT_S = 60.0
API_KEY = "miodesk-test-key-1234"


@dataclass
class LlmServer:
    base_url: str  # http://127.0.0.1:PORT/v1
    api_key: str  # "" when the server takes no key
    model_path: Path
    process: subprocess.Popen
    log_path: Path

    def config(self, **changes: str) -> ServerConfig:
        fields = {"base_url": self.base_url, "api_key": self.api_key, "model": ""}
        fields.update(changes)
        return ServerConfig(**fields)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_llm_server(
    model_path: Path, log_dir: Path, api_key: str = "", interrupt_requests: bool = False
) -> LlmServer:
    """`python -m llama_cpp.server` on a free loopback port, ready when `/v1/models` answers."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "2048", "--n_threads", "1",
        "--interrupt_requests", "true" if interrupt_requests else "false",
    ]
    if api_key:
        command += ["--api_key", api_key]
    log_path = log_dir / f"llama_cpp_server_{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlmServer(f"http://127.0.0.1:{port}/v1", api_key, Path(model_path), process, log_path)
    request = urllib.request.Request(server.base_url + "/models",
                                     headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                if json.load(answer).get("data"):
                    return server
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"llama_cpp.server did not answer within {START_TIMEOUT_S:.0f} s:\n{server.log_tail()}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def llm_server_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Its text tokens rank with the best audio tokens, so about one token in five is text (the client
    # drops it), and a generation ends after ~20 tokens.
    root = tmp_path_factory.mktemp("llm_server_model")
    return make_model(root, "MioTTS-server-test", "qwen3", eog_probability=0.05, hot_text_margin=0.05, seed=1).path


@pytest.fixture(scope="session")
def llm_server(llm_server_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServer]:
    """llama_cpp.server with `llm_server_model`, an API key and `--interrupt_requests false`."""
    server = start_llm_server(llm_server_model, tmp_path_factory.mktemp("llm_server_log"), api_key=API_KEY)
    yield server
    server.stop()
