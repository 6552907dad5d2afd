"""The part of the VOICEVOX engine API that a speaking client needs (what AivisSpeech also serves, and
what AITuber tools, SAPIForVOICEVOX and many Japanese apps call):

- `GET /version`: MioDesk's version, as a JSON string.
- `GET /speakers`: each installed voice is a speaker with one style ("ノーマル"). The style id is the
  first 31 bits of SHA-256 of the voice's name (UTF-8), so it stays the same across restarts and
  computers as long as the name does (renaming a voice gives it a new id); `speaker_uuid` is a UUID5
  of the name.
- `POST /audio_query?text=&speaker=`: an AudioQuery that carries the text in `kana`; `accent_phrases`
  is empty, because MioTTS speaks from text, not from moras.
- `POST /synthesis?speaker=` with that AudioQuery: a WAV of `kana` in the speaker's voice, honouring
  `speedScale` (0.5 to 2.0, the codec's time-stretch; outside it 422), `volumeScale`,
  `prePhonemeLength`/`postPhonemeLength` (silence before and after, seconds), `outputSamplingRate`
  (one of OUTPUT_RATES) and `outputStereo`. `pitchScale`, `intonationScale` and `pauseLength*` are ignored, and edits to
  `accent_phrases` change nothing. MioDesk's own `seed` query parameter makes sampling repeatable.
- `POST /initialize_speaker`, `GET /is_initialized_speaker`: nothing to prepare (the engine is shared).
- The other VOICEVOX endpoints (moras, presets, user dictionary, morphing, singing …) answer 501
  with a message.

Errors come as FastAPI's `{"detail": message}`, as VOICEVOX engines send them: 422 for a bad or missing
parameter or an unknown speaker.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from typing import Any

import anyio
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from miodesk import __version__
from miodesk.errors import MioDeskError
from miodesk.speech_server.audio_formats import AudioEncoder
from miodesk.speech_server.common import ApiError, ClientGone, JobAudio, read_json_object, submit
from miodesk.speech_server.service import check_speed

log = logging.getLogger("miodesk.speech_server")

STYLE_NAME = "ノーマル"  # VOICEVOX's name for a speaker's plain style
SPEAKER_NAMESPACE = uuid.UUID("5f0c1a3e-6d53-4a8e-9a55-6d1e0c4f1b19")  # MioDesk's, for speaker_uuid
# outputSamplingRate: the usual rates only (a resampling filter between two rates with no common factor
# would be as large as the rates themselves)
OUTPUT_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
MAX_SILENCE_S = 5.0
MAX_VOLUME = 10.0
SERVED = ("version", "speakers", "audio_query", "synthesis", "initialize_speaker", "is_initialized_speaker")
# The rest of the VOICEVOX engine API (0.14 to 0.2x): answered with 501, anything else with 404.
UNSUPPORTED = frozenset({
    "audio_query_from_preset", "sing_frame_audio_query", "accent_phrases", "mora_data", "mora_length",
    "mora_pitch", "cancellable_synthesis", "multi_synthesis", "sing_frame_f0", "sing_frame_volume",
    "frame_synthesis", "connect_waves", "validate_kana", "supported_devices", "morphable_targets",
    "synthesis_morphing", "presets", "add_preset", "update_preset", "delete_preset", "speaker_info",
    "singers", "singer_info", "user_dict", "user_dict_word", "import_user_dict", "core_versions",
    "engine_manifest", "setting", "downloadable_libraries", "installed_libraries", "install_library",
    "uninstall_library", "is_initialized_singer", "initialize_singer",
})


def style_id(voice_name: str) -> int:
    """The VOICEVOX style id of a voice: stable, from its name alone, a positive 32-bit integer."""
    return int.from_bytes(hashlib.sha256(voice_name.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


def speaker_uuid(voice_name: str) -> str:
    return str(uuid.uuid5(SPEAKER_NAMESPACE, voice_name))


def unsupported_message(name: str) -> str:
    return (f"/{name} is part of the VOICEVOX engine API that MioDesk does not serve (MioTTS speaks from text "
            f"and has no moras, presets or user dictionary); it serves /{', /'.join(SERVED)}.")


async def _voice_names(request: Request) -> list[str]:
    names: list[str] = await anyio.to_thread.run_sync(request.app.state.service.voice_names)
    return names


async def _speaker_voice(request: Request) -> str:
    """The voice named by the `speaker` query parameter (a style id from /speakers)."""
    raw = request.query_params.get("speaker")
    if raw is None:
        raise ApiError(422, "The query parameter 'speaker' is required (a style id from GET /speakers).")
    try:
        wanted = int(raw)
    except ValueError:
        raise ApiError(422, f"'speaker' must be a style id (a whole number), not '{raw}'.") from None
    names = await _voice_names(request)
    for name in names:
        if style_id(name) == wanted:
            return name
    raise ApiError(422, f"No speaker has the style id {wanted}; GET /speakers lists the {len(names)} there are.")


def _check_text(text: str, limit: int, what: str) -> str:
    if not text.strip():
        raise ApiError(422, f"{what} is empty; send the text to speak.")
    if len(text) > limit:
        raise ApiError(422, f"{what} is {len(text)} characters long; at most {limit} are accepted.")
    return text


async def get_version(request: Request) -> Response:
    return JSONResponse(__version__)


async def get_speakers(request: Request) -> Response:
    return JSONResponse([
        {
            "name": name,
            "speaker_uuid": speaker_uuid(name),
            "styles": [{"name": STYLE_NAME, "id": style_id(name), "type": "talk"}],
            "version": __version__,
            "supported_features": {"permitted_synthesis_morphing": "NOTHING"},
        }
        for name in await _voice_names(request)
    ])


async def audio_query(request: Request) -> Response:
    state = request.app.state
    text = _check_text(request.query_params.get("text", ""), state.options.max_input_chars, "'text'")
    await _speaker_voice(request)
    try:
        rate = await anyio.to_thread.run_sync(lambda: state.service.sample_rate)  # loads the engine if need be
    except MioDeskError as error:
        raise ApiError(500, str(error)) from None
    return JSONResponse({
        "accent_phrases": [],  # MioTTS has no moras: clients that animate lips by them get none
        "speedScale": 1.0,
        "pitchScale": 0.0,
        "intonationScale": 1.0,
        "volumeScale": 1.0,
        "prePhonemeLength": 0.1,
        "postPhonemeLength": 0.1,
        "pauseLength": None,
        "pauseLengthScale": 1.0,
        "outputSamplingRate": int(rate),
        "outputStereo": False,
        "kana": text,  # what /synthesis speaks
    })


def _number(query: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = query.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(422, f"'{name}' must be a number.")
    if not low <= value <= high:
        raise ApiError(422, f"'{name}' is {value}; MioDesk takes {low:g} to {high:g}.")
    return float(value)


async def synthesis(request: Request) -> Response:
    state = request.app.state
    voice = await _speaker_voice(request)
    query = await read_json_object(request, state.options.max_body_bytes)
    text = query.get("kana")
    if not isinstance(text, str):
        raise ApiError(422, "The AudioQuery has no text in 'kana'; take the AudioQuery from this server's "
                            "/audio_query (MioDesk speaks the text it carries there, not moras).")
    _check_text(text, state.options.max_input_chars, "The AudioQuery's text ('kana')")
    speed_value = query.get("speedScale", 1.0)
    if isinstance(speed_value, bool) or not isinstance(speed_value, int | float):
        raise ApiError(422, "'speedScale' must be a number.")
    try:
        speed = check_speed(speed_value)
    except MioDeskError as error:
        raise ApiError(422, f"'speedScale': {error}") from None
    volume = _number(query, "volumeScale", 1.0, 0.0, MAX_VOLUME)
    before = _number(query, "prePhonemeLength", 0.1, 0.0, MAX_SILENCE_S)
    after = _number(query, "postPhonemeLength", 0.1, 0.0, MAX_SILENCE_S)
    rate_value = query.get("outputSamplingRate")
    if rate_value is not None and (isinstance(rate_value, bool) or rate_value not in OUTPUT_RATES):
        raise ApiError(422, f"'outputSamplingRate' must be one of {', '.join(map(str, OUTPUT_RATES))} (Hz).")
    stereo = query.get("outputStereo", False)
    if not isinstance(stereo, bool | None):
        raise ApiError(422, "'outputStereo' must be true or false.")
    seed_text = request.query_params.get("seed")
    if seed_text is not None and not (seed_text.isascii() and seed_text.isdigit() and int(seed_text) < 2**32):
        raise ApiError(422, "'seed' must be a whole number from 0 to 4294967295.")
    seed = int(seed_text) if seed_text is not None else None

    job = await submit(state.service, text, voice, speed, seed)
    log.info("synthesis %d: %d characters, voice %s", job.id, len(text), voice)
    rate = int(rate_value) if rate_value is not None else job.sample_rate
    try:
        encoder = AudioEncoder("wav", job.sample_rate, streaming=False, rate=rate, channels=2 if stereo else 1)
        encoder.feed(np.zeros(round(before * job.sample_rate), dtype=np.float32))
    except BaseException:
        job.cancel()
        raise
    tail = np.zeros(round(after * job.sample_rate), dtype=np.float32)
    audio = JobAudio(job, encoder, transform=(lambda piece: piece * volume) if volume != 1.0 else None, tail=tail)
    try:
        data = await audio.all_bytes(request)
    except ClientGone:
        return Response(status_code=499)
    except MioDeskError as error:
        raise ApiError(500, str(error)) from None
    return Response(data, media_type="audio/wav")


async def initialize_speaker(request: Request) -> Response:
    await _speaker_voice(request)
    return Response(status_code=204)


async def is_initialized_speaker(request: Request) -> Response:
    await _speaker_voice(request)
    return JSONResponse(True)


def routes() -> list[Route]:
    return [
        Route("/version", get_version, methods=["GET"]),
        Route("/speakers", get_speakers, methods=["GET"]),
        Route("/audio_query", audio_query, methods=["POST"]),
        Route("/synthesis", synthesis, methods=["POST"]),
        Route("/initialize_speaker", initialize_speaker, methods=["POST"]),
        Route("/is_initialized_speaker", is_initialized_speaker, methods=["GET"]),
    ]
