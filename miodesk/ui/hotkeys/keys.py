"""A global shortcut as one key with modifiers, and its name on each platform.

The settings keep a shortcut the way Qt writes it portably ("Ctrl+Alt+Shift+R", the text of a
QKeySequence in PortableText). Each backend needs it in its own terms: an X keysym name and modifier
mask (X11), a virtual-key code and MOD_* flags (Windows), a trigger string of the XDG shortcuts
specification (the desktop portal). This module only translates; it imports nothing platform-specific.

"Meta" is Qt's name for the Windows key on Windows and the Super (logo) key on Linux.
"""

from __future__ import annotations

from dataclasses import dataclass

# In the order Qt writes them.
MODIFIER_ORDER = ("Ctrl", "Alt", "Shift", "Meta")

# Qt's key name → (X keysym name, Windows virtual-key code). Letters, digits and F1-F24 are added below.
_NAMED_KEYS: dict[str, tuple[str, int]] = {
    "Space": ("space", 0x20),
    "Ins": ("Insert", 0x2D),
    "Del": ("Delete", 0x2E),
    "Home": ("Home", 0x24),
    "End": ("End", 0x23),
    "PgUp": ("Prior", 0x21),
    "PgDown": ("Next", 0x22),
    "Left": ("Left", 0x25),
    "Up": ("Up", 0x26),
    "Right": ("Right", 0x27),
    "Down": ("Down", 0x28),
    "Pause": ("Pause", 0x13),
    "Print": ("Print", 0x2C),
    "Return": ("Return", 0x0D),
    "Backspace": ("BackSpace", 0x08),
}
KEYS: dict[str, tuple[str, int]] = {
    **{chr(code): (chr(code).lower(), code) for code in range(ord("A"), ord("Z") + 1)},
    **{str(digit): (str(digit), 0x30 + digit) for digit in range(10)},
    **{f"F{number}": (f"F{number}", 0x6F + number) for number in range(1, 25)},
    **_NAMED_KEYS,
}

# Windows RegisterHotKey flags.
MOD_ALT, MOD_CONTROL, MOD_SHIFT, MOD_WIN, MOD_NOREPEAT = 0x1, 0x2, 0x4, 0x8, 0x4000
_WINDOWS_MODIFIERS = {"Ctrl": MOD_CONTROL, "Alt": MOD_ALT, "Shift": MOD_SHIFT, "Meta": MOD_WIN}
# XDG shortcuts specification (the portal's preferred_trigger): CTRL, ALT, SHIFT, LOGO.
_PORTAL_MODIFIERS = {"Ctrl": "CTRL", "Alt": "ALT", "Shift": "SHIFT", "Meta": "LOGO"}


class KeyComboError(ValueError):
    """A shortcut that cannot be a global one: unknown key, no modifier, a key sequence of several keys."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(f"{text!r}: {reason}")
        self.reason = reason  # "empty", "sequence", "unknown-key", "no-modifier", "shift-only"
        self.text = text


@dataclass(frozen=True)
class KeyCombo:
    modifiers: frozenset[str]  # a subset of MODIFIER_ORDER
    key: str  # a key of KEYS

    @classmethod
    def parse(cls, text: str) -> KeyCombo:
        """"Ctrl+Alt+Shift+R" (any order and case of the modifiers) → KeyCombo; KeyComboError otherwise.

        A global shortcut needs Ctrl, Alt or Meta: a bare key, or Shift with a key, would be taken from
        every other app's typing.
        """
        cleaned = text.strip()
        if not cleaned:
            raise KeyComboError("empty", text)
        if "," in cleaned:  # QKeySequence's separator between the keys of a multi-key sequence
            raise KeyComboError("sequence", text)
        *modifier_names, key = cleaned.split("+")
        modifiers = set()
        for name in modifier_names:
            canonical = next((m for m in MODIFIER_ORDER if m.lower() == name.strip().lower()), None)
            if canonical is None:
                raise KeyComboError("unknown-key", text)
            modifiers.add(canonical)
        key = key.strip()
        canonical_key = next((k for k in KEYS if k.lower() == key.lower()), None)
        if canonical_key is None:
            raise KeyComboError("unknown-key", text)
        if not modifiers:
            raise KeyComboError("no-modifier", text)
        if modifiers == {"Shift"}:
            raise KeyComboError("shift-only", text)
        return cls(frozenset(modifiers), canonical_key)

    def portable(self) -> str:
        """As Qt writes it: "Ctrl+Alt+Shift+R"."""
        return "+".join([m for m in MODIFIER_ORDER if m in self.modifiers] + [self.key])

    def x11_keysym(self) -> str:
        """The X keysym name of the key ("r", "F5", "Prior")."""
        return KEYS[self.key][0]

    def windows_key(self) -> tuple[int, int]:
        """(RegisterHotKey modifiers, virtual-key code); MOD_NOREPEAT keeps a held key from repeating."""
        flags = MOD_NOREPEAT
        for name in self.modifiers:
            flags |= _WINDOWS_MODIFIERS[name]
        return flags, KEYS[self.key][1]

    def portal_trigger(self) -> str:
        """The XDG shortcuts specification's form: "CTRL+ALT+SHIFT+r"."""
        names = [_PORTAL_MODIFIERS[m] for m in MODIFIER_ORDER if m in self.modifiers]
        return "+".join([*names, KEYS[self.key][0]])


def parse_or_none(text: str) -> KeyCombo | None:
    """The combo, or None for an empty or unusable text (the caller reports why with `KeyCombo.parse`)."""
    try:
        return KeyCombo.parse(text)
    except KeyComboError:
        return None
