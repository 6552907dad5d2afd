"""Entry script of the frozen build: the same `miodesk` command as the installed package.

PyInstaller freezes this file into every executable of the folder (Linux/macOS `miodesk` or `MioDesk`,
Windows `MioDesk.exe` (no console) and `miodesk-cli.exe` (console)). It only prepares what a frozen
process lacks and then hands over to `miodesk.cli.main`.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _ensure_streams() -> None:
    # A windowed Windows/macOS executable starts with sys.stdout/stderr = None. Code that prints, or
    # llama.cpp's log redirection (which calls sys.stdout.fileno()), must find real files there.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (lives as long as the process)
    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115


def main() -> int:
    multiprocessing.freeze_support()
    _ensure_streams()
    argv = sys.argv[1:]
    # `miodesk bench` measures in a fresh process started as `sys.executable -m miodesk.bench ...`;
    # frozen, sys.executable is this program, so accept that form here.
    if argv[:2] == ["-m", "miodesk.bench"]:
        from miodesk.bench import main as bench_main

        return bench_main(argv[2:])
    from miodesk.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
