"""``client.paginate(path, type=Model)`` is a ``Paginator[Model]`` to mypy, not ``Paginator[Any]``."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

CHECKED = Path(__file__).parent / "typing" / "pagination_types.py"


def test_paginate_infers_the_item_type(tmp_path: Path) -> None:
    out, err, status = api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(CHECKED)]
    )
    assert status == 0, out + err
