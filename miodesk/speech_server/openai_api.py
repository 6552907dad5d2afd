"""OpenAI's speech API, as OpenAI documents it and Kokoro-FastAPI extends it (what Open WebUI,
SillyTavern, AnythingLLM, Read Aloud and others call).

- `POST /v1/audio/speech` {model, input, voice, response_format, speed, stream, stream_format, seed}:
  `model` one of MODEL_IDS or a dated gpt-4o-mini-tts (all the same engine); `input` at most
  `max_input_chars` (4,096) characters, split into sentences by the service; `voice` any installed
  MioDesk voice by name (also `{"id": NAME}`); `response_format` mp3 (default) | opus | aac | flac |
  wav | pcm (see audio_formats); `speed` 0.5 to 2.0, MioCodec's own time-stretch (OpenAI allows 0.25
  to 4.0: outside MioDesk's range it is refused with 400 rather than quietly clamped, so the client
  learns why it does not get what it asked for); `stream` (Kokoro-FastAPI's, default true) sends the
  audio with chunked transfer as each sentence is ready, false sends one finished file;
  `stream_format: "sse"` sends server-sent events instead: `speech.audio.delta` (base64 audio of the
  format) and finally `speech.audio.done`. `seed` (MioDesk's) makes sampling repeatable.
  `instructions`, `lang_code` and other fields are accepted and ignored.
- `GET /v1/models`, `GET /v1/models/{id}`: the model ids.
- `GET /v1/audio/voices`: `{"voices": [{"id": NAME, "name": NAME}, ...]}` (Kokoro-FastAPI's shape; Open
  WebUI reads `id`).

Errors come as `{"error": {"message", "type", "param", "code"}}`: 400 for bad input, 401 for a missing
or wrong key, 413 for a body over the limit, 503 with Retry-After when the queue is full, 500 when the
engine fails.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from miodesk.errors import MioDeskError
from miodesk.speech_server.audio_formats import FORMATS, MEDIA_TYPES, AudioEncoder, FormatUnavailable, check_format
from miodesk.speech_server.common import (
    ApiError,
    AudioStreamingResponse,
    ClientGone,
    JobAudio,
    first_bytes,
    read_json_object,
    submit,
)
from miodesk.speech_server.service import check_speed

log = logging.getLogger("miodesk.speech_server")

MODEL_IDS = ("miotts", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")  # one engine; OpenAI's names for clients that fix them
_DATED_MODEL = re.compile(r"gpt-4o-mini-tts-\d{4}-\d{2}-\d{2}")  # OpenAI's snapshots of it, accepted too
MODELS_CREATED = 1767225600  # 2026-01-01, a fixed "created" for the model list
STREAM_FORMATS = ("audio", "sse")
NO_CACHE = {"Cache-Control": "no-cache"}


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    voice: str
    fmt: str
    speed: float
    stream: bool
    sse: bool
    seed: int | None


def _string(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if value is None:
        raise ApiError(400, f"'{name}' is required.", param=name, code="missing_required_parameter")
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string, not {type(value).__name__}.", param=name,
                       code="invalid_type")
    return value


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be true or false.", param=name, code="invalid_type")
    return value


def parse_speech_request(body: dict[str, Any], max_input_chars: int) -> SpeechRequest:
    """The request's fields, checked; ApiError (400) for the first one that is wrong."""
    model = _string(body, "model")
    if model not in MODEL_IDS and not _DATED_MODEL.fullmatch(model):
        raise ApiError(400, f"Unknown model '{model}'; this server has {', '.join(MODEL_IDS)} (all MioTTS).",
                       param="model", code="model_not_found")
    text = _string(body, "input")
    if not text.strip():
        raise ApiError(400, "'input' is empty; send the text to speak.", param="input", code="empty_input")
    if len(text) > max_input_chars:
        raise ApiError(400, f"'input' is {len(text)} characters long; at most {max_input_chars} are accepted.",
                       param="input", code="string_above_max_length")
    voice_field = body.get("voice")
    if isinstance(voice_field, dict):  # OpenAI's custom-voice form {"id": ...}
        voice_field = voice_field.get("id")
    voice = _string({"voice": voice_field}, "voice")
    fmt = _string(body, "response_format", "mp3").lower()
    if fmt not in FORMATS:
        raise ApiError(400, f"Unknown response_format '{fmt}'; one of {', '.join(FORMATS)}.",
                       param="response_format", code="invalid_value")
    try:
        check_format(fmt)
    except FormatUnavailable as error:
        raise ApiError(400, str(error), param="response_format", code="format_unavailable") from None
    speed_field = body.get("speed", 1.0)
    if speed_field is None:
        speed_field = 1.0
    if isinstance(speed_field, bool) or not isinstance(speed_field, int | float):
        raise ApiError(400, "'speed' must be a number.", param="speed", code="invalid_type")
    try:
        speed = check_speed(speed_field)
    except MioDeskError as error:
        raise ApiError(400, f"{error} (OpenAI's 0.25 to 4.0 is wider than MioCodec's time-stretch.)",
                       param="speed", code="invalid_value") from None
    stream_format = _string(body, "stream_format", "audio")
    if stream_format not in STREAM_FORMATS:
        raise ApiError(400, f"Unknown stream_format '{stream_format}'; audio or sse.", param="stream_format",
                       code="invalid_value")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise ApiError(400, "'seed' must be a whole number from 0 to 4294967295.", param="seed", code="invalid_value")
    return SpeechRequest(text, voice, fmt, speed, _flag(body, "stream", True), stream_format == "sse", seed)


async def create_speech(request: Request) -> Response:
    state = request.app.state
    body = await read_json_object(request, state.options.max_body_bytes)
    spec = parse_speech_request(body, state.options.max_input_chars)
    job = await submit(state.service, spec.text, spec.voice, spec.speed, spec.seed)
    log.info("speech request %d: %d characters, voice %s, %s%s", job.id, len(spec.text), spec.voice, spec.fmt,
             " (sse)" if spec.sse else " (streamed)" if spec.stream else "")
    try:
        encoder = AudioEncoder(spec.fmt, job.sample_rate, streaming=spec.stream or spec.sse)
    except BaseException:
        job.cancel()
        raise
    audio = JobAudio(job, encoder)
    if not (spec.stream or spec.sse):
        try:
            data = await audio.all_bytes(request)
        except ClientGone:
            return Response(status_code=499)
        except MioDeskError as error:
            raise ApiError(500, str(error), code="generation_failed") from None
        return Response(data, media_type=encoder.media_type)
    first = await first_bytes(audio, request)
    if isinstance(first, Response):
        return first
    if spec.sse:
        return AudioStreamingResponse(audio, _events(audio, first), media_type="text/event-stream",
                                      headers={**NO_CACHE, "X-Accel-Buffering": "no"})
    return AudioStreamingResponse(audio, audio.stream(first), media_type=MEDIA_TYPES[spec.fmt], headers=NO_CACHE)


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode("utf-8") + b"\n\n"


async def _events(audio: JobAudio, first: bytes) -> AsyncIterator[bytes]:
    """OpenAI's speech events: the audio in `speech.audio.delta` events, then `speech.audio.done`."""
    async for data in audio.stream(first):
        yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})
    seconds = audio.job.audio_seconds
    # MioTTS speaks 25 codes a second: the nearest thing to OpenAI's output tokens.
    codes = math.ceil(seconds * 25)
    usage = {"input_tokens": len(audio.job.text), "output_tokens": codes, "total_tokens": len(audio.job.text) + codes}
    yield _event({"type": "speech.audio.done", "usage": usage})


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODELS_CREATED, "owned_by": "miodesk"}


async def list_models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [_model(model_id) for model_id in MODEL_IDS]})


async def get_model(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    if model_id not in MODEL_IDS:
        raise ApiError(404, f"The model '{model_id}' does not exist; this server has {', '.join(MODEL_IDS)}.",
                       param="model", code="model_not_found")
    return JSONResponse(_model(model_id))


async def list_voices(request: Request) -> Response:
    names = await anyio.to_thread.run_sync(request.app.state.service.voice_names)
    return JSONResponse({"voices": [{"id": name, "name": name} for name in names]})


def routes() -> list[Route]:
    return [
        Route("/v1/audio/speech", create_speech, methods=["POST"]),
        Route("/v1/audio/voices", list_voices, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
    ]
