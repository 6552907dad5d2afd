"""Dumps what the AT-SPI bus carries for one application: every accessible object a screen reader can reach,
with its role, name, description, states, (for text) its text and (for a slider, progress bar …) its value as
[minimum, current, maximum], one JSON object a line.

Run by the SYSTEM Python (``/usr/bin/python3``, which has pyatspi from apt) inside the private session bus
that the test set up:

    /usr/bin/python3 tests/atspi_tree.py --app MioDesk --out TREE.jsonl [--seconds 30]

It waits until the application is on the bus, then walks its tree (depth first) and exits.
"""

from __future__ import annotations

import argparse
import json
import time

import gi

gi.require_version("Atspi", "2.0")
import pyatspi  # noqa: E402

MAX_NODES = 3000


def describe(node, depth: int, path: str) -> dict:
    record: dict = {"depth": depth, "path": path}
    for key, read in (("role", node.getRoleName), ("name", lambda: node.name),
                      ("description", lambda: node.description)):
        try:
            record[key] = read()
        except Exception as error:  # noqa: BLE001 - record what could not be read
            record[key + "_error"] = str(error)
    try:
        states = node.getState()
        record["states"] = sorted(pyatspi.stateToString(s) for s in states.getStates())
    except Exception as error:  # noqa: BLE001
        record["states_error"] = str(error)
    try:
        relations = node.getRelationSet()
        record["labelled_by"] = [relation.getTarget(0).name for relation in relations
                                 if relation.getRelationType() == pyatspi.RELATION_LABELLED_BY
                                 and relation.getNTargets()]
    except Exception:  # noqa: BLE001
        pass
    try:
        text = node.queryText()
        record["text"] = text.getText(0, min(text.characterCount, 200))
    except Exception:  # noqa: BLE001 - not a text object
        pass
    try:
        value = node.queryValue()
        record["value"] = [value.minimumValue, value.currentValue, value.maximumValue]
    except Exception:  # noqa: BLE001 - no value (only sliders, spin boxes, progress bars … have one)
        pass
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    app = None
    while app is None:
        desktop = pyatspi.Registry.getDesktop(0)
        app = next((child for child in desktop if child is not None and child.name == args.app), None)
        if app is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"{args.app} did not appear on the accessibility bus")
            time.sleep(0.2)
    records = []
    stack = [(app, 0, "0")]
    while stack and len(records) < MAX_NODES:
        node, depth, path = stack.pop()
        records.append(describe(node, depth, path))
        try:
            children = [node.getChildAtIndex(index) for index in range(node.childCount)]
        except Exception:  # noqa: BLE001
            children = []
        for index, child in reversed(list(enumerate(children))):
            if child is not None:
                stack.append((child, depth + 1, f"{path}.{index}"))
    with open(args.out, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
