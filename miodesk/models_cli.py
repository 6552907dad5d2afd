"""`miodesk models …`: the model catalog, downloads, imports and checks.

Outside the `models` package because it installs: it runs the post-install steps (graph builds,
preset voices) of `miodesk.model_setup`, which need the speech engine, and `models` must not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from miodesk.formatting import format_duration
from miodesk.models.catalog import DEFAULT_CODEC, DEFAULT_LLM, format_bytes


def add_models_parser(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list, download, import and verify models")
    actions = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="every known model: kind, size, licence, installed or not")
    actions.add_parser("recommend", help="the models suggested for this machine, and why")
    download = actions.add_parser("download", help="download models by name (resumes an interrupted one)")
    download.add_argument("names", nargs="+", metavar="NAME", help=f"e.g. {DEFAULT_LLM} {DEFAULT_CODEC}")
    imp = actions.add_parser("import", help="install local files: a .gguf, a codec folder or a preset .pt")
    imp.add_argument("path", type=Path)
    imp.add_argument("--name", help="name to install it under (default: from the file)")
    verify = actions.add_parser("verify", help="check installed files against their sha256")
    verify.add_argument("--quick", action="store_true", help="compare sizes only (fast)")
    remove = actions.add_parser("remove", help="delete an installed model and what was built from it")
    remove.add_argument("name", metavar="NAME")


class _ProgressPrinter:
    """A redrawn bar on a terminal; a plain line per file and every ~10 % otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last_key: tuple[str, str] | None = None
        self._last_decile = -1
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, p) -> None:  # p: Progress
        fraction = p.bytes_done / p.bytes_total if p.bytes_total else 0.0
        speed = f"{format_bytes(p.speed_bps)}/s" if p.speed_bps else "--"
        eta = "?" if p.eta_s is None else format_duration(p.eta_s)
        sizes = f"{format_bytes(p.bytes_done)} / {format_bytes(p.bytes_total)}"
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw < 0.1 and fraction < 1.0:
                return
            self._last_draw = now
            width = 24
            filled = int(width * fraction)
            bar = "#" * filled + "-" * (width - filled)
            line = f"\r{p.name} [{bar}] {fraction * 100:5.1f}% {sizes} {speed} {eta} left  "
            self.stream.write(line)
            self.stream.flush()
            self._drawn = True
            return
        key = (p.name, p.file)
        decile = int(fraction * 10)
        if key != self._last_key or decile != self._last_decile:
            self._last_key, self._last_decile = key, decile
            print(f"{p.name}: {p.file} {fraction * 100:.0f}% ({sizes}, {speed}, {eta} left)", file=self.stream)

    def done(self) -> None:
        if self._drawn:
            self._drawn = False
            self.stream.write("\n")
            self.stream.flush()


def _list(manager) -> int:
    from miodesk.models.catalog import CATALOG

    installed = {m.name: m for m in manager.installed()}
    rows = []
    for entry in CATALOG:
        model = installed.pop(entry.name, None)
        size = format_bytes(model.size_bytes) if model else entry.size_text
        rows.append((entry.name, entry.kind, size, entry.licence, "installed" if model else "-"))
    for model in installed.values():  # imported under names of their own
        rows.append((model.name, model.kind, format_bytes(model.size_bytes), "(imported)", "installed"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("NAME", "KIND", "SIZE", "LICENCE", "STATUS")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=False)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip())
    print(f"Models folder: {manager.root}  (~ = estimated size)")
    _print_unverifiable([m for m in manager.installed() if m.unverifiable_files])
    return 0


def _print_unverifiable(models: list) -> None:
    """Say plainly which models lost their checksums when a damaged manifest was rebuilt."""
    if not models:
        return
    names = " ".join(m.name for m in models)
    print(
        f"Not verifiable: {', '.join(m.name for m in models)}. The model list was damaged and rebuilt from "
        "the model folders; their files are there with their sizes, but the checksums recorded when they "
        f"were installed are lost. To be sure of them, download them again (`miodesk models download {names}`) "
        "or import them again."
    )


def _recommend() -> int:
    from miodesk.models.catalog import get_entry, recommend

    rec = recommend()
    total = sum(get_entry(n).size_bytes for n in rec.names)
    for name in rec.names:
        entry = get_entry(name)
        print(f"{name:28} {entry.size_text:>9}  {entry.licence}")
    print(f"Total: ~{format_bytes(total)}")
    print(rec.reason)
    print(f"Download with: miodesk models download {' '.join(rec.names)}")
    for name in rec.alternatives:
        entry = get_entry(name)
        print(f"Or, for {name} ({entry.size_text}, {entry.licence}): miodesk models download {name}")
    return 0


def _download(manager, names: list[str]) -> int:
    from miodesk.models.catalog import get_entry

    entries = [get_entry(name) for name in names]  # unknown names fail before anything starts
    notes = []
    for entry in entries:
        if manager.is_installed(entry.name):
            continue
        print(f"{entry.name}: {entry.size_text}, licence: {entry.licence}")
        if entry.note and entry.note not in notes:
            notes.append(entry.note)
    for note in notes:
        print(f"Note: {note}")
    printer = _ProgressPrinter(sys.stdout)
    try:
        models = manager.download([e.name for e in entries], progress=printer)
    except KeyboardInterrupt:
        printer.done()
        print("Interrupted; run the same command again to resume the download.", file=sys.stderr)
        raise
    finally:
        printer.done()
    for model in models:
        print(f"installed {model.name} ({format_bytes(model.size_bytes)}) in {model.folder}")
    return 0


def run_models(args: argparse.Namespace) -> int:
    from miodesk.model_setup import ModelInstaller
    from miodesk.models.registry import describe_problems

    manager = ModelInstaller()
    command = args.models_command
    if command == "list":
        return _list(manager)
    if command == "recommend":
        return _recommend()
    if command == "download":
        return _download(manager, args.names)
    if command == "import":
        model = manager.import_path(args.path, name=args.name)
        print(f"installed {model.name} ({model.kind}, {format_bytes(model.size_bytes)}) in {model.folder}")
        return 0
    if command == "verify":
        installed = manager.installed()
        problems = manager.verify(full=not args.quick)
        if problems:
            from miodesk.errors import ModelError

            raise ModelError(describe_problems(problems))
        how = "sizes" if args.quick else "sha256"
        unverifiable = [m for m in installed if m.unverifiable_files]
        if not unverifiable:
            print(f"{len(installed)} installed model(s) checked ({how}): all fine.")
            return 0
        print(f"{len(installed)} installed model(s) checked ({how}): no changes found, but "
              f"{len(unverifiable)} cannot be verified.")
        _print_unverifiable(unverifiable)
        return 0
    if command == "remove":
        freed = manager.remove(args.name)
        print(f"removed {args.name}, freed {format_bytes(freed)}")
        return 0
    raise AssertionError(command)  # pragma: no cover - argparse restricts the choices
