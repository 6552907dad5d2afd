"""What the window tells assistive technology beyond widget names: spoken announcements.

Qt's AT-SPI (Linux), UI Automation (Windows) and NSAccessibility (macOS) bridges carry a
`QAccessibleAnnouncementEvent` as a live-region announcement (AT-SPI: `object:announcement`), which
Orca, NVDA, Narrator and VoiceOver speak even though no focus moved. Every message the window shows
goes through `announce`, so a test can watch one place and the politeness is decided once.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent

log = logging.getLogger(__name__)

Politeness = QAccessible.AnnouncementPoliteness


def announce(source: QObject, text: str, urgent: bool = False) -> None:
    """Ask the screen reader to speak `text` (already translated into the UI language).

    `urgent` (errors, a recording that failed) interrupts what the screen reader is saying;
    otherwise the announcement waits for it to finish.
    """
    text = " ".join(text.split())
    if not text:
        return
    event = QAccessibleAnnouncementEvent(source, text)
    event.setPoliteness(Politeness.Assertive if urgent else Politeness.Polite)
    QAccessible.updateAccessibility(event)
    log.debug("announced%s: %s", " (urgent)" if urgent else "", text)
