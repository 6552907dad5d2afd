"""Refresh the runtime resources from the sources in this folder.

    python resources/build.py          # extract UI strings into the .ts, compile .qm, copy icons
    python resources/build.py --check  # exit 1 if miodesk/resources is out of date (used by a test)

`translations/miodesk_ja.ts` is the Japanese catalogue (edit it with Qt Linguist, `pyside6-linguist`,
or by hand); `pyside6-lrelease` (in PySide6-Essentials) compiles it to `miodesk_ja.qm`. The package
carries `miodesk/resources/` (icons + .qm) so an installed MioDesk needs nothing from this folder.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACKAGE = ROOT / "miodesk" / "resources"
LANGUAGES = ("ja",)
# The UI modules whose strings this catalogue covers.
UI_SOURCES = ["app.py", "controller.py", "export_dialog.py", "first_run.py", "global_shortcuts.py", "help.py",
              "main_window.py", "reader_view.py", "readings_dialog.py", "record_voice.py", "settings_dialog.py",
              "shortcuts_page.py", "sleep_timer.py", "tray.py", "voice_labels.py", "widgets.py"]


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        sys.exit(f"{name} not found: install PySide6-Essentials")
    return found


def compile_qm(ts: Path, qm: Path) -> None:
    subprocess.run([tool("pyside6-lrelease"), "-silent", str(ts), "-qm", str(qm)], check=True)


def update() -> None:
    sources = [str(ROOT / "miodesk" / "ui" / name) for name in UI_SOURCES]
    (PACKAGE / "translations").mkdir(parents=True, exist_ok=True)
    (PACKAGE / "icons").mkdir(parents=True, exist_ok=True)
    for language in LANGUAGES:
        ts = HERE / "translations" / f"miodesk_{language}.ts"
        subprocess.run([tool("pyside6-lupdate"), "-locations", "none", "-no-obsolete", *sources, "-ts", str(ts)],
                       check=True)
        compile_qm(ts, PACKAGE / "translations" / f"miodesk_{language}.qm")
    for svg in (HERE / "icons").glob("*.svg"):
        shutil.copy2(svg, PACKAGE / "icons" / svg.name)


def check() -> list[str]:
    """What in miodesk/resources differs from what this folder would build."""
    problems = []
    for svg in (HERE / "icons").glob("*.svg"):
        copy = PACKAGE / "icons" / svg.name
        if not copy.exists() or not filecmp.cmp(svg, copy, shallow=False):
            problems.append(f"icons/{svg.name}")
    with tempfile.TemporaryDirectory() as tmp:
        for language in LANGUAGES:
            built = Path(tmp) / f"miodesk_{language}.qm"
            compile_qm(HERE / "translations" / f"miodesk_{language}.ts", built)
            shipped = PACKAGE / "translations" / built.name
            if not shipped.exists() or shipped.read_bytes() != built.read_bytes():
                problems.append(f"translations/{built.name}")
    return problems


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    if parser.parse_args().check:
        stale = check()
        print("\n".join(stale) or "up to date")
        sys.exit(1 if stale else 0)
    update()
