"""The pure decisions behind the fidelity fixes, without a network."""

from __future__ import annotations

import pickle

import pytest

from sentry_async import BulkPartialError, ErrorDetail, MultiProjectRefused, ProjectMoved
from sentry_async._protocol.errors import build_api_error, is_project_moved
from sentry_async._protocol.params import id_chunks, is_numeric_id, issue_id, project_refs
from sentry_async.errors import ServerError


def test_issue_ids() -> None:
    assert issue_id(42) == "42"
    assert issue_id(" 42 ") == "42"
    assert issue_id("PROJ-1A") == "PROJ-1A"
    assert issue_id("my_app-backend-Z9") == "my_app-backend-Z9"
    # A project slug may start with "_" or "-" (Sentry's MIXED_SLUG_PATTERN).
    assert issue_id("_WEB-1") == "_WEB-1" and issue_id("--1") == "--1"
    for bad in ("\u0664\u0662", "\uff14\uff12", "4 2", "PROJ-", "-1A", "PROJ-1A/x", "", -3, 0):
        with pytest.raises(ValueError, match="issue id"):
            issue_id(bad)
    assert not is_numeric_id("\u0664\u0662") and "\u0664\u0662".isdigit()


@pytest.mark.parametrize("mixed", [[1, -1], ["-1", "web"], ["web", 2, " -1"]])
def test_every_project_is_not_mixed_with_named_ones(mixed: list[str | int]) -> None:
    """Sentry reads ``-1`` as every accessible project only when it stands alone
    (``_get_projects_by_id`` in ``src/sentry/api/bases/organization.py``: ``project_ids ==
    ALL_ACCESS_PROJECTS``); beside other ids it is looked up as an id, found nowhere, and the
    whole call is a 403. The client says so before anything is sent."""
    with pytest.raises(ValueError, match=r"-1 .*every project.* alone"):
        project_refs(mixed)


def test_project_refs() -> None:
    assert project_refs(None) is None
    assert project_refs("web") == ["web"]
    assert project_refs([1, "2", "web"]) == ["1", "2", "web"]
    assert project_refs([-1, "-1"]) == ["-1", "-1"]
    # No ``project`` is Sentry's default, the member projects; ``-1`` is every project.
    with pytest.raises(ValueError, match=r"empty list.*-1 for every project.*None for"):
        project_refs([])
    with pytest.raises(ValueError):
        project_refs([0])
    with pytest.raises(ValueError):
        project_refs(["a/b"])


def test_id_chunks_respect_count_and_length() -> None:
    ids = [str(n) for n in range(1, 2501)]
    chunks = id_chunks(ids, base_length=0, limit=1000, budget=100_000)
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    long_ids = [str(10**17 + n) for n in range(1000)]  # 18 digits: 22 bytes an id
    chunks = id_chunks(long_ids, base_length=100, budget=8000)
    assert [i for chunk in chunks for i in chunk] == long_ids
    assert all(100 + sum(len(i) + 4 for i in c) <= 8000 for c in chunks)
    assert len(chunks) == 3
    with pytest.raises(ValueError, match="does not fit"):
        id_chunks(["9" * 9000], base_length=10)


def test_id_chunks_count_what_each_id_really_adds() -> None:
    """An id sent under another name, or twice, is counted at its own cost."""
    ids = [str(5_000_000 + n) for n in range(1000)]
    twice = id_chunks(ids, base_length=100, budget=8000, cost_of=lambda i: 2 * len(i) + 7)
    assert all(100 + sum(2 * len(i) + 7 for i in chunk) <= 8000 for chunk in twice)
    assert [i for chunk in twice for i in chunk] == ids
    assert len(twice) > len(id_chunks(ids, base_length=100, budget=8000))


def test_moved_project_answers_are_recognised() -> None:
    """Current Sentry (``handle_exception_with_details``) sends the new slug and path with
    no code; older servers add ``detail.code`` and ``detail.message``; the oldest sent the
    slug alone."""
    new_url = "/api/0/projects/o/new/?x=1"
    extra = f'"extra":{{"url":"{new_url}","slug":"new"}}'
    current = f'{{"slug":"new","detail":{{{extra}}}}}'.encode()
    older = (
        b'{"slug":"new","detail":{"code":"resource-moved","message":"Resource has been moved",'
        + extra.encode()
        + b"}}"
    )
    url = "https://sentry.io/api/0/projects/o/old/events/?x=1"
    for body, moved_to in ((current, new_url), (older, new_url), (b'{"slug":"new"}', None)):
        error = build_api_error(302, body, method="GET", url=url)
        assert isinstance(error, ProjectMoved)
        assert (error.new_slug, error.new_url) == ("new", moved_to)
        assert str(error) == f"302 from GET {url}: project 'old' was renamed to 'new'"
        assert pickle.loads(pickle.dumps(error)).new_slug == "new"
    assert not is_project_moved(302, None, {"detail": "x"})
    assert not is_project_moved(400, ErrorDetail("resource-moved", None, {}), None)


def test_a_moved_answer_without_the_old_slug_or_the_new_one_still_reads_as_a_rename() -> None:
    """A path that names no project (a fault, a proxy's rewrite), or an older server's
    body with its code only: the message says what is known."""
    error = build_api_error(302, b'{"slug":"new"}', method="GET", url="https://h/api/0/x/")
    assert str(error) == "302 from GET https://h/api/0/x/: project renamed to 'new'"
    coded = b'{"detail":{"code":"resource-moved","message":"Resource has been moved"}}'
    url = "https://h/api/0/projects/o/old/"
    error = build_api_error(301, coded, method="PUT", url=url)
    assert isinstance(error, ProjectMoved) and error.new_slug is None
    assert str(error) == f"301 from PUT {url}: project 'old' was renamed"


def test_multi_project_refusals_are_typed() -> None:
    for message in (
        "You do not have the multi project stream feature enabled",
        "You cannot view events from multiple projects.",
    ):
        body = b'{"detail":"' + message.encode() + b'"}'
        error = build_api_error(400, body, method="GET", url="u")
        assert isinstance(error, MultiProjectRefused)
        assert "fan_out" in str(error)
    other = build_api_error(400, b'{"detail":"Invalid query"}', method="GET", url="u")
    assert not isinstance(other, MultiProjectRefused)


def test_bulk_partial_error_pickles() -> None:
    cause = ServerError(503, method="PUT", url="u", detail="down")
    error = BulkPartialError(cause, done=["1"], not_done=["2", "3"])
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.done, copy.not_done) == (["1"], ["2", "3"])
    assert "1 of 3" in str(copy)
