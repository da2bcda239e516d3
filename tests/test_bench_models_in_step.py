"""The decode benchmark's pydantic mirrors keep the msgspec models' fields.

``benchmarks/bench_decode.py`` compares decoding into :class:`Event` and ``list[Issue]``
against pydantic models written to mirror them; a field added to (or renamed in) a model
and not to its mirror would make the comparison quietly unfair. Every model reached from
``Event`` and ``Issue`` is paired with its mirror through the fields that hold them, and
the wire names must match.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from _benchmarks import import_benchmark

from sentry_async.models import Event, Issue

pydantic = pytest.importorskip("pydantic")


@pytest.fixture(scope="module")
def mirrors() -> tuple[type[Any], type[Any]]:
    bench = import_benchmark("bench_decode")
    decoders = bench.pydantic_decoders()
    assert decoders is not None
    event_decode, page_decode = decoders
    # The page adapter's schema (public from pydantic 2.0) is a list of the issue model.
    issue = page_decode.__self__.core_schema["items_schema"]["cls"]
    return event_decode.__self__, issue


def _models(annotation: Any, base: type[Any]) -> list[type[Any]]:
    """The model classes inside a field's type (``list[Tag] | None`` -> ``[Tag]``)."""
    # On Python 3.10 ``dict[str, Any]`` passes isinstance(..., type): no origin, a class.
    if typing.get_origin(annotation) is None and isinstance(annotation, type):
        return [annotation] if issubclass(annotation, base) else []
    return [m for arg in typing.get_args(annotation) for m in _models(arg, base)]


def _wire_fields(model: type[Any]) -> dict[str, Any]:
    if issubclass(model, msgspec.Struct):
        return {f.encode_name: f.type for f in msgspec.structs.fields(model)}
    return {field.alias or name: field.annotation for name, field in model.model_fields.items()}


def _pairs(typed: type[Any], mirror: type[Any]) -> Iterator[tuple[type[Any], type[Any]]]:
    """``(typed, mirror)``, then the same for every model field both of them have."""
    yield typed, mirror
    ours, theirs = _wire_fields(typed), _wire_fields(mirror)
    for name in sorted(ours.keys() & theirs.keys()):
        inner = _models(ours[name], msgspec.Struct), _models(theirs[name], pydantic.BaseModel)
        # A mirror may keep a nested object as ``Any`` (no names to compare then).
        if len(inner[0]) == len(inner[1]) == 1:
            yield from _pairs(inner[0][0], inner[1][0])


KNOWN_GAPS: dict[str, set[str]] = {}
"""Fields a model has and its mirror does not yet; an entry goes once the mirror has it
(the test fails when a listed field turns up in the mirror, so this list cannot go stale)."""


@pytest.mark.parametrize("root", [Event, Issue], ids=["Event", "Issue"])
def test_every_mirrored_model_has_the_same_wire_fields(
    root: type[Any], mirrors: tuple[type[Any], type[Any]]
) -> None:
    mirror = mirrors[0] if root is Event else mirrors[1]
    pairs = list(_pairs(root, mirror))
    assert len(pairs) > 1  # nested models are compared too
    for typed, copy in pairs:
        ours, theirs = set(_wire_fields(typed)), set(_wire_fields(copy))
        gaps = KNOWN_GAPS.get(typed.__name__, set())
        assert not gaps & theirs, f"{sorted(gaps & theirs)} are mirrored now: drop them above"
        theirs |= gaps
        assert ours == theirs, (
            f"{typed.__name__} vs the benchmark's {copy.__name__}: "
            f"missing there {sorted(ours - theirs)}, extra there {sorted(theirs - ours)}"
        )
