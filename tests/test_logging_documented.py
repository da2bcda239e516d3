"""Every record the library logs is in the README's logging table, under its logger and
level: a log call added without a row (or a row left after its call) fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
LEVELS = ("debug", "info", "warning")

DOCUMENTED = {
    # (module, level, start of the message): words of the README cell that describe it
    ("_exchange.py", "debug", "%s %s -> %d"): "each response",
    ("models/entries.py", "debug", "a %r entry did not fit"): "an event entry that did not fit",
    ("_routing.py", "debug", "ignoring region URL"): "a region URL ignored",
    ("resources/organizations.py", "info", "listing organizations from the base URL only"):
        "organizations listed from the base URL only",
    ("limiter.py", "info", "%s: the server asked to wait"): "a server-announced wait over 5 s",
    ("limiter.py", "warning", "%s: the server asked to wait"): "a wait longer than `max_wait`",
    ("_transport.py", "warning", "%s"): "each retry",
    ("_network.py", "warning", "%s"): "`ssl=False`",
    ("_routing.py", "warning", "project %s/%s was renamed"): "a renamed project followed",
    ("_progress_display.py", "info", "%s"): "progress every few seconds",
    ("export/_resume.py", "info", "%s: dropping %d bytes"): "bytes cut off a file on `--resume`",
    ("export/_dedupe.py", "warning", "%s: dropped %d duplicate"): "duplicates dropped within a run",
    ("export/_dedupe.py", "info", "skipped %d item(s) the previous run"):
        "an incremental run's overlap skipped",
    ("export/_dedupe.py", "warning", "%s: %d item(s) at %s have no usable id"):
        "items without a usable id",
    ("export/_plan.py", "warning", "skipping project"): "a project skipped",
    ("export/_runner.py", "warning", "skipping project"): "deleted or no longer accessible",
    ("export/_runner.py", "warning", "skipping issue"): "an issue skipped",
    ("export/_runner.py", "warning", "%s: project %r (id %s) is now %r"):
        "a project read at its new slug",
    ("export/_runner.py", "warning", "totals over every project may count"):
        "totals asked for every project",
    ("export/_export.py", "warning", "overlap %s: this run looks back only"):
        "an incremental run that looks back less than its overlap",
    ("export/_runner.py", "warning", "%s: the server cannot serve this window"):
        "a window split",
    ("export/_runner.py", "warning", "%s: rows left the list under its walk"):
        "a window read again from its start",
    ("export/_runner.py", "info", "%s: %s .. %s is wholly before the organization's"):
        "a window wholly before the organization's retention",
    ("export/_runner.py", "warning", "%s .. %s is outside the organization's retention"):
        "the part of the range outside the organization's retention",
    ("hooks.py", "warning", "hook %s failed"): "a hook that raised",
    ("cli.py", "debug", "details"): "the traceback of the error",
    ("_query_command.py", "warning", "showing %d of %d rows"):
        "a `query` table that stopped before the answer did",
    ("_query_command.py", "warning", "showing %d rows, more remain"):
        "a `query` table that stopped before the answer did",
}  # fmt: skip


def _log_calls() -> dict[tuple[str, str, str], str]:
    """``(module, level, message) -> logger name`` for each ``logger.<level>(...)`` call."""
    found: dict[tuple[str, str, str], str] = {}
    package = ROOT / "sentry_async"
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: dict[str, str] = {}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and ast.unparse(node.value.func) == "logging.getLogger"
                and node.value.args
                and isinstance(node.value.args[0], ast.Constant)
            ):
                names[ast.unparse(node.targets[0])] = node.value.args[0].value
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in (*LEVELS, "error", "exception", "critical")
                and ast.unparse(node.func.value) in names
            ):
                message = node.args[0]
                assert isinstance(message, ast.Constant), ast.unparse(node)
                module = path.relative_to(package).as_posix()
                key = (module, node.func.attr, str(message.value))
                found[key] = names[ast.unparse(node.func.value)]
    return found


def _table() -> dict[str, dict[str, str]]:
    """The README's logging table: logger -> level -> cell."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("| logger | DEBUG | INFO | WARNING |")
    rows = text[start:].split("\n\n", 1)[0].splitlines()[2:]
    table: dict[str, dict[str, str]] = {}
    for row in rows:
        logger, *cells = [cell.strip() for cell in row.strip("|").split("|")]
        table[logger.strip("`")] = dict(zip(LEVELS, cells, strict=True))
    return table


def test_every_log_record_is_in_the_readme_table() -> None:
    calls = _log_calls()
    described = {
        (module, level, message)
        for (module, level, message) in calls
        if any(
            module == m and level == lv and message.startswith(start)
            for (m, lv, start) in DOCUMENTED
        )
    }
    assert set(calls) == described, "log calls the README table does not list"
    assert len(described) == len(DOCUMENTED), "README rows whose log call is gone"
    table = _table()
    for (module, level, start), words in DOCUMENTED.items():
        ((logger,),) = [
            (name,)
            for (m, lv, message), name in calls.items()
            if m == module and lv == level and message.startswith(start)
        ]
        assert words in table[logger][level], (logger, level, words)
