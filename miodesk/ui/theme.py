"""Colours and style sheets computed from the palette, so light and dark system themes both stay readable.

Nothing here hard-codes a background: every colour is a palette role or is mixed from roles, then
checked against the backgrounds it is drawn on (WCAG 2.2 AA: text 4.5:1, glyphs and focus frames
3:1) and pushed towards black or white until it passes. Style sheets are rebuilt when the palette or
the colour scheme changes (`follow_palette`), and the icons are re-coloured with them
(`assets.refresh_icons`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QFocusFrame, QWidget

TEXT_CONTRAST = 4.5  # WCAG 1.4.3, normal text
NON_TEXT_CONTRAST = 3.0  # WCAG 1.4.11, glyphs and focus indicators
# Aim a little above the thresholds: anti-aliased strokes rarely reach the exact colour.
MARGIN = 1.1

# Hues that carry a meaning; the palette decides how light or dark they are drawn.
AMBER = QColor("#ffcf40")  # the reading highlight
ERROR_HUE = QColor("#c62828")


# --- colour arithmetic ---------------------------------------------------------------------------

def relative_luminance(color: QColor) -> float:
    """WCAG relative luminance of an opaque colour (0 black … 1 white)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(color.red()) + 0.7152 * linear(color.green()) + 0.0722 * linear(color.blue())


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio, 1 (same luminance) to 21 (black on white)."""
    la, lb = relative_luminance(a), relative_luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def mix(a: QColor, b: QColor, amount: float) -> QColor:
    """`a` moved `amount` (0…1) of the way to `b`, opaque."""
    return QColor(round(a.red() + (b.red() - a.red()) * amount),
                  round(a.green() + (b.green() - a.green()) * amount),
                  round(a.blue() + (b.blue() - a.blue()) * amount))


def over(color: QColor, background: QColor) -> QColor:
    """A translucent colour as it looks drawn on `background` (palette roles may carry alpha)."""
    return mix(background, QColor(color.red(), color.green(), color.blue()), color.alphaF())


def ensure_contrast(color: QColor, backgrounds: Iterable[QColor], ratio: float) -> QColor:
    """`color`, or the nearest colour towards black or white that reaches `ratio` on every background."""
    backgrounds = list(backgrounds)

    def worst(candidate: QColor) -> float:
        return min(contrast_ratio(candidate, b) for b in backgrounds)

    if worst(color) >= ratio:
        return QColor(color)
    black, white = QColor(0, 0, 0), QColor(255, 255, 255)
    target = black if worst(black) >= worst(white) else white
    if worst(target) < ratio:
        return target
    low, high = 0.0, 1.0  # the smallest step towards the target that passes (contrast grows with it)
    for _ in range(20):
        middle = (low + high) / 2
        if worst(mix(color, target, middle)) >= ratio:
            high = middle
        else:
            low = middle
    return mix(color, target, high)


def is_dark(palette: QPalette) -> bool:
    return relative_luminance(palette.color(QPalette.ColorRole.Window)) < 0.2


def css(color: QColor) -> str:
    return color.name(QColor.NameFormat.HexRgb)


# --- the colours the window uses ----------------------------------------------------------------

@dataclass(frozen=True)
class Colors:
    """The window's colours for one palette (all opaque)."""

    window: QColor
    base: QColor
    text: QColor
    window_text: QColor
    button: QColor
    button_text: QColor
    disabled_text: QColor
    muted_on_window: QColor  # secondary text (position, hints): quieter, still 4.5:1
    muted_on_base: QColor
    divider: QColor
    sidebar: QColor  # the contents tree beside the document
    sidebar_text: QColor
    selected: QColor  # the contents entry being read
    selected_text: QColor
    tonal: QColor  # Play and the first-page Open button: a tint of the accent under ordinary text
    tonal_hover: QColor
    tonal_pressed: QColor
    tonal_text: QColor
    tonal_disabled: QColor
    hover: QColor  # flat buttons under the mouse
    pressed: QColor
    frame: QColor  # the outline of buttons, fields and combo boxes
    focus: QColor  # the keyboard focus frame: 3:1 on everything it is drawn next to


def colors(palette: QPalette) -> Colors:
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    window = palette.color(group.Active, role.Window)
    base = palette.color(group.Active, role.Base)
    text = ensure_contrast(palette.color(group.Active, role.Text), [base], TEXT_CONTRAST * MARGIN)
    window_text = ensure_contrast(palette.color(group.Active, role.WindowText), [window], TEXT_CONTRAST * MARGIN)
    button = palette.color(group.Active, role.Button)
    button_text = ensure_contrast(palette.color(group.Active, role.ButtonText), [button, window],
                                  TEXT_CONTRAST * MARGIN)
    accent = palette.color(group.Active, role.Highlight)
    dark = is_dark(palette)

    def muted(foreground: QColor, background: QColor) -> QColor:
        return ensure_contrast(mix(foreground, background, 0.35), [background], TEXT_CONTRAST * MARGIN)

    sidebar = mix(base, window, 0.6)
    selected = mix(sidebar, accent, 0.45 if dark else 0.25)
    tonal = mix(window, accent, 0.4 if dark else 0.25)
    tonal_hover = mix(window, accent, 0.5 if dark else 0.35)
    tonal_pressed = mix(window, accent, 0.6 if dark else 0.45)
    hover = mix(window, window_text, 0.1)
    pressed = mix(window, window_text, 0.18)
    frame = mix(window, window_text, 0.3)  # quiet: the focus frame that replaces it must stand out
    focus = ensure_contrast(accent, [window, base, button, sidebar, tonal, tonal_hover, hover, frame],
                            NON_TEXT_CONTRAST * MARGIN)
    return Colors(
        window=window,
        base=base,
        text=text,
        window_text=window_text,
        button=button,
        button_text=button_text,
        disabled_text=over(palette.color(group.Disabled, role.ButtonText), button),
        muted_on_window=muted(window_text, window),
        muted_on_base=muted(text, base),
        divider=mix(window, window_text, 0.2),
        sidebar=sidebar,
        sidebar_text=ensure_contrast(text, [sidebar, selected], TEXT_CONTRAST * MARGIN),
        selected=selected,
        selected_text=ensure_contrast(text, [selected], TEXT_CONTRAST * MARGIN),
        tonal=tonal,
        tonal_hover=tonal_hover,
        tonal_pressed=tonal_pressed,
        tonal_text=ensure_contrast(button_text, [tonal, tonal_hover, tonal_pressed], TEXT_CONTRAST * MARGIN),
        tonal_disabled=mix(window, window_text, 0.08),
        hover=hover,
        pressed=pressed,
        frame=frame,
        focus=focus,
    )


def icon_colors(palette: QPalette) -> tuple[QColor, QColor]:
    """(normal, disabled) colour of the toolbar and menu glyphs: the button text, 3:1 on the window."""
    c = colors(palette)
    normal = ensure_contrast(c.button_text, [c.window, c.button, c.tonal, c.hover], NON_TEXT_CONTRAST * MARGIN)
    return normal, c.disabled_text


def reading_highlight(palette: QPalette) -> tuple[QColor, QColor]:
    """(background, text) of the sentence being read: amber that stands apart from the page in light and
    dark palettes, under text of at least 4.5:1."""
    base = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text)
    dark = relative_luminance(base) < 0.4
    background = mix(base, AMBER, 0.35 if dark else 0.55)
    return background, ensure_contrast(text, [background], TEXT_CONTRAST * MARGIN)


def error_text(palette: QPalette) -> QColor:
    """Red for a failure message, readable on the window."""
    window = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Window)
    return ensure_contrast(ERROR_HUE, [window], TEXT_CONTRAST * MARGIN)


def muted_text(palette: QPalette) -> QColor:
    """Secondary text on the base (text field) background."""
    return colors(palette).muted_on_base


def header_background(palette: QPalette) -> QColor:
    """A table header row on the base background: a faint tint of the accent."""
    base = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
    return mix(base, palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight), 0.12)


def banner_style(hue: QColor, palette: QPalette) -> str:
    """The message strip: a tint of the message's hue with a stripe of it and readable text."""
    c = colors(palette)
    background = mix(c.window, hue, 0.3 if is_dark(palette) else 0.12)
    stripe = ensure_contrast(hue, [background, c.window], NON_TEXT_CONTRAST * MARGIN)
    foreground = ensure_contrast(mix(c.window_text, hue, 0.2), [background], TEXT_CONTRAST * MARGIN)
    return (f"#messageBanner {{ background: {css(background)}; border-left: 4px solid {css(stripe)}; }}"
            f"#messageBanner QLabel {{ color: {css(foreground)}; }}")


# --- style sheets -------------------------------------------------------------------------------

def controls_style(c: Colors) -> str:
    """A visible focus frame on every control a keyboard reaches, in the focus colour (3:1).

    The frame takes the place of a border that is there all the time (transparent, or a quiet frame
    that the focus colour stands 3:1 apart from), so nothing moves when the focus arrives. Buttons,
    combo boxes and fields are drawn by the style sheet in every state (a style sheet border would
    otherwise drop the native look only while focused). Spin boxes keep the style's own look (a style
    sheet border takes their arrows away): a QFocusFrame around them draws their frame (`_focus_changed`).
    """
    return f"""
QPushButton {{ background: {css(c.button)}; color: {css(c.button_text)}; border: 2px solid {css(c.frame)};
    border-radius: 5px; padding: 4px 12px; min-height: 1.3em; }}
QPushButton:hover {{ background: {css(mix(c.button, c.window_text, 0.08))}; }}
QPushButton:pressed {{ background: {css(mix(c.button, c.window_text, 0.16))}; }}
QPushButton:disabled {{ color: {css(c.disabled_text)}; }}
QPushButton:focus {{ border-color: {css(c.focus)}; }}
QToolButton {{ border: 2px solid transparent; border-radius: 6px; padding: 3px; background: transparent; }}
QToolButton:hover {{ background: {css(c.hover)}; }}
QToolButton:pressed, QToolButton:checked {{ background: {css(c.pressed)}; }}
QToolButton:focus {{ border-color: {css(c.focus)}; }}
QComboBox {{ background: {css(c.button)}; color: {css(c.button_text)}; border: 2px solid {css(c.frame)};
    border-radius: 5px; padding: 3px 8px; }}
QComboBox:focus {{ border-color: {css(c.focus)}; }}
QComboBox:disabled {{ color: {css(c.disabled_text)}; }}
QLineEdit {{ background: {css(c.base)}; color: {css(c.text)}; border: 2px solid {css(c.frame)};
    border-radius: 4px; padding: 2px 4px; }}
QLineEdit:focus {{ border-color: {css(c.focus)}; }}
QSlider, QCheckBox, QRadioButton {{ border: 2px solid transparent; border-radius: 4px; padding: 1px 2px; }}
QSlider:focus, QCheckBox:focus, QRadioButton:focus {{ border-color: {css(c.focus)}; }}
QFocusFrame {{ border: 2px solid {css(c.focus)}; border-radius: 4px; }}
QAbstractItemView, QPlainTextEdit, QTextEdit {{ border: 2px solid {css(c.frame)}; }}
QAbstractItemView:focus, QPlainTextEdit:focus, QTextEdit:focus {{ border-color: {css(c.focus)}; }}
"""


def window_style(palette: QPalette) -> str:
    """The main window's style sheet (its dialogs inherit it)."""
    c = colors(palette)
    return controls_style(c) + f"""
#transportBar {{ background: {css(c.window)}; border-top: 1px solid {css(c.divider)}; }}
#playButton {{ border-radius: 26px; background: {css(c.tonal)}; border: 2px solid {css(c.tonal)}; padding: 0; }}
#playButton:hover {{ background: {css(c.tonal_hover)}; border-color: {css(c.tonal_hover)}; }}
#playButton:pressed {{ background: {css(c.tonal_pressed)}; border-color: {css(c.tonal_pressed)}; }}
#playButton:disabled {{ background: {css(c.tonal_disabled)}; border-color: {css(c.tonal_disabled)}; }}
#playButton:focus {{ border-color: {css(c.focus)}; }}
#readerView {{ background: {css(c.base)}; border: 2px solid {css(c.base)}; }}
#readerView:focus {{ border-color: {css(c.focus)}; }}
#outline {{ background: {css(c.sidebar)}; color: {css(c.sidebar_text)}; border: 2px solid {css(c.sidebar)};
    border-right-color: {css(c.divider)}; padding-top: 4px; }}
#outline:focus {{ border-color: {css(c.focus)}; }}
#outline::item {{ padding: 5px 4px; }}
#outline::item:selected {{ background: {css(c.selected)}; color: {css(c.selected_text)}; }}
#outline::branch:selected {{ background: transparent; }}
/* The first page may be cut short rather than push the transport and the status bar off a small
   screen (its own minimum would be the whole window's at 200 % on 1280×800). */
#emptyPage {{ background: {css(c.base)}; min-height: 1px; }}
#emptyTitle {{ font-size: 22pt; font-weight: 600; color: {css(c.text)}; }}
#emptySubtitle {{ font-size: 12pt; color: {css(c.muted_on_base)}; }}
#emptyHint {{ color: {css(c.muted_on_base)}; }}
#primaryButton {{ background: {css(c.tonal)}; color: {css(c.tonal_text)}; border: 2px solid {css(c.tonal)};
    border-radius: 6px; padding: 6px 18px; }}
#primaryButton:hover {{ background: {css(c.tonal_hover)}; border-color: {css(c.tonal_hover)}; }}
#primaryButton:pressed {{ background: {css(c.tonal_pressed)}; border-color: {css(c.tonal_pressed)}; }}
#primaryButton:disabled {{ background: {css(c.tonal_disabled)}; border-color: {css(c.tonal_disabled)};
    color: {css(c.disabled_text)}; }}
#primaryButton:focus {{ border-color: {css(c.focus)}; }}
#positionLabel {{ color: {css(c.muted_on_window)}; }}
QStatusBar QLabel {{ padding: 0 8px; }}
"""


def first_run_style(palette: QPalette) -> str:
    """The welcome dialog: its title, the Download button in the accent tint, focus frames."""
    c = colors(palette)
    return controls_style(c) + f"""
#firstRunTitle {{ font-size: 16pt; font-weight: 600; }}
#primaryButton {{ background: {css(c.tonal)}; color: {css(c.tonal_text)}; border: 2px solid {css(c.tonal)};
    border-radius: 6px; padding: 6px 16px; }}
#primaryButton:hover {{ background: {css(c.tonal_hover)}; border-color: {css(c.tonal_hover)}; }}
#primaryButton:disabled {{ background: {css(c.tonal_disabled)}; border-color: {css(c.tonal_disabled)};
    color: {css(c.disabled_text)}; }}
#primaryButton:focus {{ border-color: {css(c.focus)}; }}
"""


# --- following palette changes ------------------------------------------------------------------

# (widget, builder) pairs whose style sheets are rebuilt when the palette changes.
_followers: list[tuple[weakref.ref[QWidget], Callable[[QPalette], str]]] = []
# Called after the style sheets on a palette change (assets re-colours its icons).
_listeners: list[Callable[[], None]] = []


def application_palette() -> QPalette:
    return QGuiApplication.palette()


def follow_palette(widget: QWidget, build: Callable[[QPalette], str]) -> None:
    """Give `widget` the style sheet `build(palette)` now and again whenever the application palette or
    the colour scheme changes (calling it again replaces the builder)."""
    _followers[:] = [(ref, b) for ref, b in _followers if ref() is not None and ref() is not widget]
    _followers.append((weakref.ref(widget), build))
    _restyle(widget, build)
    _watch(widget.window())


def on_palette_change(listener: Callable[[], None]) -> None:
    _listeners.append(listener)


def refresh() -> None:
    """Rebuild every following style sheet and tell the listeners (icons) about the current palette."""
    alive = []
    for ref, build in _followers:
        widget = ref()
        if widget is not None and shiboken6.isValid(widget):
            alive.append((ref, build))
            _restyle(widget, build)
    _followers[:] = alive
    for listener in _listeners:
        listener()


def _restyle(widget: QWidget, build: Callable[[QPalette], str]) -> None:
    sheet = build(application_palette())
    if widget.styleSheet() != sheet:  # setting a sheet re-polishes, which may report a palette change
        widget.setStyleSheet(sheet)


class _PaletteWatcher(QObject):
    """Sits on a top-level window (which Qt tells about palette changes) and calls `refresh`."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            refresh()
        return False


_app_connected = False
_spin_box_frame: QFocusFrame | None = None


def _watch(window: QWidget) -> None:
    global _app_connected
    if window.findChild(_PaletteWatcher, "", Qt.FindChildOption.FindDirectChildrenOnly) is None:
        watcher = _PaletteWatcher(window)
        window.installEventFilter(watcher)
    app = QApplication.instance()
    if not _app_connected and isinstance(app, QApplication):
        # Dark/light switched in the system settings (the palette change usually follows it too).
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: refresh())
        app.focusChanged.connect(_focus_changed)
        _app_connected = True


def _focus_changed(_old: QWidget | None, new: QWidget | None) -> None:
    """Put the focus frame around a spin box that takes the focus (the QFocusFrame style rule)."""
    global _spin_box_frame
    if _spin_box_frame is not None and not shiboken6.isValid(_spin_box_frame):
        _spin_box_frame = None  # deleted with the dialog it was last in
    if isinstance(new, QAbstractSpinBox):
        if _spin_box_frame is None:
            _spin_box_frame = QFocusFrame()
        _spin_box_frame.setWidget(new)  # it moves in beside the spin box and follows it
    elif _spin_box_frame is not None:
        _spin_box_frame.setWidget(None)  # type: ignore[arg-type]  # hides it; the stub wants a widget
