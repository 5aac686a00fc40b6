-- 0011: delayed tasks, schedules, and the schedule that started a run.

-- The time before which a task does not start (seconds since the epoch; NULL: as soon as it is ready).
ALTER TABLE tasks ADD COLUMN not_before REAL;

-- The schedule whose tick started a run (NULL: started by hand).
ALTER TABLE runs ADD COLUMN schedule TEXT;

-- Workflows started on a schedule: a cron expression (in its time zone) or a fixed interval. A tick is
-- claimed by moving next_fire_at on from the value read (one conditional UPDATE), so of several workers
-- sharing the database exactly one starts the run of each tick.
CREATE TABLE schedules (
    name         TEXT PRIMARY KEY,
    workflow     TEXT NOT NULL,
    spec         TEXT NOT NULL,
    inputs       TEXT NOT NULL,
    cron         TEXT,
    every        REAL,
    timezone     TEXT NOT NULL,
    catch_up     INTEGER NOT NULL DEFAULT 0,
    paused       INTEGER NOT NULL DEFAULT 0,
    next_fire_at REAL NOT NULL,
    last_fire_at REAL,
    last_run_id  TEXT,
    created_at   REAL NOT NULL,
    CHECK ((cron IS NULL) != (every IS NULL))
);
CREATE INDEX schedules_by_next ON schedules (next_fire_at);

-- An attempt outlived by a re-run of its workflow run keeps how it ended: completed, failed or cancelled.
-- (SQLite cannot change a CHECK in place: the table is made again, with its rows.)
CREATE TABLE attempts_before_0011 AS SELECT * FROM attempts;
DROP TABLE attempts;
CREATE TABLE attempts (
    task_id    TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    agent_id   TEXT,
    worker_id  TEXT,
    task_type  TEXT NOT NULL,
    started_at REAL,
    ended_at   REAL NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('retry', 'interrupted', 'completed', 'failed', 'cancelled')),
    error      TEXT,
    PRIMARY KEY (task_id, attempt)
);
INSERT INTO attempts SELECT * FROM attempts_before_0011;
DROP TABLE attempts_before_0011;
