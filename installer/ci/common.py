"""Helpers shared by the CI scripts in installer/ci/ (standard library only: they run before anything is
installed, on Windows, macOS and Linux alike, from GitHub Actions or a terminal)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The names the workflow's matrix and these scripts use for the three systems.
PLATFORMS = ("linux", "windows", "macos")


def current_platform() -> str:
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def utf8_output() -> None:
    """Print Japanese file names and test output even where the console's code page cannot (a pipe on
    Windows uses the ANSI code page). Only these scripts' own output: the tests keep the default."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def declared_version() -> str:
    """The version in pyproject.toml, the one place it is written (no tomllib: Python 3.10 lacks it)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    if not match:
        raise SystemExit("pyproject.toml has no version")
    return match.group(1)


def run(command: Sequence[str | Path], **kwargs) -> subprocess.CompletedProcess:
    """Run a command in the foreground, echoing it first; a failure stops the script."""
    shown = " ".join(str(part) for part in command)
    print(f"$ {shown}", flush=True)
    started = time.monotonic()
    result = subprocess.run([str(part) for part in command], **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}) after {time.monotonic() - started:.0f} s: {shown}")
    return result


@contextmanager
def group(title: str) -> Iterator[None]:
    """A foldable section in the GitHub Actions log (a heading elsewhere)."""
    actions = os.environ.get("GITHUB_ACTIONS") == "true"
    print(f"::group::{title}" if actions else f"\n== {title}", flush=True)
    try:
        yield
    finally:
        if actions:
            print("::endgroup::", flush=True)


def github_file(name: str) -> Path | None:
    """One of the files GitHub Actions reads after a step (GITHUB_PATH, GITHUB_OUTPUT); None elsewhere."""
    value = os.environ.get(name)
    return Path(value) if value else None


def set_output(name: str, value: str) -> None:
    output = github_file("GITHUB_OUTPUT")
    if output is not None:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"{name}={value}\n")
    print(f"output {name}={value}")
