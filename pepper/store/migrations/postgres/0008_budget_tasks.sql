-- 0008: a task running inside its agent's budget holds a lease too (SQLite's migration 0016): in_budget = 1.

ALTER TABLE leases ADD COLUMN in_budget BIGINT NOT NULL DEFAULT 0;
