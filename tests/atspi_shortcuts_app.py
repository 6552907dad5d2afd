"""Settings › Shortcuts as a program of its own, for tests/test_global_shortcuts.py: Qt's AT-SPI bridge
talks to the private accessibility bus the test set up, and the page is read back over it
(tests/atspi_tree.py).

Run by the project's Python, with DISPLAY, DBUS_SESSION_BUS_ADDRESS, QT_QPA_PLATFORM=xcb and
QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1 set:

    python tests/atspi_shortcuts_app.py --language ja --log APP.json --stop-file STOP

It builds the app (window, controller, tray; no models are loaded), binds the global shortcuts with the
X11 backend after another X client (a second connection of this program, standing in for another app)
has grabbed the clipboard shortcut, shows the Settings dialog on its Shortcuts page, writes what the
page shows to the log (labels as seen, each state line) and runs until the stop file appears or
`--seconds` pass.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", choices=("en", "ja"), default="en")
    parser.add_argument("--log", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    from PySide6.QtCore import QTimer

    from miodesk.settings import Settings
    from miodesk.ui.app import build_app, ensure_application
    from miodesk.ui.hotkeys.base import READ_CLIPBOARD, READ_SELECTION
    from miodesk.ui.hotkeys.keys import KeyCombo
    from miodesk.ui.hotkeys.x11 import X11Backend
    from miodesk.ui.settings_dialog import SettingsDialog

    application = ensure_application(["miodesk"])
    parts = build_app(Settings(ui_language=args.language, welcome_done=True))
    other_app = X11Backend()  # another X client: it holds the clipboard key first
    other_app.bind({READ_CLIPBOARD: KeyCombo.parse(parts.controller.settings.clipboard_shortcut)})
    reader = parts.window.global_reader
    reader.start(X11Backend())
    dialog = SettingsDialog(parts.controller.settings, parts.window)
    dialog._show_page(dialog.shortcuts_page)
    dialog.show()
    dialog.activateWindow()  # no window manager on Xvfb

    def seen(text: str) -> str:
        return re.sub(r"&(.)", r"\1", text)

    page = dialog.shortcuts_page
    shown = {
        "selection_label": seen(page.labels[READ_SELECTION].text()),
        "clipboard_label": seen(page.labels[READ_CLIPBOARD].text()),
        "selection_state": page.state_lines[READ_SELECTION].text(),
        "clipboard_state": page.state_lines[READ_CLIPBOARD].text(),
        "defaults": seen(page.defaults_button.text()),
        "tab": dialog.tabs.tabText(dialog.tabs.currentIndex()),
        "states": {action: state.status.value for action, state in reader.states().items()},
    }
    with open(args.log, "w", encoding="utf-8") as handle:
        json.dump(shown, handle, ensure_ascii=False)

    def check_stop() -> None:
        if os.path.exists(args.stop_file):
            application.quit()

    timer = QTimer()
    timer.timeout.connect(check_stop)
    timer.start(100)
    QTimer.singleShot(int(args.seconds * 1000), application.quit)
    code = application.exec()
    reader.close()
    other_app.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
