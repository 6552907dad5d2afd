#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine, then runs it.
# This is the README's test command and what CI (.ci/run) calls.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(
  # build of llama-cpp-python (pip's wheel cache makes it a one-time cost per machine)
  build-essential cmake
  # audio: PortAudio for sounddevice, libsndfile for soundfile, PulseAudio null sink for tests
  libportaudio2 libsndfile1 pulseaudio pulseaudio-utils espeak-ng sox
  # a JACK server fixed at 48 kHz: an output device that refuses 44.1 kHz (tests/test_audio_devices.py)
  jackd2
  # Qt windows under Xvfb
  xvfb xauth libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 fonts-noto-cjk
  # packaging tests (tests/test_frozen.py, tests/test_installer_scripts.py): desktop-file-validate and
  # update-desktop-database for the Linux .desktop entry, shellcheck for installer/*.sh
  desktop-file-utils shellcheck
  # tests/test_single_instance.py reads window titles and WM_CLASS with xwininfo; tests/test_desktop_entry.py
  # also runs desktop-file-validate (above)
  x11-utils
  # tests/test_global_shortcuts.py: real key presses (xdotool, XTEST) and another app's selection (xclip owns
  # PRIMARY); its fake desktop portal runs on python3-dbus (below, with pyatspi's GLib)
  xdotool xclip python3-dbus
  # tests/test_atspi.py: the accessibility stack a screen reader listens on (a private session bus with
  # dbus-daemon, at-spi2-core's bus launcher and registry) and pyatspi for the system python3
  dbus at-spi2-core python3-pyatspi gir1.2-atspi-2.0
)

missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

.venv/bin/ruff check miodesk tests
# Platform-only APIs (os.getuid, signal.SIGKILL, resource.*) that no Linux test run executes.
.venv/bin/python -m mypy --platform win32
.venv/bin/python -m mypy --platform darwin
# The package layering and no import cycles (contracts in pyproject.toml).
.venv/bin/lint-imports
.venv/bin/python -X warn_default_encoding -m pytest "$@"
