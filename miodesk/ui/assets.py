"""Icons and translation catalogues shipped with the app.

`resources/` at the top of the repository holds the sources (SVG icons, Qt Linguist .ts files);
`miodesk/resources/` holds the runtime copies that travel in the installed package (the SVGs and the
compiled .qm). `python resources/build.py` refreshes them; a test checks they agree.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

PACKAGE_RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SOURCE_RESOURCES = Path(__file__).resolve().parent.parent.parent / "resources"


def resource_dir() -> Path:
    """The installed copies when present, else the source tree's (a checkout without a build)."""
    return PACKAGE_RESOURCES if (PACKAGE_RESOURCES / "icons").is_dir() else SOURCE_RESOURCES


def icon_path(name: str) -> Path:
    return resource_dir() / "icons" / f"{name}.svg"


@cache
def icon(name: str) -> QIcon:
    # SVG icons render sharply at any device pixel ratio (the iconengines/svg plugin).
    return QIcon(str(icon_path(name)))


def app_icon() -> QIcon:
    return icon("miodesk")


def translations_dir() -> Path:
    return resource_dir() / "translations"
