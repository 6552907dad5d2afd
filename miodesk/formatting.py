"""Durations as people read them, shared by the window and the command line (no Qt here)."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from one hour on, rounded to the nearest second."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
