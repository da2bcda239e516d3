"""``client.paginate(path, type=Model)`` is a ``Paginator[Model]`` to mypy, not ``Paginator[Any]``."""

from __future__ import annotations

from pathlib import Path

import pytest
from _mypy_run import run_mypy

pytest.importorskip("mypy.api")

CHECKED = Path(__file__).parent / "typing" / "pagination_types.py"

# The transport's libraries are left unread (their types become Any): what is checked here
# is sentry_async's own signatures, and skipping them halves the time mypy takes.
CONFIG = """\
[mypy]
strict = True
python_version = 3.10

[mypy-aiohttp.*,yarl.*,multidict.*,anyio.*,sniffio.*,frozenlist.*,aiosignal.*,propcache.*]
follow_imports = skip
follow_imports_for_stubs = True
"""


def test_paginate_infers_the_item_type(tmp_path: Path) -> None:
    config = tmp_path / "mypy.ini"
    config.write_text(CONFIG)
    out, err, status = run_mypy(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            str(CHECKED),
        ]
    )
    assert status == 0, out + err
