"""The Readings Dictionary dialog as its own program, for tests/test_readings_dialog.py's AT-SPI check (Qt's
AT-SPI bridge talks to the private accessibility bus the test set up).

Run by the project's Python with DISPLAY, DBUS_SESSION_BUS_ADDRESS, QT_QPA_PLATFORM=xcb,
QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1 and MIODESK_HOME set:

    python tests/atspi_readings_app.py --ready READY --stop-file STOP [--form]

It shows the dialog over the dictionary in MIODESK_HOME (with `--form`, also the Add form for "MioDesk"),
touches READY once they are on screen, and quits when STOP appears (or after `--seconds`).
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--form", action="store_true")
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()

    from PySide6.QtCore import QTimer

    from miodesk.ui.app import ensure_application
    from miodesk.ui.readings_dialog import ReadingsDialog

    application = ensure_application(["miodesk"])
    dialog = ReadingsDialog(speak=lambda text: None)
    dialog.resize(780, 520)
    dialog.show()
    if args.form:
        dialog.add_entry("MioDesk")
    deadline = time.monotonic() + args.seconds

    def ready() -> None:
        with open(args.ready, "w", encoding="utf-8") as handle:
            handle.write("ready\n")

    def check() -> None:
        if os.path.exists(args.stop_file) or time.monotonic() > deadline:
            application.quit()

    QTimer.singleShot(1500, ready)  # the bridge registers the windows meanwhile
    timer = QTimer(interval=100, timeout=check)
    timer.start()
    return application.exec()


if __name__ == "__main__":
    raise SystemExit(main())
