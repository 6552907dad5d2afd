"""Background work whose results arrive on the UI thread: the one pattern the windows and dialogs use.

`UiDispatcher.post(callback)` may be called from any thread; the callback runs later on the thread
the dispatcher lives on (the UI thread), through a queued signal. `run_in_background` runs a
function on a daemon thread and posts its result, or its exception, back the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, Signal, Slot

from miodesk.errors import MioDeskError

log = logging.getLogger(__name__)

T = TypeVar("T")


class UiDispatcher(QObject):
    """Runs callables on its own (UI) thread, posted from any thread; nothing runs after `close()`."""

    _posted = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.closed = False
        self._posted.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def post(self, callback: Callable[[], None]) -> None:
        try:
            self._posted.emit(callback)
        except RuntimeError:
            pass  # the dispatcher's window is already gone: there is no one left to tell

    def close(self) -> None:
        self.closed = True

    @Slot(object)
    def _run(self, callback: Callable[[], None]) -> None:
        if not self.closed:
            callback()


def run_in_background(
    dispatcher: UiDispatcher,
    name: str,
    work: Callable[[], T],
    done: Callable[[T], None],
    failed: Callable[[BaseException], None],
) -> threading.Thread:
    """Run `work()` on a daemon thread; then `done(result)` or `failed(error)` on the UI thread."""

    def run() -> None:
        try:
            value = work()
        except BaseException as error:  # noqa: BLE001 - every failure must reach the UI
            if not isinstance(error, MioDeskError):
                log.exception("%s failed", name)
            caught = error  # `error` is unbound when the except block ends
            dispatcher.post(lambda: failed(caught))
            return
        dispatcher.post(lambda: done(value))

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def deliver(dispatcher: UiDispatcher, callback: Callable[..., None]) -> Callable[..., None]:
    """A function that worker threads call to have `callback(*args)` run on the UI thread."""

    def post(*args: Any) -> None:
        dispatcher.post(lambda: callback(*args))

    return post
