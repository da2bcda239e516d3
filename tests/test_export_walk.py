"""A stream's recorded progress is the paginator's cursor walk, not arithmetic of its own."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from sentry_async import Position, RetryPolicy, SentryClient, _paging
from sentry_async.export import (
    CHECKPOINT_NAME,
    CheckpointError,
    Exporter,
    ExportSpec,
    Progress,
    StreamState,
    _runner,
)
from sentry_async.pagination import Page, Paginator
from sentry_async.testing import FakeSentry, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
DATA = SeedConfig(
    orgs=1, projects_per_org=2, issues_per_project=16, events_per_issue=(1, 3), days=10
)
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=6)

Factory = Callable[..., Awaitable[FakeSentry]]


def _state(**kwargs: Any) -> StreamState:
    return StreamState(
        key="p@w",
        file="p.jsonl",
        target="1",
        window_start="2026-05-01T00:00:00Z",
        window_end="2026-05-02T00:00:00Z",
        **kwargs,
    )


def _client(server: FakeSentry) -> SentryClient:
    retry = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
    return SentryClient(server.token, base_url=server.url, retry=retry)


def _spec(**kwargs: Any) -> ExportSpec:
    kwargs.setdefault("window", timedelta(days=2))
    return ExportSpec(kind="events", org=ORG, start=START, end=END, page_size=2, **kwargs)


def test_stream_state_position_and_advance() -> None:
    state = _state()
    assert state.position == Position(None)
    state.advance(Position("0:2:0"))
    assert (state.cursor, state.done, state.position) == ("0:2:0", False, Position("0:2:0"))
    state.advance(Position(None, done=True))
    assert (state.cursor, state.done) == (None, True)
    assert state.position == Position(None, done=True)


def test_a_mid_page_position_is_refused_and_changes_nothing() -> None:
    state = _state(cursor="0:2:0")
    with pytest.raises(CheckpointError, match=r"p@w.*skip=1"):
        state.advance(Position("0:2:0", skip=1))
    assert state.position == Position("0:2:0")


def test_a_checkpointed_stream_keeps_cursor_and_done_in_its_json() -> None:
    state = _state()
    state.advance(Position("0:4:0"))
    saved = msgspec.json.decode(msgspec.json.encode(state))
    assert (saved["cursor"], saved["done"]) == ("0:4:0", False)
    assert "skip" not in saved and "position" not in saved
    # A stream written before positions existed reads back at its cursor.
    old = (
        b'{"key":"p@w","file":"p.jsonl","target":"1","window_start":"2026-05-01T00:00:00Z",'
        b'"window_end":"2026-05-02T00:00:00Z","cursor":"0:4:0","done":false,"items":4}'
    )
    assert msgspec.json.decode(old, type=StreamState).position == Position("0:4:0")


class _Recording:
    """A stream's paginator whose walk positions are noted as each page is handed out."""

    def __init__(self, inner: Paginator[msgspec.Raw], log: list[tuple[str | None, Position]]):
        self.inner = inner
        self.log = log
        self.started_at = inner.position

    @property
    def position(self) -> Position:
        return self.inner.position

    def read_ahead(self, pages: int | None) -> _Recording:
        self.inner = self.inner.read_ahead(pages)
        return self

    async def pages(self) -> AsyncIterator[Page[msgspec.Raw]]:
        async for page in self.inner.pages():
            self.log.append((page.cursor, self.inner.position))
            yield page


async def test_each_stream_records_the_walks_position_after_each_page(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    walks: dict[str, list[tuple[str | None, Position]]] = {}
    starts: dict[str, Position] = {}
    real = _runner.stream_pages

    def recording(*args: Any) -> _Recording:
        state: StreamState = args[2]
        paginator = _Recording(real(*args), walks.setdefault(state.key, []))
        starts[state.key] = paginator.started_at
        return paginator

    monkeypatch.setattr(_runner, "stream_pages", recording)
    recorded: dict[str, list[Position]] = {}

    class Watching(Progress):
        def page(self, stream: str, **counts: Any) -> None:
            assert exporter.checkpoint is not None
            state = exporter.checkpoint.streams[stream]
            recorded.setdefault(stream, []).append(state.position)
            super().page(stream, **counts)

    with anyio.fail_after(30):
        async with _client(server) as client:
            exporter = Exporter(client, _spec(), tmp_path, progress=Watching(), concurrency=2)
            manifest = await exporter.run()
    assert manifest.items > 0
    assert len(walks) == len(manifest.streams) >= 3
    for key, walk in walks.items():
        assert recorded[key] == [position for _, position in walk], key
        assert walk[-1][1].done and not any(p.done for _, p in walk[:-1])
        assert starts[key] == Position(None)


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        ({"limit": 3}, r"inside a page.*skip=1"),
        ({"max_pages": 1}, r"walk ended at .* before its end"),
    ],
)
async def test_a_walk_that_stops_short_is_refused_not_finished(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cut: dict[str, int],
    message: str,
) -> None:
    """The exporter writes whole pages to each stream's end: a walk trimmed inside a page,
    or ended before its last page, must not pass for a finished stream."""
    server = await fake_sentry_factory(scale=DATA)
    real = _runner.stream_pages

    def trimmed(*args: Any) -> Paginator[msgspec.Raw]:
        return dataclasses.replace(real(*args), **cut)

    monkeypatch.setattr(_runner, "stream_pages", trimmed)
    with anyio.fail_after(30), pytest.raises(CheckpointError, match=message):
        async with _client(server) as client:
            await Exporter(client, _spec(), tmp_path, concurrency=1).run()
    checkpoint = msgspec.json.decode((tmp_path / CHECKPOINT_NAME).read_bytes())
    assert not any(s["done"] for s in checkpoint["streams"].values()), (
        "no stream is recorded as finished"
    )


@pytest.mark.parametrize(
    ("projects", "concurrency", "ahead"),
    [
        (["project-0-0"], 1, True),
        (["project-0-0"], 4, True),
        (["project-0-0", "project-0-1"], 2, False),
    ],
)
async def test_a_stream_running_alone_asks_for_its_next_page_before_decoding_this_one(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    projects: list[str],
    concurrency: int,
    ahead: bool,
) -> None:
    """Alone, a stream would leave the server idle while each page is decoded and written:
    it reads ahead, and its next request leaves before the decoding. Streams side by side
    overlap each other and do not. The fake server answers from a thread of its own, so it
    hears a request while a decode blocks this one."""
    server = await fake_sentry_factory(scale=DATA)
    route = ("GET", f"/projects/{ORG}/project-0-0/events/")
    decode = _paging.decode_items
    heard: list[int] = []

    def waiting_decode(response: Any, item_type: Any, limit: int) -> Any:
        if not heard and response.url.path.endswith("/project-0-0/events/"):
            deadline = time.monotonic() + (5 if ahead else 0.2)
            while len(server.requests.matching(*route)) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            heard.append(len(server.requests.matching(*route)))
        return decode(response, item_type, limit)

    monkeypatch.setattr(_paging, "decode_items", waiting_decode)
    spec = _spec(window=None, projects=tuple(projects))
    with anyio.fail_after(30):
        async with _client(server) as client:
            manifest = await Exporter(client, spec, tmp_path, concurrency=concurrency).run()
    assert manifest.pages > 2
    assert heard == [2 if ahead else 1]
