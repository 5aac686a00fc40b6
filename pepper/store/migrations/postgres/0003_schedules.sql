-- 0003: delayed tasks, schedules, and the schedule that started a run (SQLite's migration 0011), in
-- PostgreSQL's types.

ALTER TABLE tasks ADD COLUMN not_before DOUBLE PRECISION;

ALTER TABLE runs ADD COLUMN schedule TEXT COLLATE "C";

CREATE TABLE schedules (
    name         TEXT COLLATE "C" PRIMARY KEY,
    workflow     TEXT NOT NULL,
    spec         TEXT NOT NULL,
    inputs       TEXT NOT NULL,
    cron         TEXT,
    every        DOUBLE PRECISION,
    timezone     TEXT NOT NULL,
    catch_up     BIGINT NOT NULL DEFAULT 0,
    paused       BIGINT NOT NULL DEFAULT 0,
    next_fire_at DOUBLE PRECISION NOT NULL,
    last_fire_at DOUBLE PRECISION,
    last_run_id  TEXT COLLATE "C",
    created_at   DOUBLE PRECISION NOT NULL,
    CHECK ((cron IS NULL) != (every IS NULL))
);
CREATE INDEX schedules_by_next ON schedules (next_fire_at);

-- An attempt outlived by a re-run of its workflow run keeps how it ended: completed, failed or cancelled.
ALTER TABLE attempts DROP CONSTRAINT attempts_outcome_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_outcome_check
    CHECK (outcome IN ('retry', 'interrupted', 'completed', 'failed', 'cancelled'));
