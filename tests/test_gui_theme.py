"""Light and dark palettes measured from the window's pixels, icons that follow the palette, and a window
that fits a 1280×800 screen at 200 % (640×400 logical pixels).

Contrast is read from `widget.grab()` pixels, as a checker reads a screenshot:
- text and glyphs: the most common colour of the area is its background; the pixel farthest from it
  is the ink (the text, the icon's strokes);
- focus frames: the same pixels grabbed without and with the focus; the frame's contrast is what at
  least half a perimeter's worth of changed pixels reaches (a thin frame all round counts, a caret or a
  few changed pixels do not; WCAG 2.4.13 measures the same change of contrast).

Every figure goes to tests/artifacts/contrast.txt. This module measures only through the window's
widgets, so the same test run on an older checkout gives the "before" figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from gui_fixtures import ARTIFACTS, SAMPLE_EN, private_xvfb, screenshot, write_sample
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette, QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QWidget,
)

TEXT, GLYPH, FOCUS = 4.5, 3.0, 3.0  # WCAG 2.2 AA: text, non-text (glyphs, focus indicators)
REPO_ROOT = Path(__file__).parent.parent


def fusion_dark_palette() -> QPalette:
    """The dark palette Qt's Fusion style gives a dark desktop (window #323232, text #f0f0f0, highlight
    #308cc6): Xvfb has no platform theme to switch, so the tests set it as the application palette."""
    window, text, highlight = QColor(50, 50, 50), QColor(240, 240, 240), QColor(48, 140, 198)
    palette = QPalette(window)  # the derived roles (light, mid, dark, shadow) first
    role = QPalette.ColorRole
    for name, color in {
        role.Window: window, role.WindowText: text, role.Base: window.darker(140),
        role.AlternateBase: window.darker(120), role.Text: text, role.Button: window, role.ButtonText: text,
        role.BrightText: QColor(255, 80, 80), role.Highlight: highlight, role.HighlightedText: text,
        role.Link: highlight, role.ToolTipBase: window, role.ToolTipText: text,
        role.PlaceholderText: QColor(240, 240, 240, 128),
    }.items():
        palette.setColor(name, color)
    for name in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, name, QColor(130, 130, 130))
    palette.setColor(QPalette.ColorGroup.Disabled, role.Base, window)
    return palette


@pytest.fixture
def keep_palette(qapp):
    """The test switches the application palette; the next test gets the original back."""
    original = QPalette(QApplication.palette())
    yield
    QApplication.setPalette(original)
    QApplication.processEvents()


def open_document(qtbot, parts, path):
    with qtbot.waitSignal(parts.controller.documentLoaded, timeout=20000):
        parts.window.open_path(path)
    return parts.controller.loaded


# --- measuring pixels -------------------------------------------------------------------------------

def rgb(image: QImage) -> np.ndarray:
    """(height, width, 3) float RGB of a grabbed image."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    height, width = image.height(), image.width()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes()).reshape(height, -1)
    return data[:, : width * 4].reshape(height, width, 4)[..., [2, 1, 0]].astype(np.float64)  # BGRA


def luminance(pixels: np.ndarray) -> np.ndarray:
    channel = pixels / 255
    linear = np.where(channel <= 0.04045, channel / 12.92, ((channel + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.maximum(a, b) + 0.05) / (np.minimum(a, b) + 0.05)


def ink_contrast(pixels: np.ndarray) -> float:
    """Contrast of the ink on the background in an area: the farthest colour against the commonest."""
    colors, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    levels = luminance(colors)
    return float(ratio(levels, levels[counts.argmax()]).max())


def on_screen(widget: QWidget, inset: int = 0) -> np.ndarray:
    """The widget's pixels as drawn on its parent (a widget grabbed alone has no background)."""
    assert widget.isVisible() and widget.width() > 0, widget
    area = widget.geometry().adjusted(inset, inset, -inset, -inset)
    return rgb(widget.parentWidget().grab(area).toImage())


def text_contrast(widget: QWidget) -> float:
    return ink_contrast(on_screen(widget))


def glyph_contrast(widget: QWidget, inset: int = 0) -> float:
    """An icon-only button or label: the glyph against the button's face, inside its frame."""
    return ink_contrast(on_screen(widget, inset))


def icon_beside_text_contrast(button: QPushButton) -> float:
    """A button with an icon before its text: the first columns with ink, one icon wide."""
    pixels = on_screen(button, inset=5)  # inside the frame
    levels = luminance(pixels)
    colors, counts = np.unique(levels.ravel(), return_counts=True)
    face = colors[counts.argmax()]
    inked = (ratio(levels, face) > 1.5).any(axis=0)
    start = int(inked.argmax())
    return ink_contrast(pixels[:, start:start + button.iconSize().width()])


def focus_contrast(qtbot, widget: QWidget, away: QWidget) -> float:
    """The focus frame: grab the widget (and 3 px around it) without and with the focus."""
    parent = widget.parentWidget()
    area = widget.geometry().adjusted(-3, -3, 3, 3)

    def grab_with_focus_on(target: QWidget) -> np.ndarray:
        target.setFocus(Qt.FocusReason.TabFocusReason)
        qtbot.waitUntil(target.hasFocus, timeout=3000)
        QApplication.processEvents()
        return rgb(parent.grab(area).toImage())

    before = grab_with_focus_on(away)
    after = grab_with_focus_on(widget)
    changes = np.sort(ratio(luminance(before), luminance(after)).ravel())[::-1]
    half_perimeter = widget.width() + widget.height()
    return float(changes[half_perimeter])


def activate(qtbot, window: QWidget) -> None:
    window.activateWindow()  # no window manager on Xvfb: focus needs an active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def first_visible(dialog, kind: type) -> QWidget:
    """The first control of `kind` in a dialog with tabs, its tab brought to the front."""
    for index in range(dialog.tabs.count()):
        dialog.tabs.setCurrentIndex(index)
        QApplication.processEvents()
        shown = [w for w in dialog.findChildren(kind) if w.isVisible() and w.isEnabled()]
        if shown:
            return shown[0]
    shown = [w for w in dialog.findChildren(kind) if w.isVisible()]
    assert shown, kind
    return shown[0]


def measure_window(qtbot, parts) -> dict[tuple[str, str], float]:
    """Every contrast figure of the window and the settings dialog in the current palette.

    Keys: (what is measured — text, glyph or focus —, the control).
    """
    from miodesk.ui.settings_dialog import SettingsDialog

    window = parts.window
    transport = window.transport
    found: dict[tuple[str, str], float] = {}
    activate(qtbot, window)

    # The first page (the document stays loaded behind it).
    window.stack.setCurrentWidget(window.empty_page)
    QApplication.processEvents()
    page = window.empty_page
    for name, label in (("first page title", page.title), ("first page subtitle", page.subtitle),
                        ("first page hint", page.hint)):
        found["text", name] = text_contrast(label)
    found["glyph", "Open a file"] = icon_beside_text_contrast(page.open_button)
    found["glyph", "Paste and read"] = icon_beside_text_contrast(page.paste_button)
    found["focus", "Open a file"] = focus_contrast(qtbot, page.open_button, transport.voice_combo)
    found["focus", "Paste and read"] = focus_contrast(qtbot, page.paste_button, transport.voice_combo)
    window.stack.setCurrentWidget(window.splitter)
    QApplication.processEvents()

    # Messages.
    for kind in ("info", "warning", "error"):
        window.show_message(kind, f"An {kind} message to measure.")
        QApplication.processEvents()
        found["text", f"banner ({kind})"] = text_contrast(window.banner.label)
    found["focus", "banner close button"] = focus_contrast(qtbot, window.banner.close_button, window.reader)

    # The transport bar and the status line (a document is open: the buttons are enabled).
    found["text", "position"] = text_contrast(transport.position_label)
    found["text", "voice label"] = text_contrast(transport.voice_label)
    found["text", "speed value"] = text_contrast(transport.speed_value)
    found["text", "status: model"] = text_contrast(window.model_label)
    for name in ("previous_chapter", "previous_sentence", "next_sentence", "next_chapter"):
        found["glyph", name.replace("_", " ")] = glyph_contrast(transport.buttons[name], inset=4)
    found["glyph", "play"] = glyph_contrast(transport.buttons["play"], inset=9)
    found["glyph", "preview"] = glyph_contrast(transport.preview_button, inset=4)
    found["glyph", "volume"] = glyph_contrast(transport.volume_icon)
    found["focus", "play"] = focus_contrast(qtbot, transport.buttons["play"], window.reader)
    found["focus", "next sentence (flat button)"] = focus_contrast(qtbot, transport.buttons["next_sentence"],
                                                                 window.reader)
    found["focus", "voice combo"] = focus_contrast(qtbot, transport.voice_combo, window.reader)
    found["focus", "preview"] = focus_contrast(qtbot, transport.preview_button, window.reader)
    found["focus", "speed slider"] = focus_contrast(qtbot, transport.speed_slider, window.reader)
    found["focus", "volume slider"] = focus_contrast(qtbot, transport.volume_slider, window.reader)

    # The contents and the document.
    outline = window.outline
    items = [outline.topLevelItem(0)]
    items += [items[0].child(i) for i in range(items[0].childCount())]
    item = next(i for i in items if i is not outline.currentItem() and not i.isSelected())
    found["text", "contents entry"] = ink_contrast(rgb(outline.viewport().grab(outline.visualItemRect(item))
                                                       .toImage()))  # the viewport paints the background
    found["focus", "contents"] = focus_contrast(qtbot, outline, window.reader)
    # The sentence being read, as drawn: the highlight under the text, the (transparent) accessible
    # selection over it; measured on the sentence's first line.
    reader = window.reader
    sentence = parts.controller.loaded.utterances[2]
    reader.follow_reading()
    reader.highlight(sentence.start, sentence.end)
    QApplication.processEvents()
    start, end = QTextCursor(reader.document()), QTextCursor(reader.document())
    start.setPosition(reader.to_qt(sentence.start))
    end.setPosition(reader.to_qt(sentence.start + 12))
    line = reader.cursorRect(start).united(reader.cursorRect(end)).adjusted(2, 0, -2, 0)
    found["text", "sentence being read"] = ink_contrast(rgb(reader.viewport().grab(line).toImage()))
    reader.clear_highlight()
    found["focus", "document"] = focus_contrast(qtbot, window.reader, transport.voice_combo)

    # A dialog: check box, radio button, combo box, spin box, push button.
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    activate(qtbot, dialog)
    away = dialog.tabs.tabBar()
    for kind, name in ((QCheckBox, "check box"), (QRadioButton, "radio button"), (QComboBox, "dialog combo"),
                       (QSpinBox, "spin box"), (QPushButton, "dialog push button")):
        control = first_visible(dialog, kind)
        found["focus", name] = focus_contrast(qtbot, control, away)
    dialog.close()
    activate(qtbot, window)
    return found


def write_report(path: Path, figures: dict[str, dict[tuple[str, str], float]]) -> None:
    needed = {"text": TEXT, "glyph": GLYPH, "focus": FOCUS}
    lines = ["# WCAG contrast measured from widget.grab() pixels (tests/test_gui_theme.py)",
             f"# {'what':6} {'control':30} " + " ".join(f"{name:>8}" for name in figures) + "   needs"]
    for kind, control in next(iter(figures.values())):
        values = " ".join(f"{figures[name][kind, control]:>6.2f}:1" for name in figures)
        lines.append(f"  {kind:6} {control:30} {values}   {needed[kind]}:1")
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- tests ------------------------------------------------------------------------------------------

def start_window(qtbot, settings, voices):
    """The whole app, as the `app` fixture starts it (for a second window in the same test)."""
    from miodesk.ui.app import build_app

    parts = build_app(settings, voice_store=voices)
    qtbot.addWidget(parts.window)
    parts.window.resize(1180, 740)
    parts.window.show()
    qtbot.waitExposed(parts.window)
    return parts


def test_contrast_in_light_and_dark_palettes(keep_palette, app, qtbot, tmp_path, gui_settings, voices):
    """Light; dark switched to while the window is open; dark from the start (a dark desktop)."""
    sample = write_sample(tmp_path / "walk.md", SAMPLE_EN)
    open_document(qtbot, app, sample)
    figures = {"light": measure_window(qtbot, app)}
    window = app.window
    window.show_message("warning", "The clipboard holds no text to read.")
    screenshot(window, "theme-light")

    QApplication.setPalette(fusion_dark_palette())
    QApplication.processEvents()
    figures["switched"] = measure_window(qtbot, app)
    window.show_message("warning", "The clipboard holds no text to read.")
    screenshot(window, "theme-dark-switched")
    window.hide()  # the fixture closes it

    dark = start_window(qtbot, gui_settings, voices)
    try:
        open_document(qtbot, dark, sample)
        figures["dark"] = measure_window(qtbot, dark)
        dark.window.show_message("warning", "The clipboard holds no text to read.")
        screenshot(dark.window, "theme-dark")
        dark.window.stack.setCurrentWidget(dark.window.empty_page)
        screenshot(dark.window, "theme-dark-first-page")
    finally:
        dark.window.quit()

    report = Path(os.environ.get("MIODESK_CONTRAST_REPORT", ARTIFACTS / "contrast.txt"))
    write_report(report, figures)
    print(report.read_text(encoding="utf-8"))
    needed = {"text": TEXT, "glyph": GLYPH, "focus": FOCUS}
    failing = [f"{palette} {kind} {control}: {value:.2f}:1"
               for palette, found in figures.items() for (kind, control), value in found.items()
               if value < needed[kind]]
    assert failing == []


def test_style_and_icons_follow_the_palette(app, qtbot, keep_palette, monkeypatch):
    from miodesk.ui import theme
    from miodesk.ui.assets import icon

    window = app.window
    light, dark = QPalette(QApplication.palette()), fusion_dark_palette()
    window.show_message("info", "A message.")

    def glyph_luminance(pixmap) -> float:
        """Mean luminance of an icon's opaque pixels."""
        image = pixmap.toImage()
        colors = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]
        return float(luminance(np.array([c.getRgb()[:3] for c in colors if c.alpha() == 255], float)).mean())

    def check(palette: QPalette, dark_scheme: bool) -> None:
        assert window.styleSheet() == theme.window_style(palette)
        assert "#f6f7fb" not in window.styleSheet()  # the old contents background
        play = window.actions_by_name["play"].icon().pixmap(QSize(24, 24))
        volume = window.transport.volume_icon.pixmap()
        for pixmap in (play, volume, window.empty_page.open_button.icon().pixmap(QSize(20, 20))):
            assert (glyph_luminance(pixmap) > 0.5) == dark_scheme  # light glyphs on a dark window
        banner = window.banner.styleSheet()
        assert banner == theme.banner_style(QColor("#2f5bd3"), palette)

    check(light, dark_scheme=False)
    app_icon_key = window.windowIcon().cacheKey()
    QApplication.setPalette(dark)
    QApplication.processEvents()
    check(dark, dark_scheme=True)
    assert window.windowIcon().cacheKey() == app_icon_key  # the app icon keeps its colours
    assert icon("play").cacheKey() == window.actions_by_name["play"].icon().cacheKey()  # new icons too

    # The system switching its colour scheme rebuilds as well (Xvfb has no platform theme to switch:
    # the signal is sent by hand, with the palette the switch would bring).
    monkeypatch.setattr(theme, "application_palette", lambda: light)
    QGuiApplication.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert window.styleSheet() == theme.window_style(light)


@pytest.mark.parametrize("palette_name", ["light", "dark"])
def test_reading_highlight_is_readable_and_distinct(qapp, palette_name):
    from miodesk.ui.theme import contrast_ratio, reading_highlight

    palette = QPalette(QApplication.palette()) if palette_name == "light" else fusion_dark_palette()
    background, text = reading_highlight(palette)
    base = palette.color(QPalette.ColorRole.Base)
    assert contrast_ratio(text, background) >= TEXT
    # Distinct from the page: a clear step in colour, not only a shade.
    distance = np.linalg.norm(np.array(background.getRgb()[:3]) - np.array(base.getRgb()[:3]))
    assert distance >= 80, (background.name(), base.name())


def widgets_to_fit(window) -> dict[str, QWidget]:
    transport = window.transport
    widgets: dict[str, QWidget] = {name: button for name, button in transport.buttons.items()}
    for name in ("position_label", "voice_label", "voice_combo", "preview_button", "speed_label", "speed_slider",
                 "speed_value", "volume_icon", "volume_slider"):
        widgets[name] = getattr(transport, name)
    widgets["status bar"] = window.statusBar()
    return widgets


def in_window(window, widget: QWidget) -> QRect:
    return QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


def check_fits(window) -> None:
    """Every transport control whole inside the transport bar (not clipped by it), the bar and the
    status bar inside the window, nothing overlapping."""
    transport = in_window(window, window.transport)
    status = in_window(window, window.statusBar())
    assert window.rect().contains(transport) and window.rect().contains(status), (transport, status)
    rects = {"status bar": status}
    for name, widget in widgets_to_fit(window).items():
        if name == "status bar":
            continue
        assert widget.isVisible(), name
        rect = in_window(window, widget)
        assert transport.contains(rect), (name, rect, transport, window.size())
        hint = widget.minimumSizeHint()
        assert widget.width() >= hint.width() and widget.height() >= min(hint.height(), 16), (name, rect, hint)
        rects[name] = rect
    for first, a in rects.items():
        for second, b in rects.items():
            assert first == second or not a.intersects(b), (first, a, second, b)
    for label in (window.model_label, window.ttfa_label, window.rtf_label, window.remaining_label):
        if label.isVisible():
            assert status.contains(in_window(window, label)), label.text()
    # Still room to read: a few lines of the document.
    assert window.reader.viewport().height() >= 3 * window.reader.fontMetrics().lineSpacing()


def test_window_fits_a_1280x800_screen_at_200_percent(app, qtbot, tmp_path):
    window = app.window
    open_document(qtbot, app, write_sample(tmp_path / "walk.md", SAMPLE_EN))
    window.show_message("warning", "This message makes the window's content area smaller still.")
    minimum = window.minimumSize()
    assert minimum.width() <= 640 and minimum.height() <= 400, minimum
    try:
        for language in ("en", "ja"):
            app.translations.apply(language)
            for size in (minimum, QSize(640, 400)):
                window.resize(size)
                qtbot.waitUntil(lambda size=size: window.size() == size, timeout=3000)
                qtbot.wait(200)  # nested layouts settle over a few passes of the event loop
                check_fits(window)
                screenshot(window, f"theme-{size.width()}x{size.height()}-{language}")
    finally:
        app.translations.apply("en")


PROBE = textwrap.dedent("""
    import json, sys
    from PySide6.QtCore import QPoint, QTimer
    from miodesk.settings import Settings
    from miodesk.ui.app import build_app, ensure_application

    app = ensure_application(["miodesk-probe"])
    parts = build_app(Settings(ui_language=sys.argv[1], welcome_done=True))
    window = parts.window
    window.show_message("warning", "A message takes room too.")
    screen = window.screen().availableGeometry()
    window.setGeometry(screen)  # what maximising does (Xvfb has no window manager)
    window.show()

    def report():
        transport = window.transport
        widgets = dict(transport.buttons)
        for name in ("position_label", "voice_combo", "preview_button", "speed_slider", "speed_value",
                     "volume_icon", "volume_slider"):
            widgets[name] = getattr(transport, name)
        widgets["status bar"] = window.statusBar()
        widgets["transport bar"] = transport
        rects = {}
        for name, widget in widgets.items():
            corner = widget.mapToGlobal(QPoint(0, 0))
            rects[name] = [corner.x(), corner.y(), widget.width(), widget.height(), widget.isVisible()]
        window.grab().save(sys.argv[2])
        print(json.dumps({"screen": [screen.x(), screen.y(), screen.width(), screen.height()],
                          "ratio": window.devicePixelRatio(),
                          "minimum": [window.minimumWidth(), window.minimumHeight()],
                          "window": [window.x(), window.y(), window.width(), window.height()],
                          "widgets": rects}), flush=True)
        app.quit()

    QTimer.singleShot(1500, report)
    app.exec()
""")


@pytest.mark.parametrize("language", ["en", "ja"])
def test_at_200_percent_on_a_1280x800_screen_everything_is_on_screen(language, miodesk_home, tmp_path):
    """The real thing: QT_SCALE_FACTOR=2 on a 1280×800 X server, the window maximised by hand."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"theme-200-percent-{language}.png"
    with private_xvfb() as display:
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", QT_SCALE_FACTOR="2",
                   MIODESK_HOME=str(miodesk_home), PYTHONIOENCODING="utf-8")
        env.pop("QT_SCREEN_SCALE_FACTORS", None)
        result = subprocess.run([sys.executable, "-c", PROBE, language, str(shot)], capture_output=True,
                                encoding="utf-8", env=env, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ratio"] == 2 and report["screen"][2:] == [640, 400], report
    x, y, width, height = report["screen"]
    screen = QRect(x, y, width, height)
    assert report["minimum"][0] <= width and report["minimum"][1] <= height
    assert screen.contains(QRect(*report["window"]))
    rects = {}
    for name, (left, top, w, h, visible) in report["widgets"].items():
        rect = QRect(left, top, w, h)
        assert visible and w > 0 and h > 0 and screen.contains(rect), (name, rect)
        rects[name] = rect
    transport = rects.pop("transport bar")
    for name, rect in rects.items():
        assert name == "status bar" or transport.contains(rect), (name, rect, transport)  # not clipped by it
    for first, a in rects.items():
        for second, b in rects.items():
            assert first == second or not a.intersects(b), (first, a, second, b)


def test_settings_dialog_fits_a_1280x800_screen_at_200_percent(app, qtbot):
    """Its pages scroll on a short screen (OK and Cancel stay on it); on a normal one nothing scrolls."""
    from PySide6.QtWidgets import QScrollArea

    from miodesk.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(app.window.settings, app.window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    minimum = dialog.minimumSizeHint()
    assert minimum.width() <= 640 and minimum.height() <= 400 - 40, minimum  # a title bar above it
    pages = [dialog.tabs.widget(i) for i in range(dialog.tabs.count())]
    assert all(isinstance(page, QScrollArea) for page in pages)
    for index, page in enumerate(pages):  # 1280x800 at 100 %: every page whole
        dialog.tabs.setCurrentIndex(index)
        QApplication.processEvents()
        assert not page.verticalScrollBar().isVisible(), dialog.tabs.tabText(index)
    dialog.resize(600, 360)  # what 200 % leaves
    dialog.tabs.setCurrentIndex(0)
    QApplication.processEvents()
    assert dialog.buttons.geometry().bottom() <= dialog.height()
    assert pages[0].verticalScrollBar().isVisible()
    # Tab walks down the page and each control it reaches is scrolled into view.
    page, seen = pages[0], 0
    first = next(w for w in page.widget().findChildren(QWidget)
                 if w.isVisibleTo(dialog) and w.isEnabled() and w.focusPolicy() & Qt.FocusPolicy.TabFocus)
    first.setFocus()
    for _ in range(30):
        focused = dialog.focusWidget()
        if focused is None or not page.widget().isAncestorOf(focused):
            break
        seen += 1
        center = focused.mapTo(page.viewport(), focused.rect().center())
        assert page.viewport().rect().contains(center), focused.objectName() or type(focused).__name__
        qtbot.keyClick(focused, Qt.Key.Key_Tab)
    assert seen >= 5
