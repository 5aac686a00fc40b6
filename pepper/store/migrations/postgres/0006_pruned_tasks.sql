-- 0006: the ids of tasks a prune deleted (SQLite's migration 0014), in PostgreSQL's types.

CREATE TABLE pruned_tasks (
    change_seq BIGINT NOT NULL,
    task_id    TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (change_seq, task_id)
);
