"""Render the app icon (miodesk/resources/icons/miodesk.svg) into what each platform's package needs.

    python installer/icons.py OUT_DIR

writes OUT_DIR/miodesk.ico (Windows: exe resource, installer, file associations), OUT_DIR/miodesk.icns
(macOS bundle) and OUT_DIR/hicolor/<N>x<N>/apps/miodesk.png + hicolor/scalable/apps/miodesk.svg (Linux
desktop entry). The SVG stays the one source; nothing generated is committed. Both container formats
hold PNG images, which Windows Vista+ and macOS 10.7+ read, so no image library beyond Qt is needed.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "miodesk" / "resources" / "icons" / "miodesk.svg"

ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 128, 256)
# icns element types holding PNG data, with their pixel sizes (16@1x..512@2x).
ICNS_TYPES = ((b"icp4", 16), (b"icp5", 32), (b"ic11", 32), (b"ic12", 64), (b"ic07", 128), (b"ic13", 256),
              (b"ic08", 256), (b"ic14", 512), (b"ic09", 512), (b"ic10", 1024))
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def ico_bytes(images: dict[int, bytes]) -> bytes:
    """An .ico of PNG entries: ICONDIR, one ICONDIRENTRY per image, then the PNG data."""
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries, blobs = b"", b""
    for size, png in sorted(images.items()):
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset)
        blobs += png
        offset += len(png)
    return header + entries + blobs


def icns_bytes(images: dict[int, bytes]) -> bytes:
    body = b"".join(kind + struct.pack(">I", 8 + len(images[size])) + images[size] for kind, size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a build step: it draws into images, never on a display
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(["miodesk-icons"])  # noqa: F841 (kept alive)
    sizes = sorted(set(ICO_SIZES) | {size for _, size in ICNS_TYPES} | set(HICOLOR_SIZES))
    from miodesk.desktop_entry import render_png  # the build environment has MioDesk installed

    images = {size: render_png(SVG, size) for size in sizes}
    (out / "miodesk.ico").write_bytes(ico_bytes({size: images[size] for size in ICO_SIZES}))
    (out / "miodesk.icns").write_bytes(icns_bytes(images))
    for size in HICOLOR_SIZES:
        folder = out / "hicolor" / f"{size}x{size}" / "apps"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "miodesk.png").write_bytes(images[size])
    scalable = out / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SVG, scalable / "miodesk.svg")
    print(f"icons written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
