"""Which runs of a family of sub-workflows a prune may take: all of them or none."""

from __future__ import annotations

from pepper.store.retention import keep_families

LINKS = [("top", None), ("mid", "top/docs"), ("leaf", "mid/part"), ("alone", None), ("orphan", "gone/step")]


def _kept(prunable: set[str]) -> set[str]:
    runs = set(prunable)
    keep_families(runs, LINKS)
    return runs


def test_a_whole_finished_family_goes_and_unrelated_runs_are_untouched():
    assert _kept({"top", "mid", "leaf", "alone"}) == {"top", "mid", "leaf", "alone"}


def test_a_finished_child_of_a_run_that_stays_stays_and_so_do_its_own_children():
    assert _kept({"mid", "leaf", "alone"}) == {"alone"}


def test_a_finished_parent_stays_while_a_child_or_grandchild_stays():
    assert _kept({"top", "mid", "alone"}) == {"alone"}
    assert _kept({"top", "leaf"}) == set()


def test_a_child_whose_parent_run_is_no_longer_stored_may_go():
    assert _kept({"orphan"}) == {"orphan"}
