-- 0004: runs of workflows. The steps of a run are tasks with ids "<run_id>/<step_id>".

CREATE TABLE runs (
    run_id           TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    spec             TEXT NOT NULL,
    inputs           TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('running', 'completed', 'failed', 'cancelled')),
    created_at       REAL NOT NULL,
    finished_at      REAL,
    driver           TEXT,
    reason           TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_created ON runs (created_at);
