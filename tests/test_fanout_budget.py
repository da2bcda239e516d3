"""fan_out's item budget on its own: pure bookkeeping, no event loop, no network."""

from __future__ import annotations

from itertools import islice

from sentry_async._fanout_budget import Budget


def test_a_page_counts_as_taken_as_far_as_its_iterator_has_got() -> None:
    budget = Budget(8)
    budget.spend(5)
    budget.spend(5)  # a page may overdraw the budget by its own size
    assert (budget.room, budget.buffered, budget.max_buffered) == (-2, 10, 10)
    page = budget.open_page(list(range(5)))
    assert list(islice(page, 2)) == [0, 1]  # nothing is told per item
    assert (budget.room, budget.buffered) == (0, 8)
    assert list(page) == [2, 3, 4]
    assert (budget.room, budget.buffered) == (3, 5)
    budget.close_page()
    assert (budget.room, budget.buffered) == (3, 5), "closing commits, it does not add"
    budget.close_page()
    assert (budget.room, budget.buffered) == (3, 5), "a second close changes nothing"


def test_opening_a_page_commits_the_one_before() -> None:
    budget = Budget(10)
    budget.spend(3)
    budget.spend(3)
    first = budget.open_page([1, 2, 3])
    assert list(first) == [1, 2, 3]
    second = budget.open_page([4, 5, 6])
    next(second)
    assert (budget.room, budget.buffered) == (8, 2)


def test_items_travelling_one_by_one_are_given_back_one_by_one() -> None:
    budget = Budget(2)
    budget.spend(1)
    budget.spend(1)
    assert (budget.room, budget.half_free) == (0, False)
    budget.take(1)
    assert (budget.room, budget.buffered, budget.half_free) == (1, 1, True)
    assert budget.max_buffered == 2


def test_step_reaches_half_free_then_looks_again_every_few_items() -> None:
    budget = Budget(64)
    budget.spend(100)
    page = budget.open_page(list(range(100)))
    assert budget.low_water == 32
    assert budget.step() == 68, "items to take before half the budget is free"
    assert len(list(islice(page, 68))) == 68
    assert budget.half_free
    assert budget.step() == 16, "then every few items, in case a fetcher spent some"
    budget.spend(40)  # a fetcher handed a page over meanwhile
    assert budget.step() == 40


def test_a_zero_budget_still_wakes_and_steps() -> None:
    budget = Budget(0)
    assert budget.low_water == 1
    assert budget.room == 0 and not budget.half_free
    budget.spend(1)
    page = budget.open_page([1])
    assert budget.step() == 2
    next(page)
    assert budget.step() == 1 and not budget.half_free
