"""Bodies into types: one cached msgspec decoder per type, and errors that name the type."""

from __future__ import annotations

from functools import lru_cache
from types import UnionType
from typing import Any, Union, get_args, get_origin

import msgspec

from ._transport import MalformedBody, Response
from .errors import DecodeError

__all__ = ["decode_body"]

_UNDECODABLE = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""What msgspec raises for a body that does not decode: invalid UTF-8 inside a string is a
``UnicodeDecodeError`` and nesting deeper than it follows a ``RecursionError``."""


@lru_cache(maxsize=256)
def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(type_)


def _type_name(type_: Any) -> str:
    """A short readable name: ``list[Issue]``, ``int | None``, ``Any``."""
    if type_ is type(None):
        return "None"
    origin, args = get_origin(type_), get_args(type_)
    if origin in (Union, UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is not None and args:
        return f"{_type_name(origin)}[{', '.join(_type_name(arg) for arg in args)}]"
    return getattr(type_, "__name__", None) or str(type_).replace("typing.", "")


def decode_body(response: Response, type_: Any, *, resend: bool) -> Any:
    """The body as ``type_``, or a :class:`DecodeError`; with ``resend``, a body that is not
    even JSON is a :class:`MalformedBody` instead, so that the transport tries again."""
    try:
        return _decoder(type_).decode(response.body)
    except _UNDECODABLE as exc:
        error = DecodeError(
            str(exc), method=response.method, url=str(response.url), type_name=_type_name(type_)
        )
        if (
            resend
            and isinstance(exc, msgspec.DecodeError)
            and not isinstance(exc, msgspec.ValidationError)
        ):
            error.__cause__ = exc
            raise MalformedBody(error) from exc
        raise error from exc
