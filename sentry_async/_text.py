"""Server-controlled text made safe for a terminal.

Error details, slugs and titles come from the server; printed as they are, an escape
sequence in one could retitle the terminal, hide lines or fake output. Control and format
characters (C0, DEL, C1, bidirectional overrides, line and paragraph separators) are
written as Python-style escapes instead, so the text stays readable and one line.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control or format character escaped (``\\x1b``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(
        _escape(char) if char != " " and unicodedata.category(char) in _UNSAFE_CATEGORIES else char
        for char in text
    )
