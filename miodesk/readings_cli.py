"""`miodesk dict …`: the readings dictionary (読み方辞書) from a terminal.

The same file as the window's Tools › Readings dictionary and the speech server's (see
miodesk.text.readings): a change made here is heard from the next sentence a reading prepares.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from miodesk.errors import MioDeskError

if TYPE_CHECKING:
    from miodesk.text.readings import ChangeReport, Entry, LiveReadings, ReadingsStore

# The parser is built on every start of `miodesk`: these mirror miodesk.text.readings (a test checks
# they agree) so that only `miodesk dict` loads the dictionary code.
LANGUAGES = ("ja", "en", "any")
IMPORT_FORMATS = ("auto", "miodesk", "voicevox", "ime")
MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 0, 10, 5

SHOWN_PROBLEMS = 5  # skipped lines printed one by one; the rest are counted
WHERE = {"ja": "Japanese sentences", "en": "English sentences", "any": "every sentence"}


def add_dict_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dict", help="the readings dictionary: words the speech model should say differently",
        description="The readings dictionary (読み方辞書): each entry replaces a word by what the speech model is "
        "given instead, before normalisation. The window's Tools › Readings dictionary and the speech server "
        "use the same file; a change applies from the next sentence.")
    actions = parser.add_subparsers(dest="dict_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add a reading (or replace the one for the same word and language)")
    add.add_argument("surface", metavar="SURFACE", help="the word as written (with --regex: a regular expression)")
    add.add_argument("reading", metavar="READING", help="what to say instead (with --regex: may use \\1, \\g<name>)")
    add.add_argument("--lang", choices=LANGUAGES, default=None,
                     help="the sentences it applies to (default: the reading's language: a kana reading is "
                          "for Japanese sentences, a Latin one for English, else any)")
    add.add_argument("--regex", action="store_true", help="SURFACE is a Python regular expression")
    add.add_argument("--priority", type=int, default=DEFAULT_PRIORITY, metavar="N",
                     help=f"{MIN_PRIORITY} to {MAX_PRIORITY}; decides between matches of the same length "
                          f"(default {DEFAULT_PRIORITY})")
    add.add_argument("--note", default="", help="a note for yourself")
    add.add_argument("--disabled", action="store_true", help="add it switched off")

    remove = actions.add_parser("remove", help="remove the readings of a word (any width form of it)")
    remove.add_argument("surface", metavar="SURFACE")
    remove.add_argument("--lang", choices=LANGUAGES, help="only the entry for these sentences")

    for name, what in (("enable", "switch a reading on"), ("disable", "switch a reading off (kept in the file)")):
        toggle = actions.add_parser(name, help=what)
        toggle.add_argument("surface", metavar="SURFACE")
        toggle.add_argument("--lang", choices=LANGUAGES, help="only the entry for these sentences")

    listing = actions.add_parser("list", help="every entry")
    listing.add_argument("search", nargs="?", default="", metavar="TEXT", help="only entries containing TEXT")
    listing.add_argument("--json", action="store_true", help="one JSON array")

    imp = actions.add_parser("import", help="add the entries of a VOICEVOX user dictionary (JSON), an IME word "
                                            "list (Microsoft IME, Google 日本語入力) or a MioDesk readings file")
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--format", choices=IMPORT_FORMATS, default="auto", help="default: found from the content")

    exp = actions.add_parser("export", help="write the dictionary to FILE (MioDesk's tab-separated format)")
    exp.add_argument("file", type=Path, metavar="FILE")

    apply = actions.add_parser("apply", help="print the text exactly as the speech model will be given it: "
                                             "one line per sentence, after the dictionary and normalisation")
    apply.add_argument("text", metavar="TEXT", help='the text ("-" reads standard input)')

    actions.add_parser("path", help="where the dictionary file is")


def add_readings_option(parser: argparse.ArgumentParser) -> None:
    """`--no-dict` for the commands that speak (speak, read, serve)."""
    parser.add_argument("--no-dict", action="store_true",
                        help="speak without the readings dictionary (see `miodesk dict`)")


def readings_for(args: argparse.Namespace) -> LiveReadings:
    """The dictionary a speaking command uses: the user's file, followed as it changes (none with --no-dict)."""
    from miodesk.text.readings import LiveReadings

    return LiveReadings(enabled=not getattr(args, "no_dict", False))


def _where(entry: Entry) -> str:
    details = [WHERE[entry.lang]]
    if entry.regex:
        details.append("regular expression")
    if entry.priority != DEFAULT_PRIORITY:
        details.append(f"priority {entry.priority}")
    if not entry.enabled:
        details.append("off")
    return ", ".join(details)


def _line(entry: Entry) -> str:
    note = f"  # {entry.note}" if entry.note else ""
    return f"{entry.surface} → {entry.reading}  ({_where(entry)}){note}"


def _report(report: ChangeReport) -> None:
    for entry in report.added:
        print(f"Added: {_line(entry)}")
    for old, new in report.replaced:
        print(f"Replaced the reading of “{old.surface}” ({WHERE[old.lang]}): {old.reading} → {new.reading}"
              + (f"  ({_where(new)})" if _where(new) != _where(old) else ""))


def _warn_all(problems: list[str]) -> None:
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"miodesk: warning: skipped {problem}", file=sys.stderr)
    if len(problems) > SHOWN_PROBLEMS:
        print(f"miodesk: warning: … and {len(problems) - SHOWN_PROBLEMS} more skipped", file=sys.stderr)


def _add(store: ReadingsStore, args: argparse.Namespace) -> int:
    from miodesk.text.readings import Entry, default_language_for

    lang = args.lang or default_language_for(args.reading)
    entry = Entry(args.surface, args.reading, lang, args.regex, args.priority, not args.disabled, args.note)
    report = store.add(entry)
    if not report.added and not report.replaced:
        print(f"Already in the dictionary: {_line(entry)}")
    _report(report)
    return 0


def _remove(store: ReadingsStore, args: argparse.Namespace) -> int:
    gone = store.remove(args.surface, args.lang)
    if not gone:
        where = f" for {WHERE[args.lang]}" if args.lang else ""
        raise MioDeskError(f"“{args.surface}” has no reading{where} in the dictionary (see `miodesk dict list`).")
    for entry in gone:
        print(f"Removed: {_line(entry)}")
    return 0


def _toggle(store: ReadingsStore, args: argparse.Namespace, enabled: bool) -> int:
    changed = store.set_enabled(args.surface, enabled, args.lang)
    if not changed:
        raise MioDeskError(f"“{args.surface}” has no reading in the dictionary (see `miodesk dict list`).")
    for entry in changed:
        print(f"{'On' if enabled else 'Off'}: {_line(entry)}")
    return 0


def _list(store: ReadingsStore, args: argparse.Namespace) -> int:
    from miodesk.text.readings import nfkc

    entries, problems = store.read()
    _warn_all(problems)
    wanted = nfkc(args.search).casefold()
    shown = [e for e in entries if not wanted or any(wanted in nfkc(part).casefold()
                                                     for part in (e.surface, e.reading, e.note))]
    if args.json:
        print(json.dumps([dataclasses.asdict(e) for e in shown], ensure_ascii=False))
        return 0
    if not entries:
        print(f"The readings dictionary is empty ({store.path}). Add a reading with: "
              "miodesk dict add SURFACE READING")
        return 0
    for entry in shown:
        print(_line(entry))
    if wanted and not shown:
        print(f"No reading matches “{args.search}” ({len(entries)} entries in all).")
    return 0


def _import(store: ReadingsStore, args: argparse.Namespace) -> int:
    from miodesk.text.readings import read_import

    result = read_import(args.file, args.format)
    _warn_all(result.skipped)
    if not result.entries:
        raise MioDeskError(f"'{args.file.name}' ({result.kind}) holds no reading that could be imported.")
    report = store.add_all(result.entries)
    unchanged = len(result.entries) - len(report.added) - len(report.replaced)
    parts = [f"{len(report.added)} new", f"{len(report.replaced)} replaced"]
    if unchanged:
        parts.append(f"{unchanged} already there")
    summary = (f"Imported {len(result.entries)} readings from {args.file.name} ({result.kind}): "
               + ", ".join(parts))
    if result.accents_dropped:
        summary += (f"; the accent data of {result.accents_dropped} words was dropped (MioDesk's speech model "
                    "takes no accent marks)")
    if result.skipped:
        summary += f"; {len(result.skipped)} skipped (see above)"
    print(summary + ".")
    return 0


def _export(store: ReadingsStore, args: argparse.Namespace) -> int:
    target: Path = args.file
    if target.is_dir():
        raise MioDeskError(f"'{target}' is a folder; give a file name, e.g. {target / 'readings.tsv'}.")
    if not target.parent.exists():
        raise MioDeskError(f"Cannot write '{target}': the folder '{target.parent}' does not exist.")
    count = store.export(target)
    print(f"{target}: {count} readings")
    return 0


def _apply(store: ReadingsStore, args: argparse.Namespace) -> int:
    from miodesk.text.readings import LiveReadings
    from miodesk.text.segment import iter_utterances

    text = sys.stdin.read() if args.text == "-" else args.text
    readings = LiveReadings(store.path)  # the file's unusable lines are logged (a warning each) as it loads
    lines = [readings.prepare_text(utterance.text) for utterance in iter_utterances(text)]
    if not lines:
        raise MioDeskError("The text holds nothing that can be spoken (no letters or digits).")
    for line in lines:
        print(line)
    return 0


def run_dict(args: argparse.Namespace) -> int:
    from miodesk.text.readings import ReadingsStore

    store = ReadingsStore()
    command = args.dict_command
    if command == "path":
        print(store.path)
        return 0
    handlers = {"add": _add, "remove": _remove, "list": _list, "import": _import, "export": _export,
                "apply": _apply}
    if command in ("enable", "disable"):
        return _toggle(store, args, command == "enable")
    return handlers[command](store, args)
