"""The public surface of ``sentry_async.testing``: names, fixtures and types are pinned."""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import anyio
import pytest

import sentry_async.testing as testing
from sentry_async import RequestTimeout, RetryPolicy, Timeouts
from sentry_async.testing import FakeSentry, FakeSentryFactory, Fault, pytest_plugin
from sentry_async.testing.pytest_plugin import FIXED_NOW

PUBLIC = [
    "FAULT_KINDS",
    "FILTERED",
    "SCALES",
    "BackgroundLoop",
    "DataBuilder",
    "Dataset",
    "FakeSentry",
    "FakeSentryFactory",
    "Fault",
    "FaultPlan",
    "IssueBuilder",
    "OrganizationBuilder",
    "ProjectBuilder",
    "RateLimitPolicy",
    "RecordedRequest",
    "RequestLog",
    "SeedConfig",
    "seed_config",
]
FIXTURES = ["fake_sentry", "fake_sentry_factory", "fake_sentry_now"]


def test_public_names_are_pinned() -> None:
    assert testing.__all__ == PUBLIC
    assert all(getattr(testing, name) is not None for name in PUBLIC)
    public = {
        name
        for name, value in vars(testing).items()
        if name[0] not in "_@" and not inspect.ismodule(value)
    }
    assert public - set(PUBLIC) == set(), "a public name not in __all__"


def test_plugin_fixtures_are_pinned_and_typed() -> None:
    assert sorted(pytest_plugin.__all__) == sorted(["FIXED_NOW", *FIXTURES])
    source = inspect.getsource(pytest_plugin)
    assert "-> FakeSentry:" in source and "-> Iterator[FakeSentryFactory]:" in source
    assert "-> datetime:" in source


@pytest.mark.parametrize(
    "cls",
    [
        testing.FakeSentry,
        testing.FakeSentryFactory,
        testing.RequestLog,
        testing.RecordedRequest,
        testing.DataBuilder,
        testing.OrganizationBuilder,
        testing.ProjectBuilder,
        testing.IssueBuilder,
    ],
)
def test_public_methods_are_annotated(cls: type) -> None:
    for name, member in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__call__"):
            continue
        func = member.fget if isinstance(member, property) else member
        if not inspect.isfunction(func):
            continue
        signature = inspect.signature(func)
        assert signature.return_annotation is not inspect.Signature.empty, f"{cls.__name__}.{name}"
        for param in list(signature.parameters.values())[1:]:
            assert param.annotation is not inspect.Parameter.empty, f"{cls.__name__}.{name}({param.name})"


def test_package_ships_type_information() -> None:
    assert (Path(testing.__file__).parent.parent / "py.typed").exists()


def test_the_suite_pins_the_clock(fake_sentry: FakeSentry, fake_sentry_now: datetime) -> None:
    assert fake_sentry_now == FIXED_NOW == fake_sentry.now


def test_a_plain_test_can_use_the_fake(fake_sentry: FakeSentry) -> None:
    request = urllib.request.Request(
        f"{fake_sentry.url}/api/0/organizations/",
        headers={"Authorization": f"Bearer {fake_sentry.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        orgs = json.load(reply)
    assert [o["slug"] for o in orgs] == fake_sentry.data.org_slugs()
    fake_sentry.requests.assert_called_once("GET", "/organizations/")


def test_closing_the_factory_stops_its_servers() -> None:
    factory = FakeSentryFactory()
    servers = [factory.start(), factory.start(orgs=0)]
    urls = [s.url for s in servers]
    factory.close()
    for url in urls:
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{url}/api/0/organizations/", timeout=5)


async def test_closing_the_factory_cancels_a_request_still_in_a_handler() -> None:
    """A slow fault the client gave up on must not hold the factory's teardown."""
    factory = FakeSentryFactory()
    servers = [factory.start(), factory.start()]
    servers[1].faults.add(Fault("slow", delay=45, times=1))
    async with servers[1].client(
        timeout=Timeouts(read=0.2, total=0.5), retry=RetryPolicy(attempts=1)
    ) as sentry:
        with pytest.raises(RequestTimeout):
            await sentry.organizations.get("org-0")
    with anyio.fail_after(20):  # a safety limit: the old teardown took 30 s, then raised
        await anyio.to_thread.run_sync(factory.close, abandon_on_cancel=True)
    assert not any(_accepts(server) for server in servers)


def test_one_server_failing_to_close_does_not_keep_the_others_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    factory = FakeSentryFactory()
    first, broken, last = factory.start(), factory.start(), factory.start()
    stop_broken = broken.close_in_thread

    def fail() -> None:
        stop_broken()
        raise RuntimeError("cannot stop")

    monkeypatch.setattr(broken, "close_in_thread", fail)
    with pytest.raises(RuntimeError, match="cannot stop"):
        factory.close()
    assert not _accepts(first) and not _accepts(last)
    assert factory.servers == []


async def test_close_in_thread_on_a_server_started_in_the_loop_refuses_and_keeps_it() -> None:
    """The wrong close says which one to use, and the right one still stops the server."""
    server = FakeSentry(scale="small")
    await server.start()
    with pytest.raises(RuntimeError, match="await close"):
        server.close_in_thread()
    assert _accepts(server)
    await server.close()
    assert not _accepts(server)


def _accepts(server: FakeSentry) -> bool:
    """Whether the server's port still takes connections (a refusal is not an HTTP error)."""
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex((server.host, server.port)) == 0


def test_the_suite_runs_async_tests_on_asyncio_only(request: pytest.FixtureRequest) -> None:
    """With trio installed, anyio would run every async test on trio too; aiohttp cannot."""
    backends = {
        item.callspec.params.get("anyio_backend", "asyncio")
        for item in request.session.items
        if hasattr(item, "callspec")
    }
    assert backends <= {"asyncio"}
    assert request.getfixturevalue("anyio_backend") == "asyncio"


def test_every_fault_kind_is_documented() -> None:
    root = Path(__file__).resolve().parent.parent
    reference = (root / "docs" / "testing.md").read_text()
    readme = (root / "README.md").read_text()
    for kind in testing.FAULT_KINDS:
        assert f"| `{kind}` |" in reference, kind
        assert f"`{kind}`" in readme, kind
    assert "docs/testing.md" in readme


@pytest.mark.parametrize(
    ("tls", "host", "expected"),
    [
        (False, "::1", "http://[::1]:8000"),
        (True, "::1", "https://[::1]:8000"),
        (False, "127.0.0.1", "http://127.0.0.1:8000"),
        (False, "localhost", "http://localhost:8000"),
    ],
)
def test_server_urls_bracket_an_ipv6_host(tls: bool, host: str, expected: str) -> None:
    """``url``, ``client()``, the region URLs and the command line's READY line."""
    from sentry_async import SentryClient
    from sentry_async.testing._server import server_url

    assert server_url(tls, host, 8000) == expected
    assert SentryClient("t", base_url=expected).base_url.port == 8000


def test_the_pytest_plugin_loads_the_fake_only_for_its_fixtures(tmp_path: Path) -> None:
    """pytest loads the plugin in every session of an environment with sentry-async: a
    session that never uses the fake must not pay for importing it and aiohttp."""
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    (tmp_path / "conftest.py").write_text(
        "import sys\n\n"
        "def pytest_sessionfinish(session):\n"
        "    names = ('aiohttp', 'sentry_async.testing._server', 'sentry_async.testing.pytest_plugin')\n"
        "    loaded = sorted(m for m in names if m in sys.modules)\n"
        "    print('LOADED', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LOADED ['sentry_async.testing.pytest_plugin']" in done.stdout, done.stdout
