"""How voices are named in the window: the official presets by language and kind, other voices by name."""

from __future__ import annotations

# The official presets, in English and Japanese (the catalogue has no entry per voice name).
PRESET_LABELS = {
    "jp_female": ("Japanese, female", "日本語・女性"),
    "jp_male": ("Japanese, male", "日本語・男性"),
    "en_female": ("English, female", "英語・女性"),
    "en_male": ("English, male", "英語・男性"),
}


def voice_label(name: str, japanese: bool) -> str:
    """What a voice list shows for the voice `name` (in Japanese when the UI is)."""
    label = PRESET_LABELS.get(name)
    if label is None:
        return name
    return label[1] if japanese else label[0]
