"""Text handling: normalisation and language detection as the official server does them."""

from __future__ import annotations

from miodesk.text.normalize import (
    MAX_MODEL_TEXT_CHARS,
    detect_language,
    normalize_text,
    text_for_model,
    too_long_for_model,
)

__all__ = [
    "MAX_MODEL_TEXT_CHARS",
    "detect_language",
    "normalize_text",
    "text_for_model",
    "too_long_for_model",
]
