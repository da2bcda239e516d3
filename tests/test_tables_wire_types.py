"""Discover values as Sentry puts them on the wire, typed as its ``meta`` says."""

from __future__ import annotations

import pytest

from sentry_async.models import DiscoverMeta
from sentry_async.tables import discover_table

pa = pytest.importorskip("pyarrow")


def test_booleans_sent_as_zero_and_one_are_a_bool_column() -> None:
    # ClickHouse UInt8 (team_key_transaction, in/has results): 0/1, typed "boolean".
    meta = DiscoverMeta(fields={"team_key_transaction": "boolean"})
    rows = [{"team_key_transaction": 1}, {"team_key_transaction": 0}, {}]
    column = discover_table(rows, meta).column("team_key_transaction")
    assert column.type == pa.bool_()
    assert column.to_pylist() == [True, False, None]


def test_a_boolean_column_with_another_value_keeps_every_value_as_text() -> None:
    meta = DiscoverMeta(fields={"flag": "boolean"})
    column = discover_table([{"flag": True}, {"flag": 2}], meta).column("flag")
    assert column.type == pa.string()
    assert column.to_pylist() == ["true", "2"]


@pytest.mark.parametrize("big", [1e300, 9.223372036854776e18, -1e19])
def test_a_whole_float_past_int64_widens_an_integer_column_to_float64(big: float) -> None:
    meta = DiscoverMeta(fields={"n": "integer"})
    column = discover_table([{"n": 3}, {"n": big}], meta).column("n")
    assert column.type == pa.float64()
    assert column.to_pylist() == [3.0, big]
