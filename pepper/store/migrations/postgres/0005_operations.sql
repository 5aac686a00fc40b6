-- 0005: task logs and the state of configured alert rules (SQLite's migration 0013), in PostgreSQL's types.

CREATE TABLE task_logs (
    task_id    TEXT COLLATE "C" NOT NULL,
    attempt    BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    start_byte BIGINT NOT NULL,
    end_byte   BIGINT NOT NULL,
    at         DOUBLE PRECISION NOT NULL,
    body       TEXT NOT NULL,
    ended      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, attempt, seq)
);

CREATE TABLE alert_states (
    rule        TEXT COLLATE "C" PRIMARY KEY,
    firing      BIGINT NOT NULL DEFAULT 0,
    value       DOUBLE PRECISION,
    changed_at  DOUBLE PRECISION NOT NULL,
    fired_count BIGINT NOT NULL DEFAULT 0
);
