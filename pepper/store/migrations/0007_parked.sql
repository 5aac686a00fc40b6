-- 0007: a parked (dead-lettered) task has a state of its own, 'parked', instead of
-- 'pending' with parked_at set. SQLite cannot change a CHECK constraint in place, so
-- the tasks table is rebuilt with the new list of states; parked rows move to 'parked'.

ALTER TABLE tasks RENAME TO tasks_before_parked;

CREATE TABLE tasks (
    seq              INTEGER PRIMARY KEY,
    task_id          TEXT NOT NULL UNIQUE,
    task_type        TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    dependencies     TEXT NOT NULL,
    inputs           TEXT NOT NULL,
    agent            TEXT,
    requirements     TEXT NOT NULL,
    timeout          REAL,
    max_retries      INTEGER NOT NULL,
    metadata         TEXT NOT NULL,
    created_at       REAL NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('blocked', 'pending', 'in_progress', 'parked', 'completed', 'failed',
                                                'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0,
    agent_id         TEXT,
    owner            TEXT,
    ready_at         REAL,
    started_at       REAL,
    finished_at      REAL,
    next_attempt_at  REAL,
    result           TEXT,
    error            TEXT,
    reason           TEXT,
    progress         REAL,
    progress_message TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    version          INTEGER NOT NULL DEFAULT 1,
    change_seq       INTEGER NOT NULL,
    writer           TEXT,
    placement        TEXT,
    policy           TEXT,
    recovery         TEXT,
    parked_at        REAL
);

INSERT INTO tasks
SELECT
    seq,
    task_id,
    task_type,
    priority,
    dependencies,
    inputs,
    agent,
    requirements,
    timeout,
    max_retries,
    metadata,
    created_at,
    CASE WHEN state = 'pending' AND parked_at IS NOT NULL THEN 'parked' ELSE state END,
    attempts,
    failures,
    agent_id,
    owner,
    ready_at,
    started_at,
    finished_at,
    next_attempt_at,
    result,
    error,
    reason,
    progress,
    progress_message,
    cancel_requested,
    version,
    change_seq,
    writer,
    placement,
    policy,
    recovery,
    parked_at
FROM tasks_before_parked;

DROP TABLE tasks_before_parked;

CREATE INDEX tasks_by_change ON tasks (change_seq);
