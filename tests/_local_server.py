"""A test's own aiohttp app served on 127.0.0.1: what the hostile and scripted servers of
the suite start and stop the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def local_app(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 for the duration; yields its base URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
