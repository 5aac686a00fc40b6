-- 0014: the ids of tasks a prune deleted, with the prune's change number: other processes read them as they
-- catch up, and the change counter never goes back when the newest rows are pruned.

CREATE TABLE pruned_tasks (
    change_seq INTEGER NOT NULL,
    task_id    TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (change_seq, task_id)
);
