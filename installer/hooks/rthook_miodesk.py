# PyInstaller runtime hook: runs in the frozen process before MioDesk's own code (installer/miodesk.spec).
import ctypes.util
import os
import sys


def _bundled_portaudio() -> None:
    # sounddevice looks PortAudio up with ctypes.util.find_library("portaudio"), which searches the
    # system (ldconfig, gcc) and never the frozen folder. The Linux build carries its own
    # libportaudio.so.2 so that MioDesk works where the libportaudio2 package is missing: point the
    # lookup at that copy. (The Windows and macOS wheels of sounddevice bring PortAudio in
    # _sounddevice_data, which sounddevice finds without help.)
    bundled = os.path.join(getattr(sys, "_MEIPASS", ""), "libportaudio.so.2")
    if not os.path.isfile(bundled):
        return
    system_find_library = ctypes.util.find_library

    def find_library(name: str):
        if name == "portaudio":
            return bundled
        return system_find_library(name)

    ctypes.util.find_library = find_library


def _clean_environment_for_children() -> None:
    # The bootloader started this process with LD_LIBRARY_PATH pointing into the frozen folder; the
    # dynamic loader has read it already (it does so once, at start). Programs MioDesk starts (the
    # browser or file manager behind QDesktopServices/xdg-open, nvidia-smi) must not load our copies of
    # libstdc++, glib, X11 ..., so give them the user's original value back.
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)


if sys.platform.startswith("linux"):
    _bundled_portaudio()
    _clean_environment_for_children()
