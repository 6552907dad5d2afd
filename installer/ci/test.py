"""Run the part of the test suite that this system's CI runner can run.

    python installer/ci/test.py [--platform linux|windows|macos] [--list [--json FILE]] [PYTEST ARGS...]

Every test runs where the runner has what it needs. Linux (tests/run.sh installed PulseAudio, Xvfb,
espeak-ng, desktop-file-utils, shellcheck and the AT-SPI stack) runs the whole suite but the peers'
measurement; the hosted Windows and macOS runners have no sound devices and no X server, so the tests
of documents, models, codec goldens, speak/read -o with generated models, settings, voices and the like
run there, and the window and audio tests stay on Linux (the frozen program's window opens on all three in
installer/ci/smoke_frozen.py). What a test needs is read, not declared:

- a test file that imports a Unix-only module at the top (fcntl, resource ...), itself or through a
  helper module in tests/, is not even collected where that module is missing;
- a test that uses one of the fixtures in FIXTURE_NEEDS (directly or through other fixtures: pytest's
  fixture closure), or names one of the tools in WORD_NEEDS in its own code, is deselected where
  that need is missing;
- FILE_NEEDS and TEST_NEEDS name what the two rules above cannot see.

--list collects the suite (runs nothing) and prints, for each platform or the one given, the test
files and how many of their tests run there, and why the others do not; --json FILE also writes it
as JSON (tests/test_workflow.py reads it). Needs pytest: run it with the project's environment
(`.venv/bin/python installer/ci/test.py --list`; in CI `python` is that environment).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import sys
from pathlib import Path

from common import PLATFORMS, REPO, current_platform, utf8_output

TESTS = REPO / "tests"

# What each system's hosted runner offers the tests.
#   pulseaudio  a PulseAudio null sink to play into and record from (audio devices at all)
#   xvfb        an X server the tests start themselves (Xvfb), xwininfo
#   espeak-ng   speech-like input for the voice recorder tests
#   unix        Unix-only standard modules and Unix sockets/paths (/tmp, AF_UNIX, mount, rlimits)
#   freedesktop desktop-file-utils (Linux menu entries), shellcheck
#   jack        a JACK server at a fixed 48 kHz (jackd2, realtime scheduling): an output that refuses 44.1 kHz
#   atspi       the Linux accessibility stack: dbus-daemon, at-spi2-core's bus launcher and registry, and
#               pyatspi in the system Python (python3-pyatspi), what the Orca screen reader listens with
CAPABILITIES: dict[str, set[str]] = {
    "linux": {"pulseaudio", "xvfb", "espeak-ng", "unix", "freedesktop", "linux-frozen", "jack", "atspi"},
    "macos": {"unix"},
    "windows": set(),
}

UNIX_ONLY_MODULES = {"fcntl", "resource", "termios", "pwd", "grp", "pty", "tty", "posix", "syslog", "crypt"}

FIXTURE_NEEDS = {
    "pulse_sink": "pulseaudio",
    "virtual_mic": "pulseaudio",
    "speech_wav": "espeak-ng",
    # Qt tests run on a private Xvfb (tests/gui_fixtures.py: qapp_args asks for xcb on Xvfb)
    "qtbot": "xvfb",
    "qapp": "xvfb",
    "qapp_args": "xvfb",
    "xvfb_display": "xvfb",
    "x_display": "xvfb",
    "socket_path": "unix",  # a Unix socket under /tmp
    "tiny_disk": "unix",  # mount -t tmpfs
    "jack_48k_device": "jack",
}

# Words in a test function's own source that name what it runs.
WORD_NEEDS = {
    "private_xvfb": "xvfb",
    "xwininfo": "xvfb",
    "MonitorRecorder": "pulseaudio",
    "pactl": "pulseaudio",
    "espeak-ng": "espeak-ng",
    "AF_UNIX": "unix",
    "desktop-file-validate": "freedesktop",
    "shellcheck": "freedesktop",
}

FILE_NEEDS: dict[str, tuple[str, str]] = {
    "tests/test_frozen.py": ("linux-frozen", "the Linux folder and tarball (installer/ci/smoke_frozen.py and "
                                             "smoke_install.py check each system's package)"),
    "tests/test_desktop_entry.py": ("freedesktop", "freedesktop.org menu entries, a Linux feature"),
    # checks this CI itself and smoke-tests the Linux build with the scripts: once, on Linux, is enough
    "tests/test_workflow.py": ("linux-frozen", "checks the workflow and runs the smoke scripts on the Linux build"),
    # Measures Kokoro and Piper, which it installs (about 730 MB) from the package index into a
    # virtualenv of their own: tests/run.sh runs it on the project's machine; CI checks MioDesk.
    "tests/test_bench_peers.py": ("peers-venv", "installs the peer engines (730 MB); tests/run.sh runs it"),
    # Starts a session bus, the accessibility bus and a pyatspi listener (tests/atspi_*.py): a stack
    # that exists on Linux only (Windows and macOS screen readers use UI Automation and NSAccessibility).
    "tests/test_atspi.py": ("atspi", "the AT-SPI bus of Linux desktops (at-spi2-core, python3-pyatspi)"),
}

TEST_NEEDS = {
    # a child process that sets RLIMIT_FSIZE with `resource` (in a script string the word scan misses)
    "tests/test_models_download.py::test_disk_full_file_size_limit": "unix",
    # Ctrl+C as SIGINT sent to `miodesk serve` (Windows delivers Ctrl+C to a console, not to a process)
    "tests/test_speech_server_safety.py::test_miodesk_serve_answers_and_stops_on_ctrl_c": "unix",
}


# --- reading what a test needs ----------------------------------------------------------------------------
def top_level_imports(path: Path) -> set[str]:
    """Modules imported at the top of a file (not inside functions): those decide whether it imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def unix_only_imports(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Unix-only modules a test file imports at load time, itself or through helper modules in tests/."""
    seen = set() if seen is None else seen
    seen.add(path)
    imports = top_level_imports(path)
    found = imports & UNIX_ONLY_MODULES
    for name in sorted(imports):
        helper = TESTS / f"{name}.py"
        if helper.is_file() and helper not in seen:
            found |= unix_only_imports(helper, seen)
    return found


def file_exclusion(relative: str, platform: str) -> str | None:
    """Why a test file is not collected on `platform` (None: it is)."""
    if relative in FILE_NEEDS:
        need, reason = FILE_NEEDS[relative]
        if need not in CAPABILITIES[platform]:
            return f"needs {need}: {reason}"
    if "unix" not in CAPABILITIES[platform]:
        modules = unix_only_imports(REPO / relative)
        if modules:
            return f"needs unix: imports {', '.join(sorted(modules))}"
    return None


def suite_files() -> list[str]:
    return sorted(p.relative_to(REPO).as_posix() for p in TESTS.glob("test_*.py"))


def item_needs(item) -> set[str]:
    """What one collected test needs: its fixtures (with their own fixtures) and its own code's tools."""
    needs = {FIXTURE_NEEDS[name] for name in getattr(item, "fixturenames", ()) if name in FIXTURE_NEEDS}
    function = getattr(item, "function", None)
    if function is not None:
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            source = ""
        needs |= {need for word, need in WORD_NEEDS.items() if word in source}
    base_id = item.nodeid.split("[", 1)[0]
    if base_id in TEST_NEEDS:
        needs.add(TEST_NEEDS[base_id])
    return needs


# --- pytest plugins ---------------------------------------------------------------------------------------
class Select:
    """Leaves out, before collection, the files this platform cannot import, then deselects the tests
    whose needs it lacks."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.ignored = {f: why for f in suite_files() if (why := file_exclusion(f, platform))}

    def pytest_ignore_collect(self, collection_path: Path, config) -> bool | None:
        try:
            relative = collection_path.relative_to(REPO).as_posix()
        except ValueError:
            return None
        return True if relative in self.ignored else None

    def pytest_collection_modifyitems(self, session, config, items) -> None:
        keep, drop = [], []
        for item in items:
            (drop if item_needs(item) - CAPABILITIES[self.platform] else keep).append(item)
        items[:] = keep
        if drop:
            config.hook.pytest_deselected(items=drop)
        print(f"\ninstaller/ci/test.py: {len(keep)} tests for {self.platform}; deselected {len(drop)}, "
              f"not collected: {', '.join(sorted(self.ignored)) or 'none'}")


class Record:
    """For --list: what every collected test needs (collected on this machine, judged per platform)."""

    def __init__(self) -> None:
        self.needs: dict[str, set[str]] = {}

    def pytest_collection_modifyitems(self, session, config, items) -> None:
        for item in items:
            self.needs[item.nodeid] = item_needs(item)


def selection(platforms: list[str], pytest_args: list[str]) -> dict:
    import pytest

    record = Record()
    code = pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", *pytest_args], plugins=[record])
    if code != 0:
        raise SystemExit(f"collecting the tests failed ({code})")
    result = {}
    for platform in platforms:
        ignored = {f: why for f in suite_files() if (why := file_exclusion(f, platform))}
        selected, deselected = [], {}
        for nodeid, needs in record.needs.items():
            if nodeid.split("::", 1)[0] in ignored:
                continue
            missing = sorted(needs - CAPABILITIES[platform])
            if missing:
                deselected[nodeid] = missing
            else:
                selected.append(nodeid)
        result[platform] = {"capabilities": sorted(CAPABILITIES[platform]), "not_collected": ignored,
                            "selected": selected, "deselected": deselected}
    return result


def print_selection(result: dict) -> None:
    for platform, chosen in result.items():
        files: dict[str, list[int]] = {}
        reasons: dict[str, set[str]] = {}
        for nodeid in chosen["selected"]:
            files.setdefault(nodeid.split("::", 1)[0], [0, 0])[0] += 1
        for nodeid, missing in chosen["deselected"].items():
            name = nodeid.split("::", 1)[0]
            files.setdefault(name, [0, 0])[1] += 1
            reasons.setdefault(name, set()).update(missing)
        print(f"\n{platform} (has: {', '.join(chosen['capabilities']) or 'nothing extra'}): "
              f"{len(chosen['selected'])} tests run, {len(chosen['deselected'])} deselected, "
              f"{len(chosen['not_collected'])} files not collected")
        for name in sorted(files):
            run_count, left = files[name]
            note = f"  (not {left}: need {', '.join(sorted(reasons[name]))})" if left else ""
            print(f"  {'run ' if run_count else 'none'} {name}: {run_count}{note}")
        for name, why in sorted(chosen["not_collected"].items()):
            print(f"  skip {name}: {why}")


def allow_realtime_scheduling() -> None:
    """The JACK server of tests/test_audio_devices.py runs with realtime priority (without it a busy
    runner drops whole periods). Root has it; a hosted runner's user gets it from passwordless sudo."""
    if not hasattr(os, "geteuid") or os.geteuid() == 0:
        return
    import subprocess

    raised = subprocess.run(["sudo", "-n", "prlimit", f"--pid={os.getpid()}", "--rtprio=95:95"],
                            capture_output=True, text=True, encoding="utf-8", check=False)
    if raised.returncode != 0:
        print(f"note: cannot allow realtime scheduling ({raised.stderr.strip()}); the JACK tests will say so",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    utf8_output()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", choices=PLATFORMS, help="default: this system")
    parser.add_argument("--list", action="store_true", help="print the selection instead of running it")
    parser.add_argument("--json", metavar="FILE", type=Path, help="with --list: also write it to FILE as JSON")
    args, pytest_args = parser.parse_known_args(argv)
    os.chdir(REPO)  # pytest finds pyproject.toml's settings and the tests/ paths from here
    if args.list:
        platforms = [args.platform] if args.platform else list(PLATFORMS)
        result = selection(platforms, pytest_args)
        print_selection(result)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
        return 0
    platform = args.platform or current_platform()
    if platform == "linux":
        allow_realtime_scheduling()
    import pytest

    return pytest.main(pytest_args, plugins=[Select(platform)])


if __name__ == "__main__":
    sys.exit(main())
