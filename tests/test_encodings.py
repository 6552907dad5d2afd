"""Every text file MioDesk opens names its encoding.

Windows' default encoding is the ANSI code page (cp1252, cp932 …), not UTF-8, so `open(path, "w")`
without `encoding=` writes a settings file or a log that reads back wrong, or fails on Japanese text.
Python reports such calls as EncodingWarning only under `-X warn_default_encoding`, and only for the
lines a test happens to run; this test reads the source of every module in miodesk/ and installer/
instead, so a call on a path no test takes is caught too.

What counts as a text-mode call without an encoding (binary modes such as "rb"/"wb" are fine):
- `open()`, `io.open()`, `os.fdopen()`, `codecs.open()`, `Path.open()` in a text mode (or a mode the
  source does not spell out), `gzip/bz2/lzma.open()` with "t" in the mode
- `.read_text()` / `.write_text()`
- `io.TextIOWrapper()`
- `subprocess.run/Popen/check_output/call/check_call(…)` with `text=`, `universal_newlines=` or `errors=`,
  and `subprocess.getoutput/getstatusoutput`; `os.popen` (it cannot take an encoding)
- `tempfile.NamedTemporaryFile/TemporaryFile/SpooledTemporaryFile` in a text mode
- `logging.FileHandler` and its rotating/watched variants
A call that passes `**kwargs` is trusted. A line that is not about a file at all (a Qt `dialog.open()`)
can say so with the comment `# not-a-text-file`.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO_ROOT

OPT_OUT = "# not-a-text-file"
_MODE = re.compile(r"^[rwxabtU+]{1,4}$")
_SUBPROCESS_CALLS = {"run", "Popen", "check_output", "call", "check_call"}
_SUBPROCESS_ALWAYS_TEXT = {"getoutput", "getstatusoutput"}
# Position of `encoding` when passed positionally, and of `mode` (None: no mode, always text).
_OPEN_LIKE = {  # qualified name: (mode index, encoding index, default mode)
    "open": (1, 3, "r"),
    "io.open": (1, 3, "r"),
    "os.fdopen": (1, 3, "r"),
    "codecs.open": (1, 2, "r"),
    "gzip.open": (1, 3, "rb"),
    "bz2.open": (1, 3, "rb"),
    "lzma.open": (1, 4, "rb"),  # lzma.open(filename, mode, *, format, check, preset, filters, encoding…)
    "tempfile.NamedTemporaryFile": (0, 2, "w+b"),
    "tempfile.TemporaryFile": (0, 2, "w+b"),
    "tempfile.SpooledTemporaryFile": (1, 3, "w+b"),
}
_COMPRESSED = {"gzip.open", "bz2.open", "lzma.open"}  # text only with "t" in the mode
_LOG_HANDLERS = {"FileHandler": 2, "WatchedFileHandler": 2, "RotatingFileHandler": 4, "TimedRotatingFileHandler": 4}
# `X.open(...)` of these modules is not a text file (os.open is a file descriptor).
_NOT_FILES = {"os", "tarfile", "zipfile", "webbrowser", "shelve", "dbm", "wave", "sunau", "aifc"}


def _constant_str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == name), None)


def _has_encoding(call: ast.Call, position: int | None) -> bool:
    if _keyword(call, "encoding") is not None or any(k.arg is None for k in call.keywords):
        return True
    return position is not None and len(call.args) > position


def _mode_is_text(mode: str | None, compressed: bool = False) -> bool:
    """None (a mode the source does not spell out) counts as text: it has to name the encoding."""
    if mode is None:
        return True
    return "t" in mode if compressed else "b" not in mode


class _Finder(ast.NodeVisitor):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.modules: dict[str, str] = {}  # local name -> module (import x as y)
        self.names: dict[str, str] = {}  # local name -> module.attr (from x import attr)
        self.found: list[tuple[int, str]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.modules[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if node.module:
                self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def _qualified(self, func: ast.expr) -> str | None:
        """"open", "subprocess.run", "io.TextIOWrapper"…; ".open" for a method on any other object."""
        if isinstance(func, ast.Name):
            return self.names.get(func.id, func.id)
        if isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id in self.modules:
                return f"{self.modules[func.value.id]}.{func.attr}"
            if isinstance(func.value, ast.Name) and func.value.id in self.names:
                return f"{self.names[func.value.id]}.{func.attr}"
            return f".{func.attr}"
        return None

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        name = self._qualified(node.func)
        problem = self._problem(name, node) if name else None
        if problem and OPT_OUT not in self.lines[node.lineno - 1]:
            self.found.append((node.lineno, problem))

    def _problem(self, name: str, call: ast.Call) -> str | None:
        short = name.rsplit(".", 1)[-1]
        if name in _OPEN_LIKE:
            mode_at, encoding_at, default = _OPEN_LIKE[name]
            mode_node = call.args[mode_at] if len(call.args) > mode_at else getattr(_keyword(call, "mode"), "value", None)
            mode = default if mode_node is None else _constant_str(mode_node)
            if _mode_is_text(mode, name in _COMPRESSED) and not _has_encoding(call, encoding_at):
                return f"{name}() in text mode without encoding="
            return None
        if name == ".open" or (short == "open" and name.split(".")[0] not in _NOT_FILES and "." in name):
            # Path.open(mode='r', buffering, encoding): a first argument that is not a mode string is
            # something else's open (a zip member, a URL, a Qt device flag).
            if call.args and _constant_str(call.args[0]) is None:
                return None
            first = _constant_str(call.args[0]) if call.args else None
            if first is not None and not _MODE.match(first):
                return None
            mode_kw = _keyword(call, "mode")
            mode = first if first is not None else ("r" if mode_kw is None else _constant_str(mode_kw.value))
            if _mode_is_text(mode) and not _has_encoding(call, 2):
                return "Path.open() in text mode without encoding="
            return None
        if short == "read_text" and name.startswith("."):
            return None if _has_encoding(call, 0) else ".read_text() without encoding="
        if short == "write_text" and name.startswith("."):
            return None if _has_encoding(call, 1) else ".write_text() without encoding="
        if name in ("io.TextIOWrapper", "TextIOWrapper"):
            return None if _has_encoding(call, 1) else "io.TextIOWrapper() without encoding="
        if name.startswith("subprocess."):
            if short in _SUBPROCESS_ALWAYS_TEXT and not _has_encoding(call, None):
                return f"subprocess.{short}() without encoding= (it always decodes text)"
            if short in _SUBPROCESS_CALLS:
                text_args = [_keyword(call, k) for k in ("text", "universal_newlines", "errors")]
                text = any(
                    k is not None and not (isinstance(k.value, ast.Constant) and k.value.value in (False, None))
                    for k in text_args
                )
                if text and not _has_encoding(call, None):
                    return f"subprocess.{short}(text=True) without encoding="
            return None
        if name == "os.popen":
            return "os.popen() decodes with the locale; use subprocess.run(..., encoding=...)"
        if short in _LOG_HANDLERS and (name.startswith(("logging.", ".")) or name == short):
            if not _has_encoding(call, _LOG_HANDLERS[short]):
                return f"logging {short}() without encoding="
        return None


def find_default_encoding_calls(source: str, filename: str = "<source>") -> list[str]:
    """`file:line: what` for every call in `source` that opens text without naming its encoding."""
    finder = _Finder(source.splitlines())
    finder.visit(ast.parse(source, filename))
    return [f"{filename}:{line}: {what}" for line, what in sorted(finder.found)]


def _project_sources() -> list[Path]:
    files = sorted((REPO_ROOT / "miodesk").rglob("*.py")) + sorted((REPO_ROOT / "installer").rglob("*.py"))
    files += sorted((REPO_ROOT / "installer").rglob("*.spec"))  # PyInstaller specs are Python
    return files


def test_miodesk_and_installer_name_every_encoding() -> None:
    sources = _project_sources()
    assert len(sources) > 50 and any(p.name == "atomic.py" for p in sources)
    found = []
    for path in sources:
        found += find_default_encoding_calls(path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))
    assert not found, "Name the encoding (usually encoding=\"utf-8\"):\n" + "\n".join(found)


# --------------------------------------------------------------------------------------
# The check itself: planted examples, and Python's own EncodingWarning agrees with it

# Each runs with `p` an existing file (Path) and io, os, sys, codecs, gzip, logging, subprocess,
# tempfile and zipfile imported.
RUN = '[sys.executable, "-c", "pass"]'
FLAGGED = [
    'open(p, "w").close()',
    "open(p).close()",
    'open(p, mode="r").close()',
    'open(p, "r+").close()',
    "p.open().close()",
    'p.open("a").close()',
    'p.open(mode="w").close()',
    "p.read_text()",
    'p.write_text("x")',
    "io.open(p).close()",
    "os.fdopen(os.open(p, os.O_RDONLY)).close()",
    'os.fdopen(os.open(p, os.O_RDWR), "w").close()',
    'codecs.open(p, "w").close()',
    'gzip.open(p, "wt").close()',
    "io.TextIOWrapper(io.BytesIO()).close()",
    f"subprocess.run({RUN}, capture_output=True, text=True)",
    f"subprocess.check_output({RUN}, universal_newlines=True)",
    f'subprocess.run({RUN}, capture_output=True, errors="replace")',
    f"subprocess.Popen({RUN}, stdout=subprocess.PIPE, text=True).communicate()",
    'tempfile.NamedTemporaryFile("w").close()',
    'tempfile.TemporaryFile(mode="w+").close()',
    "logging.FileHandler(p).close()",
]
NOT_FLAGGED = [
    'open(p, "rb").close()',
    'open(p, "wb").close()',
    'open(p, "r+b").close()',
    'open(p, encoding="utf-8").close()',
    'open(p, "w", encoding="locale").close()',
    'open(p, "w", -1, "utf-8").close()',
    'p.open("rb").close()',
    'p.open("w", encoding="utf-8").close()',
    "p.read_bytes()",
    'p.read_text(encoding="utf-8")',
    'p.read_text("utf-8")',
    'p.write_text("x", "utf-8")',
    'p.write_text("x", encoding="utf-8", newline="\\n")',
    'os.fdopen(os.open(p, os.O_RDONLY), "rb").close()',
    'os.fdopen(os.open(p, os.O_RDONLY), "r", encoding="utf-8").close()',
    'gzip.open(p, "wb").close()',
    "gzip.open(p).close()",
    'io.TextIOWrapper(io.BytesIO(), "utf-8").close()',
    f"subprocess.run({RUN}, capture_output=True)",
    f"subprocess.run({RUN}, capture_output=True, text=False)",
    f'subprocess.run({RUN}, capture_output=True, text=True, encoding="utf-8")',
    f'subprocess.run({RUN}, capture_output=True, encoding="locale", errors="replace")',
    "tempfile.NamedTemporaryFile().close()",
    'tempfile.NamedTemporaryFile("w", encoding="utf-8").close()',
    'logging.FileHandler(p, encoding="utf-8").close()',
    'logging.FileHandler(p, "a", "utf-8").close()',
    'zipfile.ZipFile(io.BytesIO(), "w").open("r.txt", "w").close()',
    "os.close(os.open(p, os.O_RDONLY))",
]
_PRELUDE = "import codecs, gzip, io, logging, os, subprocess, sys, tempfile, zipfile\n"


@pytest.mark.parametrize("snippet", FLAGGED)
def test_planted_call_without_encoding_is_caught(snippet: str) -> None:
    found = find_default_encoding_calls(_PRELUDE + snippet, "planted.py")
    assert len(found) == 1 and found[0].startswith("planted.py:2: "), found


@pytest.mark.parametrize("snippet", NOT_FLAGGED)
def test_call_with_encoding_or_binary_mode_passes(snippet: str) -> None:
    assert find_default_encoding_calls(_PRELUDE + snippet) == []


def test_what_the_check_cannot_see_must_name_an_encoding() -> None:
    source = _PRELUDE + textwrap.dedent(
        """
        from pathlib import Path
        from subprocess import run
        import subprocess as sp
        def write(path, mode):
            with open(path, mode) as handle:  # a mode decided elsewhere may be text
                pass
            Path(path).open(mode="w" if mode else "r")  # nor is a computed mode spelled out
            run(["x"], text=True)
            sp.check_output(["x"], universal_newlines=True)
            os.popen("ls")
            logging.handlers.RotatingFileHandler(path, "a", 0, 3)
            dialog.open()  # not-a-text-file
            open(path, mode, encoding=None if "b" in mode else "utf-8")
            open(path, mode, **options)
        """
    )
    found = [line.split(": ", 1)[1] for line in find_default_encoding_calls(source)]
    assert found == [
        "open() in text mode without encoding=",
        "Path.open() in text mode without encoding=",
        "subprocess.run(text=True) without encoding=",
        "subprocess.check_output(text=True) without encoding=",
        "os.popen() decodes with the locale; use subprocess.run(..., encoding=...)",
        "logging RotatingFileHandler() without encoding=",
    ]


_HARNESS = """
import json, sys, tempfile, warnings
from pathlib import Path
results = []
for snippet in json.loads(sys.stdin.read()):
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / "file.txt"
        p.write_bytes(b"x")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exec(PRELUDE + snippet, {"p": p})
        results.append(any(issubclass(w.category, EncodingWarning) for w in caught))
print(json.dumps(results))
"""


@pytest.mark.skipif(sys.version_info < (3, 10), reason="EncodingWarning is new in Python 3.10")
def test_python_agrees_with_the_check() -> None:
    """Run every planted example under -X warn_default_encoding: Python warns exactly for the flagged ones."""
    snippets = FLAGGED + NOT_FLAGGED
    harness = _HARNESS.replace("PRELUDE", repr(_PRELUDE))
    completed = subprocess.run(
        [sys.executable, "-X", "warn_default_encoding", "-c", harness],
        input=json.dumps(snippets), capture_output=True, encoding="utf-8", timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    warned = dict(zip(snippets, json.loads(completed.stdout.strip().splitlines()[-1]), strict=True))
    assert [s for s in FLAGGED if not warned[s]] == []
    assert [s for s in NOT_FLAGGED if warned[s]] == []
