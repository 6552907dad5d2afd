"""Wayland: the xdg-desktop-portal GlobalShortcuts interface (KDE Plasma, GNOME 48 and later).

A Wayland compositor shows no app the keys typed into another, so global shortcuts are the desktop's
to give: MioDesk asks the portal for a session (CreateSession), binds its two shortcuts in it with the
keys it prefers (BindShortcuts; the desktop may ask the user, and decides the keys), and hears the
Activated signal when one is pressed. Each call answers with a Request object whose Response signal
carries the result (0 success, 1 the user cancelled, 2 another end). A new binding (Settings) closes
the session and makes a new one. Where the portal or its GlobalShortcuts interface is missing, every
shortcut is UNAVAILABLE and Settings points at the commands (`miodesk --read-selection`), which any
desktop's own keyboard settings can run.

The D-Bus messages are made and read with jeepney (pure Python), not QtDBus: BindShortcuts takes an
array of structures, a(sa{sv}), which PySide6 cannot marshal (it has no qDBusRegisterMetaType, and its
QDBusArgument writes strings as arrays). jeepney's socket is watched by a QSocketNotifier, so every
reply and signal is handled on the UI thread, as QtDBus would.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier

from miodesk.ui.hotkeys.base import ShortcutBackend, ShortcutState, Status
from miodesk.ui.hotkeys.keys import KeyCombo

log = logging.getLogger(__name__)

PORTAL_NAME = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"
REQUEST = "org.freedesktop.portal.Request"
SESSION = "org.freedesktop.portal.Session"
REGISTRY = "org.freedesktop.host.portal.Registry"  # names a host (not sandboxed) app: portal 1.19+
APP_ID = "miodesk"  # the desktop file's name: miodesk.desktop

# What Settings shows for an UNAVAILABLE shortcut is told by these details.
NO_SESSION_BUS = "no session bus"
NO_PORTAL = "no xdg-desktop-portal on the session bus"
NO_GLOBAL_SHORTCUTS = "the desktop's portal has no GlobalShortcuts interface"

DESCRIPTIONS = {"read-selection": "Read the selection aloud", "read-clipboard": "Read the clipboard aloud"}


class PortalBackend(ShortcutBackend):
    name = "portal"

    def __init__(self, bus: str = "SESSION", parent: QObject | None = None) -> None:
        """`bus`: "SESSION" or a D-Bus address (tests give their private bus)."""
        super().__init__(parent=parent)
        self._bus = bus
        self._connection: Any = None
        self._notifier: QSocketNotifier | None = None
        self._replies: dict[int, Callable[[Any], None]] = {}  # serial → what to do with the reply
        self._responses: dict[str, Callable[[int, dict], None]] = {}  # request path → what to do with Response
        self._tokens = itertools.count(1)
        self._session = ""
        self._wanted: dict[str, KeyCombo | None] = {}
        self._generation = 0
        self.version = 0

    # --- binding -------------------------------------------------------------------------------------------

    def bind(self, shortcuts: dict[str, KeyCombo | None]) -> None:
        self._generation += 1
        self._wanted = dict(shortcuts)
        self._close_session()
        if not any(shortcuts.values()):
            self._set_states({action: ShortcutState(Status.OFF) for action in shortcuts})
            return
        problem = self._connect()
        if problem:
            self._unavailable(problem)
            return
        self._set_states({action: ShortcutState(Status.OFF if combo is None else Status.PENDING)
                          for action, combo in shortcuts.items()})
        generation = self._generation
        self._call(PORTAL_PATH, "org.freedesktop.DBus.Properties", "Get", "ss", (SHORTCUTS, "version"),
                   lambda reply: self._got_version(reply, generation))

    def close(self) -> None:
        self._generation += 1
        self._close_session()
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        super().close()

    def _got_version(self, reply: Any, generation: int) -> None:
        if generation != self._generation:
            return
        error = _error_name(reply)
        if error:
            unknown_service = error in ("org.freedesktop.DBus.Error.ServiceUnknown",
                                        "org.freedesktop.DBus.Error.NameHasNoOwner")
            self._unavailable(NO_PORTAL if unknown_service else NO_GLOBAL_SHORTCUTS, error)
            return
        self.version = int(reply.body[0][1])
        log.info("xdg-desktop-portal GlobalShortcuts version %d", self.version)
        token = self._token()
        self._request("CreateSession", "a{sv}", (), {"session_handle_token": ("s", token)},
                      lambda code, results: self._session_created(code, results, generation))

    def _session_created(self, code: int, results: dict, generation: int) -> None:
        if generation != self._generation:
            return
        if code != 0 or "session_handle" not in results:
            self._refused(code, "CreateSession")
            return
        self._session = str(results["session_handle"][1])
        shortcuts = [(action, {"description": ("s", DESCRIPTIONS.get(action, action)),
                               "preferred_trigger": ("s", combo.portal_trigger())})
                     for action, combo in self._wanted.items() if combo is not None]
        self._request("BindShortcuts", "oa(sa{sv})sa{sv}", (self._session, shortcuts, ""), {},
                      lambda code, results: self._bound(code, results, generation))

    def _bound(self, code: int, results: dict, generation: int) -> None:
        if generation != self._generation:
            return
        if code != 0:
            self._refused(code, "BindShortcuts")
            return
        self._show_bound(results.get("shortcuts", ("", []))[1])

    def _show_bound(self, bound: list) -> None:
        """The shortcuts the desktop reports, each with the key it gave it (none: not assigned)."""
        triggers = {str(action): str(data.get("trigger_description", ("s", ""))[1]) for action, data in bound}
        states: dict[str, ShortcutState] = {}
        for action, combo in self._wanted.items():
            if combo is None:
                states[action] = ShortcutState(Status.OFF)
            elif triggers.get(action):
                states[action] = ShortcutState(Status.ACTIVE, triggers[action])
            else:
                # Bound with no key: the desktop gave it none (the preferred key was taken, or the user
                # left it empty); it can be set in the desktop's shortcut settings.
                states[action] = ShortcutState(Status.TAKEN, "the desktop assigned no key")
        self._set_states(states)

    def _refused(self, code: int, step: str) -> None:
        detail = f"{step}: {'cancelled by the user' if code == 1 else f'ended with response {code}'}"
        self._set_states({action: ShortcutState(Status.OFF if combo is None else Status.REFUSED, detail)
                          for action, combo in self._wanted.items()})

    def _unavailable(self, reason: str, error: str = "") -> None:
        if error:
            log.info("GlobalShortcuts portal: %s", error)
        self._set_states({action: ShortcutState(Status.OFF if combo is None else Status.UNAVAILABLE, reason)
                          for action, combo in self._wanted.items()})

    def _close_session(self) -> None:
        if self._session and self._connection is not None:
            self._call(self._session, SESSION, "Close", None, (), lambda reply: None)
        self._session = ""

    # --- D-Bus ---------------------------------------------------------------------------------------------

    def _connect(self) -> str:
        if self._connection is not None:
            return ""
        try:
            from jeepney import MatchRule, message_bus
            from jeepney.io.blocking import open_dbus_connection
        except ImportError:
            return "jeepney is not installed"
        try:
            self._connection = open_dbus_connection(bus=self._bus)
        except Exception as error:  # noqa: BLE001 - no bus address, a refused socket, failed authentication
            log.info("no session bus: %s", error)
            return NO_SESSION_BUS
        self._notifier = QSocketNotifier(self._connection.sock.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._read)
        for rule in (MatchRule(type="signal", interface=REQUEST, member="Response"),
                     MatchRule(type="signal", interface=SHORTCUTS, path=PORTAL_PATH)):
            self._send(message_bus.AddMatch(rule), lambda reply: None)
        # A host app names itself, so the desktop knows whose shortcuts these are (older portals lack it).
        self._call(PORTAL_PATH, REGISTRY, "Register", "sa{sv}", (APP_ID, {}), lambda reply: None)
        return ""

    def _sender_path(self) -> str:
        return str(self._connection.unique_name).lstrip(":").replace(".", "_")

    def _token(self) -> str:
        return f"miodesk{next(self._tokens)}"

    def _request(self, method: str, signature: str, body: tuple, options: dict,
                 on_response: Callable[[int, dict], None]) -> None:
        """Call a portal method whose answer comes as the Response of a Request object."""
        token = self._token()
        path = f"{PORTAL_PATH}/request/{self._sender_path()}/{token}"
        self._responses[path] = on_response  # before the call: the Response may come before the reply

        def started(reply: Any) -> None:
            error = _error_name(reply)
            if error:
                self._responses.pop(path, None)
                log.warning("GlobalShortcuts %s failed: %s %s", method, error, reply.body)
                self._unavailable(f"{method} failed: {error}")
                return
            handle = str(reply.body[0])
            if handle != path and path in self._responses:  # a portal older than the predicted paths
                self._responses[handle] = self._responses.pop(path)

        self._call(PORTAL_PATH, SHORTCUTS, method, signature, (*body, {"handle_token": ("s", token), **options}),
                   started)

    def _call(self, path: str, interface: str, method: str, signature: str | None, body: tuple,
              reply: Callable[[Any], None]) -> None:
        from jeepney import DBusAddress, new_method_call

        address = DBusAddress(path, bus_name=PORTAL_NAME, interface=interface)
        self._send(new_method_call(address, method, signature, body), reply)

    def _send(self, message: Any, reply: Callable[[Any], None]) -> None:
        serial = next(self._connection.outgoing_serial)
        self._replies[serial] = reply
        try:
            self._connection.send(message, serial=serial)
        except OSError as error:
            self._lost(error)

    def _read(self) -> None:
        from jeepney import HeaderFields, MessageType

        while self._connection is not None:
            try:
                message = self._connection.receive(timeout=0)
            except TimeoutError:
                return
            except (OSError, ValueError) as error:  # the bus went away
                self._lost(error)
                return
            fields = message.header.fields
            kind = message.header.message_type
            if kind in (MessageType.method_return, MessageType.error):
                handler = self._replies.pop(fields.get(HeaderFields.reply_serial, -1), None)
                if handler is not None:
                    handler(message)
            elif kind == MessageType.signal:
                self._signal(fields.get(HeaderFields.interface), fields.get(HeaderFields.member),
                             fields.get(HeaderFields.path), message.body)

    def _signal(self, interface: str, member: str, path: str, body: tuple) -> None:
        if interface == REQUEST and member == "Response":
            handler = self._responses.pop(path, None)
            if handler is not None:
                code, results = body
                handler(int(code), dict(results))
        elif interface == SHORTCUTS and member == "Activated":
            session, action = str(body[0]), str(body[1])
            if session == self._session and self._wanted.get(action) is not None:
                log.info("global shortcut pressed: %s (portal)", action)
                self.activated.emit(action)
        elif interface == SHORTCUTS and member == "ShortcutsChanged" and str(body[0]) == self._session:
            self._show_bound(body[1])  # the user changed the keys in the desktop's settings

    def _lost(self, error: BaseException) -> None:
        log.warning("the session bus connection of the global shortcuts ended: %s", error)
        if self._notifier is not None:
            self._notifier.setEnabled(False)
        if self._connection is not None:
            try:
                self._connection.close()
            except OSError:
                pass
        self._connection, self._session = None, ""
        self._unavailable(NO_SESSION_BUS)


def _error_name(message: Any) -> str:
    from jeepney import HeaderFields, MessageType

    if message.header.message_type == MessageType.error:
        return str(message.header.fields.get(HeaderFields.error_name, "error"))
    return ""
