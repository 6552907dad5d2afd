"""Build this system's MioDesk package and gather it in dist/packages/ for upload.

    python installer/ci/build.py

Linux, macOS  installer/build.sh with this Python (the project's environment): dist/MioDesk/ and the
              tarball, or dist/MioDesk.app and the .dmg (llama.cpp as installed: Metal on a Mac, see
              installer/ci/install.py).
Windows       installer/build.ps1, standard variant (CPU llama.cpp, DirectML codec): its own build
              environment from this Python's base installation, PyInstaller, then Inno Setup 6.
              ISCC.exe is looked for where Inno Setup installs it and installed with Chocolatey
              (`choco install innosetup`) when missing, as on runner images that no longer carry it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from common import REPO, current_platform, declared_version, group, run, utf8_output

DIST = REPO / "dist"
PACKAGES = DIST / "packages"


def find_iscc() -> Path | None:
    candidates = [Path(os.environ.get(name, "")) / "Inno Setup 6" / "ISCC.exe"
                  for name in ("ProgramFiles(x86)", "ProgramFiles")]
    candidates.append(Path(os.environ.get("LOCALAPPDATA", "")) / "Programs" / "Inno Setup 6" / "ISCC.exe")
    on_path = shutil.which("ISCC")
    if on_path:
        candidates.append(Path(on_path))
    return next((path for path in candidates if path.is_file()), None)


def build_windows() -> str:
    iscc = find_iscc()
    if iscc is None:
        if shutil.which("choco") is None:
            raise SystemExit("Inno Setup 6 (ISCC.exe) is missing and Chocolatey is not there to install it")
        run(["choco", "install", "innosetup", "-y", "--no-progress"])
        iscc = find_iscc()
        if iscc is None:
            raise SystemExit("ISCC.exe is still missing after `choco install innosetup`")
    print(f"Inno Setup: {iscc}")
    base_python = Path(sys.base_prefix) / "python.exe"  # build.ps1 makes its own venv from it
    run(["powershell", "-NoProfile", "-ExecutionPolicy", "Bypass", "-File", str(REPO / "installer" / "build.ps1"),
         "-Python", str(base_python), "-Iscc", str(iscc)], cwd=REPO)
    return "-setup.exe"


def build_unix(platform: str) -> str:
    env = dict(os.environ, PYTHON=sys.executable)
    run(["bash", str(REPO / "installer" / "build.sh")], cwd=REPO, env=env)
    return ".dmg" if platform == "macos" else ".tar.gz"


def main() -> int:
    utf8_output()
    platform = current_platform()
    with group(f"build the {platform} package"):
        suffix = build_windows() if platform == "windows" else build_unix(platform)
    shutil.rmtree(PACKAGES, ignore_errors=True)
    PACKAGES.mkdir(parents=True)
    built = sorted(DIST.glob(f"MioDesk-{declared_version()}-*{suffix}"))
    if not built:
        raise SystemExit(f"no MioDesk-{declared_version()}-*{suffix} in {DIST}")
    for package in built:
        shutil.copy2(package, PACKAGES / package.name)
        print(f"package: {PACKAGES / package.name} ({package.stat().st_size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
