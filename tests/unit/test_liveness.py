"""Another worker's silence counts only over the time this worker's own heartbeats went through."""

from __future__ import annotations

import pytest

from pepper.engine.liveness import OwnBeats


def beats(*ends: float, interval: float = 1.0, keep: float = 100.0) -> OwnBeats:
    own = OwnBeats(interval, keep)
    for end in ends:
        own.wrote(end, end)
    return own


def test_beats_on_time_leave_silence_as_it_is() -> None:
    own = beats(0.0, 1.0, 2.0, 3.0)
    assert own.silence(0.5, 3.5) == 3.0
    assert own.silence(-10.0, 3.5) == 13.5


def test_a_stretch_in_which_this_worker_could_not_write_is_taken_off_anothers_silence() -> None:
    # Given beats every second, then one held up 10 s by a lock every writer waited behind
    own = beats(0.0, 1.0, 12.0, 13.0)
    # Then another worker last heard just before the lock has been silent 3 s of the time this one could write
    assert own.silence(0.9, 13.9) == pytest.approx(3.0)
    # And only the part of the stretch after it was last heard counts: heard at 8 s, 3 s of it were held up
    assert own.silence(8.0, 13.9) == pytest.approx(5.9 - 4.0)
    # And a worker heard after the stretch is judged by its silence alone
    assert own.silence(12.5, 13.9) == pytest.approx(1.4)


def test_a_registration_that_waited_counts_as_held_up() -> None:
    own = OwnBeats(1.0, 100.0)
    own.wrote(0.0, 6.0)  # asked at 0, went through at 6
    assert own.silence(-1.0, 7.0) == pytest.approx(2.0)
    quick = OwnBeats(1.0, 100.0)
    quick.wrote(0.0, 0.0)
    assert quick.silence(-1.0, 7.0) == 8.0


def test_stretches_are_forgotten_after_a_while() -> None:
    own = beats(0.0, 10.0, keep=20.0)  # 9 s held up, at 10 s
    assert own.silence(0.0, 10.0) == pytest.approx(1.0)
    for end in range(11, 32):
        own.wrote(end, float(end))
    assert own.silence(0.0, 31.0) == 31.0  # long past any doubt
