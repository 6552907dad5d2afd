"""The readings dictionary as a user meets it: `miodesk dict …` in a terminal, and every path that speaks
(`speak`, `read`, the speech service, a reading session) giving the model the dictionary's text while the
highlight offsets stay those of the document. Real generated models, real `miodesk` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import GOLDEN, assert_one_line_error
from gguf_fixtures import make_model
from llm_replay_server import ReplayServer
from llm_server_fixtures import free_port
from speech_server_fixtures import http_call

from miodesk import readings_cli
from miodesk.paths import readings_path
from miodesk.speech_server.service import SpeechService
from miodesk.text import readings
from miodesk.text.readings import Entry, LiveReadings, ReadingsStore
from miodesk.text.segment import segment
from miodesk.tts.engine import SpeechEngine
from miodesk.tts.reader import FileSink, ReaderEvent, ReadingSession
from miodesk.tts.voices import VoiceStore

CODEC_24K = GOLDEN / "codec" / "24k"
EN_VOICE = GOLDEN / "presets" / "en_female.pt"
JA_VOICE = GOLDEN / "presets" / "jp_female.pt"
VOICEVOX = {
    "3f0c6a3e-5d7b-4a4e-9a51-0b3c2d1e4f5a": {
        "surface": "ＭｉｏＴＴＳ", "priority": 5, "context_id": 1348, "part_of_speech": "名詞",
        "part_of_speech_detail_1": "固有名詞", "part_of_speech_detail_2": "一般", "part_of_speech_detail_3": "*",
        "inflectional_type": "*", "inflectional_form": "*", "stem": "*", "yomi": "ミオティーティーエス",
        "pronunciation": "ミオティーティーエス", "accent_type": 1, "mora_count": 8, "accent_associative_rule": "*",
    },
    "7a9b8c6d-1e2f-4a3b-8c4d-5e6f7a8b9c0d": {
        "surface": "読み上げ", "priority": 8, "context_id": 1348, "part_of_speech": "名詞",
        "part_of_speech_detail_1": "普通名詞", "part_of_speech_detail_2": "一般", "part_of_speech_detail_3": "*",
        "inflectional_type": "*", "inflectional_form": "*", "stem": "*", "yomi": "ヨミアゲ",
        "pronunciation": "ヨミアゲ", "accent_type": 0, "mora_count": 4, "accent_associative_rule": "*",
    },
}


def test_the_parser_offers_what_the_dictionary_accepts():
    assert readings_cli.LANGUAGES == readings.LANGUAGES
    assert readings_cli.IMPORT_FORMATS == readings.IMPORT_FORMATS
    assert (readings_cli.MIN_PRIORITY, readings_cli.MAX_PRIORITY, readings_cli.DEFAULT_PRIORITY) == (
        readings.MIN_PRIORITY, readings.MAX_PRIORITY, readings.DEFAULT_PRIORITY)


def test_add_list_apply_remove(run_cli):
    added = run_cli("dict", "add", "MioTTS", "ミオティーティーエス")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "Added: MioTTS → ミオティーティーエス  (Japanese sentences)"  # the reading's language
    assert run_cli("dict", "add", "AI", "エーアイ", "--lang", "any", "--priority", "7").returncode == 0
    regex = run_cli("dict", "add", r"Dr\.\s*(\w+)", r"Doctor \1", "--regex")
    assert regex.returncode == 0 and "English sentences, regular expression" in regex.stdout
    replaced = run_cli("dict", "add", "ＡＩ", "えーあい", "--lang", "any")
    assert replaced.stdout.strip() == "Replaced the reading of “AI” (every sentence): エーアイ → えーあい  (every sentence)"

    listed = run_cli("dict", "list")
    assert listed.stdout.splitlines() == [
        "MioTTS → ミオティーティーエス  (Japanese sentences)",
        "ＡＩ → えーあい  (every sentence)",
        r"Dr\.\s*(\w+) → Doctor \1  (English sentences, regular expression)",
    ]
    as_json = json.loads(run_cli("dict", "list", "--json", "ミオ").stdout)
    assert [e["surface"] for e in as_json] == ["MioTTS"]

    applied = run_cli("dict", "apply", "ＭｉｏＴＴＳはAIです。MAINではない。\n\nDr. Smith met the AI team.")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == ["ミオティーティーエスはえーあいです", "MAINではない",
                                           "Doctor Smith met the えーあい team."]
    assert run_cli("dict", "apply", "-", stdin="MioTTSを読む。").stdout.splitlines() == ["ミオティーティーエスを読む"]

    assert run_cli("dict", "disable", "MioTTS").stdout.startswith("Off: MioTTS")
    assert run_cli("dict", "apply", "MioTTSです。").stdout.strip() == "MioTTSです"
    assert run_cli("dict", "enable", "MioTTS").returncode == 0

    removed = run_cli("dict", "remove", "AI")
    assert removed.stdout.strip() == "Removed: ＡＩ → えーあい  (every sentence)"
    assert_one_line_error(run_cli("dict", "remove", "AI"), "“AI” has no reading")
    assert run_cli("dict", "path").stdout.strip() == str(readings_path())


def test_bad_input_is_one_line_and_leaves_the_dictionary_as_it_was(run_cli, tmp_path):
    assert run_cli("dict", "add", "keep", "me").returncode == 0
    before = readings_path().read_bytes()
    assert_one_line_error(run_cli("dict", "add", "x(", "y", "--regex"), "not a valid regular expression")
    assert_one_line_error(run_cli("dict", "add", "(a)", r"\2", "--regex"), "group \\2")
    assert_one_line_error(run_cli("dict", "add", "", "x"), "empty")
    assert_one_line_error(run_cli("dict", "add", "a\tb", "x"), "tab")
    assert_one_line_error(run_cli("dict", "add", "w", "x" * 101), "at most 100")
    assert_one_line_error(run_cli("dict", "import", tmp_path / "missing.json"), "does not exist")
    assert_one_line_error(run_cli("dict", "apply", "。。。"), "nothing that can be spoken")
    assert_one_line_error(run_cli("dict", "export", tmp_path / "no" / "such" / "x.tsv"), "does not exist")
    assert readings_path().read_bytes() == before
    refused = run_cli("dict", "add", "w", "x", "--priority", "11")
    assert_one_line_error(refused, "0 to 10")


def test_import_voicevox_then_ime_then_export_round_trip(run_cli, tmp_path, miodesk_home):
    export = tmp_path / "voicevox_user_dict.json"
    export.write_text(json.dumps(VOICEVOX, ensure_ascii=False, indent=2), encoding="utf-8")
    imported = run_cli("dict", "import", export)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == (
        "Imported 2 readings from voicevox_user_dict.json (VOICEVOX user dictionary): 2 new, 0 replaced; the accent "
        "data of 2 words was dropped (MioDesk's speech model takes no accent marks).")
    assert run_cli("dict", "apply", "MioTTSで読み上げる。").stdout.strip() == "ミオティーティーエスでヨミアゲる"

    ime = tmp_path / "ime.txt"
    ime.write_bytes("\ufeff!Microsoft IME Dictionary Tool\r\n!Format:WORDLIST\r\n\r\n"
                    "とうきょうと\t東京都\t地名その他\r\nおせ\tお世話になっております\t短縮よみ\r\n".encode("utf-16-le"))
    result = run_cli("dict", "import", ime)
    assert result.returncode == 0, result.stderr
    assert "1 new" in result.stdout and "(IME word list)" in result.stdout and "1 skipped" in result.stdout
    assert "短縮よみ" in result.stderr  # why it was skipped, as a warning

    out = tmp_path / "mine.tsv"
    assert run_cli("dict", "export", out).stdout.strip() == f"{out}: 3 readings"
    assert out.read_text(encoding="utf-8") == readings_path().read_text(encoding="utf-8")
    readings_path().unlink()
    again = run_cli("dict", "import", out)
    assert "(MioDesk readings): 3 new" in again.stdout
    assert ReadingsStore().entries()[0].surface == "ＭｉｏＴＴＳ"


# --- every path that speaks -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("readings_models"), "readings", "qwen3", eog_probability=0.05,
                      seed=1).path


def model_texts(server: ReplayServer) -> list[str]:
    """What the speech model was given, request by request (the user message of each chat request)."""
    return [request.body["messages"][-1]["content"] for request in server.chat_requests()]


def test_speak_gives_the_model_the_dictionary_text(run_cli, tmp_path):
    assert run_cli("dict", "add", "MioTTS", "Mio T T S", "--lang", "en").returncode == 0
    assert run_cli("dict", "add", r"Dr\.\s*(\w+)", r"Doctor \1", "--regex").returncode == 0
    with ReplayServer() as server:
        for extra in ((), ("--no-dict",)):
            result = run_cli("speak", "Dr. Smith reads ＭｉｏＴＴＳ.", "--voice", EN_VOICE, "-o", tmp_path / "out.wav",
                             "--llm-base-url", server.base_url, "--codec", CODEC_24K, *extra)
            assert result.returncode == 0, result.stderr
    assert model_texts(server) == ["Doctor Smith reads Mio T T S.", "Dr. Smith reads ＭｉｏＴＴＳ."]


def test_read_prints_the_document_as_written_and_gives_the_model_the_dictionary_text(run_cli, tmp_path):
    document = tmp_path / "doc.txt"
    document.write_text("MioTTS reads this. Then AI reads that.\n\n本屋で本を読み上げる。\n", encoding="utf-8")
    assert run_cli("dict", "add", "AI", "artificial intelligence").returncode == 0
    assert run_cli("dict", "add", "本屋", "ほんや").returncode == 0
    printed = []
    with ReplayServer() as server:
        for extra in ((), ("--no-dict",)):
            result = run_cli("read", document, "--voice", EN_VOICE, "--llm-base-url", server.base_url,
                             "--codec", CODEC_24K, "-o", tmp_path / "out.wav", *extra)
            assert result.returncode == 0, result.stderr
            printed.append([line for line in result.stdout.splitlines() if line.startswith("[")])
    # The sentences and their offsets in the document are the same with and without the dictionary.
    assert printed[0] == printed[1] == ["[0] MioTTS reads this.", "[19] Then AI reads that.", "[40] 本屋で本を読み上げる。"]
    assert model_texts(server) == ["MioTTS reads this.", "Then artificial intelligence reads that.", "ほんやで本を読み上げる",
                                   "MioTTS reads this.", "Then AI reads that.", "本屋で本を読み上げる"]


def test_miodesk_serve_and_a_terminal_share_one_dictionary(run_cli, miodesk_home):
    port = free_port()
    assert run_cli("voices", "import", JA_VOICE).returncode == 0
    assert run_cli("dict", "add", "本屋", "ほんや").returncode == 0
    env = dict(os.environ, MIODESK_HOME=str(miodesk_home), PYTHONIOENCODING="utf-8")
    with ReplayServer() as llm:
        process = subprocess.Popen(
            [sys.executable, "-m", "miodesk", "serve", "--port", str(port), "--llm-base-url", llm.base_url,
             "--codec", str(CODEC_24K), "--provider", "cpu"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env,
            cwd=Path(__file__).parent.parent)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if http_call(url, "GET", "/v1/models").status == 200:
                        break
                except OSError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
                time.sleep(0.2)
            speech = {"model": "tts-1", "input": "駅前の本屋。", "voice": "jp_female", "response_format": "wav"}
            assert http_call(url, "POST", "/v1/audio/speech", speech).status == 200
            assert run_cli("dict", "add", "駅前", "えきまえ").returncode == 0  # in another terminal
            assert http_call(url, "POST", "/v1/audio/speech", speech).status == 200
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    assert model_texts(llm) == ["駅前のほんや", "えきまえのほんや"]


class RecordingLLM:
    """The engine's real model, noting each text it is given."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def generate(self, text: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.texts.append(text)
        return self._llm.generate(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


class RecordingEngine:
    def __init__(self, engine: SpeechEngine) -> None:
        self.llm = RecordingLLM(engine.llm)
        self.codec = engine.codec
        self.sample_rate = engine.sample_rate


@pytest.fixture(scope="module")
def engine(model: Path) -> SpeechEngine:
    return SpeechEngine(model, GOLDEN / "codec" / "v2_44k", provider="cpu", llm_threads=1, codec_threads=1)


def test_a_reading_gives_the_model_the_dictionary_text_and_keeps_the_document_offsets(engine, tmp_path):
    text = "ＭｉｏＴＴＳで本を読み上げる。\n\nDr. Smith uses AI every day. 東京都の本屋にも行く。"
    ReadingsStore().add_all([Entry("ＭｉｏＴＴＳ", "ミオティーティーエス", "ja"), Entry("読み上げ", "ヨミアゲ", "ja"),
                             Entry(r"Dr\.\s*(\w+)", r"Doctor \1", "en", True), Entry("AI", "A I", "en"),
                             Entry("本屋", "ほんや", "ja")])
    utterances = segment(text)

    def read(prepare: Any) -> tuple[list[tuple[int, int, str]], list[str]]:
        recording = RecordingEngine(engine)
        events: list[ReaderEvent] = []
        sink = FileSink(tmp_path / "out.wav", engine.sample_rate)
        kwargs = {"prepare_text": prepare} if prepare else {}
        session = ReadingSession(recording, utterances, np.load(GOLDEN / "presets" / "jp_female.npy"), sink,
                                 source_text=text, on_event=events.append, seed=2, **kwargs)
        session.start()
        assert session.wait(120)
        sink.close()
        started = [(e.start, e.end, e.text) for e in events if e.kind == "utterance_started"]
        return started, recording.llm.texts

    spans, given = read(LiveReadings().prepare_text)
    plain_spans, plain_given = read(None)
    assert spans == plain_spans == [(u.start, u.end, u.text) for u in utterances]
    assert [text[start:end] for start, end, _ in spans] == [u.text for u in utterances]
    given, plain_given = list(dict.fromkeys(given)), list(dict.fromkeys(plain_given))  # a retry asks again
    assert plain_given == ["MioTTSで本を読み上げる", "Dr. Smith uses AI every day.", "東京都の本屋にも行く"]
    assert given == ["ミオティーティーエスで本をヨミアゲる", "Doctor Smith uses A I every day.", "東京都のほんやにも行く"]


def test_the_speech_service_gives_the_model_the_dictionary_text(engine, tmp_path):
    voices = VoiceStore(tmp_path / "voices")
    voices.import_file(JA_VOICE)
    recording = RecordingEngine(engine)
    live = LiveReadings()
    service = SpeechService(lambda: recording, voices, prepare_text=live.prepare_text)
    try:
        ReadingsStore().add(Entry("本屋", "ほんや", "ja"))
        assert sum(len(chunk) for chunk in service.submit("駅前の本屋。", "jp_female", seed=1).chunks()) > 0
        ReadingsStore().add(Entry("駅前", "えきまえ", "ja"))  # changes apply from the next sentence
        assert sum(len(chunk) for chunk in service.submit("駅前の本屋。", "jp_female", seed=1).chunks()) > 0
    finally:
        service.close()
    assert list(dict.fromkeys(recording.llm.texts)) == ["駅前のほんや", "えきまえのほんや"]


def test_bench_reports_the_dictionary_cost(miodesk_home):
    env = dict(os.environ, MIODESK_HOME=str(miodesk_home), PYTHONIOENCODING="utf-8")
    completed = subprocess.run([sys.executable, "-m", "miodesk", "bench", "--dictionary", "--json", "--quick"],
                               capture_output=True, text=True, encoding="utf-8", env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr
    figure = json.loads(completed.stdout.strip().splitlines()[-1])["dictionary"]
    assert figure["entries"] == 10_000 and figure["text_s"] >= 300
    assert figure["utterances_changed"] > 0  # the generated entries do match the bench texts
    assert figure["apply_ms_per_5_min"] > 0 and figure["compile_ms"] > 0
    assert figure["with_patterns"]["patterns"] == 50
    tables = subprocess.run([sys.executable, "-m", "miodesk", "bench", "--dictionary", "--quick"],
                            capture_output=True, text=True, encoding="utf-8", env=env, timeout=300)
    assert tables.stdout.startswith("Readings dictionary: 10,000 entries cost "), tables.stdout
