-- 0017: the tasks table's list of states (and the attempts table's list of outcomes) is checked as a chain
-- of comparisons instead of an IN list. The rule is the same; SQLite checks an IN list of more than two values
-- by building a temporary index every time a row is written, and every save of a task writes its state
-- (measured: about 2 microseconds of each write).
-- SQLite cannot change a CHECK constraint in place, so the tasks table is rebuilt, its rows and their order
-- (seq) kept as they are. Its seq becomes AUTOINCREMENT on the way: a new task never takes the number of one
-- deleted before (a prune of the newest tasks let the next ones reuse their numbers, and a page cursor held
-- across it could skip them).

ALTER TABLE tasks RENAME TO tasks_before_state_checks;

CREATE TABLE tasks (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
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
    state            TEXT NOT NULL CHECK (state = 'blocked' OR state = 'pending' OR state = 'in_progress'
                                          OR state = 'parked' OR state = 'completed' OR state = 'failed'
                                          OR state = 'cancelled'),
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
    parked_at        REAL,
    outcome          TEXT CHECK (outcome IN ('skipped', 'aborted')),
    not_before       REAL
);

INSERT INTO tasks (
    seq, task_id, task_type, priority, dependencies, inputs, agent, requirements, timeout, max_retries, metadata,
    created_at, state, attempts, failures, agent_id, owner, ready_at, started_at, finished_at, next_attempt_at,
    result, error, reason, progress, progress_message, cancel_requested, version, change_seq, writer, placement,
    policy, recovery, parked_at, outcome, not_before
)
SELECT
    seq, task_id, task_type, priority, dependencies, inputs, agent, requirements, timeout, max_retries, metadata,
    created_at, state, attempts, failures, agent_id, owner, ready_at, started_at, finished_at, next_attempt_at,
    result, error, reason, progress, progress_message, cancel_requested, version, change_seq, writer, placement,
    policy, recovery, parked_at, outcome, not_before
FROM tasks_before_state_checks;

DROP TABLE tasks_before_state_checks;

CREATE INDEX tasks_by_change ON tasks (change_seq);

-- The attempts table likewise (it has no index of its own beyond its key).
CREATE TABLE attempts_before_0017 AS SELECT * FROM attempts;
DROP TABLE attempts;
CREATE TABLE attempts (
    task_id    TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    agent_id   TEXT,
    worker_id  TEXT,
    task_type  TEXT NOT NULL,
    started_at REAL,
    ended_at   REAL NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome = 'retry' OR outcome = 'interrupted' OR outcome = 'completed'
                                    OR outcome = 'failed' OR outcome = 'cancelled'),
    error      TEXT,
    PRIMARY KEY (task_id, attempt)
);
INSERT INTO attempts SELECT * FROM attempts_before_0017;
DROP TABLE attempts_before_0017;
