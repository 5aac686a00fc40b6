"""How long this worker itself could not write its heartbeat, so that others' silence is judged fairly.

Another process may hold the database's write lock for a while (a long copy, a ``VACUUM``, a backup): every
worker's heartbeat waits behind it, not only the one whose silence is being judged. A worker therefore counts
another's silence only over the time its own heartbeats went through: the stretches in which its own beats came
later than they should (held up by that lock, or by a stalled process) are taken off.
"""

from __future__ import annotations

from collections import deque


class OwnBeats:
    """The times this worker's own liveness writes went through, and the stretches they were held up.

    ``interval`` is the most a beat should take after the one before (the heartbeat interval plus one poll);
    whatever a beat came later than that is a stretch in which this worker could not write either.
    ``keep`` is how long such a stretch is remembered (a few visibility timeouts: silence older than that
    is long past any doubt).
    """

    def __init__(self, interval: float, keep: float) -> None:
        self.interval = interval
        self.keep = keep
        self._last: float | None = None
        self._held: deque[tuple[float, float]] = deque()  # (end of a late beat, seconds it came late)

    def wrote(self, asked_at: float, at: float) -> None:
        """A liveness write of this worker, asked for at ``asked_at``, went through at ``at`` (after whatever wait
        the database imposed). The first one (the worker's registration) is late by all it waited."""
        late = at - asked_at if self._last is None else at - self._last - self.interval
        if late > 0:
            self._held.append((at, late))
        self._last = at
        while self._held and self._held[0][0] < at - self.keep:
            self._held.popleft()

    @property
    def last(self) -> float | None:
        """When this worker's last liveness write went through (None before its registration)."""
        return self._last

    def silence(self, heard_at: float, now: float) -> float:
        """Seconds another worker last heard at ``heard_at`` has been silent at ``now``, less the time since then
        that this worker's own heartbeats were held up."""
        held = sum(min(late, end - heard_at) for end, late in self._held if end > heard_at)
        return now - heard_at - held
