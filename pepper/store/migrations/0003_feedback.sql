-- 0003: ratings of finished tasks, and agents chosen for tasks by a workload plan.

-- A rating (1-5) of a task's outcome, with an optional comment and metrics.
CREATE TABLE feedback (
    feedback_id INTEGER PRIMARY KEY,
    task_id     TEXT NOT NULL,
    agent_id    TEXT,
    task_type   TEXT NOT NULL,
    rating      INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment     TEXT,
    metrics     TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX feedback_by_task ON feedback (task_id);

-- The agent a workload plan placed the task on (it then runs there, as if pinned).
ALTER TABLE tasks ADD COLUMN placement TEXT;
