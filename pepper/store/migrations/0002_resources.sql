-- 0002: the resource pool, leases, measured usage and alerts.

-- Capacity of the pool, per resource (cores, MB, or plain counts for custom names).
CREATE TABLE pool (
    resource TEXT PRIMARY KEY,
    capacity REAL NOT NULL CHECK (capacity >= 0)
);

-- Resources granted to an agent (kind budget) or to one running task (kind task).
-- A lease counts while released_at is NULL and expires_at is NULL or in the future.
CREATE TABLE leases (
    lease_id    TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('budget', 'task')),
    resources   TEXT NOT NULL,
    granted_at  REAL NOT NULL,
    expires_at  REAL,
    released_at REAL,
    worker_id   TEXT,
    task_id     TEXT
);
CREATE INDEX leases_unreleased ON leases (holder) WHERE released_at IS NULL;

-- The latest measurement of each agent by the worker that runs it.
CREATE TABLE usage_samples (
    agent_id   TEXT NOT NULL,
    worker_id  TEXT NOT NULL,
    sampled_at REAL NOT NULL,
    usage      TEXT NOT NULL,
    PRIMARY KEY (agent_id, worker_id)
);

-- Every alert that fired.
CREATE TABLE alerts (
    alert_id  TEXT PRIMARY KEY,
    rule_id   TEXT NOT NULL,
    source    TEXT NOT NULL,
    subject   TEXT,
    metric    TEXT NOT NULL,
    value     REAL,
    threshold REAL NOT NULL,
    above     INTEGER NOT NULL,
    at        REAL NOT NULL,
    message   TEXT NOT NULL
);
CREATE INDEX alerts_by_time ON alerts (at);
