"""The generator on a small inline spec, and the committed output's bookkeeping.

No spec file is read: the spec here is a few operations shaped like Sentry's (a sentence
for an operationId, a list without ``cursor``, a ``project`` filter, an empty schema),
enough to pin the decisions the generator makes for the real one.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
import types
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

import sentry_async.api
from codegen import generate as gen
from sentry_async import SentryClient
from sentry_async.api._support import APIModel

ROOT = Path(__file__).resolve().parent.parent

RELEASE = {
    "type": "object",
    "properties": {
        "version": {"type": "string"},
        "dateCreated": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": ["open", "archived", None], "nullable": True},
        "data": {},
        "owner": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
    "required": ["version", "dateCreated"],
}


def op(op_id: str, tag: str, params: list[dict[str, Any]], schema: Any = None,
       body: Any = None, code: str = "200") -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op_id, "tags": [tag], "parameters": params,
                           "summary": op_id, "responses": {}}
    if schema is not None:
        out["responses"][code] = {"content": {"application/json": {"schema": schema}}}
    else:
        out["responses"]["204"] = {}
    if body is not None:
        out["requestBody"] = {"content": {"application/json": {"schema": body}},
                              "required": True}
    return out


ORG = {"in": "path", "name": "organization_id_or_slug", "schema": {"type": "string"}}
PROJECT = {"in": "path", "name": "project_id_or_slug", "schema": {"type": "string"}}
VERSION = {"in": "path", "name": "version", "schema": {"type": "string"}}
CURSOR = {"in": "query", "name": "cursor", "schema": {"type": "string"}}
SPEC = {
    "paths": {
        "/api/0/organizations/{organization_id_or_slug}/releases/": {
            "get": op("listOrganizationReleases", "Releases", [
                ORG, CURSOR,
                {"in": "query", "name": "project", "schema": {"type": "array",
                                                              "items": {"type": "integer"}}},
                {"in": "query", "name": "statsPeriod", "schema": {"type": "string"}},
            ], {"type": "array", "items": RELEASE}),
            "post": op("createOrganizationRelease", "Releases", [ORG], RELEASE, body={
                "type": "object",
                "properties": {"version": {"type": "string"},
                               "status": {"type": "string", "enum": ["open", "archived"]}},
                "required": ["version"],
            }, code="201"),
        },
        "/api/0/organizations/{organization_id_or_slug}/releases/{version}/": {
            "get": op("getOrganizationRelease", "Releases", [ORG, VERSION], RELEASE),
            "delete": op("deleteOrganizationRelease", "Releases", [ORG, VERSION]),
        },
        "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}/releases/": {
            "get": op("List a Project's Releases", "Releases", [ORG, PROJECT, CURSOR],
                      {"type": "array", "items": RELEASE}),
        },
        "/api/0/organizations/{organization_id_or_slug}/releases/{version}/deploys/": {
            "get": op("listOrganizationReleaseDeploys", "Releases", [ORG, VERSION],
                      {"type": "array", "items": {"type": "object", "properties": {
                          "id": {"type": "string"}}}}),
        },
    }
}


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    files = gen.generate(SPEC, ROOT / "no-such-dir", strict=False)
    return {str(path): text for path, text in files.items()}


def test_methods_are_named_from_path_and_verb(generated: dict[str, str]) -> None:
    module = generated["sentry_async/api/releases.py"]
    names = re.findall(r"^    (?:async )?def (\w+)\(", module, re.M)
    assert names == ["list", "create", "get", "delete", "list_for_project", "list_deploys"]
    ast.parse(module)


def test_fields_are_optional_wire_named_and_tolerant(generated: dict[str, str]) -> None:
    module = types.ModuleType("sentry_async.api._probe")
    module.__package__ = "sentry_async.api"
    source = generated["sentry_async/api/releases.py"]
    sys.modules[module.__name__] = module  # msgspec resolves annotations through it
    try:
        exec(compile(source, "<generated releases module>", "exec"), module.__dict__)
        release = module.Release
        decoded = msgspec.json.decode(
            b'{"version": "1.0", "status": "new-status", "data": [1, {}], "extra": 1,'
            b' "owner": {"a": null}}',
            type=release,
        )
        # The override table says the server always sends ``version``: required.
        with pytest.raises(msgspec.ValidationError, match="version"):
            msgspec.json.decode(b'{"dateCreated": "x"}', type=release)
    finally:
        del sys.modules[module.__name__]
    assert decoded.date_created is None  # "required" in the spec, absent here: still decodes
    assert decoded.status == "new-status"  # response enums stay open
    assert decoded.data == [1, {}]
    assert decoded.owner == {"a": None}


def test_request_enums_are_literals_and_bodies_keywords(generated: dict[str, str]) -> None:
    module = generated["sentry_async/api/releases.py"]
    assert 'status: Literal["open", "archived"] | UnsetType | None = UNSET' in module
    assert "version: str," in module
    assert '_support.body({"version": version, "status": status})' in module


def test_pagination_is_decided_per_operation(generated: dict[str, str]) -> None:
    rows = {row["operation_id"]: row for row in json.loads(
        generated["sentry_async/api/_operations.json"])}
    assert rows["listOrganizationReleases"]["paginated"]
    assert rows["List a Project's Releases"]["paginated"]
    # No cursor declared and not in the override table: a plain list.
    assert not rows["listOrganizationReleaseDeploys"]["paginated"]
    query = {q[1]: q[2] for q in rows["listOrganizationReleases"]["query"]}
    assert query == {"project": "project", "statsPeriod": "query"}  # cursor is the paginator's
    module = generated["sentry_async/api/releases.py"]
    assert "_support.paginate_projects(" in module
    assert "stats_period: str | None = None" in module


def test_output_is_deterministic() -> None:
    first = gen.generate(SPEC, ROOT / "no-such-dir", strict=False)
    second = gen.generate(json.loads(json.dumps(SPEC)), ROOT / "no-such-dir", strict=False)
    assert first == second


def test_stale_overrides_fail_loudly() -> None:
    with pytest.raises(SystemExit, match="overrides"):
        gen.generate(SPEC, ROOT / "no-such-dir")


def test_readme_table_is_rewritten_between_markers() -> None:
    ops = gen.load_operations(SPEC, strict=False)
    readme = f"intro\n{gen.README_START}\nold\n{gen.README_END}\noutro\n"
    out = gen.render_readme(readme, ops)
    assert "old" not in out and out.startswith("intro\n") and out.endswith("\noutro\n")
    assert "| Releases | `client.releases` | 6 / 6 | 0 |" in out


def test_committed_readme_table_matches_the_metadata() -> None:
    rows = json.loads(
        resources.files(sentry_async.api).joinpath("_operations.json").read_text("utf-8")
    )
    readme = (ROOT / "README.md").read_text("utf-8")
    table = readme.split(gen.README_START)[1].split(gen.README_END)[0]
    assert f"**{len(rows)} / {len(rows)}**" in table
    for tag in {row["tag"] for row in rows}:
        count = sum(1 for row in rows if row["tag"] == tag)
        assert re.search(rf"^\| {re.escape(tag)} \|.*\| {count} / {count} \|", table, re.M)


def test_every_operation_is_a_method_on_the_client() -> None:
    rows = json.loads(
        resources.files(sentry_async.api).joinpath("_operations.json").read_text("utf-8")
    )
    client = SentryClient("t", base_url="http://127.0.0.1:9")
    for row in rows:
        assert callable(getattr(getattr(client, row["group"]), row["method"])), row


def test_generated_groups_are_imported_on_first_use() -> None:
    """``import sentry_async`` and building a client import no generated group that no
    hand-written resource extends; reading ``client.releases`` imports that one module."""
    probe = (
        "import sys, sentry_async\n"
        "from sentry_async.api._groups import GROUPS\n"
        "loaded = lambda: sorted(g for g in GROUPS if f'sentry_async.api.{g}' in sys.modules)\n"
        "before = loaded()\n"
        "client = sentry_async.SentryClient('t', base_url='http://127.0.0.1:9')\n"
        "built = loaded()\n"
        "client.releases\n"
        "print(before, built, loaded(), client.releases is client.releases)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.split() == ["[]", "[]", "['releases']", "True"]


def test_list_methods_hand_their_paging_to_one_helper() -> None:
    """Every generated list method is one call of ``_support.paginate`` (or its ``project=``
    variant) that names the path, parameters and item type and passes the paging arguments
    on as they came, so the paging policy is one function, not 39 copies."""
    api = ROOT / "sentry_async" / "api"
    calls = 0
    for path in sorted(api.glob("[!_]*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.FunctionDef) or node.returns is None:
                continue
            if not ast.unparse(node.returns).startswith("Paginator["):
                continue
            (statement,) = [s for s in node.body if not isinstance(s, ast.Expr)]
            assert isinstance(statement, ast.Return), (path.name, node.name)
            call = statement.value
            assert isinstance(call, ast.Call), (path.name, node.name)
            assert ast.unparse(call.func) in {"_support.paginate", "_support.paginate_projects"}
            keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
            assert keywords["page"] == "(page_size, cursor, skip, limit)", (path.name, node.name)
            assert {"path_params", "params", "type"} <= set(keywords), (path.name, node.name)
            calls += 1
    rows = json.loads((api / "_operations.json").read_text("utf-8"))
    assert calls == sum(1 for row in rows if row["paginated"] and not row["handwritten"])


def _generated_modules() -> dict[str, types.ModuleType]:
    from sentry_async.api._groups import GROUPS

    names = sorted({*GROUPS, "organizations", "projects", "events", "discover"})
    return {name: importlib.import_module(f"sentry_async.api.{name}") for name in names}


def _shape(info: Any, seen: frozenset[type] = frozenset()) -> Any:
    """A model's whole wire structure, whatever its classes are called: field names, wire
    names, requiredness and the types under them."""
    if isinstance(info, mi.StructType):
        if info.cls in seen:
            return "itself"
        inner = seen | {info.cls}
        return tuple((f.name, f.encode_name, f.required, _shape(f.type, inner))
                     for f in info.fields)
    if isinstance(info, mi.ListType):
        return ("list", _shape(info.item_type, seen))
    if isinstance(info, mi.DictType):
        return ("dict", _shape(info.key_type, seen), _shape(info.value_type, seen))
    if isinstance(info, mi.UnionType):
        return ("union", *(_shape(t, seen) for t in info.types))
    return type(info).__name__


def test_a_model_the_groups_share_is_one_class() -> None:
    from sentry_async.api import crons, organizations, projects, teams

    assert organizations.MemberUser is projects.MemberUser
    assert organizations.MemberUserIdentity is projects.MemberUserIdentity
    assert projects.TeamAvatar is teams.TeamAvatar
    assert "MemberUser" in organizations.__all__ and "MemberUser" in projects.__all__
    # Same name, different fields (the teams one requires ``id`` and ``slug``): kept apart.
    assert projects.Team is not teams.Team
    assert {f.name for f in mi.type_info(teams.Team).fields if f.required} == {"id", "slug"}
    assert crons.Monitor.__name__ == "Monitor"


def test_no_model_is_defined_twice() -> None:
    """Two modules' models of one wire structure are one class object, under whatever
    names each module exports it."""
    first: dict[Any, tuple[str, type]] = {}
    for name, module in _generated_modules().items():
        for attr in module.__all__:
            model = getattr(module, attr)
            if isinstance(model, type) and issubclass(model, APIModel):
                where, seen = first.setdefault(_shape(mi.type_info(model)), (name, model))
                assert where == name or seen is model, f"{name}.{attr} repeats {where}'s model"


def test_every_name_a_group_exports_is_importable_from_it() -> None:
    for name, module in _generated_modules().items():
        for attr in module.__all__:
            exec(f"from sentry_async.api.{name} import {attr}", {})


SHARED_SPEC = {
    "paths": {
        # One shape under one name in alpha and beta, under another name in delta; gamma has
        # the name with another shape.
        f"/api/0/organizations/{{organization_id_or_slug}}/{tag.lower()}/": {
            "get": op(op_id, tag, [ORG], {
                "type": "object",
                "properties": {"owner": {"type": "object", "properties": {"name": kind}}},
            }),
        }
        for tag, op_id, kind in (
            ("Alpha", "getOrganizationWidget", {"type": "string"}),
            ("Beta", "getOrganizationWidget", {"type": "string"}),
            ("Gamma", "getOrganizationWidget", {"type": "integer"}),
            ("Delta", "getOrganizationGadget", {"type": "string"}),
        )
    }
}


def test_identical_models_are_generated_once_and_imported() -> None:
    files = gen.generate(SHARED_SPEC, ROOT / "no-such-dir", strict=False)
    text = {str(path): body for path, body in files.items()}
    shared = text["sentry_async/api/_models.py"]
    alpha, beta, gamma, delta = (
        text[f"sentry_async/api/{g}.py"] for g in ("alpha", "beta", "gamma", "delta")
    )
    for module in (shared, alpha, beta, gamma, delta):
        ast.parse(module)
    # ``Widget`` and ``WidgetOwner`` are defined once, imported and re-exported.
    assert shared.count("class Widget(APIModel):") == 1
    assert shared.count("class WidgetOwner(APIModel):") == 1
    assert "class Gadget" not in shared
    for module in (alpha, beta):
        assert "class Widget" not in module
        assert "from ._models import Widget, WidgetOwner" in module
        assert '"Widget", "WidgetOwner"' in module
    # delta's ``Gadget`` is the same model: imported under the names delta has exported.
    assert "class " not in delta.split("class DeltaAPI", 1)[0]
    assert "from ._models import Widget as Gadget\n" in delta
    assert "from ._models import WidgetOwner as GadgetOwner\n" in delta
    assert '"Gadget", "GadgetOwner"' in delta
    # gamma's ``WidgetOwner`` holds an int, so its ``Widget`` (same text, other owner type)
    # is another model too: both stay in gamma under their names.
    assert "class WidgetOwner(APIModel):\n    name: int | None = None" in gamma
    assert "class Widget(APIModel):\n    owner: WidgetOwner | None = None" in gamma
    assert "_models" not in gamma
    assert gen.generate(json.loads(json.dumps(SHARED_SPEC)), ROOT / "no-such-dir",
                        strict=False) == files


def test_a_field_override_changes_the_type_and_the_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the server's serializer sends a list of what the spec calls one object, the
    override types the field as that list, and the samples follow."""
    monkeypatch.setattr(gen.overrides, "FIELD_SCHEMAS",
                        {"releases.Release.owner": {"type": "array", "items": "$spec"}})
    files = gen.generate(SPEC, ROOT / "no-such-dir", strict=False)
    module = files[Path("sentry_async/api/releases.py")]
    assert "owner: builtins.list[builtins.dict[str, int | None]] | None = None" in module
    rows = {row["operation_id"]: row for row in json.loads(
        files[Path("sentry_async/api/_operations.json")])}
    assert isinstance(rows["getOrganizationRelease"]["sample"]["owner"], list)
    for table in ("HANDWRITTEN", "RENAMES", "PAGINATED", "PAGED_FIELDS", "NOT_PAGINATED",
                  "PAGE_SIZE_PARAM", "BINARY", "ALWAYS_SENT", "PARAM_SCHEMAS", "PARAM_NAMES", "NEEDS_ONE_OF",
                  "PRESENCE_FLAGS", "RESPONSE_SCHEMAS", "BODILESS_NOTES", "QUERY_WIRE_NAMES",
                  "PARTIAL_BODIES", "NOT_REQUIRED", "RESPONSE_NOTES", "EXTRA_BODY_FIELDS",
                  "NONEMPTY_FILTERS", "UNREAD_PARAMS", "PAGED_WRITES", "BODILESS_ANSWERS",
                  "UPLOAD_NAMES", "BODY_REPEATS_QUERY"):
        monkeypatch.setattr(gen.overrides, table, {})
    monkeypatch.setattr(gen.overrides, "FIELD_SCHEMAS", {"releases.Release.nothing": {}})
    with pytest.raises(SystemExit, match="FIELD_SCHEMAS"):
        gen.generate(SPEC, ROOT / "no-such-dir", strict=True)


def test_a_field_filled_with_another_endpoint_s_objects_takes_its_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``"$items:<operationId>"`` stands for the items of that operation's list answer: the
    field is typed with their model, not a second class of the same shape."""
    monkeypatch.setattr(gen.overrides, "FIELD_SCHEMAS",
                        {"releases.Release.owner": "$items:listOrganizationReleaseDeploys"})
    files = gen.generate(SPEC, ROOT / "no-such-dir", strict=False)
    module = files[Path("sentry_async/api/releases.py")]
    # One class for the shape, under its shortest name.
    assert "    owner: ReleaseOwner | None = None" in module
    assert "type=builtins.list[ReleaseOwner]," in module
    assert "class ReleaseDeploy(" not in module
    rows = {row["operation_id"]: row for row in json.loads(
        files[Path("sentry_async/api/_operations.json")])}
    assert rows["getOrganizationRelease"]["sample"]["owner"] == {"id": "text"}
    monkeypatch.setattr(gen.overrides, "FIELD_SCHEMAS",
                        {"releases.Release.owner": "$items:getOrganizationRelease"})
    with pytest.raises(SystemExit, match="getOrganizationRelease"):
        gen.generate(SPEC, ROOT / "no-such-dir", strict=False)


def test_a_query_name_documented_as_another_fails_until_mapped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A spec parameter whose description shows it sent under another name (apidocs'
    ``project_id_or_slug``, read as ``?projectSlug=``) stops the generator until the table
    names what the server reads; the method then sends that name."""
    spec = json.loads(json.dumps(SPEC))
    listing = spec["paths"]["/api/0/organizations/{organization_id_or_slug}/releases/"]["get"]
    listing["parameters"].append({
        "in": "query", "name": "project_id_or_slug",
        "description": "For example:\n- `/?projectSlug=android&projectSlug=web`",
        "schema": {"type": "array", "items": {"type": "string"}},
    })
    with pytest.raises(SystemExit, match="QUERY_WIRE_NAMES"):
        gen.load_operations(spec, strict=False)
    monkeypatch.setattr(gen.overrides, "QUERY_WIRE_NAMES",
                        {"listOrganizationReleases": {"project_id_or_slug": "projectSlug"}})
    (op,) = [o for o in gen.load_operations(spec, strict=False)
             if o.op_id == "listOrganizationReleases"]
    assert {p.wire: p.py for p in op.query}["projectSlug"] == "project_slug"


def test_a_method_whose_answer_may_have_no_body_decodes_into_a_type_with_none() -> None:
    """The return type says ``| None`` and so must the decode target: an empty body for a
    type without ``None`` is a decode error, retried as a body cut short."""
    created = op("createOrganizationRelease", "Releases", [ORG], RELEASE, code="201")
    created["responses"]["208"] = {"description": "Already Reported"}
    spec = {"paths": {"/api/0/organizations/{organization_id_or_slug}/releases/": {
        "post": created}}}
    module = gen.generate(spec, ROOT / "no-such-dir", strict=False)
    text = next(text for path, text in module.items() if str(path).endswith("releases.py"))
    assert ") -> Release | None:" in text
    assert "type=_support.union(Release, type(None))," in text


@pytest.mark.parametrize("items", [
    {"type": "number", "nullable": True},
    {"type": ["number", "null"]},
    {"anyOf": [{"type": "number"}, {"type": "null"}]},
])
def test_nullable_array_items_are_typed_optional(items: dict[str, Any]) -> None:
    """A null element must decode: the spec's ``nullable`` on ``items`` (in any spelling)
    reaches the element type, not only the list's."""
    models = gen.ModelBuilder("g")
    assert models.type_of({"type": "array", "items": items}, "X") == "builtins.list[float | None]"
    assert models.type_of({"type": "array", "items": {"type": "number"}}, "X") == (
        "builtins.list[float]"
    )


def test_one_object_or_a_plain_value_is_their_union() -> None:
    models = gen.ModelBuilder("g")
    schema = {"anyOf": [{"type": "object", "properties": {"id": {"type": "string"}}},
                        {"type": "string"}]}
    assert models.type_of(schema, "Owner") == "Owner | str"


DETECTORS = "/api/0/organizations/{organization_id_or_slug}/detectors/"
DETECTOR = {"type": "object", "properties": {"id": {"type": "string"}}}


def bulk_spec() -> dict[str, Any]:
    """A listing and its bulk write (answered with the changed objects) and delete (200 or
    204, neither with a body in the spec)."""
    filters = [ORG, {"in": "query", "name": "query", "schema": {"type": "string"}}] + [
        {"in": "query", "name": name, "schema": {"type": "array", "items": {"type": "integer"}}}
        for name in ("id", "project")
    ]
    deleted = op("deleteOrganizationDetectors", "Monitors", filters)
    deleted["responses"]["200"] = {"description": "Success"}
    return {"paths": {DETECTORS: {
        "get": op("listOrganizationDetectors", "Monitors", filters,
                  {"type": "array", "items": DETECTOR}),
        "put": op("updateOrganizationDetectors", "Monitors", filters,
                  {"type": "array", "items": DETECTOR},
                  body={"type": "object", "properties": {"enabled": {"type": "boolean"}}}),
        "delete": deleted,
    }}}


def test_a_paged_write_reads_its_later_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """A write whose server pages its answer returns every object: one helper sends it
    and reads the rest with the path's GET; an override's ``title`` names its model."""
    nothing = {"type": "object", "title": "NothingMatched",
               "properties": {"detail": {"type": "string"}}}
    monkeypatch.setattr(gen.overrides, "RESPONSE_SCHEMAS", {
        "updateOrganizationDetectors": {"anyOf": ["$spec", nothing]},
        "deleteOrganizationDetectors": nothing,
    })
    monkeypatch.setattr(gen.overrides, "PAGED_WRITES", {"updateOrganizationDetectors": "why"})
    files = gen.generate(bulk_spec(), ROOT / "no-such-dir", strict=False)
    module = files[Path("sentry_async/api/monitors.py")]
    assert ") -> builtins.list[Detector] | NothingMatched:" in module
    assert "return await _support.paged_write(" in module
    assert "type=Detector,\n            other=NothingMatched," in module
    assert "GET /organizations/{org}/detectors/" in module
    # The delete's 200 has the override's body; its 204 is the answer without one.
    assert ") -> NothingMatched | None:" in module
    assert "type=_support.union(NothingMatched, type(None))," in module


def test_a_paged_write_without_a_listing_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = bulk_spec()
    del spec["paths"][DETECTORS]["get"]
    monkeypatch.setattr(gen.overrides, "PAGED_WRITES", {"updateOrganizationDetectors": "why"})
    with pytest.raises(SystemExit, match="PAGED_WRITES"):
        gen.generate(spec, ROOT / "no-such-dir", strict=False)


def test_an_answer_the_spec_leaves_out_adds_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for table in ("PAGED_WRITES", "RESPONSE_SCHEMAS", "RESPONSE_NOTES"):
        monkeypatch.setattr(gen.overrides, table, {})
    monkeypatch.setattr(gen.overrides, "BODILESS_ANSWERS",
                        {"updateOrganizationDetectors": {"204": "No detectors found"}})
    files = gen.generate(bulk_spec(), ROOT / "no-such-dir", strict=False)
    module = files[Path("sentry_async/api/monitors.py")]
    assert ") -> builtins.list[Detector] | None:" in module
    assert "(204, No detectors found)" in module
    spec = bulk_spec()
    spec["paths"][DETECTORS]["put"]["responses"]["204"] = {}
    with pytest.raises(SystemExit, match="BODILESS_ANSWERS"):
        gen.generate(spec, ROOT / "no-such-dir", strict=False)
