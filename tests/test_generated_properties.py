"""Property tests for the generated models: whatever shape the schema allows decodes.

Instances are drawn from each generated model's own structure (which the generator took
from the spec's schema) with optional fields left out, nulls where a field may be null,
and unknown fields added at every level, as a newer or older Sentry would send them. A
second test takes each operation's committed schema instance and removes or adds fields.
"""

from __future__ import annotations

import builtins
import importlib
import json
import random
from importlib import resources
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sentry_async.api
from sentry_async.api._groups import GROUPS
from sentry_async.api._support import APIModel

OPERATIONS: list[dict[str, Any]] = json.loads(
    resources.files(sentry_async.api).joinpath("_operations.json").read_text("utf-8")
)
MODULES = sorted({*GROUPS, "organizations", "projects", "events", "discover"})
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

UNKNOWN = "zz_unknown_"


def json_value(rnd: random.Random, depth: int = 0) -> Any:
    """Any small JSON value: what an unknown field may hold."""
    kind = rnd.randrange(7 if depth < 2 else 5)
    if kind == 5:
        return [json_value(rnd, depth + 1) for _ in range(rnd.randrange(3))]
    if kind == 6:
        return {f"k{i}": json_value(rnd, depth + 1) for i in range(rnd.randrange(3))}
    return [None, True, rnd.randint(-(2**53), 2**53), rnd.random() * 1e6, "x" * rnd.randrange(5)][
        kind
    ]


def instance(info: mi.Type, rnd: random.Random, depth: int = 0) -> Any:
    """A JSON-ready value of the wire shape ``info`` decodes: optional fields left out at
    random, nulls where allowed, unknown fields added."""
    if isinstance(info, mi.StructType):
        out: dict[str, Any] = {}
        for f in info.fields:
            if f.required or (depth < 4 and rnd.random() < 0.6):
                out[f.encode_name] = instance(f.type, rnd, depth + 1)
        for i in range(rnd.randrange(3)):
            out[f"{UNKNOWN}{i}"] = json_value(rnd)
        return out
    if isinstance(info, mi.UnionType):
        return instance(rnd.choice(info.types), rnd, depth)
    if isinstance(info, mi.ListType):
        return [instance(info.item_type, rnd, depth + 1) for _ in range(rnd.randrange(3))]
    if isinstance(info, mi.DictType):
        return {f"key{i}": instance(info.value_type, rnd, depth + 1) for i in range(rnd.randrange(3))}
    if isinstance(info, mi.LiteralType):
        return rnd.choice(info.values)
    if isinstance(info, mi.NoneType):
        return None
    if isinstance(info, mi.BoolType):
        return rnd.random() < 0.5
    if isinstance(info, mi.IntType):
        return rnd.choice([0, -1, 2**63 - 1, rnd.randint(-(2**31), 2**31)])
    if isinstance(info, mi.FloatType):
        return rnd.choice([0, 1.5, -1e300, rnd.randint(-1000, 1000)])
    if isinstance(info, mi.StrType):
        return rnd.choice(["", "é\u2028\U0001f600", "2026-01-01T00:00:00Z", "x" * rnd.randrange(9)])
    if isinstance(info, mi.AnyType):
        return json_value(rnd)
    raise AssertionError(f"the generator emitted a type the tests do not know: {info!r}")


def models(module_name: str) -> list[type[APIModel]]:
    """The models a group exports: its own and those it shares through ``_models``."""
    module = importlib.import_module(f"sentry_async.api.{module_name}")
    exported = {getattr(module, name) for name in module.__all__}
    return sorted(
        (obj for obj in exported if isinstance(obj, type) and issubclass(obj, APIModel)),
        key=lambda model: (model.__module__, model.__name__),
    )


WITH_MODELS = [m for m in MODULES if models(m)]


def test_every_group_has_models_to_test() -> None:
    assert sum(len(models(m)) for m in MODULES) > 100
    assert len(WITH_MODELS) >= len(MODULES) - 1


@pytest.mark.parametrize("module_name", WITH_MODELS)
def test_any_instance_of_the_schema_decodes(module_name: str) -> None:
    types = models(module_name)
    infos = [(t, mi.type_info(t)) for t in types]

    @SETTINGS
    @given(st.integers(0, 2**32))
    def check(seed: int) -> None:
        rnd = random.Random(seed)
        model, info = rnd.choice(infos)
        data = instance(info, rnd)
        decoded = msgspec.json.decode(msgspec.json.encode(data), type=model)
        wire = msgspec.to_builtins(decoded)
        for key, value in data.items():
            if key.startswith(UNKNOWN):
                assert key not in wire
            elif value is not None:
                assert key in wire, f"{model.__name__}: {key} was dropped"

    check()


def returned_type(op: dict[str, Any]) -> Any:
    module = importlib.import_module(f"sentry_async.api.{op['group']}")
    return eval(op["returns"], {**vars(module), "builtins": builtins})


def required_fields(group: str) -> set[str]:
    """Wire names the override table makes required in a group's models: never dropped."""
    return {
        f.encode_name
        for model in models(group)
        for f in mi.type_info(model).fields
        if f.required
    }


def thin(value: Any, rnd: random.Random, keep: set[str]) -> Any:
    """Drop some keys and add unknown ones, all the way down."""
    if isinstance(value, dict):
        kept = {
            k: thin(v, rnd, keep)
            for k, v in value.items()
            if k in keep or rnd.random() < 0.6
        }
        if value and rnd.random() < 0.5:
            # A sibling's value: an unknown field of an object, or one more entry of a map.
            kept[f"{UNKNOWN}{rnd.randrange(100)}"] = rnd.choice(list(value.values()))
        return kept
    if isinstance(value, list):
        return [thin(item, rnd, keep) for item in value]
    return value


SAMPLED = [
    op for op in OPERATIONS
    if not op["handwritten"] and op["sample"] is not None and op["returns"] != "None"
]


@pytest.mark.parametrize("group", sorted({op["group"] for op in SAMPLED}))
def test_schema_instances_decode_with_fields_removed_and_added(group: str) -> None:
    ops = [op for op in SAMPLED if op["group"] == group]
    keep = required_fields(group)

    @SETTINGS
    @given(st.integers(0, 2**32))
    def check(seed: int) -> None:
        rnd = random.Random(seed)
        op = rnd.choice(ops)
        sample = op["sample"]
        if op["paginated"]:
            sample = sample[op["envelope"]][0] if op["envelope"] else sample[0]
        changed = thin(sample, rnd, keep)
        decoded = msgspec.json.decode(msgspec.json.encode(changed), type=returned_type(op))
        if isinstance(decoded, msgspec.Struct):
            assert not any(key.startswith(UNKNOWN) for key in msgspec.to_builtins(decoded))

    check()
