"""The Record Voice dialog under pytest-qt (offscreen), recording from the PulseAudio virtual mic."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile  # noqa: E402
from conftest import GOLDEN  # noqa: E402
from mic_fixtures import speech_wav, virtual_mic, write_wav  # noqa: E402,F401 - fixtures
from PySide6.QtCore import Qt  # noqa: E402

from miodesk.tts.voice_encoder import VoiceEncoder  # noqa: E402
from miodesk.tts.voices import VoiceStore  # noqa: E402
from miodesk.ui.record_voice import RecordVoiceDialog  # noqa: E402

CODEC = GOLDEN / "codec" / "v2_44k"
WAVLM = GOLDEN / "wavlm" / "hf"


@pytest.fixture
def dialog(qtbot, tmp_path):
    store = VoiceStore(tmp_path / "voices")
    made: list[VoiceEncoder] = []

    def factory() -> VoiceEncoder:
        made.append(VoiceEncoder(CODEC, WAVLM))
        return made[-1]

    dlg = RecordVoiceDialog(store, factory, language="en")
    qtbot.addWidget(dlg)
    dlg.store_for_test, dlg.made = store, made
    return dlg



def _record_take(qtbot, dlg, mic, wav, seconds: float, background: bool = False) -> None:
    """Record `wav` played into the mic; `background`: it already plays before and after (room noise)."""
    if background:
        player = mic.play(wav)
        qtbot.wait(500)
    qtbot.mouseClick(dlg.record_button, Qt.MouseButton.LeftButton)
    assert dlg.stop_button.isEnabled(), dlg.status_label.text()
    if background:
        qtbot.wait(int(seconds * 1000))
    else:
        player = mic.play(wav, delay=0.3)
        qtbot.waitUntil(lambda: player.poll() is not None, timeout=int(seconds * 1000) + 15000)
        qtbot.wait(400)
    assert dlg.meter.maximum() == 60
    count = len(dlg.reports)
    qtbot.mouseClick(dlg.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dlg.reports) == count + 1, timeout=10000)
    if player.poll() is None:
        player.terminate()
        player.wait(timeout=10)


def test_record_check_and_save_a_voice(qtbot, dialog, virtual_mic, speech_wav, tmp_path, monkeypatch,  # noqa: F811
                                       announced):
    monkeypatch.setenv("PULSE_SOURCE", virtual_mic.source)
    dlg = dialog
    index = dlg.device_combo.findText(virtual_mic.device)
    assert index > 0
    dlg.device_combo.setCurrentIndex(index)
    assert "quiet evenings" in dlg.text_label.text()
    assert not dlg.save_button.isEnabled()

    _record_take(qtbot, dlg, virtual_mic, speech_wav, 8)
    first = dlg.reports[0]
    assert first.ok, first.summary()
    assert dlg.play_button.isEnabled() and dlg.rerecord_button.isEnabled()
    assert dlg.record_button.text().replace("&", "") == "Record another take"
    # the result is spoken, with the take's hint, politely: nothing failed
    text, urgent = announced[-1]
    assert not urgent and text.startswith("Take 1 is usable.") and text.startswith(dlg.status_label.text())
    assert all(issue.message in text for issue in first.issues)

    # a second take of pure noise: the noise check fires and the take is left out of the voice
    noise = write_wav(tmp_path / "noise.wav", np.random.default_rng(3).normal(0, 0.25, 44100 * 4), 44100)
    _record_take(qtbot, dlg, virtual_mic, noise, 2, background=True)
    assert "noise" in {i.code for i in dlg.reports[1].errors}
    assert "✗" in dlg.hints_label.text()
    text, urgent = announced[-1]
    assert urgent and text.startswith("Take 2 cannot be used; please record again.")
    assert dlg.reports[1].errors[0].message in text

    dlg.name_edit.setText("My voice")
    assert dlg.save_button.isEnabled()
    with qtbot.waitSignal(dlg.voiceSaved, timeout=60000) as saved:
        qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    assert saved.args == ["My voice"]
    store = dlg.store_for_test
    assert store.names() == ["My voice"]
    flac = store.root / "My voice.flac"
    recorded, rate = soundfile.read(str(flac), dtype="float32")
    # only the speech take (trimmed) was kept
    assert abs(len(recorded) - (first.end - first.start)) <= 1
    encoder = dlg.made[0]
    np.testing.assert_allclose(store.get("My voice").vector, encoder.encode_file(flac), atol=1e-5)
    meta = store.get("My voice").metadata
    assert meta["source"]["takes"] == 2 and meta["source"]["used_takes"] == 1


def test_unavailable_microphone_is_explained(qtbot, dialog, announced):
    dlg = dialog
    dlg.device_combo.addItem("unplugged", 9999)
    dlg.device_combo.setCurrentIndex(dlg.device_combo.count() - 1)
    qtbot.mouseClick(dlg.record_button, Qt.MouseButton.LeftButton)
    assert not dlg.stop_button.isEnabled()
    assert "microphone" in dlg.status_label.text().lower()
    assert announced == [(dlg.status_label.text(), True)]  # spoken at once, not only shown
    assert dlg.store_for_test.names() == []


def test_japanese_reading_text(qtbot, tmp_path):
    store = VoiceStore(tmp_path / "v")
    dlg = RecordVoiceDialog(store, lambda: None, language="ja")
    qtbot.addWidget(dlg)
    assert "。" in dlg.text_label.text()
