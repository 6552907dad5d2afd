"""The shipped resources match their sources, and every UI string has a Japanese translation."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_runtime_resources_are_built_from_the_sources():
    result = subprocess.run([sys.executable, str(ROOT / "resources" / "build.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"run `python resources/build.py`: {result.stdout}{result.stderr}"


def test_japanese_catalogue_is_complete():
    root = ET.parse(ROOT / "resources" / "translations" / "miodesk_ja.ts").getroot()
    untranslated = [m.findtext("source") for m in root.iter("message")
                    if not (m.findtext("translation") or "").strip()
                    or m.find("translation").get("type") == "unfinished"]
    assert untranslated == []
    # Placeholders survive translation ({0}, {1:02d} …).
    import re

    for message in root.iter("message"):
        source, translation = message.findtext("source"), message.findtext("translation")
        assert sorted(re.findall(r"\{[^}]*\}", source)) == sorted(re.findall(r"\{[^}]*\}", translation)), source


def test_icons_are_scalable_svg():
    icons = sorted((ROOT / "resources" / "icons").glob("*.svg"))
    names = {p.stem for p in icons}
    assert {"miodesk", "play", "pause", "stop", "sentence-next", "sentence-previous", "chapter-next",
            "chapter-previous", "open", "paste", "preview", "settings"} <= names
    for icon in icons:
        assert ET.parse(icon).getroot().get("viewBox"), icon.name
