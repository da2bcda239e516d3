"""An item's ``id`` read from its JSON bytes, without building the item: what the event
lists tell repeats by and the exporter de-duplicates by."""

from __future__ import annotations

import re

import msgspec

__all__ = ["PLAIN_ID", "item_id", "leading_id"]


class _Id(msgspec.Struct):
    id: str | int | None = None


PLAIN_ID = "[0-9A-Za-z_.:-]"
"""A character of an id every JSON encoder writes as it is: such an id's bytes in a body
are the id itself, found by a plain search or a pattern, never escaped."""


def leading_id(longest: int) -> re.Pattern[bytes]:
    """An object whose first key is ``"id"``, a plain string of up to ``longest``
    characters: how Sentry sends events and issues."""
    return re.compile(rb'\{"id":"(' + PLAIN_ID.encode() + b"{1,%d})\"[,}]" % longest)


_id_decoder = msgspec.json.Decoder(_Id)
_LEADING_ID = leading_id(200)


def item_id(item: bytes | msgspec.Raw, *, leading: bool = True) -> str | int | None:
    """The item's ``id``; ``None`` when it has no usable one.

    With ``leading``, an id that is the object's first key (a plain string) is read from
    the first bytes: parsing costs as much as the whole item, a full event's many
    kilobytes. Should the object repeat the key (JSON leaves that undefined), that first
    id is the item's; every reader of a JSON Lines export reads ids this way. Otherwise
    the item is parsed, and a repeated key's last value wins, as in the CSV and Parquet
    rows built from it (``leading=False``).

    msgspec before 0.23 reports invalid UTF-8 inside a string as ``UnicodeDecodeError``,
    not as one of its own errors, so that is caught too: one odd item must not stop the
    export. The caller writes such an item as it is and reports it.
    """
    if leading:
        found = _LEADING_ID.match(item)
        if found is not None:
            return found.group(1).decode("ascii")
    try:
        return _id_decoder.decode(item).id
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None
