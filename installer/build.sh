#!/usr/bin/env bash
# Build MioDesk's frozen one-folder app with PyInstaller (installer/miodesk.spec), and package it.
#
#   bash installer/build.sh [--dist DIR] [--work DIR] [--no-archive] [--keep-cuda-ep] [--clean]
#
# Linux:  DIST/MioDesk/ (run ./miodesk, or ./install.sh for the applications menu) and
#         DIST/MioDesk-<version>-linux-<arch>.tar.gz (that folder, ready to unpack and install).
# macOS:  DIST/MioDesk.app and DIST/MioDesk-<version>-macos-<arch>.dmg (not yet run on a Mac: installer/README.md).
# It freezes the Python environment in $PYTHON (default: the project's .venv), which must have MioDesk
# installed (`pip install -e ".[test]"` brings PyInstaller too). DIST defaults to dist/, WORK to build/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$ROOT/dist"
WORK="$ROOT/build"
ARCHIVE=1
CLEAN=()

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dist) DIST="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --no-archive) ARCHIVE=0; shift ;;
    --keep-cuda-ep) export MIODESK_KEEP_CUDA_EP=1; shift ;;
    --clean) CLEAN=(--clean); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import PyInstaller, miodesk" 2>/dev/null; then
  echo "build.sh: $PYTHON lacks PyInstaller or MioDesk; run: $PYTHON -m pip install -e \"${ROOT}[test]\"" >&2
  exit 1
fi

VERSION="$("$PYTHON" "$ROOT/installer/package_info.py")"
ARCH="$(uname -m)"
mkdir -p "$DIST" "$WORK"
DIST="$(cd "$DIST" && pwd)"
WORK="$(cd "$WORK" && pwd)"

started=$(date +%s)
echo "build.sh: freezing MioDesk $VERSION with $PYTHON"
# From the work folder: with the repository as the current directory, Python would also see a stale
# miodesk.egg-info there and PyInstaller could copy that instead of the installed package's metadata.
cd "$WORK"
"$PYTHON" -m PyInstaller --noconfirm ${CLEAN[@]+"${CLEAN[@]}"} --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" "$ROOT/installer/miodesk.spec"

case "$(uname -s)" in
  Linux)
    APP="$DIST/MioDesk"
    # The Linux package is the frozen folder plus its installer: install.sh copies the folder to
    # ~/.local/opt/MioDesk and adds the menu entry, icons and file associations (--uninstall undoes it).
    install -m 755 "$ROOT/installer/linux/install.sh" "$APP/install.sh"
    mkdir -p "$APP/share/applications" "$APP/share/icons"
    install -m 644 "$ROOT/installer/linux/miodesk.desktop" "$APP/share/applications/miodesk.desktop"
    rm -rf "$APP/share/icons/hicolor"
    cp -R "$WORK/miodesk/icons/hicolor" "$APP/share/icons/hicolor"
    if [ "$ARCHIVE" = 1 ]; then
      NAME="MioDesk-$VERSION-linux-$ARCH"
      rm -f "$DIST/$NAME.tar.gz"
      tar -C "$DIST" --owner=0 --group=0 --transform "s|^MioDesk|$NAME|S" -czf "$DIST/$NAME.tar.gz" MioDesk
      echo "build.sh: $DIST/$NAME.tar.gz ($(du -m "$DIST/$NAME.tar.gz" | cut -f1) MB)"
    fi
    ;;
  Darwin)
    APP="$DIST/MioDesk.app"
    if [ "$ARCHIVE" = 1 ]; then
      NAME="MioDesk-$VERSION-macos-$ARCH"
      rm -f "$DIST/$NAME.dmg"
      # The disk image shows the app next to a link to /Applications: drag one onto the other to install.
      STAGE="$WORK/dmg"
      rm -rf "$STAGE"
      mkdir -p "$STAGE"
      ditto "$APP" "$STAGE/MioDesk.app"
      ln -s /Applications "$STAGE/Applications"
      # hdiutil now and then fails with "Resource busy" while the new files are still being scanned.
      for attempt in 1 2 3; do
        if hdiutil create -volname "MioDesk $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DIST/$NAME.dmg"; then
          break
        fi
        if [ "$attempt" = 3 ]; then exit 1; fi
        echo "build.sh: hdiutil failed, trying again in 10 s" >&2
        sleep 10
      done
      rm -rf "$STAGE"
      echo "build.sh: $DIST/$NAME.dmg"
    fi
    ;;
  *)
    APP="$DIST/MioDesk"
    ;;
esac

echo "build.sh: $APP ($(du -sm "$APP" | cut -f1) MB) in $(( $(date +%s) - started )) s"
