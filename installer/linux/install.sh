#!/usr/bin/env bash
# Install MioDesk for the current user, without root: copies this folder to ~/.local/opt/MioDesk, links
# ~/.local/bin/miodesk, and adds the applications-menu entry, the icon and "Open with MioDesk" for text
# files and EPUB books (MioDesk does not become their default application).
#
#   ./install.sh                               install, or update an installed MioDesk
#   ./install.sh --uninstall                   remove MioDesk; asks whether to remove your data too
#   ./install.sh --uninstall --keep-user-data  ... keeping voices, downloaded models and settings
#   ./install.sh --uninstall --remove-user-data  ... removing them as well
#   --prefix DIR                               install under DIR (default ~/.local)
#
# MioDesk also runs in place, without installing: ./miodesk
set -euo pipefail

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="$HOME/.local"
ACTION=install
USER_DATA=ask

usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --uninstall) ACTION=uninstall; shift ;;
    --keep-user-data) USER_DATA=keep; shift ;;
    --remove-user-data) USER_DATA=remove; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

case "$PREFIX" in
  /*) ;;
  *) PREFIX="$(pwd)/$PREFIX" ;;
esac
TARGET="$PREFIX/opt/MioDesk"
BIN="$PREFIX/bin/miodesk"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
APPLICATIONS="$DATA_HOME/applications"
DESKTOP_FILE="$APPLICATIONS/miodesk.desktop"
ICONS="$DATA_HOME/icons/hicolor"
# MioDesk's own folders (platformdirs on Linux: miodesk/paths.py)
USER_FOLDERS=(
  "$DATA_HOME/MioDesk"
  "${XDG_CONFIG_HOME:-$HOME/.config}/MioDesk"
  "${XDG_CACHE_HOME:-$HOME/.cache}/MioDesk"
  "${XDG_STATE_HOME:-$HOME/.local/state}/MioDesk"
)

refresh_menus() {
  if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$APPLICATIONS" 2>/dev/null || true
  fi
  # GTK notices new icons by the folder's time stamp; rebuild a cache only where one already exists
  touch "$ICONS" 2>/dev/null || true
  if [ -f "$ICONS/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t -f "$ICONS" 2>/dev/null || true
  fi
}

icon_files() {
  # the icon files this package carries, relative to share/icons/hicolor
  (cd "$1/share/icons/hicolor" && find . -name 'miodesk.*' -type f | sed 's|^\./||')
}

install_app() {
  if [ ! -x "$SOURCE/miodesk" ] || [ ! -d "$SOURCE/_internal" ]; then
    echo "install.sh: $SOURCE is not an unpacked MioDesk folder" >&2
    exit 1
  fi
  case "$TARGET" in
    *[\"\`\$\\%]*)
      echo "install.sh: cannot install under a path containing \" \` \$ \\ or %: $TARGET" >&2
      exit 1 ;;
  esac
  if [ "$SOURCE" != "$TARGET" ]; then
    mkdir -p "$PREFIX/opt"
    rm -rf "$TARGET.new"
    cp -a "$SOURCE" "$TARGET.new"
    rm -rf "$TARGET"
    mv "$TARGET.new" "$TARGET"
  fi
  mkdir -p "$PREFIX/bin" "$APPLICATIONS"
  ln -sfn "$TARGET/miodesk" "$BIN"
  sed -e "s|@EXEC@|$TARGET/miodesk|g" "$TARGET/share/applications/miodesk.desktop" > "$DESKTOP_FILE.tmp"
  mv "$DESKTOP_FILE.tmp" "$DESKTOP_FILE"
  while IFS= read -r icon; do
    mkdir -p "$ICONS/$(dirname "$icon")"
    cp "$TARGET/share/icons/hicolor/$icon" "$ICONS/$icon"
  done < <(icon_files "$TARGET")
  refresh_menus
  echo "MioDesk is installed in $TARGET"
  echo "  menu entry: $DESKTOP_FILE"
  echo "  command:    $BIN"
  case ":$PATH:" in
    *":$PREFIX/bin:"*) ;;
    *) echo "  ($PREFIX/bin is not on your PATH; the menu entry works anyway)" ;;
  esac
  echo "Uninstall with: $TARGET/install.sh --uninstall"
}

uninstall_app() {
  if [ -d "$TARGET" ] && [ -d "$TARGET/share/icons/hicolor" ]; then
    while IFS= read -r icon; do
      rm -f "$ICONS/$icon"
    done < <(icon_files "$TARGET")
  fi
  rm -f "$DESKTOP_FILE"
  if [ -L "$BIN" ] && [ "$(readlink "$BIN")" = "$TARGET/miodesk" ]; then
    rm -f "$BIN"
  fi
  if [ -d "$TARGET" ]; then
    if [ ! -e "$TARGET/miodesk" ] || [ ! -d "$TARGET/_internal" ]; then
      echo "install.sh: $TARGET does not look like MioDesk; not removing it" >&2
      exit 1
    fi
    rm -rf "$TARGET"
  fi
  refresh_menus
  echo "MioDesk is uninstalled."

  if [ "$USER_DATA" = ask ]; then
    USER_DATA=keep
    if [ -t 0 ]; then
      printf 'Also remove your voices, downloaded models and settings? [y/N] '
      read -r answer || answer=""
      case "$answer" in [yY]*) USER_DATA=remove ;; esac
    fi
  fi
  for folder in "${USER_FOLDERS[@]}"; do
    [ -e "$folder" ] || continue
    if [ "$USER_DATA" = remove ]; then
      rm -rf "$folder"
      echo "  removed $folder"
    else
      echo "  kept $folder"
    fi
  done
}

if [ "$ACTION" = install ]; then install_app; else uninstall_app; fi
