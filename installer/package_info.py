"""What the packages contain and say about themselves: used by installer/miodesk.spec and the tests.

Everything version-related derives from the one version in the package metadata (pyproject.toml →
`pip install` → importlib.metadata). Run as a script it prints that version (the build scripts name
their files with it), or with an argument the four-part numeric form Windows wants:

    python installer/package_info.py            →  0.1.0
    python installer/package_info.py 0.2.0rc1   →  0.2.0.0
"""

from __future__ import annotations

import re
import sys

APP_NAME = "MioDesk"
BUNDLE_ID = "io.github.miodesk.MioDesk"
COMPANY = "MioDesk contributors"
DESCRIPTION = "MioDesk - offline text reader"
COPYRIGHT = "MioDesk contributors, MIT licence"

# Windows: one folder, two programs built from the same entry script.
#   MioDesk.exe      no console window: Start menu, desktop, file associations
#   miodesk-cli.exe  console program: `miodesk-cli doctor`, `speak`, `read`, `--version` ...
WINDOWS_EXECUTABLES = (("MioDesk", False), ("miodesk-cli", True))
POSIX_EXECUTABLE = {"linux": "miodesk", "darwin": "MioDesk"}

# The documents the installers associate with MioDesk ("Open with", never the default unasked):
# extension, MIME type (Linux .desktop), uniform type identifier (macOS Info.plist), description.
FILE_TYPES = (
    ("txt", "text/plain", "public.plain-text", "Plain text"),
    ("epub", "application/epub+zip", "org.idpf.epub-container", "EPUB book"),
)

# --- what the frozen folder leaves out ----------------------------------------------------------------
EXCLUDES = [
    # never used at runtime (MioDesk builds its ONNX graphs itself; no PyTorch anywhere)
    "torch", "torchaudio", "tensorflow", "jax", "scipy", "pandas", "matplotlib", "PIL", "cv2", "sympy",
    "tkinter", "_tkinter", "turtle", "IPython", "pydoc_data", "lib2to3",
    # test and build tools that share the build environment
    "pytest", "_pytest", "pytestqt", "pytest_timeout", "ruff", "PyInstaller", "setuptools", "pip",
    # Qt: a Widgets app. QML/Quick, WebEngine, Multimedia, 3D, OpenGL, SQL, printing stay out.
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuickControls2",
    "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtPrintSupport", "PySide6.QtSql",
    "PySide6.QtTest", "PySide6.QtXml", "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools",
    "PySide6.QtConcurrent", "PySide6.QtDBus", "PySide6.QtSvgWidgets", "PySide6.QtStateMachine",
    "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.QtWebChannel", "PySide6.QtMultimedia",
    "PySide6.QtMultimediaWidgets", "PySide6.Qt3DCore", "PySide6.QtCharts", "PySide6.QtDataVisualization",
]
# Qt modules MioDesk imports (grep PySide6 in miodesk/): the hooks collect their libraries and plugins.
QT_MODULES = ["PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets",
              "PySide6.QtNetwork",  # single-instance hand-off (QLocalServer / QLocalSocket)
              "PySide6.QtSvg"]  # the SVG icons (iconengines/svg plugin)

# Qt plugins, decided per plugin file *before* PyInstaller follows their library dependencies, so that
# a dropped plugin does not drag its libraries in (the GTK 3 theme alone pulls ~20 GTK/cairo/pango
# libraries, which must match the user's GTK; without it Qt draws its own Fusion style and dialogs).
QT_PLUGIN_TYPES = {
    # X11 (xcb) and Wayland on Linux, Cocoa on macOS, Windows; offscreen/minimal for headless runs
    "platforms", "platformthemes", "platforminputcontexts", "xcbglintegrations",
    "wayland-decoration-client", "wayland-graphics-integration-client", "wayland-shell-integration",
    "iconengines", "imageformats", "styles",
}
QT_PLUGIN_DROP = re.compile(
    r"(platforms/lib?q(eglfs|linuxfb|minimalegl|vnc|vkkhrdisplay|direct2d)"  # embedded and remote
    r"|platformthemes/lib?qgtk3"
    r"|imageformats/lib?q(tga|tiff|wbmp|webp|icns|pdf|macheif|macjp2)"  # a reader shows png/jpeg/svg/ico/gif
    r"|wayland-graphics-integration-client/lib(dmabuf-server|drm-egl-server|shm-emulation-server|vulkan-server)"
    r"|wayland-decoration-client/libadwaita)",
    re.IGNORECASE,
)
QT_TRANSLATIONS_KEEP = ("qtbase_ja.qm",)  # UI languages: English (built into Qt) and Japanese
DROP_PATTERNS = [
    # ALSA is the system's: a bundled libasound would not find the distribution's ALSA plugins
    # (PulseAudio/PipeWire), and every Linux desktop has it. PortAudio itself is bundled.
    r"(^|/)libasound\.so",
    # Qt's software OpenGL for Windows (20 MB): a Widgets app draws without OpenGL
    r"(^|/)opengl32sw\.dll$",
]


def keep_qt_plugin(plugin_type: str, file_name: str) -> bool:
    return plugin_type in QT_PLUGIN_TYPES and not QT_PLUGIN_DROP.search(f"{plugin_type}/{file_name}")


def keep_collected(dest: str) -> bool:
    """Whether a file PyInstaller collected (its path inside the folder) belongs in MioDesk's folder."""
    norm = dest.replace("\\", "/")
    if any(re.search(pattern, norm) for pattern in DROP_PATTERNS):
        return False
    if "PySide6/" in norm:
        rel = norm.split("PySide6/", 1)[1]
        if "translations/" in rel:
            return rel.rsplit("/", 1)[-1] in QT_TRANSLATIONS_KEEP
        if rel.startswith(("Qt/qml/", "Qt/libexec/", "Qt/metatypes/", "qml/", "typesystems/", "include/")):
            return False
    return True


# --- versions -------------------------------------------------------------------------------------------
def package_version() -> str:
    from importlib.metadata import version

    return version("miodesk")


def numeric_version(version: str) -> tuple[int, int, int, int]:
    """The release numbers of a PEP 440 version, padded to four (pre/post/local parts dropped)."""
    match = re.match(r"^\s*v?(\d+(?:\.\d+)*)", version)
    if not match:
        raise ValueError(f"not a version: {version!r}")
    numbers = [int(part) for part in match.group(1).split(".")][:4]
    numbers += [0] * (4 - len(numbers))
    if any(n > 0xFFFF for n in numbers):
        raise ValueError(f"version parts must be below 65536 for Windows: {version!r}")
    return tuple(numbers)  # type: ignore[return-value]


def windows_version_file(version: str, original_filename: str, internal_name: str) -> str:
    """A PyInstaller version file: the VERSIONINFO resource shown in Explorer's Properties > Details."""
    numbers = numeric_version(version)
    strings = {
        "CompanyName": COMPANY,
        "FileDescription": DESCRIPTION,
        "FileVersion": version,
        "InternalName": internal_name,
        "LegalCopyright": COPYRIGHT,
        "OriginalFilename": original_filename,
        "ProductName": APP_NAME,
        "ProductVersion": version,
    }
    rows = ",\n".join(f"          StringStruct({key!r}, {value!r})" for key, value in strings.items())
    return f"""# Generated by installer/package_info.py from the package metadata.
VSVersionInfo(
  ffi=FixedFileInfo(
    filevers={numbers!r},
    prodvers={numbers!r},
    mask=0x3f,
    flags=0x0,
    OS=0x40004,
    fileType=0x1,
    subtype=0x0,
    date=(0, 0)
  ),
  kids=[
    StringFileInfo([
      StringTable('040904B0', [
{rows}
      ])
    ]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""


def macos_info_plist(version: str) -> dict:
    """Info.plist entries for MioDesk.app (PyInstaller's BUNDLE adds the executable and icon keys)."""
    return {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleShortVersionString": version,
        "CFBundleVersion": ".".join(map(str, numeric_version(version)[:3])),
        "LSMinimumSystemVersion": "12.0",
        "LSApplicationCategoryType": "public.app-category.productivity",
        "NSHighResolutionCapable": True,
        "NSHumanReadableCopyright": COPYRIGHT,
        # Recording a voice opens the microphone: macOS asks the user with this sentence.
        "NSMicrophoneUsageDescription": "MioDesk records your voice, only when you ask it to, to make a reading "
                                        "voice from it. The recording stays on this Mac.",
        "CFBundleDocumentTypes": [
            {"CFBundleTypeName": description, "CFBundleTypeRole": "Viewer", "LSHandlerRank": "Alternate",
             "LSItemContentTypes": [uti]}
            for _ext, _mime, uti, description in FILE_TYPES
        ],
        # Services › "Read with MioDesk" in every app: macOS sends the selected text to the app's services
        # provider (miodesk/ui/hotkeys/macos.py, whose SERVICE_MESSAGE this NSMessage must equal).
        "NSServices": [{
            "NSMenuItem": {"default": "Read with MioDesk"},
            "NSMessage": "readWithMioDesk",
            "NSPortName": APP_NAME,
            "NSSendTypes": ["NSStringPboardType", "public.utf8-plain-text"],
            "NSRequiredContext": {},
        }],
    }


if __name__ == "__main__":
    print(package_version() if len(sys.argv) < 2 else ".".join(map(str, numeric_version(sys.argv[1]))))
