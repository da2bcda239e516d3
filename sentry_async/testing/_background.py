"""One asyncio event loop on a daemon thread, where fake servers can run for any caller.

A server started here keeps serving whatever the caller's own thread does: a test on
pytest-asyncio's loop, on anyio's, on trio, or no loop at all. Its lifetime does not
depend on which plugin runs the test or on the scope of that plugin's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["BackgroundLoop", "shared_loop"]

T = TypeVar("T")

_lock = threading.Lock()
_shared: BackgroundLoop | None = None


class BackgroundLoop:
    """An asyncio loop running forever on its own daemon thread."""

    def __init__(self, name: str = "sentry-async-fake") -> None:
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(started.set)
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the fake server's event loop did not start")

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the background loop and wait for its result (from another thread)."""
        if self.running_here():
            coro.close()
            raise RuntimeError("BackgroundLoop.run() called from its own loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            # Left running, the coroutine would go on holding what it was stopping.
            future.cancel()
            raise TimeoutError(
                f"the fake server's event loop did not finish within {timeout:g} s"
            ) from None

    def running_here(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


def shared_loop() -> BackgroundLoop:
    """The process-wide background loop, started on first use (a daemon: it never blocks exit)."""
    global _shared
    with _lock:
        if _shared is None or _shared.loop.is_closed():
            _shared = BackgroundLoop()
        return _shared
