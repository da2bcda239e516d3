"""The fake server's edges: a method its route lacks, and its command line stopped early.

A method an endpoint does not define is Sentry's 405 (``Endpoint.dispatch``,
``api/base.py``, falls back to DRF's ``http_method_not_allowed``): ``{"detail": "Method
\\"POST\\" not allowed."}`` with ``Allow``. It comes after DRF's ``initial()``, so a request
without credentials is a 401 and a token without the scopes the permission class lists for
the method a 403, and before ``convert_args``, so no organization or issue is looked up.
A path no endpoint serves stays a 404.

``python -m sentry_async.testing`` interrupted before ``READY`` (imports, a large data
set's build) exits quietly with 130, as it exits quietly after ``READY``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from multidict import CIMultiDictProxy

from sentry_async import RetryPolicy
from sentry_async.errors import APIError
from sentry_async.testing import FakeSentry
from sentry_async.testing._app import ROUTE_GROUPS

ORG = "org-0"
ISSUES = f"/api/0/organizations/{ORG}/issues/"
REGIONS = "/api/0/users/me/regions/"
DENIED = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "The requested resource does not exist"}
TIMEOUT = 60
SENTRY_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
"""Django's ``http_method_names`` order, in which ``_allowed_methods()`` lists them."""

_FILL = {
    # An organization and ids that do not exist: a 405 is answered before any look-up.
    "{org}": "no-such-org",
    "{project}": "no-such-project",
    "{short_id}": "NOPE-1",
    "{issue_id}": "1",
    "{event_id}": "0" * 32,
    "{key}": "browser",
}


def _served() -> dict[str, set[str]]:
    """Each path the fake serves -> its methods."""
    served: dict[str, set[str]] = {}
    for group in ROUTE_GROUPS:
        method, _, path = group.partition(" ")
        served.setdefault(path, set()).add(method)
    return served


def _allow(methods: set[str]) -> str:
    """What ``Allow`` says of a route serving ``methods``: ``HEAD`` where ``GET`` is, and
    ``OPTIONS`` (Django's ``View.options``, on every view)."""
    listed = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
    return ", ".join(m for m in SENTRY_ORDER if m in listed)


def _fill(path: str) -> str:
    for name, value in _FILL.items():
        path = path.replace(name, value)
    return path


async def _send(
    server: FakeSentry, method: str, path: str, token: str | None
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    """Status, decoded body and headers of one plain request (``token=None``: none)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with anyio.fail_after(TIMEOUT):
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, f"{server.url}{path}", data=b"{}", headers=headers) as reply,
        ):
            raw = await reply.read()
    return reply.status, msgspec.json.decode(raw) if raw else None, reply.headers


async def test_a_method_the_bulk_issue_endpoint_lacks_is_sentrys_405(
    fake_sentry: FakeSentry,
) -> None:
    status, body, headers = await _send(fake_sentry, "POST", ISSUES, fake_sentry.token)
    assert (status, body) == (405, {"detail": 'Method "POST" not allowed.'})
    assert headers["Allow"] == "GET, PUT, DELETE, HEAD, OPTIONS"
    assert headers["Content-Type"].startswith("application/json")
    assert "X-Sentry-Rate-Limit-Limit" in headers
    record = fake_sentry.requests.last("POST", "/organizations/{org}/issues/")
    assert record is not None and record.status == 405


@pytest.mark.parametrize("path", sorted(set(_served()) - {REGIONS}))
async def test_every_served_path_answers_405_for_a_method_it_lacks(
    fake_sentry: FakeSentry, path: str
) -> None:
    """POST, which every permission class but the regions endpoint's (a 403, below) lists,
    so the full token passes the scope check; made-up ids, since nothing is looked up."""
    status, body, headers = await _send(fake_sentry, "POST", _fill(path), fake_sentry.token)
    assert (status, body) == (405, {"detail": 'Method "POST" not allowed.'})
    assert headers["Allow"] == _allow(_served()[path])


async def test_the_405_comes_after_authentication_and_the_scope_check(
    fake_sentry: FakeSentry,
) -> None:
    reader = fake_sentry.add_token("reader", scopes=["org:read", "event:read"])
    status, body, _ = await _send(fake_sentry, "POST", ISSUES, None)
    assert (status, body) == (401, {"detail": "Authentication credentials were not provided."})
    status, body, headers = await _send(fake_sentry, "POST", ISSUES, reader)
    assert (status, body) == (403, DENIED)
    assert headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="event:admin event:write"'
    )
    # No permission class lists PATCH (nor HEAD): refused to every token, with no challenge.
    for method in ("PATCH", "HEAD"):
        path = "/api/0/projects/a/b/issues/"
        status, _, headers = await _send(fake_sentry, method, path, fake_sentry.token)
        assert (method, status) == (method, 403)
        assert "WWW-Authenticate" not in headers
    status, body, _ = await _send(fake_sentry, "POST", REGIONS, fake_sentry.token)
    assert (status, body) == (403, DENIED)


@pytest.mark.parametrize(
    ("method", "lacking"),
    [
        ("GET", f"/api/0/projects/{ORG}/project-0-0/issues/"),
        *[(m, f"/api/0/organizations/{ORG}/events/") for m in ("POST", "PUT", "DELETE")],
    ],
)
async def test_a_path_no_route_serves_stays_404_beside_a_served_paths_405(
    fake_sentry: FakeSentry, method: str, lacking: str
) -> None:
    """``lacking`` is served, without ``method``: 405; a path no route serves: 404, under
    the API ``CatchallEndpoint``'s, with no body."""
    status, _, _ = await _send(fake_sentry, method, lacking, fake_sentry.token)
    assert status == 405
    paths = {f"/api/0/organizations/{ORG}/nothing/": None, "/api/0/": NOT_FOUND}
    for path, expected in {**paths, "/elsewhere/": NOT_FOUND}.items():
        status, body, headers = await _send(fake_sentry, method, path, fake_sentry.token)
        assert (path, status, body) == (path, 404, expected)
        assert "Allow" not in headers


async def test_the_client_raises_a_405_as_an_api_error_and_does_not_retry_it(
    fake_sentry: FakeSentry,
) -> None:
    ids = fake_sentry.data.issue_ids(ORG)[:1]
    retry = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.05)
    async with fake_sentry.client(retry=retry) as sentry:
        for method in ("POST", "GET"):
            path = f"/organizations/{ORG}/issues/" if method == "POST" else "/projects/a/b/issues/"
            with anyio.fail_after(TIMEOUT), pytest.raises(APIError) as caught:
                # Marked safe to repeat: only the status can keep it from being sent again.
                await sentry.request(
                    method, path, params={"id": ids}, json={"status": "resolved"}, idempotent=True
                )
            assert type(caught.value) is APIError
            assert caught.value.status == 405
            assert caught.value.detail == f'Method "{method}" not allowed.'
    assert [(r.method, r.status) for r in fake_sentry.requests] == [("POST", 405), ("GET", 405)]
    assert fake_sentry.data.issue_ids(ORG)[:1] == ids


# -- the command line, stopped before READY ---------------------------------------------


def _popen(argv: list[str]) -> subprocess.Popen[bytes]:
    """``argv`` with SIGINT delivered as a Ctrl-C is, even where this process ignores it
    (a job started in the background): an ignored signal would stay ignored in the child."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sigint_while_the_command_line_builds_its_data_exits_quietly_with_130() -> None:
    """``-X importtime`` names each module as its import ends: once the server's module is
    in, the large data set's build (over a second) is all that is left before READY."""
    argv = [sys.executable, "-X", "importtime", "-m", "sentry_async.testing", "--scale", "large"]
    process = _popen(argv)
    lines: list[bytes] = []
    imported = threading.Event()

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.rstrip().endswith(b" sentry_async.testing._server"):
                imported.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert imported.wait(TIMEOUT), b"".join(lines).decode()[-2000:]
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        # Only READY would go to stdout: nothing fills its pipe while this waits.
        process.wait(TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    reader.join(TIMEOUT)
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    err = b"".join(lines).decode()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert (process.returncode, out) == (130, b"")


def test_ctrl_c_while_the_command_line_imports_exits_quietly_with_130() -> None:
    """Ctrl-C landing inside one of the imports it starts with (aiohttp's among them)."""
    code = (
        "import runpy, sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'sentry_async.testing._app':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "runpy.run_module('sentry_async.testing', run_name='__main__', alter_sys=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--scale", "small"],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (130, b"", b"")
