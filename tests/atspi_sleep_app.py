"""The window with its sleep timer set, as a program of its own, for tests/test_sleep_timer.py: Qt's AT-SPI
bridge talks to the private accessibility bus the test set up, and the button is read back over it
(tests/atspi_tree.py) while a listener hears the announcement (tests/atspi_listener.py).

Run by the project's Python, with DISPLAY, DBUS_SESSION_BUS_ADDRESS, QT_QPA_PLATFORM=xcb and
QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1 set:

    python tests/atspi_sleep_app.py --minutes 30 --log APP.json --stop-file STOP

It builds the app (no models are loaded), shows the window, lets the bridge settle, chooses the listening
time from the Playback › Sleep Timer menu's action, writes what the button shows to the log and runs until
the stop file appears or `--seconds` pass.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--log", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--settle", type=float, default=1.5, help="seconds for the bridge before choosing")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    from PySide6.QtCore import QTimer

    from miodesk.settings import Settings
    from miodesk.ui.app import build_app, ensure_application

    application = ensure_application(["miodesk"])
    parts = build_app(Settings(ui_language="en", welcome_done=True))
    window = parts.window
    window.resize(1180, 740)
    window.show()
    window.activateWindow()  # no window manager on Xvfb

    def choose() -> None:
        chosen = time.monotonic()
        window.sleep_menu.choices[args.minutes].trigger()
        button = window.sleep_button
        shown = {"t": chosen, "text": button.text(), "name": button.accessibleName(),
                 "description": button.accessibleDescription(), "mode": window.sleep_timer.mode}
        with open(args.log, "w", encoding="utf-8") as handle:
            json.dump(shown, handle, ensure_ascii=False)

    def check_stop() -> None:
        if os.path.exists(args.stop_file):
            application.quit()

    timer = QTimer()
    timer.timeout.connect(check_stop)
    timer.start(100)
    QTimer.singleShot(int(args.settle * 1000), choose)
    QTimer.singleShot(int(args.seconds * 1000), application.quit)
    code = application.exec()
    window.quit()
    return code


if __name__ == "__main__":
    sys.exit(main())
