"""Every third-party module the package imports is declared in ``pyproject.toml``.

A module that only comes with another dependency (``multidict`` with aiohttp and yarl) may
leave with that dependency's next release, and its lowest version is then nobody's to
test (``nox -s tests_lowest`` pins what is declared). An import that runs when its module
is loaded needs a runtime dependency; one made only when a feature is used (inside a
function, or by ``importlib.import_module``) may come from a user-facing extra.
"""

from __future__ import annotations

import ast
import functools
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "sentry_async"

TOOLING_EXTRAS = frozenset({"test", "dev", "bench"})
"""Extras for working on the project: a user installs none of them to use a feature."""

LOADED_BY = {Path("testing/pytest_plugin.py"): "pytest"}
"""Modules that only the named package loads (pytest, through the ``pytest11`` entry
point), so that it is there whenever they are imported."""

TYPESHED = frozenset({"typing_extensions"})
"""Stubs that type checkers ship themselves: an import for type checkers needs nothing."""

TYPES, USE, LOAD = 0, 1, 2
"""When an import runs: never (for type checkers only), when a feature is used (in a
function, or one whose failure is caught), or as its module loads."""


@functools.cache
def _declared() -> tuple[frozenset[str], frozenset[str]]:
    """The runtime dependencies, and those of every user-facing extra, by canonical name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements: list[str]) -> frozenset[str]:
        return frozenset(canonicalize_name(Requirement(text).name) for text in requirements)

    extras = project["optional-dependencies"]
    optional = [text for extra, deps in extras.items() if extra not in TOOLING_EXTRAS for text in deps]
    return names(project["dependencies"]), names(optional)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> dict[str, int]:
    """Each top-level module name imported, and when its earliest import runs."""
    found: dict[str, int] = {}

    def add(name: str, when: int) -> None:
        top = name.split(".")[0]
        found[top] = max(found.get(top, TYPES), when)

    def visit(node: ast.AST, when: int) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, when)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            add(node.module, when)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            add(node.args[0].value, min(when, USE))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.Try):
            when = min(when, USE)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, TYPES)
            for child in node.orelse:
                visit(child, when)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, when)

    visit(tree, LOAD)
    return found


def _third_party() -> dict[str, dict[Path, int]]:
    """Every third-party module the package imports: the files that do, and when."""
    modules: dict[str, dict[Path, int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, when in _imports(tree).items():
            if name in sys.stdlib_module_names or name in {"__future__", "sentry_async"}:
                continue
            modules.setdefault(name, {})[path.relative_to(PACKAGE)] = when
    return modules


IMPORTS = _third_party()


@functools.cache
def _installed_by() -> dict[str, frozenset[str]]:
    """The distributions installed here that provide each top-level module, read from their
    file lists: Python 3.10's ``packages_distributions()`` reads only ``top_level.txt``,
    which most wheels leave out."""
    found: dict[str, set[str]] = {}
    for dist in distributions():
        name = canonicalize_name(dist.metadata["Name"])
        for file in dist.files or ():
            if file.parts[0].endswith((".dist-info", ".egg-info", "..")):
                continue
            top = file.parts[0] if len(file.parts) > 1 else file.name.removesuffix(".py")
            found.setdefault(top, set()).add(name)
    return {module: frozenset(names) for module, names in found.items()}


def test_the_scan_finds_the_known_imports() -> None:
    assert {"aiohttp", "msgspec", "anyio", "yarl", "pyarrow", "polars", "rich"} <= set(IMPORTS)
    assert IMPORTS["msgspec"][Path("models/_base.py")] == LOAD
    assert IMPORTS["polars"] == {Path("tables.py"): USE}  # importlib.import_module
    assert IMPORTS["typing_extensions"] == {Path("resources/events.py"): TYPES}


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_every_third_party_import_is_declared(module: str) -> None:
    required, optional = _declared()
    places = {path: when for path, when in IMPORTS[module].items() if LOADED_BY.get(path) != module}
    when = max(places.values(), default=TYPES)
    if not places or (when == TYPES and module in TYPESHED):
        return
    dists = _installed_by().get(module, frozenset())
    assert dists, f"{module} is imported by sentry_async but not installed here"
    named = f"{module} ({', '.join(sorted(dists))})"
    if when == LOAD:
        loading = sorted(str(path) for path, at in places.items() if at == LOAD)
        assert dists & required, (
            f"{named} is imported as {', '.join(loading)} loads, "
            "but is not in pyproject.toml's dependencies"
        )
    else:
        assert dists & (required | optional), (
            f"{named} is imported by {', '.join(sorted(map(str, places)))}, "
            "but is not in pyproject.toml's dependencies or a user-facing extra"
        )
