"""MioDesk's speech server through the official `openai` Python client: the real HTTP stack on a free
127.0.0.1 port, the real speech service, a generated model, the golden codec and the preset voices.

Every format is decoded and its length compared with the same speech (same seed) as a finished WAV:
the client must get the whole speech, streamed or not, at the rate the format promises.
"""

from __future__ import annotations

import base64
import http.client
import json
import time

import numpy as np
import openai
import pytest
from speech_server_fixtures import (  # noqa: F401 - fixtures
    API_KEY,
    decode_audio,
    http_call,
    keyed_server,
    speech_engine,
    speech_model,
    speech_server,
    speech_service,
    speech_voices,
)

from miodesk.speech_server.audio_formats import AAC_EXTRA, aac_available

TEXT = "Hello there. How are you today? The weather is fine."
LONG = " ".join(f"This is sentence number {n}." for n in range(1, 41))
SEED = 7


def client(server, key: str = "not-needed") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, timeout=60, max_retries=0)


def speech_wav_seconds(server, text: str = TEXT, voice: str = "en_female") -> float:
    """The length of the reference: the same speech as a finished WAV."""
    wav = client(server).audio.speech.create(model="tts-1", voice=voice, input=text, response_format="wav",
                                             extra_body={"seed": SEED, "stream": False})
    samples, rate = decode_audio(wav.content)
    assert rate == 44100
    return len(samples) / rate


def test_wav_mp3_and_streamed_pcm_hold_the_same_speech(speech_server) -> None:  # noqa: F811
    api = client(speech_server)
    wav = api.audio.speech.create(model="tts-1", voice="en_female", input=TEXT, response_format="wav",
                                  extra_body={"seed": SEED})
    samples, rate = decode_audio(wav.content)
    seconds = len(samples) / rate
    assert rate == 44100 and 1.0 < seconds < 30.0, seconds
    assert np.abs(samples).max() > 0.01  # speech, not silence

    mp3 = api.audio.speech.create(model="gpt-4o-mini-tts", voice="en_female", input=TEXT, extra_body={"seed": SEED})
    assert mp3.response.headers["content-type"] == "audio/mpeg"  # mp3 is the default format
    mp3_samples, mp3_rate = decode_audio(mp3.content)
    assert mp3_rate == 44100
    assert abs(len(mp3_samples) / mp3_rate - seconds) < 0.1  # the encoder's delay and last frame at most

    chunks = []
    with api.audio.speech.with_streaming_response.create(model="tts-1", voice="en_female", input=TEXT,
                                                         response_format="pcm", extra_body={"seed": SEED}) as response:
        assert response.headers["content-type"] == "audio/pcm"
        assert response.headers.get("transfer-encoding") == "chunked"
        chunks = [chunk for chunk in response.iter_bytes() if chunk]
    pcm = b"".join(chunks)
    assert len(chunks) > 1  # sent as the sentences were ready, not in one piece
    assert len(pcm) % 2 == 0
    pcm_samples = np.frombuffer(pcm, dtype="<i2")
    assert abs(len(pcm_samples) / 24000 - seconds) < 0.002  # raw 24 kHz 16-bit mono, resampled from 44.1 kHz
    assert np.abs(pcm_samples).max() > 300


@pytest.mark.parametrize("fmt, rate", [("flac", 44100), ("opus", 48000), ("wav", 44100), ("mp3", 44100)])
def test_every_format_decodes_streamed_or_whole(speech_server, fmt: str, rate: int) -> None:  # noqa: F811
    seconds = speech_wav_seconds(speech_server)
    for stream in (True, False):
        reply = http_call(speech_server.url, "POST", "/v1/audio/speech",
                          {"model": "miotts", "input": TEXT, "voice": "en_female", "response_format": fmt,
                           "stream": stream, "seed": SEED})
        assert reply.status == 200, reply.body
        assert ("transfer-encoding" in reply.headers) == stream
        samples, got_rate = decode_audio(reply.body)
        assert got_rate == rate
        # a streamed FLAC says "length unknown" and libsndfile stops reading a block early
        tolerance = 0.2 if (fmt, stream) == ("flac", True) else 0.1
        assert abs(len(samples) / rate - seconds) < tolerance, (fmt, stream, len(samples) / rate, seconds)


def test_aac_needs_the_optional_extra_or_decodes(speech_server) -> None:  # noqa: F811
    reply = http_call(speech_server.url, "POST", "/v1/audio/speech",
                      {"model": "tts-1", "input": TEXT, "voice": "en_female", "response_format": "aac"})
    if not aac_available():
        assert reply.status == 400
        error = reply.json()["error"]
        assert error["param"] == "response_format" and AAC_EXTRA in error["message"]
        return
    import io

    import av

    assert reply.status == 200 and reply.headers["content-type"] == "audio/aac"
    with av.open(io.BytesIO(reply.body)) as container:
        frames = sum(frame.samples for frame in container.decode(audio=0))
    assert frames > 0  # (the sentences' lengths are random: an unseeded request to a generated model)


def test_sse_events_carry_the_audio(speech_server) -> None:  # noqa: F811
    seconds = speech_wav_seconds(speech_server)
    reply = http_call(speech_server.url, "POST", "/v1/audio/speech",
                      {"model": "tts-1", "input": TEXT, "voice": "en_female", "response_format": "wav",
                       "stream_format": "sse", "seed": SEED})
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in reply.body.decode("utf-8").split("\n\n") if line]
    assert [event["type"] for event in events[-1:]] == ["speech.audio.done"]
    deltas = [event for event in events[:-1]]
    assert deltas and all(event["type"] == "speech.audio.delta" for event in deltas)
    audio = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    samples, rate = decode_audio(audio)
    assert abs(len(samples) / rate - seconds) < 0.002
    assert events[-1]["usage"]["output_tokens"] > 0


def test_the_first_sentence_arrives_while_the_rest_is_spoken(speech_server, speech_service) -> None:  # noqa: F811
    connection = http.client.HTTPConnection("127.0.0.1", speech_server.options.port, timeout=60)
    try:
        body = json.dumps({"model": "tts-1", "input": LONG, "voice": "jp_male", "response_format": "pcm"})
        started = time.perf_counter()
        connection.request("POST", "/v1/audio/speech", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        first = response.read1(65536)
        first_at = time.perf_counter() - started
        still_speaking = speech_service.speaking
        rest = response.read()
        done_at = time.perf_counter() - started
    finally:
        connection.close()
    assert first and still_speaking, (first_at, done_at)
    assert len(first) < len(first + rest) / 4
    print(f"40 sentences: first bytes after {first_at * 1000:.0f} ms, all after {done_at * 1000:.0f} ms")


def test_models_and_voices_as_clients_read_them(speech_server) -> None:  # noqa: F811
    api = client(speech_server)
    assert {"miotts", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"} <= {model.id for model in api.models.list()}
    assert api.models.retrieve("tts-1").id == "tts-1"
    voices = http_call(speech_server.url, "GET", "/v1/audio/voices").json()["voices"]
    assert voices == [{"id": name, "name": name} for name in ("en_female", "en_male", "jp_female", "jp_male")]
    # OpenAI's custom-voice form works too
    reply = api.audio.speech.create(model="tts-1", voice={"id": "jp_female"}, input="こんにちは。", response_format="wav")
    assert decode_audio(reply.content)[0].size > 0


def test_the_key_is_checked_by_the_client_s_own_error(keyed_server) -> None:  # noqa: F811
    with pytest.raises(openai.AuthenticationError) as wrong:
        client(keyed_server, key="wrong-key").audio.speech.create(model="tts-1", voice="en_female", input=TEXT)
    assert wrong.value.status_code == 401 and "Incorrect API key" in str(wrong.value)
    with pytest.raises(openai.AuthenticationError):
        client(keyed_server, key="wrong-key").models.list()
    reply = client(keyed_server, key=API_KEY).audio.speech.create(model="tts-1", voice="en_female", input=TEXT,
                                                                  response_format="flac")
    # Speech of some length: the generated model's sentences are of random length (unseeded, as a client asks).
    assert decode_audio(reply.content)[0].size > 0


def test_bad_requests_are_the_client_s_errors(speech_server) -> None:  # noqa: F811
    api = client(speech_server)
    with pytest.raises(openai.BadRequestError) as unknown_voice:
        api.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    assert unknown_voice.value.body["param"] == "voice" and "en_female" in unknown_voice.value.body["message"]
    with pytest.raises(openai.BadRequestError) as too_fast:
        api.audio.speech.create(model="tts-1", voice="en_female", input=TEXT, speed=4.0)
    assert too_fast.value.body["param"] == "speed" and "2.0" in too_fast.value.body["message"]
    with pytest.raises(openai.BadRequestError) as unknown_model:
        api.audio.speech.create(model="whisper-1", voice="en_female", input=TEXT)
    assert unknown_model.value.body["param"] == "model"
    # and the server goes on
    assert decode_audio(api.audio.speech.create(model="tts-1", voice="en_female", input=TEXT, speed=2.0,
                                                response_format="wav").content)[0].size > 0
