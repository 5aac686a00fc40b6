-- 0012: steps that shape their run. A run started by a step of another run (a sub-workflow) names that step's
-- task in `parent`; a step waiting for a person has a row in `approvals` until (and after) it is decided.

ALTER TABLE runs ADD COLUMN parent TEXT;
CREATE INDEX runs_by_parent ON runs (parent);

CREATE TABLE approvals (
    task_id      TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    step_id      TEXT NOT NULL,
    approvers    TEXT NOT NULL,
    requested_at REAL NOT NULL,
    deadline     REAL NOT NULL,
    decision     TEXT CHECK (decision IN ('approved', 'rejected', 'expired')),
    decided_by   TEXT,
    reason       TEXT,
    decided_at   REAL
);
CREATE INDEX approvals_by_run ON approvals (run_id);
