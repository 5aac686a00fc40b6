"""A run's earlier attempts, read back from the store for its summary table and its Gantt chart."""

from __future__ import annotations

import pepper
from pepper.cli.run_report import RunHistory
from pepper.cli.run_views import steps_table
from pepper.core import WorkflowController
from pepper.drawing import run_bars


def test_the_summary_and_the_chart_show_the_failed_attempt_before_the_one_that_completed(tmp_path):
    calls = []
    with pepper.Runtime(db=str(tmp_path / "h.db"), home=str(tmp_path / "home"), retry_delay="10ms") as runtime:

        @pepper.agent("flaky", task_types=["t"], capacity=2, runtime=runtime)
        def flaky(task):
            calls.append(task.attempt)
            if task.attempt == 1:
                raise OSError("disk full\nmore detail")
            return "ok"

        workflow = WorkflowController("retrying", runtime)
        workflow.add_step("build", "t", max_retries=2)
        result = workflow.run(timeout=30)
        history = RunHistory.of(runtime, result)

    assert result.status == "completed" and calls == [1, 2]
    (past,) = history.earlier["build"]
    assert (past.attempt, past.agent_id, past.status, past.error) == (1, "flaky", "failed", "OSError: disk full")
    assert history.capacities == {"flaky": 2}
    bars = run_bars(result, earlier=history.earlier)
    assert [(b.attempt, b.status) for b in bars] == [(1, "failed"), (None, "completed")]
    assert bars[0].end <= bars[1].start
    table = steps_table(result, result.finished_at or 0.0, earlier=history.earlier)
    cells = [[str(cell) for cell in column.cells] for column in table.columns]
    rows = list(zip(*cells, strict=True))
    assert rows[0][:2] == ("build", "completed") and rows[1][:3] == ("  #1", "failed", "flaky")
    assert rows[1][-1] == "OSError: disk full"
