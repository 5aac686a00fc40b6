-- 0013: what attempts wrote (task logs, head and tail kept per attempt) and the state of each configured alert
-- rule (one row per rule, changed by conditional updates so one crossing fires once across workers).

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

CREATE TABLE alert_states (
    rule        TEXT PRIMARY KEY,
    firing      INTEGER NOT NULL DEFAULT 0,
    value       REAL,
    changed_at  REAL NOT NULL,
    fired_count INTEGER NOT NULL DEFAULT 0
);
