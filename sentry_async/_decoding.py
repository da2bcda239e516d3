"""Bodies into types: one cached msgspec decoder per type, and errors that name the type."""

from __future__ import annotations

from functools import lru_cache
from types import UnionType
from typing import Any, Union, get_args, get_origin

import msgspec

from ._transport import MalformedBody, Response
from .errors import DecodeError
from .models._base import UNDECODABLE

__all__ = ["MAX_BOUNDED_ITEMS", "data_within", "decode_body", "decode_items", "no_body"]



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


def _accepts_none(type_: Any) -> bool:
    if type_ is Any or type_ is None or type_ is type(None) or type_ is object:
        return True
    if get_origin(type_) in (Union, UnionType):
        return any(_accepts_none(arg) for arg in get_args(type_))
    return False


def no_body(response: Response, type_: Any) -> None:
    """What an empty body decodes to: ``None`` for a type with room for it (``Any``,
    ``X | None``, a documented answer without a body); for any other type it is no answer
    at all, a :class:`MalformedBody`, resent as a body cut short is."""
    if not _accepts_none(type_):
        error = DecodeError(
            "the response has no body",
            method=response.method,
            url=response.shown_url,
            type_name=_type_name(type_),
        )
        raise MalformedBody(error)


def decode_body(response: Response, type_: Any, *, resend: bool) -> Any:
    """The body as ``type_``, or a :class:`DecodeError`; with ``resend``, a body that is not
    even JSON is a :class:`MalformedBody` instead, so that the transport tries again."""
    try:
        return _decoder(type_).decode(response.body)
    except UNDECODABLE as exc:
        failure = _failed(response, type_, exc, resend)
    raise failure  # outside the ``except``: msgspec's error is not even its context


def _failed(response: Response, type_: Any, exc: Exception, resend: bool) -> Exception:
    """The error for a body that does not decode. msgspec quotes a value it could not read
    (an enum's, a literal's, a tag's), which a server may have filled with the token: its
    message is redacted, and its error, which quotes the value raw, is not chained."""
    reason = str(exc)
    if not isinstance(exc, msgspec.ValidationError) and _is_html(response):
        reason = (
            f"the server answered {response.status} with an HTML page, not JSON: is base_url "
            "the root of Sentry's site (https://sentry.example.com, or its path prefix) "
            f"rather than the URL of a page? ({reason})"
        )
    if response.redact is not None:
        reason = response.redact(reason)
    error = DecodeError(
        reason, method=response.method, url=response.shown_url, type_name=_type_name(type_)
    )
    if (
        resend
        and isinstance(exc, msgspec.DecodeError)
        and not isinstance(exc, msgspec.ValidationError)
    ):
        return MalformedBody(error)
    return error


def _is_html(response: Response) -> bool:
    """A web page where JSON was due: a base URL pasted from the browser reaches Sentry's
    web UI, which answers any page path with its HTML (or a login page's)."""
    content_type = response.headers.get("Content-Type", "")
    return "html" in content_type.lower() or response.body[:1024].lstrip()[:1] == b"<"


MAX_BOUNDED_ITEMS = 4096
"""Largest item count :func:`decode_items` bounds: it costs a field per item allowed."""


@lru_cache(maxsize=64)
def _bounded(item_type: Any, limit: int) -> tuple[msgspec.json.Decoder[Any], str]:
    """A decoder of at most ``limit`` items, and what msgspec says of an array longer.

    An array-like struct of ``limit`` optional fields: msgspec stops at the first item
    past the last field, where ``list[...]`` with ``Meta(max_length=...)`` builds every
    item before it checks the length; decoding it measured as fast as the list."""
    fields = [(f"i{n}", item_type, msgspec.UNSET) for n in range(limit)]
    items = msgspec.defstruct(
        "BoundedItems", fields, array_like=True, forbid_unknown_fields=True
    )
    return msgspec.json.Decoder(items), f"Expected `array` of at most length {limit}"


def decode_items(response: Response, item_type: Any, limit: int) -> list[Any] | None:
    """A list page's items, or ``None`` when it holds more than ``limit`` (at most
    :data:`MAX_BOUNDED_ITEMS`), refused before they are built: a page of tiny items takes
    some 36 times its bytes once decoded. Errors as :func:`decode_body`'s with ``resend``."""
    decoder, too_long = _bounded(item_type, limit)
    failure: Exception | None = None
    try:
        found = decoder.decode(response.body)
    except UNDECODABLE as exc:
        if isinstance(exc, msgspec.ValidationError) and str(exc) == too_long:
            return None
        failure = _failed(response, list[item_type], exc, True)
    if failure is not None:
        raise failure  # outside the ``except``, as decode_body's
    items = msgspec.structs.astuple(found)
    # The items given fill the first fields: the count is where UNSET begins.
    low, high = 0, limit
    while low < high:
        middle = (low + high) // 2
        if items[middle] is msgspec.UNSET:
            high = middle
        else:
            low = middle + 1
    return list(items[:low])


@lru_cache(maxsize=64)
def _data_counter(limit: int) -> tuple[msgspec.json.Decoder[Any], str]:
    decoder, too_long = _bounded(msgspec.Raw, limit)
    envelope = msgspec.defstruct("BoundedData", [("data", decoder.type, msgspec.UNSET)])
    return msgspec.json.Decoder(envelope), too_long


def data_within(response: Response, limit: int) -> bool:
    """Whether a page wrapped as ``{"data": [...]}`` holds at most ``limit`` items, found
    without building them (other keys are skipped unread); a body of another shape is
    left to its own decoding to judge."""
    decoder, too_long = _data_counter(limit)
    try:
        decoder.decode(response.body)
    except UNDECODABLE as exc:
        return not (isinstance(exc, msgspec.ValidationError) and str(exc) == too_long)
    return True
