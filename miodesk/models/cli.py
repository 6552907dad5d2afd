"""`miodesk models …`: the model catalog, downloads, imports and checks (issue 6 fills this in)."""

from __future__ import annotations

import argparse


def add_models_parser(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("models", help="list, download, import and verify models")


def run_models(args: argparse.Namespace) -> int:
    from miodesk import paths

    print(f"Models folder: {paths.models_dir()}")
    return 0
