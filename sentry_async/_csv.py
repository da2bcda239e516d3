"""One way to write a value as a CSV cell, for ``query`` and for CSV exports alike.

The same JSON value gives the same text whichever command wrote it: null is an empty cell,
booleans ``true``/``false``, integers exact, a whole float below 2**53 without its ``.0``
(Discover sends ``2.0`` for a count-like duration) and any other float as Python's
shortest round-trip form, so ``1.2345678901234566e+25`` is not printed as 26 digits of
which 9 were never sent. Nested values are their JSON text.

Text is written as sent: it is data. A cell that begins with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is run as a formula by spreadsheets, and titles and messages
come from whoever triggered the error; ``escape_formulas`` prefixes such text cells with
``'`` (OWASP's advice), which spreadsheets show as text.

Rows end with ``\n``. Python's ``csv`` (before 3.13) then leaves a cell holding a lone
``\r`` unquoted, which no reader reads back; :func:`row_writer` quotes such a row whole.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

import msgspec

__all__ = ["FORMULA_STARTS", "cell", "row_writer"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet takes for the start of a formula."""

_EXACT_FLOAT = 2**53
"""Below this a whole float is an exact integer; above it, its integer digits are made up."""


def cell(value: Any, *, escape_formulas: bool = False) -> str:
    """``value`` as the text of one CSV cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        if escape_formulas and value.startswith(FORMULA_STARTS):
            return "'" + value
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _EXACT_FLOAT:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return msgspec.json.encode(value).decode()


def row_writer(out: TextIO) -> Callable[[Sequence[str]], None]:
    """A function writing one row of cells to ``out``, each row ending with ``\n``."""
    plain = csv.writer(out, lineterminator="\n")
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def write(cells: Sequence[str]) -> None:
        (quoted if any("\r" in text for text in cells) else plain).writerow(cells)

    return write
