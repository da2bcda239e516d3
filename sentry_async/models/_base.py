"""The base every model shares: tolerant of unknown fields, camelCase on the wire.

Sentry adds fields constantly and drops others by era and event type, so every field has a
default and unknown keys are ignored; ``type``-like fields stay open strings, never enums.

Models are ``gc=False``: decoded JSON holds no reference cycle, and a page of issues or a
1 MB event is thousands of objects that every garbage collection would otherwise walk while
the page waits to be read. A model made part of a cycle by hand would never be collected.
"""

from __future__ import annotations

import msgspec

__all__ = ["UNDECODABLE", "Model", "SnakeModel"]

UNDECODABLE = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""What msgspec raises for JSON that does not decode: invalid UTF-8 inside a string is a
``UnicodeDecodeError`` before msgspec 0.23 (a ``DecodeError`` from then on) and nesting
deeper than it follows a ``RecursionError``."""


class Model(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", gc=False):
    """A response object whose wire names are camelCase (``shortId`` -> ``short_id``)."""


class SnakeModel(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """A response object whose wire names are already snake_case (spans, CSP reports)."""
