"""The real MioDesk window exporting audio (File › Export audio…), for tests/test_gui_export.py's AT-SPI check:
a separate program, so that Qt's AT-SPI bridge talks to the private accessibility bus the test set up.

Run by the project's Python, with DISPLAY, DBUS_SESSION_BUS_ADDRESS, QT_QPA_PLATFORM=xcb,
QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1 and MIODESK_HOME (the test's voices) set:

    python tests/atspi_export_app.py --model M.gguf --codec DIR --document long.md --short short.md \
        --output-dir OUT --log APP.jsonl --dumped DUMPED

It opens the long document and starts exporting it from the export dialog; every progress it shows is
logged (the bar's value, the status line). Once the bar has moved it logs "running" and waits for the
test to read the bus (until the file DUMPED appears), then cancels, opens the short document, exports it
to the end and quits. Exit status 0 when all of that happened within ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--codec", required=True)
    parser.add_argument("--document", required=True)
    parser.add_argument("--short", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--dumped", required=True)
    parser.add_argument("--seconds", type=float, default=240.0)
    args = parser.parse_args()

    from PySide6.QtCore import QTimer

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
    result = {"code": 1, "stage": "long"}

    def finish(code: int, why: str) -> None:
        if result.get("done"):
            return
        result.update(done=True, code=code)
        write("exit", code=code, why=why)
        window.quit()
        application.quit()

    def export(name: str) -> None:
        dialog = window.export_dialog
        if dialog is None:
            window.open_export_dialog()
            dialog = window.export_dialog
            assert dialog is not None
            dialog.job.progressed.connect(progressed)
            dialog.job.succeeded.connect(lambda res: (write("finished", output=str(res.output)),
                                                      QTimer.singleShot(2000, lambda: finish(0, "done"))))
            dialog.job.failed.connect(lambda message: finish(4, f"export failed: {message}"))
            dialog.job.cancelled.connect(lambda reason: (write("cancelled", reason=reason), open_short()))
        else:
            window.open_export_dialog()
        dialog.output.setText(str(Path(args.output_dir) / name))
        dialog.start_export()
        write("started", output=name, busy=dialog.job.busy)

    def progressed(progress) -> None:
        dialog = window.export_dialog
        write("progress", value=dialog.progress.value(), status=dialog.status.text(), stage=result["stage"])
        if result["stage"] == "long" and dialog.progress.value() > 0:
            result["stage"] = "dumping"
            write("running", value=dialog.progress.value())
            wait_for_dump()

    def wait_for_dump() -> None:
        if os.path.exists(args.dumped):
            write("dumped")
            window.export_dialog.cancel_button.click()
        else:
            QTimer.singleShot(100, wait_for_dump)

    def open_short() -> None:
        result["stage"] = "short"
        window.open_path(args.short)

    def loaded(document) -> None:
        write("loaded", title=document.document.title, stage=result["stage"])
        export("long.flac" if result["stage"] == "long" else "short.flac")

    controller.documentLoaded.connect(loaded)
    controller.documentFailed.connect(lambda message: finish(3, f"document failed: {message}"))
    QTimer.singleShot(int(args.seconds * 1000), lambda: finish(2, "timeout"))
    window.resize(1180, 740)
    window.show()
    window.activateWindow()  # no window manager on Xvfb
    write("shown")
    QTimer.singleShot(1500, lambda: window.open_path(args.document))  # the bridge registers the window first
    application.exec()
    out.close()
    return result["code"]


if __name__ == "__main__":
    sys.exit(main())
