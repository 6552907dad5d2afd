"""A stand-in for xdg-desktop-portal's GlobalShortcuts interface, on a private session bus.

Run by the SYSTEM Python (``/usr/bin/python3``: python3-dbus and GLib from apt) with the test's bus in
DBUS_SESSION_BUS_ADDRESS:

    /usr/bin/python3 tests/fake_portal.py --mode ok

It owns org.freedesktop.portal.Desktop and answers as the real portal does: CreateSession and
BindShortcuts return a Request object path at once and send the result later as that Request's Response
signal; the session is an object with Close; the version is a property. --mode says how it answers:
``ok`` (every shortcut gets its preferred trigger), ``refuse`` (the user cancelled the binding dialog),
``no-key`` (bound, but no key assigned), ``no-interface`` (a portal without GlobalShortcuts).

Each call is printed on stdout as one JSON line; a line ``activate ID`` on stdin emits Activated for
the last session (the user pressed that shortcut), ``quit`` ends it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

NAME = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"
PROPERTIES = "org.freedesktop.DBus.Properties"


def say(**record) -> None:
    print(json.dumps(record), flush=True)


def plain(value):
    """dbus-python values as JSON-able Python."""
    if isinstance(value, (dbus.Dictionary, dict)):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (dbus.Array, dbus.Struct, list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (dbus.Boolean,)):
        return bool(value)
    if isinstance(value, (dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64, dbus.Byte)):
        return int(value)
    return str(value)


class Request(dbus.service.Object):
    @dbus.service.signal("org.freedesktop.portal.Request", signature="ua{sv}")
    def Response(self, response, results):  # noqa: N802 - the D-Bus name
        pass


class Session(dbus.service.Object):
    def __init__(self, bus, path, portal):
        super().__init__(bus, path)
        self.portal = portal
        self.path = path

    @dbus.service.method("org.freedesktop.portal.Session", in_signature="", out_signature="")
    def Close(self):  # noqa: N802
        say(call="Close", session=self.path)
        self.remove_from_connection()


class Portal(dbus.service.Object):
    def __init__(self, bus, mode):
        super().__init__(bus, PATH)
        self.bus = bus
        self.mode = mode
        self.session = ""
        self.requests = []

    def _request(self, sender, options, response, results):
        token = str(options.get("handle_token", f"t{len(self.requests)}"))
        path = f"{PATH}/request/{sender[1:].replace('.', '_')}/{token}"
        request = Request(self.bus, path)
        self.requests.append(request)

        def answer():
            request.Response(dbus.UInt32(response), dbus.Dictionary(results, signature="sv"))
            request.remove_from_connection()
            return False

        GLib.timeout_add(20, answer)  # after the method's reply, as the real portal answers
        return dbus.ObjectPath(path)

    @dbus.service.method(PROPERTIES, in_signature="ss", out_signature="v")
    def Get(self, interface, name):  # noqa: N802
        say(call="Get", interface=str(interface), name=str(name))
        if interface == SHORTCUTS and name == "version" and self.mode != "no-interface":
            return dbus.UInt32(1)
        raise dbus.exceptions.DBusException(f"No such interface '{interface}'",
                                            name="org.freedesktop.DBus.Error.InvalidArgs")

    @dbus.service.method("org.freedesktop.host.portal.Registry", in_signature="sa{sv}", out_signature="")
    def Register(self, app_id, options):  # noqa: N802
        say(call="Register", app_id=str(app_id))

    @dbus.service.method(SHORTCUTS, in_signature="a{sv}", out_signature="o", sender_keyword="sender")
    def CreateSession(self, options, sender=None):  # noqa: N802
        if self.mode == "no-interface":
            raise dbus.exceptions.DBusException("No such interface",
                                                name="org.freedesktop.DBus.Error.UnknownMethod")
        token = str(options["session_handle_token"])
        self.session = f"{PATH}/session/{sender[1:].replace('.', '_')}/{token}"
        Session(self.bus, self.session, self)
        say(call="CreateSession", session=self.session, options=plain(options))
        return self._request(sender, options, 0, {"session_handle": dbus.String(self.session, variant_level=1)})

    @dbus.service.method(SHORTCUTS, in_signature="oa(sa{sv})sa{sv}", out_signature="o", sender_keyword="sender")
    def BindShortcuts(self, session, shortcuts, parent_window, options, sender=None):  # noqa: N802
        say(call="BindShortcuts", session=str(session), shortcuts=plain(shortcuts), parent_window=str(parent_window))
        if self.mode == "refuse":
            return self._request(sender, options, 1, {})
        bound = dbus.Array([dbus.Struct((name, dbus.Dictionary({
            "description": dbus.String(data.get("description", ""), variant_level=1),
            "trigger_description": dbus.String("" if self.mode == "no-key" else data.get("preferred_trigger", ""),
                                               variant_level=1),
        }, signature="sv"))) for name, data in shortcuts], signature="(sa{sv})")
        return self._request(sender, options, 0, {"shortcuts": dbus.Array(bound, signature="(sa{sv})",
                                                                          variant_level=1)})

    @dbus.service.signal(SHORTCUTS, signature="osta{sv}")
    def Activated(self, session, shortcut_id, timestamp, options):  # noqa: N802
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("ok", "refuse", "no-key", "no-interface"), default="ok")
    args = parser.parse_args()
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    portal = Portal(bus, args.mode)
    bus.request_name(NAME)
    loop = GLib.MainLoop()

    def command(channel, condition):
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            loop.quit()
            return False
        words = line.split()
        if words[:1] == ["activate"] and portal.session:
            portal.Activated(dbus.ObjectPath(portal.session), words[1], dbus.UInt64(int(time.time() * 1000)),
                             dbus.Dictionary({}, signature="sv"))
            say(call="Activated", shortcut=words[1], session=portal.session)
        return True

    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, command)
    say(call="ready", name=NAME)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
