"""MioDesk's VOICEVOX-compatible API through the standard library's HTTP client, as a VOICEVOX client
calls it: GET /speakers, POST /audio_query, POST /synthesis with the AudioQuery it got (and edited).
The real HTTP stack on a free 127.0.0.1 port, the real speech service, generated models, preset voices.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import numpy as np
import pytest
from speech_server_fixtures import (  # noqa: F401 - fixtures
    decode_audio,
    http_call,
    running_server,
    speech_engine,
    speech_model,
    speech_server,
    speech_service,
    speech_voices,
)

from miodesk import __version__
from miodesk.speech_server.service import SpeechService

TEXT = "こんにちは。今日はいい天気ですね。"
SEED = 11


def speakers(url: str) -> dict[str, int]:
    reply = http_call(url, "GET", "/speakers")
    assert reply.status == 200
    return {speaker["name"]: speaker["styles"][0]["id"] for speaker in reply.json()}


def audio_query(url: str, speaker: int, text: str = TEXT) -> dict:
    reply = http_call(url, "POST", f"/audio_query?text={quote(text)}&speaker={speaker}")
    assert reply.status == 200, reply.body
    return reply.json()


def synthesis(url: str, speaker: int, query: dict, seed: int | None = SEED) -> tuple[np.ndarray, int]:
    path = f"/synthesis?speaker={speaker}" + (f"&seed={seed}" if seed is not None else "")
    reply = http_call(url, "POST", path, query)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "audio/wav"
    return decode_audio(reply.body)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def same_speech(a: np.ndarray, b: np.ndarray) -> bool:
    """The same seed gives the same codes; the streamed decode's windows follow the timing, so the
    samples are alike, not identical."""
    return len(a) == len(b) and float(np.corrcoef(a, b)[0, 1]) > 0.9


def test_version_and_speakers_with_ids_that_survive_a_restart(speech_server, speech_engine, speech_voices) -> None:  # noqa: F811
    reply = http_call(speech_server.url, "GET", "/version")
    assert reply.status == 200 and reply.json() == __version__
    listed = http_call(speech_server.url, "GET", "/speakers").json()
    assert [speaker["name"] for speaker in listed] == ["en_female", "en_male", "jp_female", "jp_male"]
    for speaker in listed:
        assert speaker["styles"] == [{"name": "ノーマル", "id": speaker["styles"][0]["id"], "type": "talk"}]
        assert len(speaker["speaker_uuid"]) == 36
        # the documented id: the first 31 bits of SHA-256 of the name, a positive 32-bit integer
        digest = hashlib.sha256(speaker["name"].encode("utf-8")).digest()
        assert speaker["styles"][0]["id"] == int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
    # another server, another service: the same ids
    other_service = SpeechService(lambda: speech_engine, speech_voices)
    try:
        with running_server(other_service) as other:
            assert http_call(other.url, "GET", "/speakers").json() == listed
    finally:
        other_service.close()


def test_audio_query_carries_the_text_and_no_moras(speech_server) -> None:  # noqa: F811
    speaker = speakers(speech_server.url)["jp_female"]
    query = audio_query(speech_server.url, speaker)
    assert query["kana"] == TEXT
    assert query["accent_phrases"] == []
    assert query["speedScale"] == 1.0 and query["volumeScale"] == 1.0
    assert query["prePhonemeLength"] == 0.1 and query["postPhonemeLength"] == 0.1
    assert query["outputSamplingRate"] == 44100 and query["outputStereo"] is False
    # the AudioQuery as it came back gives a WAV (what every VOICEVOX client does first)
    samples, rate = synthesis(speech_server.url, speaker, query, seed=None)
    assert rate == 44100 and samples.ndim == 1 and len(samples) > 0.5 * rate


def test_synthesis_honours_the_audio_query(speech_server) -> None:  # noqa: F811
    url = speech_server.url
    speaker = speakers(url)["jp_male"]
    plain = {**audio_query(url, speaker), "prePhonemeLength": 0.0, "postPhonemeLength": 0.0}
    base, rate = synthesis(url, speaker, plain)
    assert rate == 44100
    base_s = len(base) / rate

    # silence before and after
    padded, _ = synthesis(url, speaker, {**plain, "prePhonemeLength": 0.5, "postPhonemeLength": 0.3})
    assert abs(len(padded) - (len(base) + round(0.8 * rate))) <= 1
    assert not np.any(padded[: round(0.5 * rate)]) and not np.any(padded[-round(0.3 * rate):])
    assert same_speech(padded[round(0.5 * rate): round(0.5 * rate) + len(base)], base)

    # volume: the same speech at half the amplitude
    quiet, _ = synthesis(url, speaker, {**plain, "volumeScale": 0.5})
    assert same_speech(quiet, base) and abs(rms(quiet) / rms(base) - 0.5) < 0.05
    silent, _ = synthesis(url, speaker, {**plain, "volumeScale": 0.0})
    assert not np.any(silent)

    # speed: the same codes, time-stretched by the codec
    fast, _ = synthesis(url, speaker, {**plain, "speedScale": 2.0})
    slow, _ = synthesis(url, speaker, {**plain, "speedScale": 0.5})
    assert len(fast) / rate < 0.7 * base_s and len(slow) / rate > 1.5 * base_s

    # another rate, in stereo
    stereo, stereo_rate = synthesis(url, speaker, {**plain, "outputSamplingRate": 16000, "outputStereo": True})
    assert stereo_rate == 16000 and stereo.shape[1] == 2
    assert np.array_equal(stereo[:, 0], stereo[:, 1])
    assert abs(len(stereo) / 16000 - base_s) < 0.002 and rms(stereo[:, 0]) > 0.5 * rms(base)


def test_what_is_not_served_says_so(speech_server) -> None:  # noqa: F811
    url = speech_server.url
    speaker = speakers(url)["en_female"]
    for method, path in [("POST", f"/accent_phrases?text=a&speaker={speaker}"), ("GET", "/speaker_info?speaker_uuid=x"),
                         ("GET", "/presets"), ("GET", "/user_dict"), ("POST", f"/mora_data?speaker={speaker}")]:
        reply = http_call(url, method, path, [] if method == "POST" else None)
        assert reply.status == 501, (path, reply.status)
        assert "does not serve" in reply.json()["detail"] and "/synthesis" in reply.json()["detail"]
    assert http_call(url, "POST", f"/initialize_speaker?speaker={speaker}").status == 204
    assert http_call(url, "GET", f"/is_initialized_speaker?speaker={speaker}").json() is True


@pytest.mark.parametrize("path, body, fragment", [
    ("/audio_query?text=%E3%81%82&speaker=12345", None, "style id 12345"),
    ("/audio_query?text=%E3%81%82", None, "'speaker' is required"),
    ("/audio_query?text=%20&speaker={id}", None, "empty"),
    ("/audio_query?text=" + "a" * 4097 + "&speaker={id}", None, "4097 characters"),
    ("/synthesis?speaker=abc", {"kana": "あ"}, "style id"),
    ("/synthesis?speaker={id}", {"accent_phrases": []}, "kana"),
    ("/synthesis?speaker={id}", {"kana": "あ", "speedScale": 3.0}, "speedScale"),
    ("/synthesis?speaker={id}", {"kana": "あ", "outputSamplingRate": 1000}, "outputSamplingRate"),
    ("/synthesis?speaker={id}", {"kana": "あ", "outputSamplingRate": 44101}, "outputSamplingRate"),
    ("/synthesis?speaker={id}", {"kana": "あ", "prePhonemeLength": -1}, "prePhonemeLength"),
    ("/synthesis?speaker={id}", {"kana": "あ", "volumeScale": "loud"}, "volumeScale"),
    ("/synthesis?speaker={id}", {"kana": "あ", "outputStereo": "yes"}, "outputStereo"),
    ("/synthesis?speaker={id}&seed=-1", {"kana": "あ"}, "seed"),
])
def test_bad_parameters_get_422_with_a_message(speech_server, path: str, body, fragment: str) -> None:  # noqa: F811
    speaker = speakers(speech_server.url)["en_female"]
    reply = http_call(speech_server.url, "POST", path.format(id=speaker), body)
    assert reply.status == 422, reply.body
    assert fragment in reply.json()["detail"]
    assert http_call(speech_server.url, "GET", "/version").status == 200
