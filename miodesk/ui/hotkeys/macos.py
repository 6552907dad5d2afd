"""macOS: the Services menu item "Read with MioDesk" instead of a grabbed key.

Catching keys pressed in other apps on macOS needs the Accessibility or Input Monitoring permission;
a service needs none. The app bundle declares the service in its Info.plist (NSServices, written by
installer/package_info.py with SERVICE_MESSAGE and SERVICE_MENU_TITLE below); macOS then offers "Read
with MioDesk" in every app's Services menu and in the context menu of selected text, and the user can
give it a key in System Settings › Keyboard › Keyboard Shortcuts › Services. When it is chosen, macOS
sends the selected text on a pasteboard to the object the app named as its services provider, in a
message whose selector is SERVICE_MESSAGE + ":userData:error:".

There is no PyObjC here: the provider is a small Objective-C class made at run time through the
Objective-C runtime's C functions (ctypes), with one method whose implementation is a Python callback.
Those calls all go through `ObjcRuntime`, the seam the tests replace; the logic that uses them
(`install_services_provider`, `pasteboard_text`) is what the tests run. What was not done: running it
on a Mac (no Mac in this project's CI) — the frozen app's smoke test on macOS is where it first runs.

Without the app bundle (`pip install`, `python -m miodesk`) macOS knows no service: the command
`miodesk --read-clipboard` (bound in Shortcuts.app, say) is the way there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject

from miodesk.ui.hotkeys.base import ShortcutBackend, ShortcutState, Status
from miodesk.ui.hotkeys.keys import KeyCombo

log = logging.getLogger(__name__)

SERVICE_MENU_TITLE = "Read with MioDesk"
SERVICE_MESSAGE = "readWithMioDesk"
SERVICE_SELECTOR = f"{SERVICE_MESSAGE}:userData:error:"
# Objective-C type encoding of the method: void, self, _cmd, NSPasteboard *, NSString *, NSString **.
SERVICE_TYPES = b"v@:@@^@"
PROVIDER_CLASS = "MioDeskServicesProvider"
# The callback's C signature: (self, _cmd, pasteboard, userData, error) → void.
ServiceCallback = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                   ctypes.c_void_p)


class ObjcRuntime:
    """The Objective-C runtime's C functions and two AppKit symbols, through ctypes (the seam)."""

    def __init__(self) -> None:
        self._objc: Any = None
        self._appkit: Any = None
        if sys.platform == "darwin":
            self._objc = ctypes.cdll.LoadLibrary(ctypes.util.find_library("objc") or "libobjc.dylib")
            self._appkit = ctypes.cdll.LoadLibrary(ctypes.util.find_library("AppKit")
                                                   or "/System/Library/Frameworks/AppKit.framework/AppKit")
            for name, restype, argtypes in (
                ("objc_getClass", ctypes.c_void_p, [ctypes.c_char_p]),
                ("sel_registerName", ctypes.c_void_p, [ctypes.c_char_p]),
                ("objc_allocateClassPair", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
                ("objc_registerClassPair", None, [ctypes.c_void_p]),
                ("class_addMethod", ctypes.c_bool, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                                    ctypes.c_char_p]),
            ):
                function = getattr(self._objc, name)
                function.restype, function.argtypes = restype, argtypes

    def get_class(self, name: str) -> int:
        return int(self._objc.objc_getClass(name.encode()) or 0)

    def selector(self, name: str) -> int:
        return int(self._objc.sel_registerName(name.encode()))

    def new_class(self, superclass: int, name: str) -> int:
        """A new subclass (0 when a class of that name exists already)."""
        return int(self._objc.objc_allocateClassPair(superclass, name.encode(), 0) or 0)

    def add_method(self, cls: int, selector: int, implementation: Any, types: bytes) -> bool:
        return bool(self._objc.class_addMethod(cls, selector, ctypes.cast(implementation, ctypes.c_void_p), types))

    def register_class(self, cls: int) -> None:
        self._objc.objc_registerClassPair(cls)

    def send(self, receiver: int, selector: str, *args: Any, restype: Any = ctypes.c_void_p,
             argtypes: tuple[Any, ...] = ()) -> Any:
        """[receiver selector…]: objc_msgSend cast to the exact signature (required on arm64)."""
        prototype = ctypes.CFUNCTYPE(restype, ctypes.c_void_p, ctypes.c_void_p, *argtypes)
        function = prototype(ctypes.cast(self._objc.objc_msgSend, ctypes.c_void_p).value or 0)
        return function(receiver, self.selector(selector), *args)

    def appkit_string(self, name: str) -> int:
        """An NSString constant AppKit exports (NSPasteboardTypeString)."""
        return int(ctypes.c_void_p.in_dll(self._appkit, name).value or 0)

    def update_dynamic_services(self) -> None:
        self._appkit.NSUpdateDynamicServices()


def pasteboard_text(runtime: ObjcRuntime, pasteboard: int) -> str:
    """The plain text on an NSPasteboard ("" when it has none)."""
    string = runtime.send(pasteboard, "stringForType:", runtime.appkit_string("NSPasteboardTypeString"),
                          argtypes=(ctypes.c_void_p,))
    if not string:
        return ""
    utf8 = runtime.send(string, "UTF8String", restype=ctypes.c_char_p)
    return utf8.decode("utf-8", "replace") if utf8 else ""


def install_services_provider(runtime: ObjcRuntime, received: Callable[[str], None]) -> Any:
    """Make MioDesk's services provider and hand it to NSApp; returns what must stay alive (the
    callback and the provider object)."""

    def service(_self: int, _cmd: int, pasteboard: int, _user_data: int, _error: int) -> None:
        try:
            received(pasteboard_text(runtime, pasteboard))
        except Exception:  # an exception must not cross back into Objective-C
            log.exception("the Services menu's text could not be read")

    callback = ServiceCallback(service)
    cls = runtime.new_class(runtime.get_class("NSObject"), PROVIDER_CLASS)
    if not cls:
        raise RuntimeError(f"the Objective-C class {PROVIDER_CLASS} exists already")
    if not runtime.add_method(cls, runtime.selector(SERVICE_SELECTOR), callback, SERVICE_TYPES):
        raise RuntimeError(f"cannot add {SERVICE_SELECTOR} to {PROVIDER_CLASS}")
    runtime.register_class(cls)
    provider = runtime.send(runtime.send(cls, "alloc"), "init")
    application = runtime.send(runtime.get_class("NSApplication"), "sharedApplication")
    runtime.send(application, "setServicesProvider:", provider, argtypes=(ctypes.c_void_p,))
    runtime.update_dynamic_services()
    log.info("macOS services provider installed (%s)", SERVICE_SELECTOR)
    return callback, provider


class ServicesBackend(ShortcutBackend):
    """No key is grabbed; the text the Services menu hands over arrives as `textReceived`."""

    name = "macos-services"

    def __init__(self, runtime: ObjcRuntime | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent=parent)
        self._runtime = runtime
        self._keep: Any = None
        self._problem = ""

    def bind(self, shortcuts: dict[str, KeyCombo | None]) -> None:
        if self._keep is None and not self._problem:
            try:
                self._keep = install_services_provider(self._runtime or ObjcRuntime(), self.textReceived.emit)
            except Exception as error:  # noqa: BLE001 - no AppKit (not macOS), a class clash: said in Settings
                self._problem = f"the Services menu item could not be set up: {error}"
                log.warning("%s", self._problem)
        status = Status.UNAVAILABLE if self._problem else Status.SERVICES
        self._set_states({action: ShortcutState(status, self._problem) for action in shortcuts})
