-- 0004: steps that shape their run (SQLite's migration 0012), in PostgreSQL's types: a sub-workflow's run names
-- its parent step's task; a step waiting for a person has a row in `approvals`.

ALTER TABLE runs ADD COLUMN parent TEXT COLLATE "C";
CREATE INDEX runs_by_parent ON runs (parent);

CREATE TABLE approvals (
    task_id      TEXT COLLATE "C" PRIMARY KEY,
    run_id       TEXT COLLATE "C" NOT NULL,
    step_id      TEXT COLLATE "C" NOT NULL,
    approvers    TEXT NOT NULL,
    requested_at DOUBLE PRECISION NOT NULL,
    deadline     DOUBLE PRECISION NOT NULL,
    decision     TEXT CHECK (decision IN ('approved', 'rejected', 'expired')),
    decided_by   TEXT,
    reason       TEXT,
    decided_at   DOUBLE PRECISION
);
CREATE INDEX approvals_by_run ON approvals (run_id);
