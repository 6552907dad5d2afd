"""What the OpenAI and the VOICEVOX routes share: errors in each API's own shape, bounded request
bodies, submitting to the speech service, and a job's audio encoded off the event loop, with a client
that leaves cancelling its job."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import anyio
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from miodesk.errors import MioDeskError, TextError
from miodesk.speech_server.audio_formats import AudioEncoder
from miodesk.speech_server.service import (
    JobCancelled,
    ServiceBusy,
    SpeechJob,
    SpeechService,
    UnknownVoice,
)

log = logging.getLogger("miodesk.speech_server")

OPENAI_PREFIX = "/v1/"


class ApiError(Exception):
    """A request that gets `status` and `message` (in the shape of the API its path belongs to)."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}


_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
                 429: "rate_limit_error"}


def is_openai_path(path: str) -> bool:
    return path.startswith(OPENAI_PREFIX) or path == "/v1"


def error_response(path: str, status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    """OpenAI's `{"error": {message, type, param, code}}` under /v1, else FastAPI's `{"detail": message}`
    (what VOICEVOX engines answer)."""
    if is_openai_path(path):
        kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    else:
        body = {"detail": message}
    return JSONResponse(body, status_code=status, headers=headers)


def api_error_response(path: str, error: ApiError) -> Response:
    return error_response(path, error.status, error.message, error.param, error.code, error.headers)


# --- request bodies ---------------------------------------------------------------------------------

async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 beyond `limit` bytes (announced or as it arrives)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"The request body is {int(declared)} bytes; at most {limit} are accepted.",
                       code="request_too_large")
    data = bytearray()
    async for piece in request.stream():
        data += piece
        if len(data) > limit:
            raise ApiError(413, f"The request body is over {limit} bytes, the most accepted.",
                           code="request_too_large")
    return bytes(data)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    data = await read_body(request, limit)
    if not data.strip():
        raise ApiError(400, "The request has no body; send a JSON object.", code="invalid_json")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiError(400, f"The request body is not valid JSON ({error}).", code="invalid_json") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"The request body must be a JSON object, not {type(value).__name__}.",
                       code="invalid_json")
    return value


# --- the speech service -------------------------------------------------------------------------------

async def submit(service: SpeechService, text: str, voice: str, speed: float, seed: int | None = None) -> SpeechJob:
    """`service.submit` off the event loop (the first request loads the engine), its refusals as ApiError."""
    try:
        return await anyio.to_thread.run_sync(lambda: service.submit(text, voice, speed=speed, seed=seed))
    except ServiceBusy as error:
        raise ApiError(503, str(error), code="server_busy",
                       headers={"Retry-After": str(max(1, int(error.retry_after_s)))}) from None
    except UnknownVoice as error:
        raise ApiError(400, str(error), param="voice", code="voice_not_found") from None
    except TextError as error:
        raise ApiError(400, str(error), param="input", code="empty_input") from None
    except MioDeskError as error:  # the engine cannot load (a missing model): the server's problem
        log.warning("speech request failed before it started: %s", error)
        raise ApiError(500, str(error), code="engine_error") from None


class ClientGone(Exception):
    """The client disconnected while its audio was being made; its job is cancelled."""


class JobAudio:
    """A job's audio as bytes of `encoder`'s format. Each piece is taken from the job and encoded in a
    worker thread, so the event loop never waits on the model or the encoder; `cancel` (the client
    left) cancels the job at once, also while a piece is being waited for. `transform` changes each
    piece before it is encoded; `tail` is encoded after the last."""

    def __init__(self, job: SpeechJob, encoder: AudioEncoder,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None, tail: np.ndarray | None = None) -> None:
        self.job, self.encoder = job, encoder
        self._transform, self._tail = transform, tail
        self._pieces: Iterator[np.ndarray] = iter(job.chunks())
        self._lock = threading.Lock()  # the encoder is used by one thread at a time, and not after close
        self._finished = False
        self._cancelled = False

    @property
    def finished(self) -> bool:
        """All its audio was encoded."""
        return self._finished

    def _next(self) -> bytes | None:
        """(worker thread) the next bytes to send; None after the last."""
        if self._finished:
            return None
        try:
            piece = next(self._pieces, None)
        except JobCancelled:
            if self._cancelled:  # by `cancel`: the client left
                return None
            raise  # by the service (it is shutting down): the client must not take it for the whole
        with self._lock:
            if self._cancelled:
                return None
            if piece is None:
                self._finished = True
                rest = self.encoder.feed(self._tail) if self._tail is not None and len(self._tail) else b""
                return rest + self.encoder.finish()
            return self.encoder.feed(self._transform(piece) if self._transform else piece)

    async def next_bytes(self) -> bytes | None:
        return await anyio.to_thread.run_sync(self._next, abandon_on_cancel=True)

    async def next_bytes_watching(self, request: Request) -> bytes | None:
        """`next_bytes`, cancelling the job and raising ClientGone if the client disconnects meanwhile
        (for a request not yet answered: a streamed response has Starlette watch for that)."""
        result: bytes | None = None
        gone = False
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal gone
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                gone = True
                self.cancel()
                group.cancel_scope.cancel()

            group.start_soon(watch)
            result = await self.next_bytes()
            group.cancel_scope.cancel()
        if gone:
            raise ClientGone()
        return result

    async def all_bytes(self, request: Request) -> bytes:
        """Everything, for a response that is not streamed."""
        parts = []
        try:
            while (data := await self.next_bytes_watching(request)) is not None:
                parts.append(data)
        finally:
            self.cancel()
        return b"".join(parts)

    async def stream(self, first: bytes = b"") -> AsyncIterator[bytes]:
        """`first`, then the rest of the audio as it is encoded (for `AudioStreamingResponse`)."""
        try:
            if first:
                yield first
            while (data := await self.next_bytes()) is not None:
                if data:
                    yield data
        except MioDeskError as error:
            # The status line went out with the first bytes: end the connection without the last
            # chunk, so the client sees a broken transfer, not a short file.
            log.warning("speech request %d failed while streaming: %s", self.job.id, error)
            raise

    def cancel(self) -> None:
        """Stop the job (nothing more is sent); a no-op once all audio was encoded."""
        if self._finished or self._cancelled:
            return
        self._cancelled = True
        self.job.cancel()
        with self._lock:
            self.encoder.close()


class AudioStreamingResponse(StreamingResponse):
    """A chunked response of a job's audio; however it ends (done, the client left and Starlette
    cancelled the stream, an error), the job is cancelled if it is still running."""

    def __init__(self, audio: JobAudio, content: AsyncIterator[bytes], media_type: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._audio = audio

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._audio.finished:
                log.info("speech request %d ended before all its audio was sent", self._audio.job.id)
            self._audio.cancel()


async def first_bytes(audio: JobAudio, request: Request) -> bytes | Response:
    """The first bytes of a job before the response starts, so that a job that fails at once (no
    model) is a JSON error and not a broken stream; a Response when there is nothing to send."""
    try:
        data = await audio.next_bytes_watching(request)
    except ClientGone:
        log.info("speech request %d: the client left before its audio began", audio.job.id)
        return Response(status_code=499)  # nobody reads it
    except MioDeskError as error:
        audio.cancel()
        log.warning("speech request %d failed: %s", audio.job.id, error)
        raise ApiError(500, str(error), code="generation_failed") from None
    return data or b""
