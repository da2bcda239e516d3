"""``sentry-async``'s arguments: options only as spelled out, no token on the command line
and none repeated by an error, argument errors as one line and exit 2, an unknown project
id as exit 4."""

from __future__ import annotations

import argparse
import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from sentry_async import SentryClient, _cli_run
from sentry_async.cli import build_parser, main
from sentry_async.export import ExportSpec
from sentry_async.testing import FakeSentry

ORG = "org-0"
TOKEN = "sntrys_args-test-token-9e107d9d372bb6826bd81d3542a419d6"
SECRET_BODY = "eyJpYXQiOjE3NjcyMjU2MDB9_SecretPart0123456789abcdefABCDEF"
SECRET = f"sntrys_{SECRET_BODY}"
"""Shaped like an organization token: what a user would paste after ``--token``."""
USER_SECRET = "sntryu_" + "5d41402abc4b2a76" * 4
LEGACY_SECRET = "7215ee9c7d9dc229" * 4
"""A user token from before the ``sntryu_`` prefix: 64 hex digits."""
SECRETS = (SECRET, USER_SECRET, LEGACY_SECRET)

Factory = Callable[..., Awaitable[FakeSentry]]


@dataclass
class Run:
    code: int | str | None
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("sentry-async")]


def _shows_a_secret(text: str) -> bool:
    return any(part in text for secret in SECRETS for part in (secret, secret[7:]))


def _run_sync(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> Run:
    """``main(argv)``, with what argparse prints on the process's streams captured too."""
    out, err = io.StringIO(), io.StringIO()
    try:
        code: int | str | None = main(list(argv), stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return Run(code, out.getvalue() + captured.out, err.getvalue() + captured.err)


async def _run(argv: Sequence[str]) -> Run:
    """``main(argv)`` in a worker thread (it runs its own event loop), output captured."""
    out, err = io.StringIO(), io.StringIO()
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, list(argv), stdout=out, stderr=err))
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("SENTRY_URL", raising=False)


@pytest.fixture
async def server(fake_sentry_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> FakeSentry:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("SENTRY_URL", raising=False)
    return await fake_sentry_factory(scale="small", token=TOKEN)


# A token on the command line.


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "events", "--org", ORG, "-o", "out", "--token", SECRET],
        ["export", "issues", "--org", ORG, "-o", "out", f"--token={USER_SECRET}"],
        ["query", "discover", "--org", ORG, "--field", "id", f"--token={SECRET}"],
        ["query", "usage", "--org", ORG, "--token", LEGACY_SECRET],
        ["query", "stats", "--org", ORG, "--auth-token", SECRET],
        ["export", "discover", "--org", ORG, "-o", "out", "--auth-token", USER_SECRET],
    ],
    ids=["export", "export=", "query=", "usage", "auth-token", "export-auth-token"],
)
@pytest.mark.parametrize("env", [False, True], ids=["no-env", "env"])
def test_a_token_on_the_command_line_is_refused_without_repeating_it(
    argv: list[str],
    env: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_env_token: None,
) -> None:
    """``--token`` is what the examples and other tools take: argparse read it as a prefix
    of ``--token-file``, whose error then printed the token. It is refused by name, saying
    where a token goes, and its value is never repeated; nothing is created."""
    monkeypatch.chdir(tmp_path)
    if env:
        monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    run = _run_sync([*argv, "--base-url", "http://127.0.0.1:9"], capsys)
    assert run.code == 2, run.err
    assert not _shows_a_secret(run.out + run.err), run.err
    assert len(run.error_lines) == 1, run.err
    line = run.error_lines[0]
    assert "--token-file" in line and "SENTRY_AUTH_TOKEN" in line, line
    assert "Traceback" not in run.err
    assert list(tmp_path.iterdir()) == [], "nothing is created"


@pytest.mark.parametrize(
    ("argv", "abbreviated"),
    [
        (["export", "events", "--org", ORG, "-o", "out", "--token-f", "tok"], "--token-f"),
        (["export", "events", "--org", ORG, "--out", "out"], "--out"),
        (["export", "events", "--org", ORG, "-o", "out", "--conc", "2"], "--conc"),
        (["export", "events", "--org", ORG, "-o", "out", "--incr", "state"], "--incr"),
        (["query", "discover", "--org", ORG, "--fie", "id"], "--fie"),
        (["query", "usage", "--org", ORG, "--group", "outcome"], "--group"),
        (["query", "stats", "--org", ORG, "--y", "count()"], "--y"),
    ],
)
def test_options_are_taken_only_as_spelled_out(
    argv: list[str], abbreviated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No prefix matching: a mistyped or foreign option is an error, never another one."""
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert abbreviated in err or "required: --output" in err, err


@pytest.mark.parametrize("secret", SECRETS, ids=["sntrys", "sntryu", "hex64"])
@pytest.mark.parametrize(
    "argv",
    [
        ["export", "events", "--org", ORG, "-o", "out", "--sentry-token", "{}"],
        ["export", "events", "--org", ORG, "-o", "out", "--api-key={}"],
        ["export", "{}"],
        ["query", "discover", "--org", ORG, "--field", "id", "{}"],
        ["demo", "--token", "{}"],
    ],
    ids=["unknown-option", "unknown-option=", "kind", "positional", "demo"],
)
def test_an_argument_error_never_repeats_a_token_shaped_value(
    argv: list[str], secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse repeats what it did not understand; a value shaped like a Sentry token is
    blanked out of the line, the rest of it still shown."""
    run = _run_sync([part.format(secret) for part in argv], capsys)
    assert run.code == 2, run.err
    assert not _shows_a_secret(run.err), run.err
    assert "********" in run.err, run.err


@pytest.mark.parametrize("name", [SECRET, USER_SECRET, LEGACY_SECRET, "my-key-file"])
@pytest.mark.parametrize("problem", ["missing", "directory", "empty", "binary", "spaces"])
def test_token_file_errors_never_print_the_path(
    name: str,
    problem: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_env_token: None,
) -> None:
    """``--token-file SECRET`` (the token given where its file was meant): whatever is wrong
    with that path, the error names the option and says what is wrong, not the path."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / name
    if problem == "directory":
        path.mkdir()
    elif problem == "empty":
        path.write_text("\n")
    elif problem == "binary":
        path.write_bytes(b"\xff\xfe\x00token")
    elif problem == "spaces":
        path.write_text("two words\n")
    for given in (name, str(path)):
        argv = ["query", "discover", "--org", ORG, "--field", "id", "--token-file", given,
                "--base-url", "http://127.0.0.1:9"]  # fmt: skip
        run = _run_sync(argv, capsys)
        assert run.code == 2, run.err
        assert len(run.err.splitlines()) == 1 and run.error_lines, run.err
        assert "--token-file" in run.err, run.err
        assert not _shows_a_secret(run.err), run.err
        assert name not in run.err, run.err


# Arguments the client refuses: one line and exit 2, not a traceback.


@pytest.mark.parametrize("issues", [("0",), ("00",), ("\u0663",), ("0\u0663",), ("5", "0")])
def test_export_spec_refuses_issue_ids_the_client_refuses(issues: tuple[str, ...]) -> None:
    """``issues.get`` takes positive ASCII ids only: the spec refused none of these, and the
    export failed at its first request for one, a ``ValueError`` from inside the walk."""
    with pytest.raises(ValueError, match=r"^issue"):
        ExportSpec(kind="events", org=ORG, issues=issues)


def test_export_spec_holds_at_most_the_fields_discover_takes() -> None:
    fields = tuple(f"f{i}" for i in range(21))
    with pytest.raises(ValueError, match=r"^fields must hold 1 to 20"):
        ExportSpec(kind="discover", org=ORG, fields=fields)
    assert ExportSpec(kind="discover", org=ORG, fields=fields[:20]).fields == fields[:20]
    assert ExportSpec(kind="events", org=ORG, issues=("05",)).issues == ("05",), (
        "a leading zero is still issue 5 to Sentry; the spec keeps it as given (fingerprint)"
    )


@pytest.mark.parametrize(
    ("extra", "naming"),
    [
        (["events", "--issue", "0"], "--issue"),
        (["events", "--issue", "7", "--issue", "00"], "--issue"),
        (["events", "--issue", "\u0663"], "--issue"),
        (["discover", *(f"--field=f{i}" for i in range(21))], "--field"),
    ],
    ids=["issue-0", "issue-00", "issue-arabic-digit", "21-fields"],
)
async def test_arguments_the_client_refuses_exit_2_before_any_request(
    server: FakeSentry, tmp_path: Path, extra: list[str], naming: str
) -> None:
    out = tmp_path / "out"
    run = await _run(["export", *extra[:1], "--org", ORG, "-o", str(out), "--base-url",
                      server.url, "-q", *extra[1:]])  # fmt: skip
    assert run.code == 2, run.err
    assert run.err.splitlines() == run.error_lines and len(run.error_lines) == 1, run.err
    assert run.error_lines[0].startswith(f"sentry-async: error: {naming}: "), run.err
    assert not out.exists(), "nothing is created"
    assert len(server.requests) == 0, "refused before any request"


async def test_query_and_export_refuse_21_fields_alike(server: FakeSentry, tmp_path: Path) -> None:
    fields = [f"--field=f{i}" for i in range(21)]
    common = ["--org", ORG, "--base-url", server.url, *fields]
    exported = await _run(["export", "discover", "-o", str(tmp_path / "out"), *common])
    queried = await _run(["query", "discover", *common])
    expected = "sentry-async: error: --field: fields must hold 1 to 20 field expressions\n"
    assert (exported.code, exported.err) == (queried.code, queried.err) == (2, expected)


async def test_a_client_refusal_before_any_request_exits_2_with_one_line(
    server: FakeSentry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``ValueError`` the library raises before anything was sent can only be about the
    arguments (nothing from a server is in it yet): one line, exit 2, the option named."""

    async def refusing(client: SentryClient, spec: ExportSpec, *_: Any, **__: Any) -> None:
        client.discover.query(spec.org, fields=[])

    monkeypatch.setattr(_cli_run, "export", refusing)
    run = await _run(["export", "discover", "--org", ORG, "-o", str(tmp_path / "out"),
                      "--base-url", server.url])  # fmt: skip
    assert run.code == 2, run.err
    assert run.err.splitlines() == [
        "sentry-async: error: --field: fields must hold 1 to 20 field expressions"
    ]
    assert len(server.requests) == 0


async def test_a_value_error_after_a_request_keeps_its_traceback(
    server: FakeSentry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the server has answered, a ``ValueError`` may come from what it sent (a bug to
    see, not bad arguments): it is not turned into exit 2."""

    async def failing(client: SentryClient, spec: ExportSpec, *_: Any, **__: Any) -> None:
        await client.projects.list(spec.org).collect()
        raise ValueError("fields: not the arguments' fault")

    monkeypatch.setattr(_cli_run, "export", failing)
    with pytest.raises(ValueError, match="not the arguments' fault"):
        await _run(["export", "discover", "--org", ORG, "-o", str(tmp_path / "out"),
                    "--base-url", server.url])  # fmt: skip
    assert len(server.requests) >= 1


# Unknown projects in a query.


def _project_ids(server: FakeSentry) -> list[str]:
    org = server.data.org(ORG)
    assert org is not None
    return [str(project.id) for project in org.projects]


async def test_query_of_an_unknown_project_id_exits_4_as_an_export_does(
    server: FakeSentry,
) -> None:
    """Sentry answers 403 for a ``project=`` id the organization does not have, which read
    as a refused token (exit 3); the exporter and a slug say 4, as the README does."""
    unknown = str(max(int(i) for i in _project_ids(server)) + 1000)
    base = ["--org", ORG, "--base-url", server.url, "--period", "1d"]
    for kind, extra in (("discover", ["--field", "title"]), ("stats", []), ("usage", [])):
        for projects in ([unknown], ["-1", unknown], [_project_ids(server)[0], "0"]):
            flags = [f"--project={project}" for project in projects]
            run = await _run(["query", kind, *base, *extra, *flags])
            assert run.code == 4, (kind, projects, run.err)
            assert run.err.splitlines() == [
                f"sentry-async: error: --project {projects[-1]}: no such project in "
                f"organization {ORG!r}"
            ], run.err
    assert not any("/events" in r.path or "stats" in r.path for r in server.requests), (
        "nothing is asked about a project that is not there"
    )


async def test_query_of_every_project_beside_a_named_one_is_a_usage_error(
    server: FakeSentry,
) -> None:
    """``-1`` beside a project id is looked up by Sentry as an id and the call refused with
    a 403, which read as a refused token (exit 3): it is refused before any request."""
    known = _project_ids(server)[0]
    base = ["--org", ORG, "--base-url", server.url, "--period", "1d"]
    for kind, extra in (("discover", ["--field", "title"]), ("stats", []), ("usage", [])):
        run = await _run(["query", kind, *base, *extra, f"--project={known}", "--project=-1"])
        assert run.code == 2, (kind, run.err)
        [line] = run.err.splitlines()
        assert line.startswith("sentry-async: error: --project") and "alone" in line, line
    assert not any("/events" in r.path or "stats" in r.path for r in server.requests)


async def test_query_of_known_project_ids_still_runs(server: FakeSentry) -> None:
    known = _project_ids(server)
    base = ["query", "discover", "--org", ORG, "--base-url", server.url, "--period", "14d",
            "--field", "id"]  # fmt: skip
    for projects in ([known[0]], ["-1"], [f"0{known[0]}", known[-1]]):
        run = await _run([*base, *(f"--project={project}" for project in projects)])
        assert run.code == 0, (projects, run.err)
        assert run.out.startswith("id,"), run.out


def test_no_parser_takes_a_prefix_or_shows_a_token_option() -> None:
    """Every subcommand's parser too: each is its own ``ArgumentParser``."""
    seen = 0
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        seen += 1
        assert parser.allow_abbrev is False, parser.prog
        help_text = parser.format_help()
        assert "--token " not in help_text and "--auth-token" not in help_text, parser.prog
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    assert seen == 7, "sentry-async, export, demo, query and its three kinds"
