"""Settings › Voices as a program of its own, for tests/test_voice_per_language.py: Qt's AT-SPI bridge
then talks to the private accessibility bus the test set up, and a screen reader's view of the page can
be read back over it (tests/atspi_tree.py).

Run by the project's Python, with DISPLAY, DBUS_SESSION_BUS_ADDRESS, QT_QPA_PLATFORM=xcb and
QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1 set:

    python tests/atspi_settings_app.py --language ja --log APP.json --stop-file STOP

It shows the Settings dialog on its Voices page (the four presets and a voice of one's own installed,
an English voice chosen), writes what the page shows to the log (the labels as seen, without their
mnemonic marker, and each list's current item) and runs until the stop file appears or `--seconds` pass.
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
    from PySide6.QtWidgets import QApplication

    from miodesk.settings import Settings
    from miodesk.ui.i18n import Translations
    from miodesk.ui.settings_dialog import SettingsDialog

    application = QApplication(["miodesk"])
    application.setApplicationName("MioDesk")
    translations = Translations()
    translations.apply(args.language)
    dialog = SettingsDialog(Settings(ui_language=args.language, voice_en="en_male"),
                            voices=["en_female", "en_male", "jp_female", "jp_male", "mine"], language="ja")
    dialog._show_page(dialog.voices_page)
    dialog.show()
    dialog.activateWindow()  # no window manager on Xvfb

    def seen(text: str) -> str:
        return re.sub(r"&(.)", r"\1", text)

    shown = {
        "group": dialog.voices_group.title(),
        "per_language": seen(dialog.per_language_radio.text()),
        "single": seen(dialog.single_voice_radio.text()),
        "japanese_label": seen(dialog.japanese_voice_label.text()),
        "english_label": seen(dialog.english_voice_label.text()),
        "single_label": seen(dialog.single_voice_label.text()),
        "japanese_item": dialog.japanese_voice.currentText(),
        "english_item": dialog.english_voice.currentText(),
        "single_item": dialog.single_voice.currentText(),
    }
    with open(args.log, "w", encoding="utf-8") as log:
        json.dump(shown, log, ensure_ascii=False)

    def check() -> None:
        if os.path.exists(args.stop_file):
            application.quit()

    timer = QTimer(interval=100)
    timer.timeout.connect(check)
    timer.start()
    QTimer.singleShot(int(args.seconds * 1000), application.quit)
    application.exec()
    return 0


if __name__ == "__main__":
    sys.exit(main())
