"""`miodesk voices …`: list, import and manage voices."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_voices_parser(commands: argparse._SubParsersAction) -> None:
    voices = commands.add_parser("voices", help="list, import and manage voices")
    actions = voices.add_subparsers(dest="voices_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="list installed voices")
    voice_import = actions.add_parser("import", help="install a voice file (.pt, .npy, .npz)")
    voice_import.add_argument("file", type=Path)
    voice_import.add_argument("--name", help="name to store it under (default: the file name)")
    voice_import.add_argument("--overwrite", action="store_true", help="replace a voice of that name")


def run_voices(args: argparse.Namespace) -> int:
    from miodesk.tts.voices import VoiceStore

    store = VoiceStore()
    if args.voices_command == "import":
        voice = store.import_file(args.file, name=args.name, overwrite=args.overwrite)
        print(f"installed voice '{voice.name}'")
        return 0
    names = store.names()
    if not names:
        print(f"No voices installed in {store.root}. Import one with `miodesk voices import FILE`.")
    for name in names:
        print(name)
    return 0
