"""Listens on the AT-SPI bus as a screen reader does and logs what it hears, one JSON object a line.

Run by the SYSTEM Python (``/usr/bin/python3``), which has pyatspi from apt (python3-pyatspi); the
project's virtual environment does not. tests/test_atspi.py starts it inside a private session bus:

    /usr/bin/python3 tests/atspi_listener.py --log EVENTS.jsonl --stop-file STOP --seconds 240

It first asks the session bus for the accessibility bus (``org.a11y.Bus.GetAddress``, what Orca's
libatspi does), registers for the events below, writes ``{"kind": "ready", ...}`` and then one line per
event: its time (``time.monotonic()``, one clock for every process on the machine), type, detail1/2,
any_data, the source's role, name and application, and for text events what a screen reader would
read at that moment: the caret offset and the selection with its text. It exits by itself when the
stop file appears, on SIGTERM/SIGINT, or after ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

import gi

gi.require_version("Atspi", "2.0")
import pyatspi  # noqa: E402
from gi.repository import Gio, GLib  # noqa: E402

EVENTS = (
    "object:text-selection-changed",
    "object:text-caret-moved",
    "object:announcement",
    "object:state-changed:focused",
    "focus:",
    "window:activate",
)


def a11y_bus_address(seconds: float) -> str:
    """The accessibility bus's address from the session bus (at-spi-bus-launcher answers)."""
    deadline = time.monotonic() + seconds
    session = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    while True:
        try:
            reply = session.call_sync("org.a11y.Bus", "/org/a11y/bus", "org.a11y.Bus", "GetAddress", None,
                                      GLib.VariantType.new("(s)"), Gio.DBusCallFlags.NONE, 5000, None)
            return reply.unpack()[0]
        except GLib.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def describe(accessible) -> dict:
    """Role, name and application of an event's source (what a screen reader would say it is)."""
    if accessible is None:
        return {}
    found: dict = {}
    for key, read in (("role", lambda: accessible.getRoleName()), ("name", lambda: accessible.name),
                      ("app", lambda: accessible.getApplication().name)):
        try:
            found[key] = read()
        except Exception as error:  # noqa: BLE001 - the app may be gone; log what could be read
            found[key + "_error"] = str(error)
    return found


def text_state(accessible) -> dict:
    """Caret and selection of a text object, read back over the bus right now."""
    try:
        text = accessible.queryText()
    except NotImplementedError:
        return {}
    except Exception as error:  # noqa: BLE001
        return {"text_error": str(error)}
    state: dict = {}
    try:
        state["caret"] = text.caretOffset
        count = text.getNSelections()
        state["selections"] = count
        if count:
            start, end = text.getSelection(0)
            state["selection"] = [start, end]
            state["selected_text"] = text.getText(start, end)
    except Exception as error:  # noqa: BLE001
        state["text_error"] = str(error)
    return state


def plain(value):
    """any_data as JSON: strings and numbers as they are, accessibles described, the rest as repr."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "getRoleName"):
        return describe(value)
    return repr(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--seconds", type=float, default=240.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    out = open(args.log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the whole run

    def write(record: dict) -> None:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")

    address = a11y_bus_address(min(30.0, args.seconds))

    def on_event(event) -> None:
        record = {"t": round(time.monotonic(), 4), "kind": "event", "type": str(event.type),
                  "detail1": event.detail1, "detail2": event.detail2, "any_data": plain(event.any_data),
                  "source": describe(event.source)}
        if str(event.type).startswith(("object:text-", "object:state-changed:focused", "focus:")):
            record.update(text_state(event.source))
        write(record)

    for name in EVENTS:
        pyatspi.Registry.registerEventListener(on_event, name)
    write({"t": round(time.monotonic(), 4), "kind": "ready", "a11y_bus": address, "events": list(EVENTS)})

    reason = ["timeout"]

    def check() -> bool:
        if os.path.exists(args.stop_file):
            reason[0] = "stop file"
        elif time.monotonic() < deadline:
            return True
        pyatspi.Registry.stop()
        return False

    def on_signal(number, _frame) -> None:
        reason[0] = signal.Signals(number).name
        pyatspi.Registry.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    GLib.timeout_add(100, check)
    pyatspi.Registry.start()
    write({"t": round(time.monotonic(), 4), "kind": "stopped", "reason": reason[0]})
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
