"""MioDesk's speech server for tests: the real HTTP stack (Starlette on uvicorn) on a free 127.0.0.1 port,
over the real speech service with a generated MioTTS-like model, the golden codec and the preset voices.

    from speech_server_fixtures import speech_engine, speech_voices, speech_server, keyed_server  # fixtures
    from speech_server_fixtures import API_KEY, http_call, running_server

`speech_server` listens without a key, `keyed_server` wants `API_KEY`; `running_server(...)` starts one
with other options (a context manager). Each is stopped afterwards. `http_call` is one request through
the standard library's client. Everything is on loopback and bounded in time.
"""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import soundfile
from conftest import GOLDEN
from gguf_fixtures import make_model

from miodesk.speech_server.app import RunningServer, ServerOptions, start_server
from miodesk.speech_server.service import SpeechService
from miodesk.tts.engine import SpeechEngine
from miodesk.tts.voices import VoiceStore

CODEC = GOLDEN / "codec" / "v2_44k"
PRESETS = sorted((GOLDEN / "presets").glob("*.pt"))
API_KEY = "miodesk-speech-test-key-5678"
HTTP_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def speech_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated model that says ~20 codes (0.8 s) per sentence."""
    return make_model(tmp_path_factory.mktemp("speech_models"), "speech", "qwen3", eog_probability=0.05, seed=1).path


@pytest.fixture(scope="session")
def speech_engine(speech_model: Path) -> SpeechEngine:
    return SpeechEngine(speech_model, CODEC, provider="cpu", llm_threads=1, codec_threads=1)


@pytest.fixture(scope="session")
def speech_voices(tmp_path_factory: pytest.TempPathFactory) -> VoiceStore:
    """The four official presets (en_female, en_male, jp_female, jp_male) in a store of their own."""
    store = VoiceStore(tmp_path_factory.mktemp("speech_voices"))
    for preset in PRESETS:
        store.import_file(preset)
    return store


@pytest.fixture
def speech_service(speech_engine: SpeechEngine, speech_voices: VoiceStore) -> Iterator[SpeechService]:
    service = SpeechService(lambda: speech_engine, speech_voices)
    yield service
    service.close()


@contextmanager
def running_server(service: SpeechService, **options) -> Iterator[RunningServer]:
    """`start_server` on 127.0.0.1 and a free port (unless `options` say otherwise), stopped afterwards."""
    server = start_server(service, ServerOptions(**{"host": "127.0.0.1", "port": 0, **options}))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def speech_server(speech_service: SpeechService) -> Iterator[RunningServer]:
    with running_server(speech_service) as server:
        yield server


@pytest.fixture
def keyed_server(speech_service: SpeechService) -> Iterator[RunningServer]:
    with running_server(speech_service, api_key=API_KEY) as server:
        yield server


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def http_call(url: str, method: str, path: str, body: bytes | dict | list | None = None,
              headers: dict[str, str] | None = None, key: str = "", timeout: float = HTTP_TIMEOUT_S) -> Reply:
    """One request with the standard library's HTTP client (a dict or list body is sent as JSON)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        sent = dict(headers or {})
        if key:
            sent["Authorization"] = f"Bearer {key}"
        if isinstance(body, dict | list):
            body = json.dumps(body).encode("utf-8")
            sent.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Samples (float32, frames × channels for stereo) and rate of a WAV/FLAC/MP3/Ogg file, read to its
    end (also a streamed FLAC, whose header says "length unknown")."""
    with soundfile.SoundFile(io.BytesIO(data)) as sound:
        blocks = []
        while True:
            try:
                block = sound.read(4096, dtype="float32")
            except soundfile.LibsndfileError:  # libsndfile seeks past the end of an unknown-length FLAC
                break
            if not len(block):
                break
            blocks.append(block)
        samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        return samples, sound.samplerate
