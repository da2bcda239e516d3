"""Every Python block in README.md runs against the fake server and passes ``mypy --strict``.

Blocks are read as written. To run them, the names the README uses for a real account are
swapped for the fake server's (organization, projects, issue and event ids, base URL), only
inside string and number literals, keeping every line where it was. A block that awaits at
top level, or uses ``sentry`` without setting it, is a fragment: it runs inside an event
loop with ``sentry`` bound to an open :class:`SentryClient`, and is type-checked inside an
``async def`` taking ``sentry``. A
block preceded by ``<!-- readme-test: skip -->`` is type-checked but not run (for an
endpoint the fake does not serve; keep those rare). Each block is its own test, named by its line and heading, so a failure says which.
The ``sentry-async`` command lines of shell blocks run too, in order, against the fake.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import re
import shlex
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from _mypy_run import run_mypy  # mypy is in the test extra: this check never skips

from sentry_async import SentryClient
from sentry_async.testing import FakeSentry

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SKIP_MARK = "<!-- readme-test: skip -->"
_FENCE = re.compile(r"^```(\w*)\s*$")

_WRAP_HEAD = (
    "from sentry_async import SentryClient as _ReadmeClient\n"
    "async def _readme_block(sentry: _ReadmeClient) -> None:\n"
)
_WRAP_LINES = _WRAP_HEAD.count("\n")


@dataclass(frozen=True)
class Block:
    line: int  # line of the first code line in README.md
    heading: str
    code: str
    skip: bool

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-") or "top"
        return f"L{self.line}-{slug}"

    @property
    def is_fragment(self) -> bool:
        """Awaits at top level or uses ``sentry`` it never sets: runs inside a loop with
        ``sentry`` given."""
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        try:
            code = compile(self.code, self.id, "exec", flags=flags, dont_inherit=True)
            tree = compile(self.code, self.id, "exec", flags=flags | ast.PyCF_ONLY_AST)
        except SyntaxError:  # reported by the run and by mypy, against the block
            return False
        if code.co_flags & inspect.CO_COROUTINE:
            return True
        names = [node for node in ast.walk(tree) if isinstance(node, ast.Name)]
        sets = any(isinstance(node.ctx, ast.Store) for node in names if node.id == "sentry")
        return not sets and any(node.id == "sentry" for node in names)

    def mypy_source(self) -> str:
        if self.is_fragment:
            return _WRAP_HEAD + textwrap.indent(self.code, "    ", lambda line: True)
        return self.code

    def readme_line(self, mypy_line: int) -> int:
        offset = _WRAP_LINES if self.is_fragment else 0
        return self.line + mypy_line - 1 - offset


def python_blocks(text: str) -> list[Block]:
    return fenced_blocks(text, "python")


def fenced_blocks(text: str, language: str) -> list[Block]:
    blocks: list[Block] = []
    heading = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        match = _FENCE.match(line)
        if match is None:
            i += 1
            continue
        lang, start = match.group(1), i + 1
        end = start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if lang == language:
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            blocks.append(
                Block(
                    line=start + 1,
                    heading=heading,
                    code="\n".join(lines[start:end]) + "\n",
                    skip=before.strip() == SKIP_MARK,
                )
            )
        i = end + 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
CLI_BLOCKS = [
    block
    for language in ("console", "sh", "bash", "shell")
    for block in fenced_blocks(README.read_text(encoding="utf-8"), language)
    if re.search(r"^sentry-async ", block.code, re.MULTILINE)
]


def _params(*, run: bool) -> Iterator[Any]:
    for block in BLOCKS:
        skip = run and block.skip
        marks = [pytest.mark.skip(reason="marked readme-test: skip")] if skip else []
        yield pytest.param(block, id=block.id, marks=marks)


# -- substitutions: README names -> the fake server's ---------------------------------------

ORG = "org-0"


def substitutions(server: FakeSentry) -> dict[str, str]:
    data = server.data
    org = data.org(ORG)
    assert org is not None
    issue = org.projects[0].issues[0]
    event = org.projects[0].events[0]
    return {
        '"https://de.sentry.io"': repr(server.url),
        '"https://sentry.io"': repr(server.url),
        '"acme"': repr(ORG),
        '"backend"': repr(org.projects[0].slug),
        '"web"': repr(org.projects[1].slug),
        "123456": issue.id,
        '"9fac2ceed9344f2bbfdd1fdacb0ed9b1"': repr(event.event_id),
    }


def substitute(code: str, table: dict[str, str]) -> str:
    """Swap literals only (keeps lines and columns of everything else where they were)."""
    keys = sorted(table, key=len, reverse=True)
    pattern = re.compile("|".join(rf"(?<![\w.]){re.escape(key)}(?![\w.])" for key in keys))
    return pattern.sub(lambda m: table[m.group(0)], code)


# -- running ---------------------------------------------------------------------------------


BLOCK_SECONDS = 45.0


def _run_block(block: Block, code: str, server: FakeSentry) -> str:
    """Runs in its own thread and event loop; returns what the block printed."""
    compiled = compile(
        code, f"README.md:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    out = io.StringIO()
    with redirect_stdout(out):
        if block.is_fragment:

            async def run() -> None:
                async with SentryClient(server.token, base_url=server.url) as sentry:
                    namespace["sentry"] = sentry
                    result = eval(compiled, namespace)
                    if inspect.iscoroutine(result):
                        await asyncio.wait_for(result, BLOCK_SECONDS)

            asyncio.run(run())
        else:
            exec(compiled, namespace)
    return out.getvalue()


async def _in_daemon_thread(
    function: Callable[[], str], seconds: float = BLOCK_SECONDS + 5
) -> str:
    """Run ``function`` in a daemon thread: a block that hangs fails its test, and cannot
    keep the test process from exiting as a pool thread would."""
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(function())
        except BaseException as exc:
            outcome.append(exc)
        finally:
            # A test that stopped waiting (its time ran out) may have closed its loop.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(finished.set)

    threading.Thread(target=target, name="readme-block", daemon=True).start()
    with anyio.fail_after(seconds):
        await finished.wait()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return str(outcome[0])


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 5
    assert sum(block.skip for block in BLOCKS) <= 2, "keep readme-test: skip rare"


@pytest.mark.parametrize("block", list(_params(run=True)))
async def test_block_runs_against_the_fake(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeSentry(scale="small") as server:
        code = substitute(block.code, substitutions(server))
        monkeypatch.setenv("SENTRY_AUTH_TOKEN", server.token)
        monkeypatch.setenv("SENTRY_URL", server.url)
        monkeypatch.chdir(tmp_path)
        try:
            await _in_daemon_thread(partial(_run_block, block, code, server))
        except Exception as exc:
            pytest.fail(
                f"README.md block at line {block.line} ({block.heading!r}) failed against "
                f"the fake server: {type(exc).__name__}: {exc}\n--- block as run ---\n{code}"
            )


# -- type-checking ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """One ``mypy --strict`` run over every block (each its own module); errors per block."""
    directory = tmp_path_factory.mktemp("readme_blocks")
    files: dict[str, Block] = {}
    errors: dict[str, list[str]] = {block.id: [] for block in BLOCKS}
    for index, block in enumerate(BLOCKS):
        try:
            ast.parse(block.mypy_source())
        except SyntaxError as exc:
            # A syntax error stops mypy for every file: report it here, check the others.
            line = block.readme_line(exc.lineno or 1)
            errors[block.id].append(f"README.md:{line}: error: {exc.msg}  [syntax]")
            continue
        name = f"readme_block_{index}.py"
        (directory / name).write_text(block.mypy_source(), encoding="utf-8")
        files[name] = block
    stdout, stderr, _ = run_mypy(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            *sorted(str(directory / name) for name in files),
        ]
    )
    assert not stderr.strip(), stderr
    for line in stdout.splitlines():
        match = re.match(r"(?:.*[/\\])?(readme_block_\d+\.py):(\d+):(?:\d+:)? (.*)", line)
        assert match is not None, f"unexpected mypy output: {line}"
        block = files[match.group(1)]
        errors[block.id].append(f"README.md:{block.readme_line(int(match.group(2)))}: {match[3]}")
    return errors


@pytest.mark.parametrize("block", list(_params(run=False)))
def test_block_passes_mypy_strict(block: Block, mypy_errors: dict[str, list[str]]) -> None:
    problems = [line for line in mypy_errors[block.id] if ": note:" not in line]
    assert not problems, (
        f"README.md block at line {block.line} ({block.heading!r}) fails mypy --strict:\n"
        + "\n".join(mypy_errors[block.id])
    )


# -- the harness itself ----------------------------------------------------------------------


def test_blocks_are_found_with_lines_headings_and_skip_marks() -> None:
    text = "# Title\n\n## Use\n\n```python\nx = 1\n```\n\n<!-- readme-test: skip -->\n```python\nf(*, a)\n```\n```console\n$ ls\n```\n"
    blocks = python_blocks(text)
    assert [(b.line, b.heading, b.code, b.skip) for b in blocks] == [
        (6, "Use", "x = 1\n", False),
        (11, "Use", "f(*, a)\n", True),
    ]


def test_fragments_are_told_from_programs_and_lines_map_back() -> None:
    fragment = Block(10, "h", "x = 1\nasync for y in z:\n    pass\n", False)
    program = Block(10, "h", "import asyncio\nasyncio.run(main())\n", False)
    assert fragment.is_fragment
    assert not program.is_fragment
    assert Block(1, "h", "p = sentry.issues.list('acme')\n", False).is_fragment
    assert not Block(1, "h", "sentry = make()\nsentry.close()\n", False).is_fragment
    assert fragment.mypy_source().splitlines()[_WRAP_LINES + 1] == "    async for y in z:"
    assert fragment.readme_line(_WRAP_LINES + 2) == 11
    assert program.readme_line(2) == 11


def test_substitution_touches_literals_only() -> None:
    table = {'"acme"': '"org-0"', "123456": "5000001"}
    code = 'acme = "acme"\nf(acme, issue_id=123456, n=1234567)\n'
    assert substitute(code, table) == 'acme = "org-0"\nf(acme, issue_id=5000001, n=1234567)\n'


def _documented_callables() -> list[Any]:
    from sentry_async import RetryPolicy, Timeouts, fan_out
    from sentry_async.export import export
    from sentry_async.testing import FakeSentry

    return [SentryClient, RetryPolicy, Timeouts, fan_out, export, FakeSentry]


# Passed by position in every example, so shown by position rather than by name.
_POSITIONAL = {"export": {"client", "spec", "output"}, "fan_out": {"streams"}}


@pytest.mark.parametrize("function", _documented_callables(), ids=lambda f: f.__name__)
def test_every_argument_of_the_main_entry_points_is_in_the_readme(function: Any) -> None:
    text = README.read_text(encoding="utf-8")
    missing = [
        name
        for name in inspect.signature(function).parameters
        if name not in _POSITIONAL.get(function.__name__, ())
        and not re.search(rf"\b{name}=|`{name}`", text)
    ]
    assert not missing, f"{function.__name__} arguments not documented in README.md: {missing}"


def test_paginator_methods_are_in_the_readme() -> None:
    from sentry_async import Paginator

    text = README.read_text(encoding="utf-8")
    public = [
        name
        for name, value in inspect.getmembers(Paginator)
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    ]
    missing = [name for name in public if f".{name}" not in text]
    assert not missing, f"Paginator methods not documented in README.md: {missing}"


def test_logger_names_are_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    names = {
        match.group(1)
        for path in (ROOT / "sentry_async").rglob("*.py")
        for match in re.finditer(r"getLogger\(\"([\w.]+)\"\)", path.read_text(encoding="utf-8"))
    }
    assert "sentry_async" in names
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"loggers not named in README.md: {missing}"


def test_the_models_module_is_in_the_readme() -> None:
    assert "`sentry_async.models`" in README.read_text(encoding="utf-8")


async def test_a_hanging_block_fails_its_test_and_errors_come_through() -> None:
    release = threading.Event()
    with pytest.raises(TimeoutError):
        await _in_daemon_thread(lambda: str(release.wait(30)), seconds=0.2)
    release.set()

    def broken() -> str:
        raise NameError("name 'save' is not defined")

    with pytest.raises(NameError, match="save"):
        await _in_daemon_thread(broken)
    assert await _in_daemon_thread(lambda: "printed") == "printed"


def test_a_block_that_ends_after_its_test_gave_up_raises_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under load the thread of a block that timed out may end after its test's loop is
    closed: it has no one to tell, and nothing to raise."""
    release = threading.Event()
    loop = asyncio.new_event_loop()
    with pytest.raises(TimeoutError):
        loop.run_until_complete(_in_daemon_thread(lambda: str(release.wait(30)), seconds=0.1))
    loop.close()
    [thread] = [t for t in threading.enumerate() if t.name == "readme-block"]
    errors: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert [str(e.exc_value) for e in errors] == []


# -- the command line examples ---------------------------------------------------------------


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in CLI_BLOCKS])
async def test_cli_examples_run_in_order_against_the_fake(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ``sentry-async`` command of a shell block, in order, in one directory (a
    ``--resume`` line resumes what the lines before it started), pointed at the fake;
    ``\\`` continues a line and ``> FILE`` sends the output there."""
    from sentry_async.cli import main

    async with FakeSentry(scale="small") as server:
        table = {key.strip('"'): value.strip("'") for key, value in substitutions(server).items()}
        monkeypatch.setenv("SENTRY_AUTH_TOKEN", server.token)
        monkeypatch.chdir(tmp_path)
        for offset, line in shell_commands(block.code):
            if not line.startswith("sentry-async "):
                continue
            words = shlex.split(line, comments=True)[1:]
            target = None
            if ">" in words:
                words, target = words[: words.index(">")], words[words.index(">") + 1]
            argv = [table.get(word, word) for word in words] + ["--base-url", server.url]
            if argv[0] == "export":
                argv.append("--quiet")
            out, err = io.StringIO(), io.StringIO()
            try:
                run = partial(main, argv, stdout=out, stderr=err)
                code = await _in_daemon_thread(lambda run=run: str(run()))
            except SystemExit as exc:  # argparse refused the line
                code = str(exc.code)
            assert code == "0", (
                f"README.md line {block.line + offset} ({block.heading!r}) exits {code} "
                f"against the fake server:\n{line}\n{err.getvalue()}"
            )
            if target is not None:
                (tmp_path / target).write_text(out.getvalue(), encoding="utf-8")


def shell_commands(code: str) -> Iterator[tuple[int, str]]:
    """``(line offset, command)`` with backslash-continued lines joined."""
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        start, command = i, lines[i]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command[:-1] + " " + lines[i].strip()
        yield start, command
        i += 1


def test_shell_commands_join_continued_lines() -> None:
    code = "a --x \\\n    --y\nb\n"
    assert list(shell_commands(code)) == [(0, "a --x  --y"), (2, "b")]


def test_python_blocks_are_fenced_as_python() -> None:
    """A block fenced ``py`` or ``python3`` would silently escape the checks above."""
    text = README.read_text(encoding="utf-8")
    odd = [
        f"README.md:{number}: {line}"
        for number, line in enumerate(text.splitlines(), 1)
        if re.match(r"^```(py|python3|pycon|ipython|py3)\s*$", line)
    ]
    assert not odd, "fence Python examples as ```python:\n" + "\n".join(odd)


def test_no_merge_conflict_markers_are_left() -> None:
    """Many hands edit the README; a conflict resolved by halves must not ship."""
    lines = README.read_text(encoding="utf-8").splitlines()
    left = [
        f"README.md:{number}: {line}"
        for number, line in enumerate(lines, 1)
        if re.match(r"^(<{7}|>{7})( |$)|^={7}$", line)
    ]
    assert not left, "\n".join(left)
