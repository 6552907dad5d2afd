"""UI language: English source strings, Japanese from a Qt Linguist catalogue.

`resources/translations/miodesk_ja.ts` is the catalogue translators edit (Qt Linguist or by hand);
`pyside6-lrelease` compiles it into `miodesk_ja.qm`, which a QTranslator loads. Qt's own dialogs
(file dialog, message box buttons) use Qt's `qtbase_ja.qm`. Installing or removing a translator
sends every widget a LanguageChange event, so the window re-labels itself without a restart.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

from miodesk.ui.assets import translations_dir

log = logging.getLogger(__name__)

SUPPORTED = ("en", "ja")


def system_language() -> str:
    for name in QLocale.system().uiLanguages():
        code = name.replace("_", "-").split("-")[0].lower()
        if code in SUPPORTED:
            return code
    return "en"


def effective_language(setting: str) -> str:
    """The language to show for a settings value ("" follows the system)."""
    return setting if setting in SUPPORTED else system_language()


class Translations:
    """Keeps the installed translators so a language switch can replace them."""

    def __init__(self) -> None:
        self._installed: list[QTranslator] = []
        self.language = "en"

    def apply(self, setting: str) -> str:
        app = QCoreApplication.instance()
        language = effective_language(setting)
        for translator in self._installed:
            QCoreApplication.removeTranslator(translator)
        self._installed = []
        if language != "en":
            own = QTranslator(app)
            if own.load(f"miodesk_{language}", str(translations_dir())):
                self._installed.append(own)
            else:
                log.warning("no %s translation in %s", language, translations_dir())
            qt = QTranslator(app)
            if qt.load(f"qtbase_{language}", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
                self._installed.append(qt)
            for translator in self._installed:
                QCoreApplication.installTranslator(translator)
        QLocale.setDefault(QLocale(QLocale.Language.Japanese if language == "ja" else QLocale.Language.English))
        self.language = language
        return language
