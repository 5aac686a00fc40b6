"""Debug logs of what the state machine decided: one line per action, with a stable action name and its cause.

Each line carries ``extra={"action": <name>, "task_id": ..., "cause": ...}`` (and ``state`` for a save),
so a log handler can filter or index them; the cause says which event led to it (``"attempt:t1:2"``).
The shell calls ``trace`` only when the ``pepper.engine`` logger is enabled for DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pepper.engine.live import LiveTask
from pepper.model import events as ev

log = logging.getLogger("pepper.engine")

#: The stable name of each action in logs.
ACTION_NAMES: Mapping[type, str] = {
    ev.Save: "save",
    ev.Start: "start",
    ev.Abort: "abort",
    ev.Settled: "settle",
    ev.WakeAt: "wake_at",
    ev.RecordAttempt: "record_attempt",
    ev.RecordError: "record_error",
    ev.TakeLease: "take_lease",
    ev.DropLease: "drop_lease",
    ev.Forget: "forget",
    ev.Decided: "decide",
}


def trace(actions: Sequence[ev.Action], tasks: Mapping[str, LiveTask]) -> None:
    """Log each of ``actions`` at DEBUG (a save names the state the task is saved in)."""
    for action in actions:
        name = ACTION_NAMES[type(action)]
        task_id = getattr(action, "task_id", None)
        extra: dict[str, object] = {"action": name, "task_id": task_id, "cause": action.cause}
        if type(action) is ev.Save:
            t = tasks.get(action.task_id)
            state = extra["state"] = t.state.value if t is not None else None
            log.debug("task %s saved as %s (cause %s)", task_id, state, action.cause, extra=extra)
        else:
            log.debug("%s %r", name, action, extra=extra)
