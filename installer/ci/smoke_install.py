"""Install, run and remove the package that installer/ci/build.py made, as a user does.

    python installer/ci/smoke_install.py [--dist DIR] [--force]

Windows  DIR/MioDesk-<v>-windows-x64-standard-setup.exe, silently, for the current user: the program in
         %LOCALAPPDATA%\\Programs\\MioDesk, the Start-menu shortcut, the uninstall entry and "Open with"
         under HKCU, the installed miodesk-cli --version; then the uninstaller keeps the user's data
         (%LOCALAPPDATA%\\MioDesk) when silent and removes it with /REMOVEUSERDATA=1, and leaves none
         of the rest. It changes the real user profile: it runs only in CI (CI is set) or with --force,
         and then refuses when MioDesk data is already there.
macOS    DIR/MioDesk-<v>-macos-<arch>.dmg: mounted read-only, the .app copied out as from the Finder,
         its signature checked (codesign; ad hoc unless MIODESK_CODESIGN_IDENTITY was set), --version
         run, and Gatekeeper's verdict printed (an unsigned app is refused until signed and notarised;
         installer/README.md says what users do meanwhile).
Linux    DIR/MioDesk-<v>-linux-<arch>.tar.gz: unpacked, install.sh into a temporary HOME, the command
         on PATH run, then install.sh --uninstall --remove-user-data (tests/test_frozen.py checks more).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from common import REPO, current_platform, declared_version, group, run, utf8_output

ISS = REPO / "installer" / "windows" / "miodesk.iss"


def one_package(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f"expected one {pattern} in {dist}, found {[p.name for p in found]}: build first")
    return found[0]


def check_version_output(command: list[str], env: dict[str, str] | None = None) -> None:
    result = run(command, capture_output=True, text=True, env=env, timeout=120)
    expected = f"MioDesk {declared_version()}"
    if result.stdout.strip() != expected:
        raise SystemExit(f"{command[0]} --version printed {result.stdout.strip()!r}, expected {expected!r}")


def wait_until(condition, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(1)


# --- Windows: the Inno Setup installer ----------------------------------------------------------------------
def app_id() -> str:
    """The installer's AppId, from the .iss (there `{{` is a literal brace)."""
    text = ISS.read_text(encoding="utf-8-sig")
    match = re.search(r'^#define AppId "\{(\{[0-9A-F-]+\})"', text, re.M)
    if not match:
        raise SystemExit(f"no AppId in {ISS}")
    return match.group(1)


def registry_value(key: str, name: str) -> str | None:
    import winreg

    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
            return str(winreg.QueryValueEx(handle, name)[0])
    except FileNotFoundError:
        return None


def smoke_windows(dist: Path, work: Path) -> None:
    setup = one_package(dist, f"MioDesk-{declared_version()}-windows-x64-*-setup.exe")
    local = Path(os.environ["LOCALAPPDATA"])
    programs = Path(os.environ["APPDATA"]) / "Microsoft" / "Windows" / "Start Menu" / "Programs"
    app_dir = local / "Programs" / "MioDesk"
    user_data = local / "MioDesk"
    shortcut = programs / "MioDesk.lnk"
    uninstall_key = rf"Software\Microsoft\Windows\CurrentVersion\Uninstall\{app_id()}_is1"
    open_with = r"Software\Classes\.txt\OpenWithProgids"
    if user_data.exists():
        if not os.environ.get("CI"):
            raise SystemExit(f"{user_data} exists: this check removes it, so it runs here only on a clean profile")
        shutil.rmtree(user_data)  # a CI runner's profile: left by an earlier step

    def install(log_name: str) -> None:
        run([setup, "/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART", f"/LOG={work / log_name}"], timeout=600)
        for path in (app_dir / "MioDesk.exe", app_dir / "miodesk-cli.exe", shortcut):
            if not path.is_file():
                raise SystemExit(f"after setup: {path} is missing (per-user install, Start menu)")
        if registry_value(uninstall_key, "DisplayName") is None:
            raise SystemExit(f"after setup: no uninstall entry HKCU\\{uninstall_key}")
        if registry_value(open_with, "MioDesk.Text") is None:
            raise SystemExit(f"after setup: no \"Open with\" entry HKCU\\{open_with}")
        print(f"installed for this user in {app_dir}; Start menu {shortcut.name}; "
              f"uninstall entry {registry_value(uninstall_key, 'DisplayName')}")

    def uninstall(*options: str) -> None:
        command = registry_value(uninstall_key, "UninstallString")
        if not command:
            raise SystemExit("no UninstallString")
        uninstaller = command.strip('"')
        run([uninstaller, "/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART", *options], timeout=600)
        # The uninstaller runs on from a copy of itself in %TEMP%: wait for it to finish its work.
        wait_until(lambda: not Path(uninstaller).exists() and not app_dir.exists(), "the uninstaller")
        leftovers = [str(p) for p in (app_dir, shortcut) if p.exists()]
        if registry_value(uninstall_key, "DisplayName") is not None:
            leftovers.append(f"HKCU\\{uninstall_key}")
        if registry_value(open_with, "MioDesk.Text") is not None:
            leftovers.append(f"HKCU\\{open_with}\\MioDesk.Text")
        if leftovers:
            raise SystemExit(f"the uninstaller left {leftovers}")

    with group(f"install {setup.name}"):
        install("setup-1.log")
        check_version_output([str(app_dir / "miodesk-cli.exe"), "--version"])
        voice = user_data / "voices" / "smoke.npy"
        voice.parent.mkdir(parents=True)
        voice.write_bytes(b"\x93NUMPY")
    with group("uninstall, keeping the user's data"):
        uninstall()
        if not voice.is_file():
            raise SystemExit("a silent uninstall removed the user's data without being asked to")
        print(f"kept {user_data}")
    with group("install again, uninstall with /REMOVEUSERDATA=1"):
        install("setup-2.log")
        uninstall("/REMOVEUSERDATA=1")
        wait_until(lambda: not user_data.exists(), f"{user_data} to be removed", timeout=60)
        print(f"removed {user_data}")


# --- macOS: the disk image ------------------------------------------------------------------------------------
def smoke_macos(dist: Path, work: Path) -> None:
    dmg = one_package(dist, f"MioDesk-{declared_version()}-macos-*.dmg")
    mount = work / "volume"
    mount.mkdir()
    with group(f"open {dmg.name}"):
        run(["hdiutil", "attach", "-nobrowse", "-readonly", "-noautoopen", "-mountpoint", str(mount), str(dmg)],
            timeout=300)
        try:
            applications = work / "Applications"
            applications.mkdir()
            # ditto copies the bundle as the Finder does (links, extended attributes, signatures)
            run(["ditto", str(mount / "MioDesk.app"), str(applications / "MioDesk.app")], timeout=300)
        finally:
            run(["hdiutil", "detach", str(mount), "-force"], timeout=120)
    app = applications / "MioDesk.app"
    with group("signature, Gatekeeper, --version"):
        run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", str(app)], timeout=300)
        # Unsigned builds are refused here until signed with a Developer ID and notarised: shown, not failed.
        verdict = subprocess.run(["spctl", "--assess", "--type", "execute", "-vv", str(app)],
                                 capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120)
        print(f"Gatekeeper (spctl): {(verdict.stdout + verdict.stderr).strip()}")
        env = dict(os.environ, MIODESK_HOME=str(work / "home"))
        check_version_output([str(app / "Contents" / "MacOS" / "MioDesk"), "--version"], env=env)


# --- Linux: the tarball -----------------------------------------------------------------------------------------
def smoke_linux(dist: Path, work: Path) -> None:
    tarball = one_package(dist, f"MioDesk-{declared_version()}-linux-*.tar.gz")
    with group(f"unpack {tarball.name}"), tarfile.open(tarball) as archive:
        safe = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}  # Python >= 3.10.12 / 3.11.4
        archive.extractall(work / "unpacked", **safe)
    unpacked = work / "unpacked" / tarball.name.removesuffix(".tar.gz")
    home = work / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    target = home / ".local" / "opt" / "MioDesk"
    with group("install.sh, the command on PATH, install.sh --uninstall"):
        run(["bash", str(unpacked / "install.sh")], env=env, stdin=subprocess.DEVNULL, timeout=300)
        check_version_output([str(home / ".local" / "bin" / "miodesk"), "--version"], env=env)
        run(["bash", str(target / "install.sh"), "--uninstall", "--remove-user-data"], env=env,
            stdin=subprocess.DEVNULL, timeout=300)
    leftovers = [str(p) for p in (home / ".local").rglob("*") if p.is_file() and p.name != "mimeinfo.cache"]
    if target.exists() or leftovers:
        raise SystemExit(f"install.sh --uninstall left {leftovers or target}")


def main(argv: list[str] | None = None) -> int:
    utf8_output()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="where build.py put the package")
    parser.add_argument("--force", action="store_true", help="Windows: run outside CI (changes your profile)")
    args = parser.parse_args(argv)
    platform = current_platform()
    if platform == "windows" and not (os.environ.get("CI") or args.force):
        raise SystemExit("smoke_install.py installs and uninstalls MioDesk in your Windows profile: "
                         "it runs in CI, or here with --force")
    with tempfile.TemporaryDirectory(prefix="miodesk-install-") as temp:
        smoke = {"windows": smoke_windows, "macos": smoke_macos, "linux": smoke_linux}[platform]
        smoke(args.dist.resolve(), Path(temp))
    print(f"smoke_install: the {platform} package installs, runs and uninstalls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
