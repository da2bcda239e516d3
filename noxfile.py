"""Developer sessions: ``nox -s tests``, ``tests_lowest``, ``lint``, ``typecheck``, ``bench``,
``demo``, ``codegen``.

Virtualenvs are plain ``venv`` (uv may be missing) and are reused between runs; pass
``nox -s bench -- --quick`` to forward arguments to the underlying command.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox
import nox.project

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["tests", "lint", "typecheck"]

PYTHON = None  # the interpreter nox runs under; CI and developers use one Python


def _lowest() -> tuple[str, list[str]]:
    """The oldest Python and the lowest versions ``pyproject.toml`` declares for the runtime
    and for the test extra, as pins (``aiohttp>=3.9.2`` is ``aiohttp==3.9.2``): read from it,
    so they cannot drift. The test tools' minimums are pinned too, or nothing would check
    them: the newest run never installs them."""
    project = nox.project.load_toml(Path(__file__).with_name("pyproject.toml"))["project"]
    floor = re.fullmatch(r">=\s*(\d+\.\d+)", project["requires-python"])
    requirements = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    pins = [re.fullmatch(r"([\w.-]+)\s*>=\s*([\w.]+)", dep) for dep in requirements]
    if floor is None or None in pins:
        raise ValueError(
            "tests_lowest reads requires-python, dependencies and the test extra as name>=version"
        )
    return floor[1], [f"{pin[1]}=={pin[2]}" for pin in pins if pin is not None]


def _dev(name: str) -> str:
    """The dev extra's requirement of one tool (``ruff>=0.15``): a session installs no older
    one than CI's checks pass with."""
    project = nox.project.load_toml(Path(__file__).with_name("pyproject.toml"))["project"]
    dev = project["optional-dependencies"]["dev"]
    return next(dep for dep in dev if re.split(r"[\s<>=!~\[;]", dep, maxsplit=1)[0] == name)


LOWEST_PYTHON, LOWEST_PINS = _lowest()
BUILT_FOR_NUMPY_1 = "numpy<2"
"""pandas 2.0 and pyarrow 14, the extras' minimums, were built against NumPy 1 and fail to
import beside NumPy 2, which their metadata allows: where they are installed, NumPy 1 is."""


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-n", "auto", *session.posargs)


@nox.session(python=LOWEST_PYTHON)
def tests_lowest(session: nox.Session) -> None:
    """The test suite on the oldest Python with exactly the lowest versions allowed of the
    runtime dependencies and of the test extra. Not in CI, which runs the newest versions:
    run it when changing a dependency's use or its minimum."""
    session.install("-e", ".[test]", *LOWEST_PINS, BUILT_FOR_NUMPY_1)
    session.run("python", "-m", "pytest", "-n", "auto", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install(_dev("ruff"))
    session.run("ruff", "check", ".", *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[test]", _dev("mypy"))
    session.run("mypy", "--strict", "sentry_async", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Every benchmark; writes benchmarks/results/latest.md and latest.json."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The command line's self-contained demo against the bundled fake server."""
    session.install("-e", ".[cli]")
    session.run("sentry-async", "demo", *session.posargs)


@nox.session(python=PYTHON)
def codegen(session: nox.Session) -> None:
    """Regenerate ``sentry_async/api/`` and the README's coverage table from Sentry's spec.

    ``nox -s codegen -- --spec path/to/openapi-derefed.json`` (or set $SENTRY_OPENAPI_SPEC).
    """
    session.run("python", "-m", "codegen", *session.posargs)
