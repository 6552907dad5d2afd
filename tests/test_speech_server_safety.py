"""The speech server's safety rules and load policy, on the real HTTP stack (127.0.0.1, a free port) with
the real speech service and generated models, and `miodesk serve` as the program a user starts.

- Loopback by default; anything else needs an API key (refused before a model loads).
- Host header check (DNS rebinding), no CORS unless an origin is named, the key on every request.
- Every bad input gets a 4xx with a message and the server keeps serving.
- A full queue answers 503 with Retry-After; a client that leaves cancels its request within a second.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import closing

import pytest
from conftest import REPO_ROOT, assert_one_line_error
from llm_server_fixtures import free_port
from speech_server_fixtures import (  # noqa: F401 - fixtures
    API_KEY,
    CODEC,
    decode_audio,
    http_call,
    keyed_server,
    running_server,
    speech_engine,
    speech_model,
    speech_server,
    speech_service,
    speech_voices,
)

from miodesk.errors import MioDeskError
from miodesk.speech_server.app import ServerOptions, check_options, start_server
from miodesk.speech_server.service import SpeechService

TEXT = "Hello there. How are you today?"
# 3,951 characters: 140 sentences, a few seconds for the generated model
LONG = " ".join(f"This is sentence number {n}." for n in range(1, 141))
SPEECH = {"model": "tts-1", "input": TEXT, "voice": "en_female", "response_format": "wav"}


def healthy(url: str, key: str = "") -> None:
    """The server still speaks: a real request gives decodable audio."""
    reply = http_call(url, "POST", "/v1/audio/speech", SPEECH, key=key)
    assert reply.status == 200, reply.body
    samples, rate = decode_audio(reply.body)
    assert len(samples) > 0.3 * rate


def wait_until(condition, timeout: float) -> float | None:
    """Seconds until `condition()` held, or None if it did not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.01)
    return None


# --- where it listens ------------------------------------------------------------------------------

@pytest.mark.parametrize("options, fragment", [
    (ServerOptions(host="0.0.0.0"), "API key"),
    (ServerOptions(host="::"), "API key"),
    (ServerOptions(host="192.168.1.20"), "API key"),
    (ServerOptions(host="my-pc.local"), "API key"),
    (ServerOptions(port=70000), "not a TCP port"),
    (ServerOptions(port=-1), "not a TCP port"),
    (ServerOptions(api_key="two words"), "printable ASCII"),
    (ServerOptions(cors_origins=("*",)), "CORS origin"),
    (ServerOptions(cors_origins=("http://localhost:3000/app",)), "CORS origin"),
])
def test_unsafe_or_impossible_options_are_refused(options: ServerOptions, fragment: str) -> None:
    with pytest.raises(MioDeskError) as refused:
        check_options(options)
    assert fragment in str(refused.value) and "\n" not in str(refused.value)


def test_safe_options_pass() -> None:
    for options in (ServerOptions(), ServerOptions(host="localhost"), ServerOptions(host="::1"),
                    ServerOptions(host="0.0.0.0", api_key=API_KEY), ServerOptions(port=0),
                    ServerOptions(cors_origins=("http://localhost:3000", "chrome-extension://abcdef"))):
        check_options(options)


def test_a_port_in_use_is_one_line(speech_service) -> None:  # noqa: F811
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(MioDeskError) as refused:
            start_server(speech_service, ServerOptions(port=port))
    message = str(refused.value)
    assert f"Port {port}" in message and "in use" in message and "\n" not in message


def test_start_up_imports_no_server_stack(miodesk_home) -> None:
    code = ("import sys, miodesk.cli\n"
            "miodesk.cli.build_parser()\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'h11', "
            "'anyio') or (m.startswith('miodesk.speech_server.') and m != 'miodesk.speech_server.options'))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8",
                            cwd=REPO_ROOT, timeout=120, env=dict(os.environ, MIODESK_HOME=str(miodesk_home)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


# --- who may call -------------------------------------------------------------------------------

def test_only_its_own_host_names_are_answered(speech_server) -> None:  # noqa: F811
    url, port = speech_server.url, speech_server.options.port
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "localhost", f"10.0.0.1:{port}"):
        reply = http_call(url, "GET", "/v1/models", headers={"Host": host})
        assert reply.status == 400, host
        assert "host" in reply.json()["error"]["message"].lower()
        assert http_call(url, "GET", "/speakers", headers={"Host": host}).status == 400
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}",
                 f"host.docker.internal:{port}"):
        assert http_call(url, "GET", "/v1/models", headers={"Host": host}).status == 200, host
    # no Host header at all
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", "/version", skip_host=True)
        connection.endheaders()
        assert connection.getresponse().status == 400
    finally:
        connection.close()
    healthy(url)


def test_no_cors_unless_an_origin_is_named(speech_service) -> None:  # noqa: F811
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    with running_server(speech_service) as server:
        reply = http_call(server.url, "GET", "/v1/models", headers={"Origin": "http://localhost:3000"})
        assert reply.status == 200 and "access-control-allow-origin" not in reply.headers
        reply = http_call(server.url, "OPTIONS", "/v1/audio/speech", headers=preflight)
        assert reply.status >= 400 and "access-control-allow-origin" not in reply.headers
    with running_server(speech_service, cors_origins=("http://localhost:3000",)) as server:
        reply = http_call(server.url, "OPTIONS", "/v1/audio/speech", headers=preflight)
        assert reply.status == 200 and reply.headers["access-control-allow-origin"] == "http://localhost:3000"
        reply = http_call(server.url, "GET", "/v1/models", headers={"Origin": "http://localhost:3000"})
        assert reply.headers["access-control-allow-origin"] == "http://localhost:3000"
        other = {**preflight, "Origin": "http://evil.example"}
        reply = http_call(server.url, "OPTIONS", "/v1/audio/speech", headers=other)
        assert reply.status == 400 and "access-control-allow-origin" not in reply.headers
        reply = http_call(server.url, "GET", "/v1/models", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in reply.headers


def test_the_key_is_needed_on_every_api(keyed_server) -> None:  # noqa: F811
    url = keyed_server.url
    for method, path, body in [("GET", "/v1/models", None), ("POST", "/v1/audio/speech", SPEECH),
                               ("GET", "/v1/audio/voices", None), ("GET", "/speakers", None),
                               ("POST", "/audio_query?text=a&speaker=1", None), ("GET", "/version", None)]:
        for key in ("", "wrong", API_KEY[:-1], API_KEY + "x"):
            reply = http_call(url, method, path, body, key=key)
            assert reply.status == 401, (path, key)
            assert reply.headers["www-authenticate"] == "Bearer"
            error = reply.json()["error"] if path.startswith("/v1/") else reply.json()
            message = error["message"] if path.startswith("/v1/") else error["detail"]
            assert "API key" in message
            assert API_KEY not in reply.body.decode("utf-8")
        assert http_call(url, "GET", "/v1/models", headers={"Authorization": f"Basic {API_KEY}"}).status == 401
    assert http_call(url, "GET", "/speakers", key=API_KEY).status == 200
    healthy(url, key=API_KEY)


# --- bad input ----------------------------------------------------------------------------------

BAD_REQUESTS = [
    ({**SPEECH, "input": ""}, 400, "input"),
    ({**SPEECH, "input": "   \n "}, 400, "input"),
    ({**SPEECH, "input": "a" * 4097}, 400, "input"),
    ({**SPEECH, "input": "。、！"}, 400, "input"),
    ({**SPEECH, "input": 42}, 400, "input"),
    ({key: value for key, value in SPEECH.items() if key != "input"}, 400, "input"),
    ({**SPEECH, "voice": "alloy"}, 400, "voice"),
    ({**SPEECH, "voice": ""}, 400, "voice"),
    ({**SPEECH, "voice": {"name": "x"}}, 400, "voice"),
    ({**SPEECH, "response_format": "ogg"}, 400, "response_format"),
    ({**SPEECH, "model": "whisper-1"}, 400, "model"),
    ({**SPEECH, "model": None}, 400, "model"),
    ({**SPEECH, "speed": 0.25}, 400, "speed"),
    ({**SPEECH, "speed": 4.0}, 400, "speed"),
    ({**SPEECH, "speed": "fast"}, 400, "speed"),
    ({**SPEECH, "speed": True}, 400, "speed"),
    ({**SPEECH, "stream": "yes"}, 400, "stream"),
    ({**SPEECH, "stream_format": "websocket"}, 400, "stream_format"),
    ({**SPEECH, "seed": -5}, 400, "seed"),
]


@pytest.mark.parametrize("body, status, param", BAD_REQUESTS, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_REQUESTS)])
def test_bad_input_gets_a_4xx_with_a_message(speech_server, body, status: int, param: str) -> None:  # noqa: F811
    reply = http_call(speech_server.url, "POST", "/v1/audio/speech", body)
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert len(error["message"]) > 10 and "Traceback" not in error["message"]


def test_broken_bodies_and_the_size_limit(speech_server, speech_service) -> None:  # noqa: F811
    url = speech_server.url
    for raw in (b"{not json", b"[1, 2]", b"", "{\"input\": \"\xff\"}".encode("latin-1"), b"null"):
        reply = http_call(url, "POST", "/v1/audio/speech", raw, headers={"Content-Type": "application/json"})
        assert reply.status == 400, raw
        assert "JSON" in reply.json()["error"]["message"]
    # over 64 KB, announced
    big = json.dumps({**SPEECH, "input": "a" * 70000}).encode("utf-8")
    reply = http_call(url, "POST", "/v1/audio/speech", big, headers={"Content-Type": "application/json"})
    assert reply.status == 413 and "65536" in reply.json()["error"]["message"]
    # over 64 KB, chunked (no Content-Length): counted as it arrives
    connection = http.client.HTTPConnection("127.0.0.1", speech_server.options.port, timeout=30)
    try:
        connection.request("POST", "/v1/audio/speech", body=iter([big[:40000], big[40000:]]),
                           headers={"Content-Type": "application/json"}, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413 and "65536" in json.loads(response.read())["error"]["message"]
    finally:
        connection.close()
    for method, path in (("GET", "/v1/audio/speech"), ("DELETE", "/v1/models"), ("POST", "/v1/nothing")):
        reply = http_call(url, method, path)
        assert reply.status in (404, 405) and reply.json()["error"]["message"]
    assert speech_service.waiting == 0 and not speech_service.speaking  # nothing was queued for any of these
    healthy(url)


# --- load --------------------------------------------------------------------------------------------

def start_streaming(port: int, body: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/v1/audio/speech", body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.read1(65536)  # its audio has begun
    return connection, response


def test_a_full_queue_answers_503_with_retry_after(speech_engine, speech_voices) -> None:  # noqa: F811
    service = SpeechService(lambda: speech_engine, speech_voices, queue_size=1)
    try:
        with running_server(service) as server:
            connection, _ = start_streaming(server.options.port, {**SPEECH, "input": LONG, "response_format": "pcm"})
            try:
                assert service.speaking
                reply = http_call(server.url, "POST", "/v1/audio/speech", SPEECH)
                assert reply.status == 503
                assert int(reply.headers["retry-after"]) >= 1
                error = reply.json()["error"]
                assert error["code"] == "server_busy" and "busy" in error["message"]
                reply = http_call(server.url, "POST", "/synthesis?speaker=1", {"kana": "あ"})
                assert reply.status in (422, 503)  # an unknown speaker is checked before the queue
            finally:
                connection.close()  # the client leaves: its request gives way
            assert wait_until(lambda: not service.speaking, 2.0) is not None
            healthy(server.url)
    finally:
        service.close()
    assert service.refused >= 1 and service.cancelled == 1


def test_a_client_that_leaves_cancels_its_request_within_a_second(speech_server, speech_service) -> None:  # noqa: F811
    port = speech_server.options.port
    # streamed: the client reads the first sentence, then closes the connection
    connection, _ = start_streaming(port, {**SPEECH, "input": LONG, "response_format": "mp3"})
    assert speech_service.speaking
    connection.close()
    took = wait_until(lambda: not speech_service.speaking, 1.0)
    assert took is not None, "the request went on after its client left"
    assert speech_service.cancelled == 1 and speech_service.completed == 0

    # not streamed: the client gives up before any answer
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    body = json.dumps({**SPEECH, "input": LONG, "stream": False}).encode("utf-8")
    raw.sendall(f"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
    assert wait_until(lambda: speech_service.speaking, 10.0) is not None
    raw.close()
    took_whole = wait_until(lambda: not speech_service.speaking, 1.0)
    assert took_whole is not None, "the request went on after its client left"
    assert speech_service.cancelled == 2 and speech_service.completed == 0
    print(f"engine idle {took * 1000:.0f} ms and {took_whole * 1000:.0f} ms after the client left")
    healthy(speech_server.url)


def test_stopping_mid_stream_is_bounded_and_no_client_takes_a_part_for_the_whole(speech_engine,  # noqa: F811
                                                                                     speech_voices) -> None:  # noqa: F811
    service = SpeechService(lambda: speech_engine, speech_voices)
    try:
        server = start_server(service, ServerOptions(port=0))
        connection, response = start_streaming(server.options.port, {**SPEECH, "input": LONG, "response_format": "pcm"})
        try:
            started = time.monotonic()
            server.stop()
            took = time.monotonic() - started
            with pytest.raises(http.client.IncompleteRead):
                response.read()
        finally:
            connection.close()
        assert took < 4.0 and not server.running
        # the cancelled sentence ends its last model step and decode first (1 s was too tight on a busy CI)
        assert wait_until(lambda: not service.speaking, 3.0) is not None
        # the service shutting down under a stream (the window quitting) breaks the transfer too
        with running_server(service) as again:
            connection, response = start_streaming(again.options.port, {**SPEECH, "input": LONG, "response_format": "pcm"})
            try:
                service.close()
                with pytest.raises(http.client.IncompleteRead):
                    response.read()
            finally:
                connection.close()
            reply = http_call(again.url, "POST", "/v1/audio/speech", SPEECH)
            assert reply.status == 503 and "shutting down" in reply.json()["error"]["message"]
    finally:
        service.close()


def test_concurrent_requests_all_get_their_audio(speech_server, speech_service) -> None:  # noqa: F811
    results: list[int] = []

    def one(index: int) -> None:
        reply = http_call(speech_server.url, "POST", "/v1/audio/speech",
                          {**SPEECH, "input": f"Request number {index}. It has two sentences."})
        samples, rate = decode_audio(reply.body) if reply.status == 200 else ([], 1)
        results.append(reply.status if len(samples) > 0.3 * rate else -reply.status)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [200] * 6
    assert speech_service.completed == 6


# --- `miodesk serve` -------------------------------------------------------------------------------

def test_serve_refuses_the_network_without_a_key(run_cli) -> None:
    result = run_cli("serve", "--host", "0.0.0.0", timeout=120)
    assert_one_line_error(result, "0.0.0.0", "API key")
    assert "Loading" not in result.stdout  # refused before any model loads
    result = run_cli("serve", "--port", "99999", timeout=120)
    assert_one_line_error(result, "99999")


def test_miodesk_serve_answers_and_stops_on_ctrl_c(miodesk_home, speech_model, voices) -> None:  # noqa: F811
    port = free_port()
    env = dict(os.environ, MIODESK_HOME=str(miodesk_home), PYTHONIOENCODING="utf-8",
               MIODESK_SERVER_API_KEY=API_KEY)
    process = subprocess.Popen(
        [sys.executable, "-m", "miodesk", "serve", "--port", str(port), "--model", str(speech_model),
         "--codec", str(CODEC), "--provider", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env, cwd=REPO_ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        seen = []
        while not any("speech server on" in line for line in seen):
            assert process.poll() is None and time.monotonic() < deadline, (seen, process.stderr.read())
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        url = f"http://127.0.0.1:{port}"
        assert url in seen[-1] and "this computer only" in seen[-1]
        assert http_call(url, "GET", "/v1/models").status == 401  # the key from the environment
        healthy(url, key=API_KEY)
        process.send_signal(signal.SIGINT)  # Ctrl+C
        assert process.wait(timeout=20) == 0
        reader.join(5)
        rest = []
        while not lines.empty():
            rest.append(lines.get())
        assert any("stopped" in line for line in rest), rest
        stderr = process.stderr.read()
        assert "Traceback" not in stderr, stderr
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
