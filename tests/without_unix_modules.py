"""Run Python code as it would meet the standard library on Windows: without the Unix-only modules.

    python tests/without_unix_modules.py -m miodesk doctor
    python tests/without_unix_modules.py -c "import miodesk.cli"

An import finder refuses `resource`, `fcntl`, `termios`, `pwd`, `grp`, `pty`, `tty` and the other
Unix-only modules whenever MioDesk's own code (or the command) asks for them, as Windows' Python
would. The standard library and third-party packages still get them: on Windows they take their own
Windows branches, which cannot run here. Every refusal is also written to the file named by
$MIODESK_BLOCKED_IMPORTS_LOG (if set), so a test can see an import that was caught and swallowed.
"""

from __future__ import annotations

import importlib.abc
import os
import runpy
import sys

UNIX_ONLY = frozenset({
    "resource", "fcntl", "termios", "pwd", "grp", "pty", "tty", "syslog", "crypt", "spwd", "nis",
    "ossaudiodev", "_posixshmem", "curses", "_curses", "readline",
})


def _importer_name() -> str:
    """The module whose code runs the import statement (skipping the import machinery and this file)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        filename = frame.f_code.co_filename
        if not (name.startswith("importlib") or filename.startswith("<frozen") or filename == __file__):
            return name
        frame = frame.f_back
    return ""


class RefuseUnixOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] not in UNIX_ONLY:
            return None
        importer = _importer_name()
        if importer.startswith("miodesk") or importer == "__main__":
            log = os.environ.get("MIODESK_BLOCKED_IMPORTS_LOG")
            if log:
                with open(log, "a", encoding="utf-8") as handle:
                    handle.write(f"{importer} imported {fullname}\n")
            raise ModuleNotFoundError(f"No module named {fullname!r} (Unix only; simulated Windows)", name=fullname)
        return None


def main() -> None:
    sys.meta_path.insert(0, RefuseUnixOnly())
    # Modules the interpreter loaded before us stay importable by the standard library; MioDesk's own
    # `import resource` of one of them goes through sys.modules and would not reach the finder.
    for name in UNIX_ONLY:
        sys.modules.pop(name, None)
    args = sys.argv[1:]
    if args[:1] == ["-m"]:
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    elif args[:1] == ["-c"]:
        sys.argv = ["-c", *args[2:]]
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
    else:
        raise SystemExit("usage: without_unix_modules.py -m MODULE [ARGS...] | -c CODE")


if __name__ == "__main__":
    main()
