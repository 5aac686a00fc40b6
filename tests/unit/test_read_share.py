"""The budget of reading time in place: reads from other threads take at most their share of the interpreter."""

from __future__ import annotations

import pytest

import pepper
from pepper.core import AgentSelector
from pepper.engine.read_share import ReadShare
from pepper.errors import ValidationError


class Timer:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reads_begin_while_budget_is_left_and_their_time_is_taken_from_it() -> None:
    timer = Timer()
    share = ReadShare(share=0.25, burst=0.002, timer=timer)
    began = share.begin()
    assert began == 100.0
    timer.now += 0.0015  # a read of 1.5 ms, while the budget refills at a quarter of the time
    share.spent(began)
    assert share.left() == pytest.approx(0.002 - 0.0015 + 0.0015 * 0.25)
    began = share.begin()
    assert began is not None
    timer.now += 0.002
    share.spent(began)  # overdrawn now
    assert share.left() == pytest.approx(0.000875 - 0.002 + 0.002 * 0.25)
    assert share.begin() is None  # spent: the read goes to the engine's thread
    assert (share.in_place, share.handed_over) == (2, 1)
    timer.now += 0.003  # refilled at a quarter of the time that passed
    assert share.left() == pytest.approx(-0.001125 + 0.005 * 0.25)
    assert share.begin() is not None


def test_the_budget_never_holds_more_than_one_burst() -> None:
    timer = Timer()
    share = ReadShare(share=0.5, burst=0.001, timer=timer)
    timer.now += 3600.0  # an hour without reads
    assert share.left() == pytest.approx(0.001)
    began = share.begin()
    assert began is not None
    timer.now += 0.003
    share.spent(began)
    assert share.begin() is None


def test_a_reader_that_never_pauses_reads_in_place_about_its_share_of_the_time() -> None:
    timer = Timer()
    share = ReadShare(share=0.5, burst=0.002, timer=timer)
    in_place = 0
    for _ in range(10_000):
        began = share.begin()
        if began is None:
            timer.now += 0.0001  # asked on the engine's thread: 100 us of waiting, no interpreter taken
            continue
        timer.now += 0.00002  # 20 us in place
        share.spent(began)
        in_place += 1
    reading = in_place * 0.00002
    assert reading / (timer.now - 100.0) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(("share", "burst"), [(0, 0.002), (1.5, 0.002), (-0.1, 0.002), (0.5, 0), (0.5, -1)])
def test_a_budget_out_of_range_is_refused(share: float, burst: float) -> None:
    with pytest.raises(ValidationError, match=r"(share|burst) must be"):
        ReadShare(share=share, burst=burst)


def test_with_the_budget_spent_answers_come_from_the_engine_thread_and_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    with pepper.Runtime(db=":memory:") as runtime:
        for i in range(20):
            pepper.agent(f"agent-{i:02d}", task_types=["build"], skills=["py"] if i % 2 else ["go"],
                         capacity=1 + i % 3, runtime=runtime)(lambda task: None)  # fmt: skip
        runtime.start()
        selector = AgentSelector(runtime)
        in_place = selector.select_agent("build", {"skills": ["go"]})
        service = runtime._service
        assert service is not None
        timer = Timer()
        spent = ReadShare(share=0.5, burst=0.001, timer=timer)
        began = spent.begin()
        assert began is not None
        timer.now += 1.0  # a long read overdraws it, and the timer stands still: it never refills
        spent.spent(began)
        monkeypatch.setattr(service, "_read_share", spent)
        hops = [0]
        portal = runtime.portal()
        call = portal.call

        def counted(coro, timeout=None):  # type: ignore[no-untyped-def]
            hops[0] += 1
            return call(coro, timeout)

        monkeypatch.setattr(portal, "call", counted)
        handed = selector.select_agent("build", {"skills": ["go"]})
        assert hops[0] == 1 and spent.handed_over == 1
        assert handed == in_place
