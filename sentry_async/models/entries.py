"""The typed entries inside an event payload, and the parts they are made of.

An event's ``entries`` are decoded lazily, one entry type at a time: the payload itself
decodes with each entry's ``data`` kept as raw bytes, so a 1 MB event costs little until
its stack frames are actually read, and an entry type Sentry adds tomorrow (or an entry
whose shape changed) becomes an :class:`UnknownEntry` instead of failing the whole event.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import msgspec

from ._base import UNDECODABLE, Model, SnakeModel

logger = logging.getLogger("sentry_async")

__all__ = [
    "Breadcrumb",
    "BreadcrumbsEntry",
    "CspEntry",
    "DebugMetaEntry",
    "Entry",
    "EntryHead",
    "ExceptionEntry",
    "ExceptionValue",
    "Frame",
    "Mechanism",
    "MessageEntry",
    "RequestEntry",
    "Span",
    "SpansEntry",
    "Stacktrace",
    "StacktraceEntry",
    "TemplateEntry",
    "Thread",
    "ThreadsEntry",
    "UnknownEntry",
    "decode_entry",
]

_NULL = msgspec.Raw(b"null")


_ANY_OBJECT = msgspec.json.Decoder(Any)




def _why(exc: Exception) -> str:
    """A decoding failure's message; one for nesting the stack had no room for."""
    if isinstance(exc, RecursionError):
        return f"JSON nested too deeply to decode here ({exc})"
    return str(exc)


def _object(raw: msgspec.Raw) -> dict[str, Any] | None:
    """Lazily decoded JSON that should be an object; anything else reads as ``None``.

    Raises ``msgspec.DecodeError`` when it is nested deeper than the stack leaves room for,
    or holds a string that is not UTF-8.
    """
    try:
        value = _ANY_OBJECT.decode(raw)
    except (RecursionError, UnicodeDecodeError) as exc:
        raise msgspec.DecodeError(_why(exc)) from exc
    return value if isinstance(value, dict) else None


class Frame(Model):
    """One stack frame. ``vars`` values are any JSON (Sentry truncates them server-side).

    They are the bulk of a large event and rarely read, so the frame keeps them as the
    bytes Sentry sent (``raw_vars``) and :attr:`vars` decodes them on each access: decoding
    every entry of an event then costs about a third of building the dicts up front.
    """

    filename: str | None = None
    abs_path: str | None = None
    module: str | None = None
    package: str | None = None
    function: str | None = None
    raw_function: str | None = None
    symbol: str | None = None
    symbol_addr: str | None = None
    instruction_addr: str | None = None
    image_addr: str | None = None
    platform: str | None = None
    lineno: int | None = msgspec.field(default=None, name="lineNo")
    colno: int | None = msgspec.field(default=None, name="colNo")
    in_app: bool | None = None
    context: list[tuple[int, str | None]] = []
    raw_vars: msgspec.Raw = msgspec.field(default=_NULL, name="vars")
    trust: str | None = None
    errors: Any = None
    lock: Any = None
    source_link: str | None = None

    @property
    def vars(self) -> dict[str, Any] | None:
        """The frame's local variables, decoded now (keep the result if read twice).

        Raises ``msgspec.DecodeError`` when they are nested too deeply to decode, or hold
        a string that is not UTF-8."""
        return _object(self.raw_vars)


class Stacktrace(Model):
    frames: list[Frame] = []
    frames_omitted: Any = None
    registers: dict[str, Any] | None = None
    has_system_frames: bool | None = None


class Mechanism(Model):
    """How the exception was caught; Sentry sends its keys in snake_case (``help_link``)."""

    type: str | None = None
    handled: bool | None = None
    synthetic: bool | None = None
    description: str | None = None
    help_link: str | None = msgspec.field(default=None, name="help_link")
    data: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    source: str | None = None
    is_exception_group: bool | None = msgspec.field(default=None, name="is_exception_group")
    exception_id: int | None = msgspec.field(default=None, name="exception_id")
    parent_id: int | None = msgspec.field(default=None, name="parent_id")


class ExceptionValue(Model):
    """The ``raw_*`` fields are the exception as the SDK sent it, kept by Sentry's processing
    (source maps, ProGuard) where it rewrote them; ``None`` otherwise."""

    type: str | None = None
    value: str | None = None
    module: str | None = None
    thread_id: int | str | None = None
    mechanism: Mechanism | None = None
    stacktrace: Stacktrace | None = None
    raw_type: str | None = None
    raw_value: str | None = None
    raw_module: str | None = None
    raw_stacktrace: Stacktrace | None = None


class Breadcrumb(Model):
    """``timestamp`` is an RFC 3339 string on most servers and epoch milliseconds on some.

    ``data`` stays bytes (``raw_data``) until read, as a frame's ``vars`` do.
    """

    type: str | None = None
    category: str | None = None
    level: str | None = None
    timestamp: str | float | None = None
    message: str | None = None
    raw_data: msgspec.Raw = msgspec.field(default=_NULL, name="data")
    event_id: str | None = msgspec.field(default=None, name="event_id")
    message_format: str | None = None
    message_raw: str | None = None

    @property
    def data(self) -> dict[str, Any] | None:
        """The crumb's data object, decoded now; ``None`` when absent or not an object."""
        return _object(self.raw_data)


class Span(SnakeModel):
    span_id: str | None = None
    trace_id: str | None = None
    parent_span_id: str | None = None
    op: str | None = None
    description: str | None = None
    status: str | None = None
    start_timestamp: float | None = None
    timestamp: float | None = None
    exclusive_time: float | None = None
    same_process_as_parent: bool | None = None
    hash: str | None = None
    tags: dict[str, Any] | None = None
    data: dict[str, Any] | None = None


class Thread(Model):
    id: int | str | None = None
    name: str | None = None
    crashed: bool | None = None
    current: bool | None = None
    main: bool | None = None
    state: str | None = None
    stacktrace: Stacktrace | None = None
    raw_stacktrace: Stacktrace | None = None


class Entry(Model):
    """Base of the typed entries; ``entry_type`` is the wire ``type`` it decodes."""

    entry_type: ClassVar[str] = ""


class ExceptionEntry(Entry):
    entry_type: ClassVar[str] = "exception"
    values: list[ExceptionValue] = []
    has_system_frames: bool | None = None
    exc_omitted: list[int] | None = None


class StacktraceEntry(Stacktrace, Entry):
    entry_type: ClassVar[str] = "stacktrace"


class MessageEntry(Entry):
    entry_type: ClassVar[str] = "message"
    formatted: str | None = None
    message: str | None = None
    params: Any = None


class BreadcrumbsEntry(Entry):
    entry_type: ClassVar[str] = "breadcrumbs"
    values: list[Breadcrumb] = []


class RequestEntry(Entry):
    """``query`` is a list of pairs on current servers and a raw string on old ones; a pair
    of ``query`` or ``headers`` may be ``null``, passed through as the SDK sent it."""

    entry_type: ClassVar[str] = "request"
    url: str | None = None
    method: str | None = None
    query: list[tuple[str, str | None] | None] | str | None = None
    fragment: str | None = None
    data: Any = None
    headers: list[tuple[str, str | None] | None] | None = None
    cookies: Any = None
    env: dict[str, Any] | None = None
    inferred_content_type: str | None = None
    api_target: str | None = None


class TemplateEntry(Entry):
    entry_type: ClassVar[str] = "template"
    filename: str | None = None
    abs_path: str | None = None
    lineno: int | None = msgspec.field(default=None, name="lineNo")
    context: list[tuple[int, str | None]] = []


class SpansEntry(Entry):
    """The ``spans`` entry's ``data`` is a list, unlike every other entry's object."""

    entry_type: ClassVar[str] = "spans"
    spans: list[Span] = []


class CspEntry(Entry):
    entry_type: ClassVar[str] = "csp"
    report: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        """A report field by its wire name (``effective_directive``, ``blocked_uri`` ...)."""
        return self.report.get(key)


class ThreadsEntry(Entry):
    entry_type: ClassVar[str] = "threads"
    values: list[Thread] = []


class DebugMetaEntry(Entry):
    """An image may be ``null``: Sentry passes the list through as the SDK sent it."""

    entry_type: ClassVar[str] = "debugmeta"
    images: list[dict[str, Any] | None] = []
    sdk_info: dict[str, Any] | None = msgspec.field(default=None, name="sdk_info")
    is_debug_build: bool | None = msgspec.field(default=None, name="is_debug_build")


class UnknownEntry(Entry):
    """An entry type this library does not know, or one whose data did not fit its model.

    Re-encoding it gives the entry back as Sentry sent it; :meth:`error` says what did not
    fit, so that a changed shape is visible rather than silently missing from
    ``event.exception``.
    """

    type: str
    data: msgspec.Raw

    def error(self) -> str | None:
        """Why a known entry type did not fit its model (msgspec's message, with the JSON
        path); ``None`` for a type this library does not model."""
        try:
            _decode_known(self.type, self.data)
        except UNDECODABLE as exc:
            return _why(exc)
        return None


class EntryHead(msgspec.Struct, kw_only=True, gc=False):
    """An entry as it sits in the payload: its type, and its data still as bytes."""

    type: str = ""
    data: msgspec.Raw = _NULL


def _decoder(cls: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(cls)


_ENTRY_DECODERS: dict[str, tuple[type[Entry], msgspec.json.Decoder[Any]]] = {
    cls.entry_type: (cls, _decoder(cls))
    for cls in (
        ExceptionEntry,
        StacktraceEntry,
        MessageEntry,
        BreadcrumbsEntry,
        RequestEntry,
        TemplateEntry,
        ThreadsEntry,
        DebugMetaEntry,
    )
}
_SPANS = msgspec.json.Decoder(list[Span])
_OBJECT = msgspec.json.Decoder(dict[str, Any])


def _decode_known(type_: str, data: msgspec.Raw) -> Entry | None:
    """The typed entry, ``None`` for an unmodelled type; raises when the data does not fit."""
    if type_ == "spans":
        return SpansEntry(spans=_SPANS.decode(data))
    if type_ in ("csp", "nel", "hpkp", "expectct", "expectstaple"):
        return CspEntry(report=_OBJECT.decode(data))
    known = _ENTRY_DECODERS.get(type_)
    if known is None:
        return None
    entry: Entry = known[1].decode(data)
    return entry


def decode_entry(head: EntryHead) -> Entry:
    """Decode one entry by its type; anything unexpected becomes an :class:`UnknownEntry`
    (data nested too deeply to decode at this depth of the stack, or not UTF-8, included)."""
    # The event's decoding skipped the entry's bytes unread: msgspec follows their nesting
    # only as deep as the stack now allows (an event decoded at one depth may have its
    # entries read at a deeper one), and checks their strings' UTF-8 only now.
    try:
        entry = _decode_known(head.type, head.data)
    except UNDECODABLE as exc:
        logger.debug("a %r entry did not fit its model: %s", head.type, exc)
        entry = None
    return entry if entry is not None else UnknownEntry(type=head.type, data=head.data)
