"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``, ``demo``, ``codegen``.

Virtualenvs are plain ``venv`` (uv may be missing) and are reused between runs; pass
``nox -s bench -- --quick`` to forward arguments to the underlying command.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["tests", "lint", "typecheck"]

PYTHON = None  # the interpreter nox runs under; CI and developers use one Python


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[test]", "mypy>=1.10")
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
