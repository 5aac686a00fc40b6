-- The complete current schema. Migrations in ../migrations must reproduce it
-- exactly (a test checks this); change both together.

CREATE TABLE schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
);

-- One row per task: its specification, then how far it got.
-- version grows by one with every write; writers update "WHERE version = ?" so a
-- change made meanwhile by another process is detected, never overwritten.
-- change_seq numbers the write transactions (each takes the highest value so far
-- plus one; writers are serialised), so other processes can read only the rows
-- changed since they last looked.
-- Its states are checked as a chain of comparisons, not an IN list: SQLite checks a list of more
-- than two values by building a temporary index at every write of a row.
-- seq is never reused: a new task never takes the number of one deleted before (page cursors hold it).
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
-- No index on state: every write changes it, so such an index would tax every save;
-- queries by state (start-up, listings) scan instead (about 0.1 s per million rows).
CREATE INDEX tasks_by_change ON tasks (change_seq);

-- The tasks a prune deleted (an id and when that task was created: which life of the id it was), with the
-- prune's change number: other processes read them as they catch up (and forget those tasks), and the change
-- number counts them, so it never goes back when the newest rows are pruned. A prune keeps those of the latest prune before it, letting the older ones go.
CREATE TABLE pruned_tasks (
    change_seq INTEGER NOT NULL,
    task_id    TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (change_seq, task_id)
);

-- Attempts a task outlived (retried after a failure, interrupted by a stopped worker, or ended before a
-- re-run of its workflow run). The last attempt is described by the task row itself.
-- Its outcomes are checked as a chain of comparisons, as the tasks' states are (see there).
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

-- Processes running an engine; heartbeat_at proves they are alive.
CREATE TABLE workers (
    worker_id    TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    stopped_at   REAL
);

-- Agents registered by each worker (the code lives in the worker; this is its description).
CREATE TABLE agents (
    agent_id      TEXT NOT NULL,
    worker_id     TEXT NOT NULL,
    spec          TEXT NOT NULL,
    registered_at REAL NOT NULL,
    PRIMARY KEY (agent_id, worker_id)
);

-- Capacity of the pool, per host and resource (cores, MB, or plain counts for custom names).
-- Machine resources are a pool per host; host '*' marks a pool shared by every host.
CREATE TABLE pool (
    host     TEXT NOT NULL,
    resource TEXT NOT NULL,
    capacity REAL NOT NULL CHECK (capacity >= 0),
    PRIMARY KEY (host, resource)
);

-- Resources granted to an agent (kind budget) or to one running task (kind task), on a host. A task's lease
-- inside its agent's budget (in_budget = 1) holds room of that budget, and of the pool only beyond it.
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
    task_id     TEXT,
    host        TEXT NOT NULL DEFAULT '',
    in_budget   INTEGER NOT NULL DEFAULT 0
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

-- Every alert that fired, numbered (seq) in the order alerts were stored; a number is never given again.
CREATE TABLE alerts (
    alert_id  TEXT NOT NULL UNIQUE,
    rule_id   TEXT NOT NULL,
    source    TEXT NOT NULL,
    subject   TEXT,
    metric    TEXT NOT NULL,
    value     REAL,
    threshold REAL NOT NULL,
    above     INTEGER NOT NULL,
    at        REAL NOT NULL,
    message   TEXT NOT NULL,
    seq       INTEGER PRIMARY KEY AUTOINCREMENT
);
CREATE INDEX alerts_by_time ON alerts (at);

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

-- A run of a workflow. Its steps are tasks with ids "<run_id>/<step_id>".
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
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    plan             TEXT,
    schedule         TEXT,
    parent           TEXT
);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_parent ON runs (parent);

-- A step waiting for a person: who may decide and until when; its decision once made (the first one wins).
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

-- An API token of `pepper serve`: only a hash of its secret is kept (the secret is shown once, when made).
-- A revoked token keeps its row, with revoked_at set, until its name is reused.
CREATE TABLE tokens (
    name         TEXT PRIMARY KEY,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    secret_hash  TEXT NOT NULL,
    created_at   REAL NOT NULL,
    revoked_at   REAL,
    last_used_at REAL
);
CREATE UNIQUE INDEX tokens_by_hash ON tokens (secret_hash);

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
-- What an attempt wrote (a command's stderr, a Python agent's log records), in chunks written while it runs.
-- Only the first and the last part of a long log are kept: start_byte is where a chunk starts in the whole
-- stream and end_byte where it ends, so a gap between two chunks is what was cut. The attempt's last chunk has ended = 1.
CREATE TABLE task_logs (
    task_id    TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    start_byte INTEGER NOT NULL,
    end_byte   INTEGER NOT NULL,
    at         REAL NOT NULL,
    body       TEXT NOT NULL,
    ended      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, attempt, seq)
);

-- The state of each configured alert rule, shared by every worker: a crossing fires once, by the worker whose
-- conditional update (firing 0 -> 1) changed the row; it resolves (1 -> 0) when the value recovers.
CREATE TABLE alert_states (
    rule        TEXT PRIMARY KEY,
    firing      INTEGER NOT NULL DEFAULT 0,
    value       REAL,
    changed_at  REAL NOT NULL,
    fired_count INTEGER NOT NULL DEFAULT 0
);
