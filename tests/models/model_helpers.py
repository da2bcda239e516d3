"""Helpers the model tests share: the payload files and small decoding shortcuts."""

from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path
from typing import Any

import msgspec

from sentry_async.models import Event

PAYLOADS = Path(__file__).parent.parent / "payloads"
UTC = timezone.utc


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def body(name: str) -> Any:
    return json.loads(raw(name))


def decode(name: str, type_: Any) -> Any:
    return msgspec.json.decode(raw(name), type=type_)


def event(name: str) -> Event:
    result: Event = decode(name, Event)
    return result


EVENT_FILES = sorted(p.name for p in PAYLOADS.glob("event-*.json"))


def minimal_event(**fields: Any) -> dict[str, Any]:
    return {"id": "a" * 32, "type": "error", **fields}


def decode_obj(value: Any, type_: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value), type=type_)
