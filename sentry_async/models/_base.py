"""The base every model shares: tolerant of unknown fields, camelCase on the wire.

Sentry adds fields constantly and drops others by era and event type, so every field has a
default and unknown keys are ignored; ``type``-like fields stay open strings, never enums.
"""

from __future__ import annotations

import msgspec

__all__ = ["Model", "SnakeModel"]


class Model(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """A response object whose wire names are camelCase (``shortId`` -> ``short_id``)."""


class SnakeModel(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A response object whose wire names are already snake_case (spans, CSP reports)."""
