"""Icons and translation catalogues shipped with the app.

`resources/` at the top of the repository holds the sources (SVG icons, Qt Linguist .ts files);
`miodesk/resources/` holds the runtime copies that travel in the installed package (the SVGs and the
compiled .qm). `python resources/build.py` refreshes them; a test checks they agree.

The glyph icons are drawn in `currentColor` and take the palette's button-text colour when rendered
(a fixed dark grey vanished on a dark window), so they are re-coloured when the palette changes:
`refresh_icons` swaps every icon made here for the current colours. The app icon keeps its own colours.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QWidget

from miodesk.ui import theme

PACKAGE_RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SOURCE_RESOURCES = Path(__file__).resolve().parent.parent.parent / "resources"
APP_ICON = "miodesk"
# Sizes rendered for each glyph: the toolbar (18-34 px) and menu (16 px) sizes at 100 %, 150 % and 200 %;
# QIcon scales the nearest larger one for anything else.
ICON_SIZES = (16, 18, 20, 24, 27, 30, 32, 34, 36, 40, 48, 51, 64, 68)
LABEL_ICON_PROPERTY = "miodeskIcon"  # a QLabel showing a glyph: "name:size", re-rendered by refresh_icons

# cacheKey of every glyph icon handed out → its name, so refresh_icons can find them on actions and buttons.
_names_by_key: dict[int, str] = {}


def resource_dir() -> Path:
    """The installed copies when present, else the source tree's (a checkout without a build)."""
    return PACKAGE_RESOURCES if (PACKAGE_RESOURCES / "icons").is_dir() else SOURCE_RESOURCES


def icon_path(name: str) -> Path:
    return resource_dir() / "icons" / f"{name}.svg"


@cache
def _svg_source(name: str) -> str:
    return icon_path(name).read_text(encoding="utf-8")


def _render(name: str, color: QColor, size: int) -> QPixmap:
    source = _svg_source(name).replace("currentColor", color.name(QColor.NameFormat.HexRgb))
    renderer = QSvgRenderer(QByteArray(source.encode("utf-8")))
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pixmap


@cache
def _glyph(name: str, normal: int, disabled: int) -> QIcon:
    """The glyph `name` in two colours (QColor.rgba() values: hashable cache keys)."""
    result = QIcon()
    for size in ICON_SIZES:
        result.addPixmap(_render(name, QColor.fromRgba(normal), size), QIcon.Mode.Normal)
        result.addPixmap(_render(name, QColor.fromRgba(disabled), size), QIcon.Mode.Disabled)
    _names_by_key[result.cacheKey()] = name
    return result


def icon(name: str) -> QIcon:
    """The icon `name` in the current palette's colours (the app icon in its own)."""
    if name == APP_ICON or QGuiApplication.instance() is None:
        return _file_icon(name)
    normal, disabled = theme.icon_colors(theme.application_palette())
    return _glyph(name, normal.rgba(), disabled.rgba())


@cache
def _file_icon(name: str) -> QIcon:
    # SVG icons render sharply at any device pixel ratio (the iconengines/svg plugin).
    return QIcon(str(icon_path(name)))


def app_icon() -> QIcon:
    return icon(APP_ICON)


def set_label_icon(label: QLabel, name: str, size: int) -> None:
    """Show the glyph `name` in a label (`refresh_icons` re-colours it later)."""
    label.setProperty(LABEL_ICON_PROPERTY, f"{name}:{size}")
    label.setPixmap(icon(name).pixmap(QSize(size, size), label.devicePixelRatioF()))


def refresh_icons(root: QWidget) -> None:
    """Give the actions, buttons and labels under `root` (and itself) the current palette's glyphs."""
    for action in root.findChildren(QAction):
        name = _names_by_key.get(action.icon().cacheKey())
        if name is not None and icon(name).cacheKey() != action.icon().cacheKey():
            action.setIcon(icon(name))
    for button in root.findChildren(QAbstractButton):
        name = _names_by_key.get(button.icon().cacheKey())
        if name is not None and icon(name).cacheKey() != button.icon().cacheKey():
            button.setIcon(icon(name))
    for label in root.findChildren(QLabel):
        spec = label.property(LABEL_ICON_PROPERTY)
        if spec:
            name, size = str(spec).rsplit(":", 1)
            set_label_icon(label, name, int(size))


def _refresh_all_icons() -> None:
    for window in QApplication.topLevelWidgets():
        refresh_icons(window)


theme.on_palette_change(_refresh_all_icons)


def translations_dir() -> Path:
    return resource_dir() / "translations"
