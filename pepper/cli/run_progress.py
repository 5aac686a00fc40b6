"""The live progress of ``pepper run`` and ``pepper resume``: a bar, counts, elapsed time and an estimate
of the time left, and the steps running now (or, off a terminal, a line per step as it ends); and the loop
that follows a run to its end, cancelling it on Ctrl-C or at its time limit, and the exit."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

import pepper
from pepper.cli.common import EXIT_INTERRUPTED, EXIT_OK, where_hint
from pepper.cli.render import duration, make_console
from pepper.cli.run_views import STEP_STYLES, counts_text, local, settled, skip_reason, status_text, step_error
from pepper.core import WorkflowController
from pepper.model.workflow import WorkflowSpec
from pepper.model.workflow_run import StepResult, WorkflowResult

if TYPE_CHECKING:
    from pepper.cli.worker import Stopping

#: Live display refreshes per second (and polls of the run).
REFRESH = 8
_TICK = 1 / REFRESH
#: How often a run followed through a server's events is read again when no event came (seconds).
_QUIET_TICK = 1.0
#: Rows of running steps shown live; the others are counted.
_RUNNING_ROWS = 8
#: The reason a run cancelled with Ctrl-C is given.
INTERRUPTED = "interrupted from the terminal"
_MARKS = {"completed": "✓", "failed": "✗", "cancelled": "-", "skipped": "-"}
_ASCII_MARKS = {"completed": "+", "failed": "x", "cancelled": "-", "skipped": "-"}


# --- how long is left ----------------------------------------------------------------------


def time_left(result: WorkflowResult, spec: WorkflowSpec, now: float, parallel: int) -> float | None:
    """Seconds the run still needs, estimated from the steps that ran so far; None before one finished.

    Each step left is expected to take as long as the steps of its task type did (else as the steps
    that ran did, on average), and a step running past that half as long again as it ran so far; the
    estimate is the longer of the slowest chain of dependencies left and the work left spread over
    ``parallel`` steps at a time.
    """
    types = {s.step_id: s.task_type for s in spec.steps}
    ran: dict[str, list[float]] = {}
    for step in result.steps.values():
        if settled(step) and step.duration is not None and step.started_at is not None:
            ran.setdefault(types.get(step.step_id, ""), []).append(step.duration)
    if not ran:
        return None
    overall = sum(sum(d) for d in ran.values()) / sum(len(d) for d in ran.values())
    left: dict[str, float] = {}
    for step in result.steps.values():
        durations = ran.get(types.get(step.step_id, ""))
        expected = sum(durations) / len(durations) if durations else overall
        if settled(step):
            left[step.step_id] = 0.0
        elif step.status == "in_progress" and step.started_at is not None:
            ran_for = now - step.started_at
            left[step.step_id] = max(expected - ran_for, 0.5 * ran_for)  # past its estimate: half as long again
        else:
            left[step.step_id] = expected
    finish: dict[str, float] = {}

    def chain(step_id: str) -> float:
        if step_id not in finish:
            deps = result.steps[step_id].dependencies if step_id in result.steps else ()
            finish[step_id] = left.get(step_id, 0.0) + max((chain(d) for d in deps if d in left), default=0.0)
        return finish[step_id]

    longest = max((chain(s) for s in left), default=0.0)
    return max(longest, sum(left.values()) / max(1, parallel))


# --- the live display -------------------------------------------------------------------------


class RunDisplay:
    """Shows a run as it goes: live on a terminal (``mode="live"``), else a line per step as it settles
    (``"lines"``), or nothing (``"quiet"``).

    ``update`` takes the run's latest ``WorkflowResult``; ``note`` prints a line (above the live part).
    """

    def __init__(self, console: Console, spec: WorkflowSpec, mode: str = "live", where: str = "") -> None:
        self.console = console
        self.where = where  # `` --server URL`` or `` --db PATH`` for the commands it suggests
        self.spec = spec
        self.mode = mode
        self._live: Live | None = None
        self._seen: set[str] = set()  # steps announced (or settled before a resume)
        self._parked: set[str] = set()  # parked steps already pointed out
        self._peak = 1  # the most steps seen running at once
        self._marks = _MARKS if console.encoding.lower().startswith("utf") else _ASCII_MARKS

    def __enter__(self) -> RunDisplay:
        if self.mode == "live":
            # what else is written to the terminal meanwhile (a warning) goes above the live part
            self._live = Live(console=self.console, auto_refresh=False, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def note(self, text: Text | str) -> None:
        if self.mode != "quiet":
            self.console.print(text if isinstance(text, Text) else Text(text))

    def skip_settled(self, result: WorkflowResult) -> None:
        """Steps already settled (a resumed run) are not announced again."""
        self._seen.update(s.step_id for s in result.steps.values() if settled(s))

    def update(self, result: WorkflowResult, now: float) -> None:
        running = sum(1 for s in result.steps.values() if s.status == "in_progress")
        self._peak = max(self._peak, running)
        for step in result.steps.values():
            if step.step_id in self._seen or not settled(step):
                continue
            self._seen.add(step.step_id)
            if self.mode == "lines":
                self.console.print(self._settled_line(step, result))
            elif self.mode == "live" and step.status == "failed":
                self.console.print(self._settled_line(step, result), no_wrap=True, overflow="ellipsis")
        for step in result.steps.values():
            if step.parked and step.step_id not in self._parked:
                self._parked.add(step.step_id)
                self.note(Text.assemble(
                    ("! ", "red"), (step.step_id, "bold"), " is parked in the dead-letter queue",
                    (f": {step_error(step) or step.reason}" if step.error or step.reason else "", "red"),
                    (f"\n  the run waits: `pepper dlq replay {step.task_id}{self.where}` runs it again, "
                     f"`pepper dlq drop {step.task_id}{self.where}` gives it up", "dim"),
                ))  # fmt: skip
        if self._live is not None:
            self._live.update(self._view(result, now), refresh=True)

    def _settled_line(self, step: StepResult, result: WorkflowResult) -> Text:
        status = step.status
        done = len(self._seen)  # the steps announced so far, this one included
        mark = (self._marks[status], STEP_STYLES.get(status, ""))
        line = Text.assemble((f"[{done}/{len(result.steps)}] ", "dim"), mark, " ", (step.step_id, "bold"), " ",
                             status_text(status))  # fmt: skip
        if step.agent_id:
            line.append(f" on {step.agent_id}")
        if step.duration is not None and step.started_at is not None:
            line.append(f" {'in' if status == 'completed' else 'after'} {duration(step.duration)}")
        if status == "failed":
            line.append(": ")
            line.append(local(step_error(step), result.run_id) or "no error recorded", style="red")
        elif status == "skipped":
            line.append(f": {local(skip_reason(step), result.run_id)}", style="dim")
        elif status == "cancelled" and step.reason:
            line.append(f": {local(step.reason, result.run_id)}", style="dim")
        return line

    def _view(self, result: WorkflowResult, now: float) -> RenderableType:
        total = len(result.steps)
        done = sum(1 for s in result.steps.values() if settled(s))
        left = time_left(result, self.spec, now, self._peak)
        eta = "ETA unknown" if left is None else f"ETA {duration(left)}"
        when = f"{duration(now - result.created_at)} elapsed, {eta}"
        width = self.console.width
        head = Table.grid(padding=(0, 2))
        head.add_column(no_wrap=True)
        head.add_column(no_wrap=True)
        head.add_column(no_wrap=True, overflow="ellipsis")
        bar = ProgressBar(total=max(total, 1), completed=done, width=max(10, min(40, width - len(when) - 20)))
        head.add_row(bar, Text(f"{done}/{total} steps", style="bold"), Text(when))
        parts: list[RenderableType] = [head, counts_text(result)]
        running = [s for s in result.steps.values() if s.status == "in_progress"]
        if running:
            parts.append(self._running_table(running, now, width))
        return Group(*parts)

    @staticmethod
    def _running_table(running: list[StepResult], now: float, width: int) -> Table:
        table = Table(box=None, header_style="dim", pad_edge=False, padding=(0, 2, 0, 0), show_edge=False)
        table.add_column("  RUNNING NOW", no_wrap=True, overflow="ellipsis", max_width=max(16, width // 2))
        table.add_column("AGENT", no_wrap=True, overflow="ellipsis")
        table.add_column("FOR", justify="right", no_wrap=True)
        for step in sorted(running, key=lambda s: s.started_at or now)[:_RUNNING_ROWS]:
            tries = f" (attempt {step.attempts})" if step.attempts > 1 else ""
            table.add_row(
                Text(f"  {step.step_id}{tries}"),
                Text(step.agent_id or "-"),
                Text(duration(now - step.started_at) if step.started_at is not None else "-"),
            )
        if len(running) > _RUNNING_ROWS:
            table.add_row(Text(f"  … and {len(running) - _RUNNING_ROWS} more", style="dim"), Text(""), Text(""))
        return table


# --- following a run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Following:
    """A run being followed from here: what shows it, what stops it (Ctrl-C sets ``stopping``; ``limit``
    seconds, written ``limit_text``), and ``future``, the call driving it here if any (a resume)."""

    controller: WorkflowController
    run_id: str
    display: RunDisplay
    stopping: Stopping
    limit: float | None
    limit_text: str | None
    future: concurrent.futures.Future[WorkflowResult] | None = None
    #: Set on each event of the run a server streams (``--server``): the run is read again at once.
    wake: threading.Event | None = None


def _follow(run: Following) -> tuple[WorkflowResult, str | None]:
    """Poll the run and show it until it ends: cancel it once ``run.stopping`` is set (Ctrl-C) or after
    ``run.limit`` seconds. ``run.future``, if any, must end too, and its error is raised.

    Returns the run's result and why it was cancelled from here: ``"interrupted"``, ``"timeout"`` or None.
    """
    controller, run_id, display, stopping = run.controller, run.run_id, run.display, run.stopping
    limit, future, limit_text = run.limit, run.future, run.limit_text
    deadline = None if limit is None else time.monotonic() + limit
    ending: str | None = None
    while True:
        result = controller.status(run_id)
        display.update(result, time.time())
        if future is not None and future.done():
            error = future.exception()
            if error is not None:
                raise error
        if result.status.is_final and (future is None or future.done()):
            break
        if ending is None and stopping.is_set():
            ending = "interrupted"
            controller.cancel(run_id, INTERRUPTED)
            display.note(Text("cancelling the run; Ctrl-C again quits without waiting", style="yellow"))
        elif ending is None and deadline is not None and time.monotonic() >= deadline:
            ending = "timeout"
            controller.cancel(run_id, f"the run did not finish within its timeout of {limit_text}")
            display.note(Text(f"the run did not finish within {limit_text}; cancelling it", style="yellow"))
        if run.wake is None:
            time.sleep(_TICK)
        else:  # told by the server's events; the timeout keeps Ctrl-C, the deadline and the clocks shown current
            run.wake.wait(_QUIET_TICK)
            run.wake.clear()
    final = future.result() if future is not None else controller.wait(run_id)
    return final, ending


def wake_on_events(runtime: pepper.Runtime, run_id: str) -> threading.Event | None:
    """For a runtime speaking to a server: an event set whenever the server streams an event of the run (the
    stream is followed until the runtime closes); None for a local one, which is polled."""
    if not runtime.server:
        return None
    from pepper.http.remote import RemoteRuntime  # only with --server: plain commands never load httpx

    assert isinstance(runtime, RemoteRuntime)
    wake = threading.Event()
    runtime.follow(run_id, lambda kind, data: wake.set())
    return wake


def drive(runtime: pepper.Runtime, run: Following, db: str | None) -> tuple[WorkflowResult, str | None]:
    """``_follow`` the run with its display on; a second Ctrl-C (``KeyboardInterrupt``) quits at once, exit 130."""
    try:
        with run.display:
            result, ending = _follow(run)
    except KeyboardInterrupt:
        err = make_console(stderr=True)
        err.print(Text(f"quit without waiting for run {run.run_id} to end; `pepper show {run.run_id}{where_hint(db)}` "
                       "says where it stands"))  # fmt: skip
        runtime.close(timeout=0)
        leave(EXIT_INTERRUPTED)
    return result, ending


def leave(code: int) -> None:
    """Exit with ``code`` (the runtime closed), without waiting for agent functions still running in threads:
    their steps were cancelled, but Python would wait for them to return before exiting."""
    if any(t is not threading.main_thread() and t.is_alive() for t in threading.enumerate()):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    if code != EXIT_OK:
        raise click.exceptions.Exit(code)
