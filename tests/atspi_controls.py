"""Reads an application's controls of some roles off the AT-SPI bus as a screen reader does, one JSON
object a line.

Run by the SYSTEM Python (``/usr/bin/python3``, which has pyatspi from apt), inside the private session
bus of the test (tests/test_voice_per_language.py):

    /usr/bin/python3 tests/atspi_controls.py --app MioDesk --roles "combo box,radio button" --out OUT.jsonl

It waits until the application is on the accessibility bus with a showing control of each role (a dialog
that has just opened is still being described), then writes every showing control of those roles: its
role, name, description, the names of all that label it (labelled-by) and whether it is enabled. Exit
status 0 when controls of every role were found.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import gi

gi.require_version("Atspi", "2.0")
import pyatspi  # noqa: E402

MAX_DEPTH = 40


def find_app(name: str):
    desktop = pyatspi.Registry.getDesktop(0)
    return next((app for app in desktop if app is not None and app.name == name), None)


def controls(node, roles: set[str], depth: int = 0):
    """The showing descendants of `node` whose role is in `roles`, in tree order."""
    if depth > MAX_DEPTH:
        return
    for index in range(node.childCount):
        child = node.getChildAtIndex(index)
        if child is None or not child.getState().contains(pyatspi.STATE_SHOWING):
            continue
        if child.getRoleName() in roles:
            yield child
        yield from controls(child, roles, depth + 1)


def describe(node) -> dict:
    labels = []
    for relation in node.getRelationSet():
        if relation.getRelationType() == pyatspi.RELATION_LABELLED_BY:
            labels += [relation.getTarget(i).name for i in range(relation.getNTargets())]
    return {"role": node.getRoleName(), "name": node.name, "description": node.description,
            "labelled_by": labels, "enabled": node.getState().contains(pyatspi.STATE_ENABLED)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", required=True)
    parser.add_argument("--roles", required=True, help="AT-SPI role names, comma-separated")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    roles = set(args.roles.split(","))
    deadline = time.monotonic() + args.seconds
    found: list[dict] = []
    while time.monotonic() < deadline:
        app = find_app(args.app)
        if app is not None:
            try:
                found = [describe(node) for node in controls(app, roles)]
            except Exception:  # noqa: BLE001 - the tree changed while it was read: read it again
                found = []
            if roles <= {record["role"] for record in found}:
                break
        time.sleep(0.2)
    with open(args.out, "w", encoding="utf-8") as out:
        for record in found:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0 if roles <= {record["role"] for record in found} else 1


if __name__ == "__main__":
    sys.exit(main())
