"""Fixtures for the desktop-app tests: a real X server (Xvfb), generated models, preset voices.

Import what a test module uses: ``from gui_fixtures import app, qapp_args, screenshot, ...``.
The Qt application connects to its own Xvfb through `qapp_args` (``-display``), so DISPLAY is not
changed for the rest of the test session (the CLI tests must not open windows).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import GOLDEN
from gguf_fixtures import make_model

ARTIFACTS = Path(__file__).parent / "artifacts"
CODEC = GOLDEN / "codec" / "v2_44k"
PRESETS = sorted((GOLDEN / "presets").glob("*.pt"))


def _free_display() -> int:
    for number in range(99, 160):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number")


@contextmanager
def private_xvfb() -> Iterator[str]:
    """An Xvfb of its own for tests that start the app as a separate program and look at its windows
    (not the Qt tests' display, which ends with its last client)."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed; tests/run.sh installs it")
    number = _free_display()
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A private Xvfb server for the session (1280x800, 24-bit)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    number = _free_display()
    process = subprocess.Popen(
        # -terminate: the server exits when its last client (this test process) disconnects, so Qt
        # never sees it vanish while tearing down.
        ["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-dpi", "96", "-terminate"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("Xvfb did not start")
        time.sleep(0.05)
    yield f":{number}"
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def qapp_args(xvfb_display: str) -> list[str]:
    """pytest-qt creates the QApplication with these: the xcb platform on our Xvfb."""
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")  # only Qt reads it; -platform below wins anyway
    return ["miodesk-tests", "-platform", "xcb", "-display", xvfb_display]


@pytest.fixture(scope="session")
def gui_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated MioTTS-like GGUF that says ~20 codes per sentence."""
    return make_model(tmp_path_factory.mktemp("gui_models"), "gui", "qwen3", eog_probability=0.05, seed=1).path


@pytest.fixture
def gui_settings(gui_model: Path):
    from miodesk.settings import Settings

    return Settings(model_path=str(gui_model), codec_path=str(CODEC), provider="cpu", llm_threads=1,
                    codec_threads=1, ui_language="en", welcome_done=True)


@pytest.fixture
def voices(miodesk_home: Path):
    """The official presets imported into this test's voice folder (the app's own store)."""
    from miodesk.tts.voices import VoiceStore

    store = VoiceStore()
    for preset in PRESETS:
        store.import_file(preset)
    return store


@pytest.fixture
def app(qtbot, gui_settings, voices):
    """The whole app (window, controller, tray) with the generated models; closed afterwards."""
    from miodesk.ui.app import build_app, ensure_application

    ensure_application()
    parts = build_app(gui_settings, voice_store=voices)
    parts.controller.seed = 7
    qtbot.addWidget(parts.window)
    parts.window.resize(1180, 740)
    parts.window.show()
    qtbot.waitExposed(parts.window)
    parts.window.activateWindow()  # no window manager on Xvfb: window shortcuts need an active window
    qtbot.waitUntil(lambda: parts.window.isActiveWindow(), timeout=5000)
    yield parts
    parts.window.quit()


def screenshot(widget, name: str) -> Path:
    """Save what `widget` shows as tests/artifacts/<name>.png (looked at by people, not compared)."""
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert widget.grab().save(str(path)), path
    return path


def write_sample(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


SAMPLE_EN = """# A Walk by the Sea

## Morning

The tide was out when we arrived. Gulls circled above the harbour. A fishing boat rocked gently at its mooring.

We walked along the sand for an hour. The wind smelled of salt and seaweed.

## Afternoon

Clouds came in from the west. We found a small café near the lighthouse. The soup was warm and the bread was fresh.

## Evening

The lights of the town came on one by one. It was time to go home.
"""

SAMPLE_JA = """# 海辺の散歩

## 朝

私たちが着いたとき、潮は引いていました。カモメが港の上を舞っていました。漁船が静かに揺れていました。

一時間ほど砂浜を歩きました。風は潮と海藻の香りがしました。

## 午後

西から雲が流れてきました。灯台の近くに小さな喫茶店を見つけました。スープは温かく、パンは焼きたてでした。

## 夜

町の明かりが一つずつ灯りました。そろそろ帰る時間です。
"""
