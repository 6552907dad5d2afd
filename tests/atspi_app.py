"""The real MioDesk window reading a document, for tests/test_atspi.py (a separate program, so that Qt's
AT-SPI bridge talks to the private accessibility bus the test set up).

Run by the project's Python, with DISPLAY, DBUS_SESSION_BUS_ADDRESS, QT_QPA_PLATFORM=xcb,
QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1 and MIODESK_HOME (the test's voices) set:

    python tests/atspi_app.py --model M.gguf --codec DIR --document walk.md --log APP.jsonl

It shows the window, lets the bridge settle, opens the document, presses Play, logs every sentence it
starts to hear (index, span, text; ``time.monotonic()``, the clock the listener uses too), stops after
``--sentences``, then asks to read an empty clipboard (the window shows and announces "The clipboard
holds no text to read.") and quits. Exit status 0 when all of that happened within ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--codec", required=True)
    parser.add_argument("--document", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--sentences", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--settle", type=float, default=1.5, help="seconds for the bridge before reading")
    args = parser.parse_args()

    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from miodesk.settings import Settings
    from miodesk.tts.voices import VoiceStore
    from miodesk.ui.app import build_app, ensure_application

    out = open(args.log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the whole run

    def write(kind: str, **fields) -> None:
        out.write(json.dumps({"t": round(time.monotonic(), 4), "kind": kind, **fields}, ensure_ascii=False) + "\n")

    application = ensure_application(["miodesk"])
    settings = Settings(model_path=args.model, codec_path=args.codec, provider="cpu", llm_threads=1,
                        codec_threads=1, ui_language="en", welcome_done=True)
    parts = build_app(settings, voice_store=VoiceStore())
    window, controller = parts.window, parts.controller
    controller.seed = 7
    result = {"code": 1}
    heard: list[int] = []

    def finish(code: int, why: str) -> None:
        if result.get("done"):
            return
        result.update(done=True, code=code)
        write("exit", code=code, why=why)
        window.quit()
        application.quit()

    def loaded(document) -> None:
        write("loaded", title=document.document.title, sentences=len(document.utterances))
        window.actions_by_name["play"].trigger()
        focused = QApplication.focusWidget()
        write("play", focus=focused.accessibleName() or focused.objectName() if focused else None)

    def started(index: int, start: int, end: int) -> None:
        text = controller.loaded.document.text[start:end] if controller.loaded else ""
        heard.append(index)
        write("utterance", index=index, start=start, end=end, text=text)
        if len(heard) == args.sentences:
            QTimer.singleShot(800, stop_and_message)  # the last sentence is audible for a moment

    def stop_and_message() -> None:
        window.actions_by_name["stop"].trigger()
        write("stopped", state=controller.state)
        QGuiApplication.clipboard().clear()
        window.paste_and_read()
        write("message", banner=window.banner.kind, text=window.banner.label.text(),
              visible=window.banner.isVisible())
        QTimer.singleShot(1500, lambda: finish(0, "done"))

    controller.documentLoaded.connect(loaded)
    controller.documentFailed.connect(lambda message: finish(3, f"document failed: {message}"))
    controller.errorOccurred.connect(lambda message: write("error", text=message))
    controller.utteranceStarted.connect(started)
    QTimer.singleShot(int(args.seconds * 1000), lambda: finish(2, f"timeout; heard {heard}"))

    window.resize(1180, 740)
    window.show()
    window.activateWindow()  # no window manager on Xvfb
    write("shown")

    def open_document() -> None:
        # The window, not this script, decides where focus goes when the document opens.
        write("open", accessibility_active=_accessibility_active())
        window.open_path(args.document)

    QTimer.singleShot(int(args.settle * 1000), open_document)
    application.exec()
    out.close()
    return result["code"]


def _accessibility_active() -> bool:
    from PySide6.QtGui import QAccessible

    return QAccessible.isActive()


if __name__ == "__main__":
    sys.exit(main())
