-- 0005: recovery policies, the error history and the dead-letter queue.

-- A task's own recovery policy (JSON list of strategies), its progress through
-- the policy in use (JSON), and when it was parked in the dead-letter queue.
ALTER TABLE tasks ADD COLUMN policy TEXT;
ALTER TABLE tasks ADD COLUMN recovery TEXT;
ALTER TABLE tasks ADD COLUMN parked_at REAL;

-- Every error a task met, with the strategy that answered it and what it decided.
CREATE TABLE errors (
    error_id  INTEGER PRIMARY KEY,
    task_id   TEXT NOT NULL,
    attempt   INTEGER NOT NULL,
    agent_id  TEXT,
    worker_id TEXT,
    task_type TEXT NOT NULL,
    at        REAL NOT NULL,
    type      TEXT NOT NULL,
    message   TEXT NOT NULL,
    traceback TEXT,
    kind      TEXT NOT NULL,
    strategy  TEXT,
    action    TEXT NOT NULL,
    detail    TEXT
);
CREATE INDEX errors_by_task ON errors (task_id, error_id);
CREATE INDEX errors_by_agent ON errors (agent_id, at);
